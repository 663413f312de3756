"""Rendering on a Ray cluster gives the bits of one process, and survives lost workers and a lost writer.

One local Ray instance serves the whole test session (loopback only, no dashboard, no auth); every
run starts its own worker actors on it (each loads ``tiny`` once, on the CPU). A frame's PNG carries
its recipe, output path included, so each comparison renders locally first, removes that output and
renders the same recipe to the same place on the cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media import make_video

from dreamreel.errors import DreamreelError
from dreamreel.jobs.interpolate import InterpolateRecipe
from dreamreel.jobs.runner import run_job
from dreamreel.jobs.sweep import SweepRecipe
from dreamreel.jobs.txt2img import Txt2ImgRecipe
from dreamreel.jobs.vid2vid import Vid2VidRecipe
from dreamreel.jobs.zoom import ZoomRecipe
from dreamreel.recipes.serial import recipe_to_toml
from dreamreel.runs.store import RunStore

ray = pytest.importorskip("ray")

SMALL = dict(model="tiny", steps=2, width=32, height=32)
# Ray's switch for a machine-local instance: every Ray server then binds 127.0.0.1 only; workers not niced.
LOOPBACK = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_worker_niceness": "0"}


@pytest.fixture(scope="session")
def ray_address():
    """One local Ray instance for the session: 127.0.0.1, no dashboard; stopped at the end."""
    saved = {name: os.environ.get(name) for name in LOOPBACK}
    os.environ.update(LOOPBACK)
    ray.init(num_cpus=6, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fingerprint(recipe) -> dict:
    """What a user compares: every frame file's sha256 (and, for videos, the manifest's index order)."""
    if isinstance(recipe, Txt2ImgRecipe):
        return {p.name: sha(p) for p in sorted(Path(recipe.out).glob("*.png"))}
    store = RunStore.open(recipe.run_dir)
    indices = [r.index for r in store.records()]
    assert indices == list(range(len(indices))), f"manifest out of order: {indices}"
    return {r.index: sha(store.folder / r.file) for r in store.records()}


def local_fingerprints(recipes, model) -> list[dict]:
    """Each recipe rendered by one process, fingerprinted, then its output removed (same paths again next)."""
    prints = []
    for recipe in recipes:
        run_job(recipe, model=model)
        prints.append(fingerprint(recipe))
        output = Path(recipe.out) if isinstance(recipe, Txt2ImgRecipe) else recipe.run_dir
        shutil.rmtree(output)
        if not isinstance(recipe, Txt2ImgRecipe):
            Path(recipe.output).unlink()
    return prints


class Messages:
    """A Reporter that keeps the messages."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)

    def begin(self, total: int, unit: str) -> None:
        pass

    def step(self, step: int, total: int, latents=None) -> None:
        pass

    def item(self, path) -> None:
        pass

    def end(self) -> None:
        pass


def test_independent_items_on_two_workers_equal_one_process(tmp_path, tiny_model, ray_address, run_cli):
    """`dreamreel run A.toml B.toml ... --cluster`: four films at once, every frame as one process renders it."""
    video = make_video(tmp_path / "source.mp4", frames=12, width=64, height=48)
    recipes = [
        Vid2VidRecipe(prompt="a fox", video=str(video), strength=0.6, seed=5, output=str(tmp_path / "v.mp4"), **SMALL),
        SweepRecipe(prompt="a coyote", param="guidance", sweep_from=1, sweep_to=12, frames=12, seed=3,
                    output=str(tmp_path / "s.mp4"), **SMALL),
        InterpolateRecipe(prompts=["a cat", "a dog"], seeds=[1, 2], frames_between=5, loop=True, batch=2,
                          output=str(tmp_path / "i.mp4"), **SMALL),
        Txt2ImgRecipe(prompt="a cat", seeds=list(range(1, 13)), batch=2, out=str(tmp_path / "stills"), **SMALL),
    ]  # fmt: skip
    expected = local_fingerprints(recipes, tiny_model)
    assert [len(e) for e in expected] == [12, 12, 12, 12]
    files = []
    for number, recipe in enumerate(recipes):
        files.append(tmp_path / f"{number}.toml")
        files[-1].write_text(recipe_to_toml(recipe))

    code, out, err = run_cli(["run", *files, "--cluster", ray_address, "--workers", "2", "--quiet"])

    assert code == 0, err
    assert out.split() == [r.output for r in recipes[:3]]  # the videos, as a local run prints them
    assert [fingerprint(r) for r in recipes] == expected
    info = RunStore.open(recipes[0].run_dir).read_info()
    assert info["device_class"].startswith("cpu float32") and info["model_hash"] == tiny_model.model_hash


def test_a_worker_killed_after_three_frames_the_run_completes_exactly(tmp_path, tiny_model, ray_address):
    from dreamreel.cluster import run_on_cluster

    recipe = SweepRecipe(prompt="a coyote", param="seed", sweep_from=1, sweep_to=12, frames=12,
                         output=str(tmp_path / "s.mp4"), **{**SMALL, "width": 64, "height": 64})  # fmt: skip
    expected = local_fingerprints([recipe], tiny_model)[0]
    killed: list[int] = []

    def kill_after_three(commit) -> None:
        if commit.index == 2 and not killed:
            killed.append(commit.worker.pid)
            os.kill(commit.worker.pid, signal.SIGKILL)

    messages = Messages()
    result = run_on_cluster(recipe, workers=2, reporter=messages, on_commit=kill_after_three)

    assert killed and result.workers_lost == 1
    assert any("lost" in line for line in messages.lines)
    assert len(RunStore.open(recipe.run_dir).records()) == 12
    assert fingerprint(recipe) == expected


def test_the_writer_killed_mid_run_then_a_local_resume_is_byte_identical(tmp_path, tiny_model, ray_address, run_cli, cli_tiny):
    recipe = SweepRecipe(prompt="a coyote", param="seed", sweep_from=1, sweep_to=12, frames=12,
                         output=str(tmp_path / "s.mp4"), **{**SMALL, "width": 64, "height": 64})  # fmt: skip
    expected = local_fingerprints([recipe], tiny_model)[0]
    command = [
        sys.executable, "-m", "dreamreel", "sweep", "a coyote", "--param", "seed", "--from", "1", "--to", "12",
        "--frames", "12", "--model", "tiny", "--steps", "2", "--width", "64", "--height", "64",
        "-o", recipe.output, "--cluster", ray_address, "--workers", "1", "--quiet",
    ]  # fmt: skip
    env = {**os.environ, **LOOPBACK, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manifest = recipe.run_dir / "manifest.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and writer.poll() is None:
        if manifest.is_file() and manifest.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.02)
    assert writer.poll() is None, writer.stderr.read().decode() if writer.stderr else ""
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    kept = len(RunStore.open(recipe.run_dir).done())
    assert 3 <= kept < 12

    code, _, err = run_cli(["resume", recipe.run_dir, "--quiet"])

    assert code == 0, err
    assert fingerprint(recipe) == expected
    assert json.loads((recipe.run_dir / "run.json").read_text())["model_hash"] == tiny_model.model_hash


def test_two_zoom_films_a_worker_killed_mid_film_resumes_at_its_first_missing_frame(tmp_path, tiny_model, ray_address):
    from dreamreel.cluster import run_on_cluster

    films = [
        ZoomRecipe(prompt="a tunnel", frames=8, seed=s, output=str(tmp_path / f"z{s}.mp4"), **SMALL) for s in (1, 2)
    ]
    expected = local_fingerprints(films, tiny_model)
    killed: list[int] = []

    def kill_film_zero_worker(commit) -> None:
        if commit.film == 0 and commit.index == 2 and not killed:
            killed.append(commit.worker.pid)
            os.kill(commit.worker.pid, signal.SIGKILL)

    result = run_on_cluster(films, workers=2, on_commit=kill_film_zero_worker)

    assert killed and result.workers_lost == 1
    opened_at = result.restarts[0]
    assert opened_at[0] == 0 and len(opened_at) == 2 and 3 <= opened_at[1] < 8, opened_at  # never from frame 0
    assert result.rendered[0] == 8  # every frame of the film rendered once: it went on at its first missing frame
    assert [fingerprint(f) for f in films] == expected


def test_a_worker_of_another_device_class_is_refused_unless_forced(tmp_path, tiny_model, ray_address, run_cli):
    recipe = SweepRecipe(prompt="a coyote", param="seed", sweep_from=1, sweep_to=4, frames=4,
                         output=str(tmp_path / "s.mp4"), **SMALL)  # fmt: skip
    expected = local_fingerprints([recipe], tiny_model)[0]
    run_job(recipe, model=tiny_model)
    store = RunStore.open(recipe.run_dir)
    store.truncate(2)  # an interrupted run...
    store.write_info({**store.read_info(), "device_class": "cuda NVIDIA H100 80GB HBM3 float16"})  # ...from a GPU
    resume = ["resume", recipe.run_dir, "--cluster", ray_address, "--workers", "1", "--quiet"]

    code, _, err = run_cli(resume)

    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "refused: its device class is cpu float32" in err and "--force" in err
    assert len(store.done()) == 2  # nothing rendered

    code, out, err = run_cli([*resume, "--force"])

    assert code == 0, err
    assert out.strip() == recipe.output
    forced = store.read_info()["forced_resumes"]
    assert any("device class" in reason for entry in forced for reason in entry["reasons"])
    assert fingerprint(recipe) == expected


def test_a_unit_failing_three_times_stops_the_run_with_the_resume_command(tmp_path, ray_address):
    from dreamreel.cluster import run_on_cluster
    from dreamreel.jobs.runner import prepare

    source = make_video(tmp_path / "source.mp4", frames=8, width=64, height=48)
    prepared = prepare(Vid2VidRecipe(prompt="a fox", video=str(source), seed=5, output=str(tmp_path / "v.mp4"), **SMALL))
    make_video(source, frames=2, width=64, height=48)  # the source lost frames after the plan: every try fails

    with pytest.raises(DreamreelError) as failure:
        run_on_cluster(prepared, workers=1)

    message = str(failure.value)
    assert "\n" not in message and "failed 3 times" in message
    assert f"Resume with: dreamreel resume {prepared.recipe.run_dir}" in message


def test_cluster_options_are_checked_before_anything_starts(tmp_path, run_cli, no_model_load):
    code, _, err = run_cli(["txt2img", "a cat", "--model", "tiny", "--workers", "2", "-o", tmp_path])
    assert code == 2 and "--workers applies to a cluster run" in err
    recipe = tmp_path / "a.toml"
    recipe.write_text(recipe_to_toml(Txt2ImgRecipe(prompt="a cat", seeds=[1], out=str(tmp_path), **SMALL)))
    code, _, err = run_cli(["run", recipe, recipe])
    assert code == 2 and "several recipe files run together on a cluster" in err
    assert not list(tmp_path.glob("*.png"))


def test_an_error_of_the_job_itself_gives_the_one_line_of_a_local_run(tmp_path, tiny_model, ray_address):
    from dreamreel.cluster import run_on_cluster
    from dreamreel.jobs.runner import prepare

    source = make_video(tmp_path / "source.mp4", frames=4, width=64, height=48)
    prepared = prepare(Vid2VidRecipe(prompt="a fox", video=str(source), seed=5, output=str(tmp_path / "v.mp4"), **SMALL))
    source.write_bytes(b"not a video any more")  # broken after the plan: the job fails while rendering
    with pytest.raises(DreamreelError) as local:
        run_job(prepared, model=tiny_model)

    with pytest.raises(DreamreelError) as cluster:
        run_on_cluster(prepared, workers=1)

    assert str(cluster.value) == str(local.value) and "Resume with: dreamreel resume" in str(local.value)
    assert cluster.value.exit_code == local.value.exit_code
