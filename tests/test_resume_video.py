"""Killed video renders resume to exactly the frames and video of an unbroken run.

Each render runs in a child process that kills itself with SIGKILL at a chosen point (no cleanup
code runs, as with a power cut): right after a frame is safe, mid-frame (the frame in flight is
computed but not written), halfway through a manifest line, and halfway through the video encode.
`dreamreel resume` must then finish the job with every frame byte-identical to the unbroken run's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

# The child: patch one function to SIGKILL the process at its n-th call, then run the CLI.
KILLER = r"""
import os, signal, sys
point, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
calls = {"n": 0}

def due():
    calls["n"] += 1
    return calls["n"] == n

def die():
    os.kill(os.getpid(), signal.SIGKILL)

import dreamreel.render.renderer, dreamreel.runs.store, dreamreel.media.video
if point == "after-frame":
    original_save = dreamreel.runs.store.RunStore.save
    def save(self, item, **kw):
        record = original_save(self, item, **kw)
        if due(): die()
        return record
    dreamreel.runs.store.RunStore.save = save
elif point == "mid-frame":
    original_decode = dreamreel.render.renderer.Renderer.decode
    def decode(self, latents):
        if due(): die()
        return original_decode(self, latents)
    dreamreel.render.renderer.Renderer.decode = decode
elif point == "manifest":
    original_append = dreamreel.runs.store.RunStore._append
    def append(self, line):
        if due():
            with open(self.folder / "manifest.jsonl", "ab") as handle:
                handle.write(line[: len(line) // 2].encode()); handle.flush(); os.fsync(handle.fileno())
            die()
        return original_append(self, line)
    dreamreel.runs.store.RunStore._append = append
elif point == "encode":
    original_add = dreamreel.media.video.VideoWriter.add
    def add(self, *a, **k):
        if due(): die()
        return original_add(self, *a, **k)
    dreamreel.media.video.VideoWriter.add = add
from dreamreel.cli.app import main
main(args)
"""

TINY = ["--model", "tiny", "--width", "32", "--height", "32", "--quiet"]
ZOOM = [
    "zoom", "a funny cat covered in neon cloth", "--frames", "8", "--steps", "4", "--seed-mode", "iter",
    "--zoom", "0:(1.05), 4:(1+0.02*sin(t))", "--angle", "2", "--tx", "1", "--border", "wrap",
    "--blend-back", "0.9", "--grayscale", "--tint", "brown:0.1", "--color-match", "first",
    "--color-strength", "0.5", "--contrast", "1.05", "--noise", "0.02", *TINY,
]  # fmt: skip


def render(point: str, n: int, args: list[str], folder: Path) -> subprocess.CompletedProcess:
    """Render in ``folder`` with relative output names, so recipes (and so frame bytes) compare equal."""
    return subprocess.run(
        [sys.executable, "-c", KILLER, point, str(n), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=folder,
    )


def resume(target: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dreamreel", "resume", target.name, "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=target.parent,
    )
    assert done.returncode == 0, done.stderr


def frame_bytes(run: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((run / "frames").glob("*.png"))]


def manifest_shas(run: Path) -> list[str]:
    lines = (run / "manifest.jsonl").read_text().splitlines()
    return [json.loads(line)["sha256"] for line in lines]


def video_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def assert_same_run(made: Path, reference: Path) -> None:
    run, ref_run = made.with_suffix(".run"), reference.with_suffix(".run")
    assert frame_bytes(run) == frame_bytes(ref_run)
    assert manifest_shas(run) == manifest_shas(ref_run)
    ours, theirs = video_frames(made), video_frames(reference)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert (a == b).all()


@pytest.fixture(scope="module")
def zoom_reference(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("reference") / "film.mp4"
    done = render("none", 0, [*ZOOM, "-o", "film.mp4"], target.parent)
    assert done.returncode == 0, done.stderr
    return target


@pytest.mark.parametrize(
    ("point", "n"), [("after-frame", 3), ("mid-frame", 5), ("manifest", 4), ("encode", 4)]
)
def test_zoom_killed_anywhere_resumes_exactly(tmp_path, zoom_reference, point, n):
    target = tmp_path / "film.mp4"
    killed = render(point, n, [*ZOOM, "-o", "film.mp4"], tmp_path)
    assert killed.returncode == -9, killed.stderr
    resume(target.with_suffix(".run"))
    assert_same_run(target, zoom_reference)


def test_vid2vid_and_sweep_resume_exactly(tmp_path, sample_picture):
    from media import make_video

    source = make_video(tmp_path / "phone.mp4", frames=10, width=64, height=48, audio=True)
    # with schedules in play: a frame's values are a pure function of the recipe and its index
    vid2vid = [
        "vid2vid",
        "a dog",
        "--video",
        str(source),
        "--strength",
        "0:(0.4), max_f:(0.8)",
        "--seed",
        "3",
    ]
    vid2vid += ["--steps", "4", "--color-match", "first", "--feedback", "0:(0.3), max_f:(0.1)"]
    vid2vid += ["--guidance", "0:(7), 5:(4+sin(t))", "--seed-mode", "iter", "--model", "tiny", "--quiet"]
    sweep = ["sweep", "a cute animal", "--image", str(sample_picture), "--param", "strength", "--frames", "6"]
    sweep += [
        "--values",
        "0:(0.3), max_f:(1.0)",
        "--guidance",
        "0:(5), max_f:(9)",
        "--steps",
        "4",
        "--seed",
        "2",
    ]
    sweep += TINY
    for name, args in (("v2v", vid2vid), ("sweep", sweep)):
        reference, target = tmp_path / "ref" / f"{name}.mp4", tmp_path / "cut" / f"{name}.mp4"
        reference.parent.mkdir(exist_ok=True)
        target.parent.mkdir(exist_ok=True)
        assert render("none", 0, [*args, "-o", reference.name], reference.parent).returncode == 0
        assert render("after-frame", 3, [*args, "-o", target.name], target.parent).returncode == -9
        resume(target)  # NAME.mp4 names its run folder too
        assert_same_run(target, reference)


def test_edited_recipe_or_other_versions_refused_unless_forced(tmp_path, capsys, monkeypatch):
    from dreamreel.cli.app import main
    from dreamreel.runs.store import RunStore

    target = tmp_path / "film.mp4"
    assert render("after-frame", 2, [*ZOOM, "-o", "film.mp4"], tmp_path).returncode == -9
    run = target.with_suffix(".run")
    recipe = run / "recipe.toml"
    recipe.write_text(recipe.read_text().replace("frames = 8", "frames = 9"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as refused:
        main(["resume", str(run), "--quiet"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "would not be exact" in err and "recipe.toml was edited" in err and err.count("\n") == 1

    store = RunStore.open(run)
    store.write_info({**store.read_info(), "diffusers": "0.0.1"})
    main(["resume", str(run), "--quiet", "--force"])
    forced = store.read_info()["forced_resumes"]
    assert "diffusers 0.0.1" in forced[0]["reasons"][0] and len(forced[0]["reasons"]) == 2
    assert len(list((run / "frames").glob("*.png"))) == 9
    assert Image.open(run / "frames" / "000008.png").size == (32, 32)
