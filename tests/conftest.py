"""Shared fixtures: the tiny model is built once per test session (it is deterministic)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _private_hash_cache(tmp_path_factory):
    """Model hashes are remembered in a cache of this test session, never the user's ~/.cache."""
    os.environ["DREAMREEL_CACHE_DIR"] = str(tmp_path_factory.mktemp("dreamreel-cache"))


@pytest.fixture(scope="session")
def tiny_model():
    from dreamreel.models.loading import load_model

    return load_model("tiny", device="cpu", dtype="fp32")


@pytest.fixture(scope="session")
def tiny_xl_model():
    from dreamreel.models.loading import load_model

    return load_model("tiny-xl", device="cpu", dtype="fp32")


@pytest.fixture
def cli_tiny_xl_model(monkeypatch, tiny_xl_model):
    """CLI runs reuse the session's tiny-xl (built once); another model spec fails the test."""

    def load(spec, **kwargs):
        assert spec == "tiny-xl", spec
        return tiny_xl_model

    monkeypatch.setattr("dreamreel.models.loading.load_model", load)
    return tiny_xl_model


@pytest.fixture
def cli_tiny(monkeypatch, tiny_model):
    """CLI runs in these tests reuse the session's tiny model instead of building it each time."""
    monkeypatch.setattr("dreamreel.models.loading.load_model", lambda spec, **kw: tiny_model)
    return tiny_model


@pytest.fixture
def sample_picture(tmp_path: Path) -> Path:
    """A 96x64 RGB picture with structure (gradients and a square), saved as PNG."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:64, 0:96]
    array = np.stack([x * 255 // 95, y * 255 // 63, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    array[20:44, 30:60] = (240, 40, 40)
    path = tmp_path / "sketch.png"
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def no_model_load(monkeypatch):
    """The model must not load: bad input is refused before that (a load fails the test loudly)."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr("dreamreel.models.loading.load_model", refuse)


@pytest.fixture
def run_cli(capsys):
    """The CLI in-process, errors mapped as for a user: ``run_cli(args)`` returns (exit code, stdout,
    stderr). Add ``cli_tiny`` to reuse the session's tiny model (then LoRA/VAE options do not apply)."""
    from dreamreel.cli import main

    def run(args: list) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def samples(tmp_path_factory):
    """Input files every job's example recipe may use: a picture and a short source video."""
    import sys
    from types import SimpleNamespace

    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).parent))
    from media import make_video

    folder = tmp_path_factory.mktemp("samples")
    y, x = np.mgrid[0:48, 0:64]
    array = np.stack([x * 255 // 63, y * 255 // 47, np.full_like(x, 90)], axis=-1).astype(np.uint8)
    array[12:30, 20:44] = (240, 40, 40)
    Image.fromarray(array).save(folder / "picture.png")
    video = make_video(folder / "source.mp4", frames=6, width=64, height=48)
    return SimpleNamespace(picture=folder / "picture.png", video=video, folder=folder)
