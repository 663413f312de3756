"""Seed loops survive being killed: finished pictures are kept, `resume` renders exactly the rest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamreel.jobs.runner import prepare

ARGS = [
    "txt2img",
    "a dog covered in cloth",
    "--model",
    "tiny",
    "--steps",
    "25",
    "--width",
    "64",
    "--height",
    "64",
]


def dreamreel(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "dreamreel", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the render never produced its picture"
        time.sleep(0.02)


def pictures(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("straight")
    process = dreamreel(*ARGS, "--seeds", "1-12", "--quiet", "--out", str(out))
    assert process.wait(timeout=300) == 0, process.communicate()
    return pictures(out)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGKILL, -9), (signal.SIGINT, 130), (signal.SIGTERM, 143)]
)
def test_killed_seed_loop_resumes_to_identical_pictures(tmp_path, uninterrupted, sig, status):
    process = dreamreel(*ARGS, "--seeds", "1-12", "--quiet", "--out", str(tmp_path))
    wait_for(tmp_path / "00001-2.png", process)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status
    if sig != signal.SIGKILL:
        assert f"Resume with: dreamreel resume {tmp_path}" in err
        assert "Traceback" not in err
    assert 2 <= len(pictures(tmp_path)) < 12

    resumed = dreamreel("resume", str(tmp_path), "--quiet")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    after = pictures(tmp_path)
    assert after.keys() == uninterrupted.keys()
    for name, array in uninterrupted.items():
        assert (after[name] == array).all(), name
    assert not list((tmp_path / ".dreamreel").glob("*.json"))  # the loop is finished


def test_resume_rerenders_a_damaged_picture(tmp_path, uninterrupted):
    from dreamreel.jobs.txt2img import Txt2ImgRecipe
    from dreamreel.runs.seed_loops import SeedLoop

    recipe = Txt2ImgRecipe(
        prompt=ARGS[1], model="tiny", steps=25, width=64, height=64, seeds=[1, 2, 3, 4, 5], out=str(tmp_path)
    )
    recipe = prepare(recipe).recipe
    run = SeedLoop.start(recipe)  # as if the process died right after starting
    for name, array in list(uninterrupted.items())[:3]:
        Image.fromarray(array).save(tmp_path / name)  # pictures without our metadata are not trusted
    assert run.missing_positions() == [0, 1, 2, 3, 4]
    from dreamreel.cli.app import main

    main(["resume", str(tmp_path), "--quiet"])
    after = pictures(tmp_path)
    assert len(after) == 5
    for name, array in after.items():
        assert (uninterrupted[name] == array).all(), name


def test_resume_with_nothing_to_do(tmp_path, capsys):
    from dreamreel.cli.app import main

    main(["resume", str(tmp_path)])
    assert "nothing to resume" in capsys.readouterr().err
