"""dreamreel serve: forms from the recipe fields, the queue on disk, jobs through the runner, progress
as numbered server-sent events with replay. One app and one tiny model for the whole module."""

from __future__ import annotations

import json
import sys
import time

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from dreamreel.jobs import JOBS
from dreamreel.serve.app import Settings, create_app
from dreamreel.serve.forms import SERVER_FIELDS

STILL = {"prompt": "a cat", "seeds": "3-4", "steps": "3", "width": "32", "height": "32", "scheduler": "Euler a"}


@pytest.fixture(scope="module")
def studio(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("studio")
    app = create_app(Settings(out=out, model="tiny", load=lambda: tiny_model))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, out


def events_of(client: TestClient, job: str, headers: dict[str, str] | None = None, after: int = 0) -> list[dict]:
    """The SSE stream of one job (it ends after the job's done or error), parsed."""
    events, current = [], {}
    with client.stream("GET", f"/api/events?job={job}&after={after}", headers=headers or {}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    events.append(current)
                current = {}
                continue
            key, _, value = line.partition(": ")
            current[key] = json.loads(value) if key == "data" else value
    return events


def submit(client: TestClient, job: str, fields: dict) -> dict:
    response = client.post("/api/jobs", json={"job": job, "fields": fields})
    assert response.status_code == 200, response.text
    return response.json()


def test_forms_are_the_recipe_fields():
    from dreamreel.serve.forms import form_schema

    forms = {form["job"]: form for form in form_schema()}
    assert list(forms) == list(JOBS)
    for name, job in JOBS.items():
        shown = [field["name"] for field in forms[name]["fields"]]
        assert shown == [f for f in job.recipe.field_names() if f not in SERVER_FIELDS]
    zoom = {field["name"]: field for field in forms["zoom"]["fields"]}
    assert zoom["zoom"]["kind"] == "schedule" and zoom["zoom"]["default"] == "1.04"


def test_txt2img_runs_with_events_and_lands_in_the_gallery(studio, run_cli):
    client, out = studio
    job = submit(client, "txt2img", STILL)
    events = events_of(client, job["id"])
    kinds = [e["event"] for e in events]
    assert kinds.count("done") == 1 and "error" not in kinds
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    progress = [e["data"]["progress"] for e in events if e["event"] in ("step", "picture")]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert "preview" in kinds
    finished = client.get(f"/api/jobs/{job['id']}").json()
    assert finished["state"] == "done" and len(finished["outputs"]) == 2
    gallery = client.get("/api/gallery").json()
    assert {p["path"] for p in gallery["pictures"]} >= set(finished["outputs"])
    picture = finished["outputs"][0]
    assert client.get(f"/files/{picture}").content == (out / picture).read_bytes()
    info = client.get(f"/api/info/{picture}").json()
    code, printed, _ = run_cli(["info", out / picture])
    assert code == 0 and info["text"] == printed.rstrip("\n")  # the same text as `dreamreel info`
    assert info["recipe"]["seeds"] == [3] and info["recipe"]["steps"] == 3


def test_last_event_id_replays_only_later_events(studio):
    client, _ = studio
    job = submit(client, "txt2img", {**STILL, "seeds": "7"})
    everything = events_of(client, job["id"])
    middle = everything[len(everything) // 2]["id"]
    replayed = events_of(client, job["id"], headers={"Last-Event-ID": middle})
    assert [e["id"] for e in replayed] == [e["id"] for e in everything if int(e["id"]) > int(middle)]


def test_previews_do_not_change_the_pictures(tmp_path, tiny_model):
    """Pictures rendered with live previews on are byte-identical to previews off."""
    from dreamreel.jobs.runner import Silent, prepare, run_job
    from dreamreel.jobs.txt2img import Txt2ImgRecipe
    from dreamreel.serve.queue import JobQueue, JobReporter, QueuedJob

    def render(reporter) -> bytes:  # one folder: the recipe (and so the metadata) is the same
        recipe = Txt2ImgRecipe(prompt="a cat", model="tiny", steps=3, width=32, height=32, seeds=[11],
                               out=str(tmp_path / "out"))  # fmt: skip
        [path] = run_job(prepare(recipe), model=tiny_model, reporter=reporter)
        return path.read_bytes()

    queue = JobQueue(tmp_path / "q", lambda: tiny_model, model_spec="tiny")
    job = QueuedJob(id="x", job="txt2img", recipe={})
    reporter = JobReporter(queue, job, 1, previews=True)
    reporter.last_preview = -1e9
    with_previews = render(reporter)
    assert job.preview is not None and job.preview.startswith("data:image/png;base64,")
    assert with_previews == render(Silent())


def test_bad_input_is_one_line_naming_the_field(studio):
    client, _ = studio
    response = client.post("/api/jobs", json={"job": "zoom", "fields": {"prompt": "x", "zoom": "0:(1.0"}})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "zoom" and "--zoom" in body["error"] and "\n" not in body["error"]
    code = client.post("/api/jobs", json={"job": "zoom", "fields": {"prompt": "x", "angle": "0:(__import__('os'))"}})
    assert code.status_code == 400 and code.json()["field"] == "angle"  # never evaluated as code
    assert client.post("/api/jobs", json={"job": "nope", "fields": {}}).status_code == 400
    outside = client.post("/api/jobs", json={"job": "img2img", "fields": {"prompt": "x", "image": "/etc/hostname"}})
    assert outside.status_code == 400 and outside.json()["field"] == "image"


def test_queue_on_disk_survives_a_restart_and_reorders(tmp_path, tiny_model):
    """Without a worker, jobs stay queued; a new server on the folder finds them in their order; a
    job that was running is listed as interrupted; cancel and move change the files."""
    from dreamreel.jobs.txt2img import Txt2ImgRecipe
    from dreamreel.serve.queue import JobQueue

    def recipe(seed: int) -> Txt2ImgRecipe:
        return Txt2ImgRecipe(prompt="a", model="tiny", steps=2, width=32, height=32, seeds=[seed], out=str(tmp_path))

    queue = JobQueue(tmp_path, lambda: tiny_model, model_spec="tiny")
    a, b, c = (queue.submit(recipe(seed)) for seed in (1, 2, 3))
    queue.move(c.id, before=a.id)
    queue.cancel(b.id)
    a.state = "running"  # as if the server died mid-job
    queue._save(a)

    again = JobQueue(tmp_path, lambda: tiny_model, model_spec="tiny")
    states = {job.id: job.state for job in again.jobs()}
    assert states == {a.id: "interrupted", b.id: "cancelled", c.id: "queued"}
    again.resume_job(a.id)
    queued = [job.id for job in again.jobs() if job.state == "queued"]
    assert queued == [c.id, a.id]
    again.start()
    try:
        assert again.wait(a.id, timeout=60).state == "done"
        assert again.get(c.id).state == "done"
    finally:
        again.stop()


def test_video_job_plays_with_range_requests(studio):
    client, _ = studio
    job = submit(client, "zoom", {"prompt": "a tunnel", "frames": "3", "steps": "2", "width": "32", "height": "32",
                                  "zoom": "0:(1.1), 2:(1.0)"})  # fmt: skip
    events = events_of(client, job["id"])
    assert events[-1]["event"] == "done", events[-1]
    assert [e["event"] for e in events].count("frame") == 3
    [video] = client.get(f"/api/jobs/{job['id']}").json()["outputs"]
    assert video.endswith(".mp4")
    whole = client.get(f"/files/{video}")
    part = client.get(f"/files/{video}", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole.content[10:20]
    gallery = client.get("/api/gallery").json()
    [entry] = [v for v in gallery["videos"] if v["path"] == video]
    assert entry["frames"] == 3 and entry["run"].endswith(".run")


def test_cancel_a_running_job(studio):
    client, _ = studio
    job = submit(client, "txt2img", {**STILL, "seeds": "1-40", "steps": "20"})
    deadline = time.monotonic() + 60
    while client.get(f"/api/jobs/{job['id']}").json()["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
    events = events_of(client, job["id"])
    assert events[-1]["event"] == "error" and "cancelled" in events[-1]["data"]["message"]
    assert client.get(f"/api/jobs/{job['id']}").json()["state"] == "cancelled"


def test_help_does_not_import_the_server():
    import subprocess

    code = "import sys; from dreamreel.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n" \
           "print(sorted(m for m in ('fastapi', 'uvicorn', 'torch') if m in sys.modules))"  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_an_interrupted_cli_run_is_listed_and_resumed_exactly(studio, tiny_model):
    from dreamreel.jobs.runner import run_job
    from dreamreel.jobs.zoom import ZoomRecipe
    from dreamreel.runs.store import RunStore

    client, out = studio
    recipe = ZoomRecipe(prompt="a cave", model="tiny", frames=3, steps=2, width=32, height=32, output=str(out / "cave.mp4"))
    run_job(recipe, model=tiny_model)
    run = out / "cave.run"
    unbroken = {p.name: p.read_bytes() for p in sorted((run / "frames").iterdir())}
    RunStore.open(run).truncate(1)  # as if killed after frame 0
    (out / "cave.mp4").unlink()
    gallery = client.get("/api/gallery").json()
    assert {"path": "cave.run", "frames": 1} in gallery["runs"]
    assert client.post("/api/runs/resume", json={"path": "../"}).status_code == 404
    job = client.post("/api/runs/resume", json={"path": "cave.run"}).json()
    assert events_of(client, job["id"])[-1]["event"] == "done"
    assert {p.name: p.read_bytes() for p in sorted((run / "frames").iterdir())} == unbroken
    assert client.get("/api/gallery").json()["runs"] == []


def test_an_uploaded_video_goes_through_vid2vid(studio, samples):
    client, out = studio
    upload = client.post("/api/upload", files={"file": ("phone.mp4", samples.video.read_bytes(), "video/mp4")})
    assert upload.status_code == 200, upload.text
    forms = {form["job"]: form for form in client.get("/api/forms").json()}
    assert {f["name"]: f["kind"] for f in forms["vid2vid"]["fields"]}["video"] == "file"
    job = submit(client, "vid2vid", {"prompt": "an aardvark", "video": upload.json()["path"], "steps": "2",
                                     "strength": "0.5", "width": "32", "height": "32"})  # fmt: skip
    events = events_of(client, job["id"])
    assert events[-1]["event"] == "done", events[-1]
    [video] = client.get(f"/api/jobs/{job['id']}").json()["outputs"]
    assert (out / video).stat().st_size > 0


def test_previews_at_most_four_a_second(tmp_path, tiny_model, monkeypatch):
    import types

    import torch

    from dreamreel.serve import queue as queue_module
    from dreamreel.serve.queue import JobQueue, JobReporter, QueuedJob

    clock = [0.0]
    monkeypatch.setattr(queue_module, "time", types.SimpleNamespace(monotonic=lambda: clock[0], time=time.time))
    queue = JobQueue(tmp_path, lambda: tiny_model, model_spec="tiny")
    reporter = JobReporter(queue, QueuedJob(id="x", job="txt2img", recipe={}), 1, previews=True)
    latents = torch.zeros(1, 4, 4, 4)
    for step in range(1, 41):  # 40 steps, 0.05 s apart: 2 seconds
        clock[0] += 0.05
        reporter.step(step, 40, latents)
    previews = [e for e in queue.events.since(0) if e.kind == "preview"]
    assert 7 <= len(previews) <= 8  # 2 s at most 4 a second (float steps of 0.05 may skip one)


@pytest.mark.parametrize("name", list(JOBS))
def test_every_example_recipe_survives_its_form(name, samples):
    """A job's example recipe, written into its form as text, comes back as the same recipe (the form
    is the recipe's fields, read as the CLI reads them); only where outputs go is the server's."""
    from dreamreel.serve.forms import _shown, recipe_from_form

    example = JOBS[name].example(samples)
    fields = {f: _shown(getattr(example, f), f) for f in example.field_names() if f not in SERVER_FIELDS}
    out = samples.folder  # the example's input files lie in the samples folder: the output folder here
    recipe = recipe_from_form(name, fields, out=out, model="tiny", video_name="film.mp4")
    where = {f: getattr(recipe, f) for f in ("out", "output") if f in recipe.field_names()}
    assert recipe == example.replace(**where)
