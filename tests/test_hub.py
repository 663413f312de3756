"""Hugging Face ids: the local cache is read from disk; offline and absent is one line, at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dreamreel.errors import DreamreelError
from dreamreel.models.loading import check_model_spec, load_model

REPO = "dreamreel-test/tiny-sd"
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def empty_hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf"


@pytest.fixture
def fake_cache(tiny_model, empty_hf_home):
    """The tiny model in the Hugging Face cache layout: models--org--name/snapshots/<hash>/ + refs/main."""
    from diffusers import StableDiffusionPipeline

    repo_dir = empty_hf_home / "hub" / f"models--{REPO.replace('/', '--')}"
    pipe = StableDiffusionPipeline(**tiny_model.components, requires_safety_checker=False)
    pipe.save_pretrained(repo_dir / "snapshots" / SNAPSHOT)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(SNAPSHOT)
    return repo_dir / "snapshots" / SNAPSHOT


def test_offline_not_cached_is_one_clear_error(empty_hf_home):
    with pytest.raises(
        DreamreelError, match=r"not in the local Hugging Face cache.*hf download dreamreel-test/nope"
    ):
        check_model_spec("dreamreel-test/nope")
    with pytest.raises(DreamreelError) as other:
        check_model_spec("dreamreel-test/nope")
    assert "--model tiny" not in str(other.value)  # the hint is for the default model


def test_cli_offline_empty_cache_exits_2_with_one_line(tmp_path):
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", PYTHONPATH="src")
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run(
        [sys.executable, "-m", "dreamreel", "txt2img", "x", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parent.parent,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in lines[0] and "hf download" in lines[0]
    assert "`--model tiny` checks the install without downloads" in lines[0]
    assert not (tmp_path / "o").exists()


def test_cached_model_loads_offline_and_renders_like_tiny(fake_cache, tiny_model):
    from dreamreel.render.renderer import Renderer

    model = load_model(REPO, device="cpu", dtype="fp32")
    assert model.name == "tiny-sd"
    for key in ("unet", "vae", "text_encoder"):
        ours, theirs = model.components[key].state_dict(), tiny_model.components[key].state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    pictures = [
        Renderer(m).generate([Renderer(m).encode("a cat")], [3], steps=2, guidance=7.5, width=64, height=64)
        for m in (model, tiny_model)
    ]
    assert torch.allclose(pictures[0], pictures[1], atol=1e-6)


def test_partial_cache_offline_names_missing_parts(fake_cache):
    for weights in (fake_cache / "unet").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(DreamreelError, match=r"only partly.*unet"):
        check_model_spec(REPO)


def test_pickle_only_cache_is_not_used(fake_cache):
    """Only safetensors weights are used: no silent fallback to a .bin pickle."""
    for weights in (fake_cache / "vae").glob("*.safetensors"):
        weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(DreamreelError, match="no safetensors weights for vae"):
        check_model_spec(REPO)


def test_custom_code_repo_refused(fake_cache):
    index_path = fake_cache / "model_index.json"
    index = json.loads(index_path.read_text())
    index["unet"] = ["my_pipeline", "MyFancyUNet"]
    index_path.write_text(json.dumps(index))
    with pytest.raises(DreamreelError, match="custom code"):
        check_model_spec(REPO)


def test_online_without_network_fails_at_once(empty_hf_home, monkeypatch):
    import socket

    monkeypatch.delenv("HF_HUB_OFFLINE")

    def no_dns(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    check_model_spec("dreamreel-test/nope")  # online: not being cached is not yet an error
    with pytest.raises(DreamreelError, match=r"cannot be reached.*hf download dreamreel-test/nope"):
        load_model("dreamreel-test/nope", device="cpu")
