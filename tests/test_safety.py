"""Weight files are judged by content: pickles refused whatever their name, broken files explained."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch

from dreamreel.errors import DreamreelError
from dreamreel.models.loading import check_model_spec, load_model
from dreamreel.models.safety import load_weights


class _Payload:
    """Unpickling this creates the marker file: the proof that a command would have run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def _evil_bytes(kind: str, marker: Path, tmp_path: Path) -> bytes:
    payload = {"state_dict": {"weight": _Payload(marker)}}
    if kind == "pickle2":
        return pickle.dumps(payload, protocol=2)
    if kind == "pickle0":
        return pickle.dumps(payload, protocol=0)
    scratch = tmp_path / "scratch.zip"
    torch.save(payload, scratch)  # torch's zip format: archive/data.pkl
    return scratch.read_bytes()


@pytest.mark.parametrize("kind", ["pickle2", "pickle0", "torchzip"])
@pytest.mark.parametrize("name", ["model.ckpt", "model.pt", "model.bin", "model.safetensors", "model"])
def test_malicious_pickle_refused_under_every_name(tmp_path, kind, name):
    marker = tmp_path / "marker"
    path = tmp_path / name
    path.write_bytes(_evil_bytes(kind, marker, tmp_path))
    with pytest.raises(DreamreelError, match=r"pickle.*can run any code.*--allow-unsafe-pickle"):
        check_model_spec(str(path))
    with pytest.raises(DreamreelError, match="pickle"):
        load_model(str(path), device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["pickle2", "torchzip"])
def test_allow_unsafe_pickle_still_never_runs_code(tmp_path, kind):
    marker = tmp_path / "marker"
    path = tmp_path / "model.ckpt"
    path.write_bytes(_evil_bytes(kind, marker, tmp_path))
    with pytest.raises(DreamreelError, match="weights_only"):
        load_weights(path, allow_unsafe_pickle=True)
    assert not marker.exists()


def test_allow_unsafe_pickle_loads_plain_tensors(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"a": torch.ones(2)}}, path)
    with pytest.raises(DreamreelError, match="pickle"):
        load_weights(path)
    assert torch.equal(load_weights(path, allow_unsafe_pickle=True)["a"], torch.ones(2))


def _safetensors(tmp_path: Path) -> Path:
    from safetensors.torch import save_file

    path = tmp_path / "good.safetensors"
    save_file({"a": torch.zeros(4, 4), "b": torch.ones(3)}, path)
    return path


def test_truncated_safetensors(tmp_path):
    data = _safetensors(tmp_path).read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:-10])
    with pytest.raises(DreamreelError, match="truncated: tensor"):
        check_model_spec(str(cut))
    cut.write_bytes(data[:20])  # inside the header
    with pytest.raises(DreamreelError, match="truncated: its safetensors header claims"):
        check_model_spec(str(cut))


def test_corrupt_safetensors_header(tmp_path):
    header = b"{not json at all"
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(DreamreelError, match="not valid JSON"):
        check_model_spec(str(path))
    header = json.dumps({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(DreamreelError, match="inconsistent offsets"):
        check_model_spec(str(path))


def test_git_lfs_pointer(tmp_path):
    path = tmp_path / "v1-5-pruned.safetensors"
    path.write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa\nsize 4265146304\n"
    )
    with pytest.raises(DreamreelError, match=r"git-lfs pointer.*git lfs pull"):
        check_model_spec(str(path))


def test_empty_file(tmp_path):
    path = tmp_path / "model.safetensors"
    path.touch()
    with pytest.raises(DreamreelError, match="is empty"):
        check_model_spec(str(path))


def test_not_weights_at_all(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("hello, this is a text file and no weights\n" * 5)
    with pytest.raises(DreamreelError, match="neither safetensors nor a known weights format"):
        check_model_spec(str(path))


def test_good_safetensors_passes(tmp_path):
    from dreamreel.models.safety import SAFETENSORS, check_weights_file

    assert check_weights_file(_safetensors(tmp_path)) == SAFETENSORS


def test_diffusers_folder_with_lfs_pointer(tiny_model, tmp_path):
    from diffusers import StableDiffusionPipeline

    folder = tmp_path / "sd"
    StableDiffusionPipeline(**tiny_model.components, requires_safety_checker=False).save_pretrained(folder)
    check_model_spec(str(folder))
    weights = next((folder / "unet").glob("*.safetensors"))
    weights.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 10\n")
    with pytest.raises(DreamreelError, match="git-lfs pointer"):
        check_model_spec(str(folder))


def test_cli_refuses_a_pickle_checkpoint_with_one_line(tmp_path, capsys):
    from dreamreel.cli.app import main

    path = tmp_path / "v1-5-pruned.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(1)}}, path)
    with pytest.raises(SystemExit) as exit_info:
        main(["txt2img", "x", "--model", str(path), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--allow-unsafe-pickle" in err[0] and "safetensors" in err[0]


def test_diffusers_folder_needing_custom_code_is_refused(tiny_model, tmp_path):
    from diffusers import StableDiffusionPipeline

    folder = tmp_path / "sd"
    StableDiffusionPipeline(**tiny_model.components, requires_safety_checker=False).save_pretrained(folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "MyPipeline"
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(DreamreelError, match="MyPipeline"):
        check_model_spec(str(folder))
