"""Model hashes are remembered by (path, size, mtime): the second run of a model does not hash it again."""

from __future__ import annotations

import json
import os

import pytest

from dreamreel.models import hash_cache
from dreamreel.models.loading import file_hash, load_model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DREAMREEL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "hashes.json"


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = hash_cache.sha256_file

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(hash_cache, "sha256_file", counting)
    return calls


def test_a_file_is_hashed_once_until_it_changes(tmp_path, cache, counted):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights" * 1000)
    first = file_hash(weights)
    assert file_hash(weights) == first and len(counted) == 1  # the second run reads the cache
    assert json.loads(cache.read_text())["files"]
    weights.write_bytes(b"other weights" * 1000)  # new size and mtime
    assert file_hash(weights) != first and len(counted) == 2
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same bytes, touched
    file_hash(weights)
    assert len(counted) == 3


def test_a_damaged_cache_is_ignored_and_rewritten(tmp_path, cache, counted):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"abc")
    cache.parent.mkdir(parents=True)
    for damage in ("{not json", json.dumps({"version": 1, "files": []}), json.dumps([1, 2]), ""):
        cache.write_text(damage)
        assert file_hash(weights, length=64) == hash_cache.sha256_file(weights)
        data = json.loads(cache.read_text())
        assert data["files"][str(weights.resolve())]["digest"] == file_hash(weights, length=64)
    assert [p.name for p in cache.parent.iterdir()] == ["hashes.json"]  # no temporary files left


def test_an_unwritable_cache_costs_only_a_hash(tmp_path, monkeypatch, counted):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("DREAMREEL_CACHE_DIR", str(blocker / "cache"))  # a folder under a file
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"x")
    assert file_hash(weights) == file_hash(weights)
    assert len(counted) == 2


def test_cache_folder_follows_xdg_and_the_override(tmp_path, monkeypatch):
    monkeypatch.delenv("DREAMREEL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hash_cache.cache_path() == tmp_path / "xdg" / "dreamreel" / "hashes.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hash_cache.cache_path() == tmp_path / "home" / ".cache" / "dreamreel" / "hashes.json"
    monkeypatch.setenv("DREAMREEL_CACHE_DIR", str(tmp_path / "mine"))
    assert hash_cache.cache_path() == tmp_path / "mine" / "hashes.json"


def test_the_second_load_of_a_folder_model_does_not_hash_its_weights_again(tmp_path, cache, tiny_model,
                                                                            monkeypatch):  # fmt: skip
    from diffusers import StableDiffusionPipeline

    from dreamreel.models import loading

    folder = tmp_path / "model"
    StableDiffusionPipeline(**tiny_model.components, requires_safety_checker=False).save_pretrained(folder)
    calls = []
    real = loading.weights_hash
    monkeypatch.setattr(loading, "weights_hash", lambda module: calls.append(1) or real(module))
    first = load_model(str(folder), device="cpu", dtype="fp32").model_hash
    second = load_model(str(folder), device="cpu", dtype="fp32").model_hash
    assert first == second == real(tiny_model.components["unet"])
    assert len(calls) == 1


def test_a_checkpoint_models_hash_is_read_from_the_cache_on_the_next_run(tmp_path, cache, counted, tiny_model):
    from dreamreel.models.loading import LoadedModel

    checkpoint = tmp_path / "v1-5.safetensors"
    checkpoint.write_bytes(os.urandom(1 << 16))
    runs = [LoadedModel(spec=str(checkpoint), components=tiny_model.components, device=tiny_model.device,
                        dtype=tiny_model.dtype, source_file=checkpoint) for _ in range(2)]  # fmt: skip
    assert runs[0].model_hash == runs[1].model_hash == hash_cache.sha256_file(checkpoint)[:10]
    assert len(counted) == 2  # the first run, and the check above; not the second run


def test_loading_a_folder_leaves_the_callers_progress_bar_setting_as_it_was(tmp_path, tiny_model):
    """dreamreel hides diffusers'/transformers' loading bars while it loads, and puts back what it found."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    folder = tmp_path / "model"
    StableDiffusionPipeline(**tiny_model.components, requires_safety_checker=False).save_pretrained(folder)
    diffusers_logging.disable_progress_bar()
    try:
        load_model(str(folder), device="cpu", dtype="fp32")
        assert not diffusers_logging.is_progress_bar_enabled()
        assert transformers_logging.is_progress_bar_enabled()
    finally:
        diffusers_logging.enable_progress_bar()
