"""The studio in a real browser: Playwright (pip) driving Debian's chromium through executable_path
(.ci/run installs it; Playwright's own browser download is never used). One server, one tiny model
and one browser for the module; small pictures and few steps keep the suite well under 2 minutes."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium; .ci/run does)")

from dreamreel.serve.app import Settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import running_server, wait_for_model  # noqa: E402

# docs/studio.png is made by: DREAMREEL_STUDIO_SCREENSHOT=docs/studio.png pytest tests/test_serve_browser.py
SCREENSHOT = os.environ.get("DREAMREEL_STUDIO_SCREENSHOT")
TIMEOUT = 60_000  # ms: generous for a loaded CI machine; each job takes about a second


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("browser")
    with running_server(Settings(out=out, model="tiny", load=lambda: tiny_model)) as (url, app):
        wait_for_model(app)
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM)
            try:
                yield browser, url, app, out
            finally:
                browser.close()


@pytest.fixture
def page(studio):
    browser, url, _, _ = studio
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(url + "/")
    page.wait_for_selector("#form textarea[name=prompt]")
    yield page
    context.close()


def fill(page, job: str, values: dict[str, str]) -> None:
    page.click(f"#jobs button[data-job={job}]")
    for name, value in values.items():
        page.fill(f"#form [name={name}]", value)


def run_and_wait(page, app) -> str:
    page.click("#submit")
    page.wait_for_function("new URLSearchParams(location.search).get('job')")
    job = page.evaluate("new URLSearchParams(location.search).get('job')")
    page.wait_for_function(f"window.studio.doneEvents['{job}'] === 1")
    assert app.state.queue.get(job).state == "done"
    return job


def test_txt2img_appears_in_the_gallery_with_its_settings(studio, page):
    _, _, app, _ = studio
    fill(page, "txt2img", {"prompt": "a lighthouse at dusk", "seeds": "5", "steps": "3", "width": "48", "height": "32"})
    job = run_and_wait(page, app)
    [picture] = app.state.queue.get(job).outputs
    page.locator(f'#gallery img[data-path="{picture}"]').click()
    page.wait_for_function("document.querySelector('#settings').textContent.includes('Steps: 3')")
    settings = page.inner_text("#settings")
    assert "a lighthouse at dusk" in settings and "Seed: 5" in settings and "Size: 48x32" in settings
    assert page.evaluate(f"document.querySelector('#gallery img[data-path=\"{picture}\"]').naturalWidth") == 48


def test_reload_mid_run_continues_and_ends_once(studio, page, monkeypatch):
    _, _, app, out = studio
    from dreamreel.serve.queue import JobReporter

    gate = threading.Event()  # holds the job after its first picture, so the reload lands mid-run
    step = JobReporter.step
    finished_pictures = []  # counted by steps: the PNG writer may report a picture later than its last step

    def held(self, number, total, *args, **kwargs):
        if number == 1 and finished_pictures:
            gate.wait(TIMEOUT / 1000)
        if number == total:
            finished_pictures.append(number)
        return step(self, number, total, *args, **kwargs)

    monkeypatch.setattr(JobReporter, "step", held)
    fill(page, "txt2img", {"prompt": "a long run", "seeds": "1-4", "steps": "3", "width": "32", "height": "32"})
    page.click("#submit")
    page.wait_for_function("window.studio.progressLog.some((p) => p >= 0.25)")
    before = page.evaluate("Math.max(...window.studio.progressLog)")
    job = page.evaluate("new URLSearchParams(location.search).get('job')")
    page.reload()
    page.wait_for_function("window.studio.progressLog.length > 0")
    assert app.state.queue.get(job).state == "running"
    gate.set()
    page.wait_for_function(f"window.studio.doneEvents['{job}'] === 1")
    after = page.evaluate("window.studio.progressLog")
    assert after[0] >= before, (before, after)  # the reloaded page starts where the job is
    assert after == sorted(after) and after[-1] == 1  # and never goes backwards
    page.wait_for_timeout(300)
    assert page.evaluate(f"window.studio.doneEvents['{job}']") == 1  # the job ended once
    finished = app.state.queue.get(job)
    assert finished.state == "done" and len(finished.outputs) == len(set(finished.outputs)) == 4
    assert all((out / path).is_file() for path in finished.outputs)


def test_send_to_img2img_fills_the_form(studio, page):
    _, _, app, _ = studio
    fill(page, "txt2img", {"prompt": "a red fox", "seeds": "21", "steps": "2", "width": "32", "height": "32"})
    job = run_and_wait(page, app)
    [picture] = app.state.queue.get(job).outputs
    page.locator(f'#gallery img[data-path="{picture}"]').click()
    page.wait_for_function("document.querySelector('#settings').textContent.includes('a red fox')")
    page.click("#to-img2img")
    assert page.get_attribute("#jobs button[data-job=img2img]", "aria-selected") == "true"
    assert page.input_value("#form [name=image]") == picture
    assert page.input_value("#form [name=prompt]") == "a red fox"
    assert page.input_value("#form [name=seeds]") == "21"
    assert page.input_value("#form [name=steps]") == "2"
    run_and_wait(page, app)  # and the filled form runs

    page.locator(f'#gallery img[data-path="{picture}"]').click()
    page.wait_for_function("document.querySelector('#settings').textContent.includes('a red fox')")
    page.click("#to-zoom")
    assert page.get_attribute("#jobs button[data-job=zoom]", "aria-selected") == "true"
    assert page.input_value("#form [name=start]") == picture
    page.locator(f'#gallery img[data-path="{picture}"]').click()
    page.wait_for_function("document.querySelector('#settings').textContent.includes('a red fox')")
    jobs = len(app.state.queue.jobs())
    page.click("#more-steps")  # renders again at once, with twice the steps
    page.wait_for_function(f"document.querySelectorAll('#queue li').length > {jobs}")
    rerender = max(app.state.queue.jobs(), key=lambda job: job.created)
    assert rerender.recipe["steps"] == 4 and rerender.recipe["seeds"] == [21] and rerender.recipe["prompt"] == "a red fox"


def test_upload_fills_the_file_field(studio, page, sample_picture):
    _, _, _, out = studio
    page.click("#jobs button[data-job=img2img]")
    page.set_input_files("#form [name=image-upload]", str(sample_picture))
    page.wait_for_function("document.querySelector('#form [name=image]').value.startsWith('uploads/')")
    uploaded = page.input_value("#form [name=image]")
    assert (out / uploaded).read_bytes() == sample_picture.read_bytes()


def test_password_shows_a_login_then_the_studio(tmp_path, tiny_model, studio):
    browser = studio[0]
    settings = Settings(out=tmp_path, model="tiny", password="s3cret", load=lambda: tiny_model)
    with running_server(settings) as (url, _):
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        assert page.goto(url + "/").status == 401
        page.fill("input[name=password]", "s3cret")
        page.click("button[type=submit]")
        page.wait_for_selector("#form textarea[name=prompt]")
        context.close()


def test_zoom_plays_its_video(studio, page):
    _, _, app, _ = studio
    fill(page, "zoom", {"prompt": "a tunnel of light", "frames": "4", "steps": "2", "width": "32", "height": "32"})
    job = run_and_wait(page, app)
    [video] = app.state.queue.get(job).outputs
    page.wait_for_selector(f'#videos video[src="/files/{video}"]')
    played = page.evaluate(
        """async (src) => {
            const video = document.querySelector(`#videos video[src="${src}"]`);
            await video.play();
            await new Promise((resolve) => setTimeout(resolve, 400));
            return { time: video.currentTime, duration: video.duration, width: video.videoWidth };
        }""",
        f"/files/{video}",
    )
    assert played["width"] == 32 and played["duration"] > 0 and played["time"] > 0


def test_bad_schedule_shows_its_error_next_to_the_field(studio, page):
    fill(page, "zoom", {"prompt": "x", "zoom": "0:(1.0, 10:(1.2)"})
    page.click("#submit")
    page.wait_for_function("document.querySelector('#error-zoom').textContent.length > 0")
    error = page.inner_text("#error-zoom")
    assert "--zoom" in error and "\n" not in error
    assert page.inner_text("#error-angle") == ""


def test_screenshot_of_the_studio_with_finished_jobs(studio, page, tmp_path):
    """Last in the module: the gallery holds the pictures and the film made above."""
    _, _, app, _ = studio
    fill(page, "txt2img", {"prompt": "a lighthouse at dusk, oil painting", "seeds": "1-3", "steps": "3",
                           "width": "64", "height": "64"})  # fmt: skip
    job = run_and_wait(page, app)
    picture = app.state.queue.get(job).outputs[0]
    page.locator(f'#gallery img[data-path="{picture}"]').click()
    page.wait_for_function("document.querySelector('#settings').textContent.includes('oil painting')")
    path = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "studio.png"
    page.screenshot(path=str(path), type="png")
    assert 0 < path.stat().st_size < 200_000
