"""Faults while writing: one clear line, finished work kept, and `resume` completes the job afterwards."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image

from dreamreel.cli.app import main

ARGS = ["txt2img", "a cat", "--model", "tiny", "--steps", "4", "--width", "64", "--height", "64", "--quiet"]


def run(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("error", "words"), [(errno.ENOSPC, "No space left"), (errno.EROFS, "Read-only")])
def test_disk_fault_mid_loop_keeps_pictures_and_resumes(tmp_path, capsys, monkeypatch, error, words):
    import dreamreel.runs.files

    real_replace = os.replace
    calls = {"n": 0}

    def failing_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:  # the third picture hits the fault
            raise OSError(error, os.strerror(error))
        return real_replace(src, dst)

    monkeypatch.setattr(dreamreel.runs.files.os, "replace", failing_replace)
    code, err = run([*ARGS, "--seeds", "1-4", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and words in err and f"dreamreel resume {tmp_path}" in err
    kept = sorted(p.name for p in tmp_path.glob("*.png"))
    assert kept == ["00000-1.png"]  # the record write was call 1, picture 1 call 2
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written file left behind

    monkeypatch.setattr(dreamreel.runs.files.os, "replace", real_replace)  # space is back
    assert run(["resume", str(tmp_path), "--quiet"], capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"0000{i}-{i + 1}.png" for i in range(4)]

    code, _ = run([*ARGS, "--seeds", "1-4", "--out", str(tmp_path / "clean")], capsys)
    for name in kept:
        a = np.asarray(Image.open(tmp_path / name))
        b = np.asarray(Image.open(tmp_path / "clean" / name))
        assert (a == b).all()


def test_nan_decode_in_fp32_names_the_problem_and_keeps_earlier_pictures(tmp_path, capsys, monkeypatch):
    from dreamreel.render.renderer import Renderer

    real_decode = Renderer.decode
    calls = {"n": 0}

    def sometimes_nan(self, latents):
        calls["n"] += 1
        if calls["n"] == 2:
            latents = latents * float("nan")
        return real_decode(self, latents)

    monkeypatch.setattr(Renderer, "decode", sometimes_nan)
    code, err = run([*ARGS, "--seeds", "1-3", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "NaN" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["00000-1.png"]


def test_gpu_out_of_memory_is_one_line_with_what_to_try(tmp_path, capsys, monkeypatch):
    import torch

    from dreamreel.render.renderer import Renderer

    def out_of_memory(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Renderer, "generate", out_of_memory)
    code, err = run([*ARGS, "--seed", "1", "--out", str(tmp_path)], capsys)
    assert code == 3
    assert "ran out of memory" in err and "--batch 1" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("prompt", "message"),
    [("a cat\x00rm -rf", "NUL byte"), ("caf\udce9", "not valid UTF-8")],  # \udce9: a Latin-1 byte in argv
)
def test_hostile_prompts_refused(tmp_path, capsys, prompt, message):
    code, err = run(["txt2img", prompt, "--model", "tiny", "--out", str(tmp_path)], capsys)
    assert code == 2 and message in err
    assert not list(tmp_path.glob("*.png"))


ZOOM = [
    "zoom",
    "a cat",
    "--frames",
    "5",
    "--steps",
    "4",
    "--model",
    "tiny",
    "--width",
    "32",
    "--height",
    "32",
]


def test_disk_full_while_writing_a_video_frame_keeps_frames_and_resumes(tmp_path, capsys, monkeypatch):
    import dreamreel.runs.store

    real_write = dreamreel.runs.store.write_atomic
    frames_written = {"n": 0}

    def full_disk(path, data):
        if "frames" in str(path):
            frames_written["n"] += 1
            if frames_written["n"] == 3:
                raise dreamreel.runs.files.DreamreelError(
                    f"could not write {str(path)!r}: No space left on device"
                )
        return real_write(path, data)

    import dreamreel.runs.files

    monkeypatch.setattr(dreamreel.runs.store, "write_atomic", full_disk)
    target = tmp_path / "film.mp4"
    code, err = run([*ZOOM, "--quiet", "-o", str(target)], capsys)
    assert code == 2 and "No space left" in err and "dreamreel resume" in err and err.count("\n") == 1
    run_dir = tmp_path / "film.run"
    assert len(list((run_dir / "frames").glob("*.png"))) == 2
    assert not target.exists()

    monkeypatch.setattr(dreamreel.runs.store, "write_atomic", real_write)
    assert run(["resume", str(run_dir), "--quiet"], capsys)[0] == 0
    assert len(list((run_dir / "frames").glob("*.png"))) == 5 and target.stat().st_size > 0


def test_encode_that_dies_leaves_frames_and_resume_rebuilds_the_video(tmp_path, capsys, monkeypatch):
    import dreamreel.media.video

    real_add = dreamreel.media.video.VideoWriter.add

    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(dreamreel.media.video.VideoWriter, "add", no_space)
    target = tmp_path / "film.mp4"
    code, err = run([*ZOOM, "--quiet", "-o", str(target)], capsys)
    assert code != 0 and err.count("\n") == 1
    assert len(list((tmp_path / "film.run" / "frames").glob("*.png"))) == 5

    monkeypatch.setattr(dreamreel.media.video.VideoWriter, "add", real_add)
    assert run(["resume", str(tmp_path / "film.run"), "--quiet"], capsys)[0] == 0
    import av

    with av.open(str(target)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 5
