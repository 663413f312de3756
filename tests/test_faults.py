"""Faults while writing: one clear line, finished work kept, and `resume` completes the job afterwards."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image

from dreamreel.cli import main

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
    import dreamreel.files

    real_replace = os.replace
    calls = {"n": 0}

    def failing_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:  # the third picture hits the fault
            raise OSError(error, os.strerror(error))
        return real_replace(src, dst)

    monkeypatch.setattr(dreamreel.files.os, "replace", failing_replace)
    code, err = run([*ARGS, "--seeds", "1-4", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and words in err and f"dreamreel resume {tmp_path}" in err
    kept = sorted(p.name for p in tmp_path.glob("*.png"))
    assert kept == ["00000-1.png"]  # the record write was call 1, picture 1 call 2
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written file left behind

    monkeypatch.setattr(dreamreel.files.os, "replace", real_replace)  # space is back
    assert run(["resume", str(tmp_path), "--quiet"], capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"0000{i}-{i + 1}.png" for i in range(4)]

    code, _ = run([*ARGS, "--seeds", "1-4", "--out", str(tmp_path / "clean")], capsys)
    for name in kept:
        a = np.asarray(Image.open(tmp_path / name))
        b = np.asarray(Image.open(tmp_path / "clean" / name))
        assert (a == b).all()


def test_nan_decode_in_fp32_names_the_problem_and_keeps_earlier_pictures(tmp_path, capsys, monkeypatch):
    from dreamreel.render import Renderer

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
