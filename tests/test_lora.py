"""LoRA files: kohya/A1111 and diffusers formats merged into the weights, recorded, re-rendered."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from dreamreel.errors import DreamreelError
from dreamreel.models.loading import load_model
from dreamreel.models.lora import lora_hash, parse_lora_spec

RANK, ALPHA = 4, 2.0
# (component, diffusers module name) pairs a typical SD LoRA touches, present in tiny
TARGETS = [
    ("unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"),
    ("unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"),
    ("unet", "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0"),
    ("unet", "mid_block.attentions.0.proj_in"),  # a 1x1 conv in SD 1.x
    ("text_encoder", "encoder.layers.0.self_attn.q_proj"),
    ("text_encoder", "encoder.layers.1.mlp.fc1"),
]


def _module(model, component, name):
    return dict(model.components[component].named_modules())[name]


def _factors(tiny_model):
    """Random down/up factors per target, shaped like the target's weight (conv: 1x1 kernels)."""
    generator = torch.Generator().manual_seed(5)
    factors = {}
    for component, name in TARGETS:
        weight = _module(tiny_model, component, name).weight
        down = torch.randn(RANK, weight.shape[1], *weight.shape[2:], generator=generator) * 0.1
        up = torch.randn(weight.shape[0], RANK, *([1] * (weight.ndim - 2)), generator=generator) * 0.1
        factors[component, name] = (down, up)
    return factors


def _kohya(factors, path):
    state = {}
    for (component, name), (down, up) in factors.items():
        prefix = "lora_unet_" if component == "unet" else "lora_te_text_model_"
        base = prefix + name.replace(".", "_")
        state[f"{base}.lora_down.weight"] = down
        state[f"{base}.lora_up.weight"] = up
        state[f"{base}.alpha"] = torch.tensor(ALPHA)
    save_file(state, path)
    return path


def _diffusers(factors, path):
    """PEFT-style diffusers keys; no alpha, so the factors carry alpha/rank already."""
    state = {}
    for (component, name), (down, up) in factors.items():
        state[f"{component}.{name}.lora_A.weight"] = down
        state[f"{component}.{name}.lora_B.weight"] = up * (ALPHA / RANK)
    save_file(state, path)
    return path


def _expected(tiny_model, factors, weight):
    expected = {}
    for (component, name), (down, up) in factors.items():
        base = _module(tiny_model, component, name).weight
        delta = (up.flatten(1) @ down.flatten(1)).reshape(base.shape)
        expected[component, name] = base + weight * ALPHA / RANK * delta
    return expected


@pytest.mark.parametrize("fmt", ["kohya", "diffusers"])
def test_lora_merges_into_the_weights(tmp_path, tiny_model, fmt):
    factors = _factors(tiny_model)
    path = (_kohya if fmt == "kohya" else _diffusers)(factors, tmp_path / "style.safetensors")
    model = load_model("tiny", device="cpu", dtype="fp32", loras=[f"{path}:0.7"])
    for (component, name), weight in _expected(tiny_model, factors, 0.7).items():
        assert torch.allclose(_module(model, component, name).weight, weight, atol=1e-6), name
    untouched = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v"
    assert torch.equal(
        _module(model, "unet", untouched).weight, _module(tiny_model, "unet", untouched).weight
    )
    assert model.model_hash == tiny_model.model_hash  # the base model's hash, as A1111 records it
    assert model.infotext_extras() == {"Lora hashes": f"style: {lora_hash(path)}"}


def test_two_loras_add_up(tmp_path, tiny_model):
    factors = _factors(tiny_model)
    a = _kohya(factors, tmp_path / "a.safetensors")
    b = _diffusers(factors, tmp_path / "b.safetensors")
    model = load_model("tiny", device="cpu", dtype="fp32", loras=[f"{a}:0.5", f"{b}:0.25"])
    for (component, name), weight in _expected(tiny_model, factors, 0.75).items():
        assert torch.allclose(_module(model, component, name).weight, weight, atol=1e-6)
    assert [lora.name for lora in model.loras] == ["a", "b"]


def test_lora_matching_nothing_is_an_error(tmp_path):
    path = tmp_path / "sdxl-thing.safetensors"
    save_file(
        {
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": torch.zeros(
                4, 640
            ),
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight": torch.zeros(640, 4),
        },
        path,
    )
    with pytest.raises(DreamreelError, match="matches no layer of this model"):
        load_model("tiny", device="cpu", loras=[str(path)])


def test_lora_with_wrong_shapes_is_an_error(tmp_path):
    path = tmp_path / "sd2-lora.safetensors"
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file(
        {f"{name}.lora_down.weight": torch.zeros(4, 1024), f"{name}.lora_up.weight": torch.zeros(32, 4)}, path
    )
    with pytest.raises(DreamreelError, match="does not fit this model"):
        load_model("tiny", device="cpu", loras=[str(path)])


def test_lora_files_are_checked_before_loading(tmp_path):
    from dreamreel.recipes.base import Txt2ImgRecipe

    pickle_lora = tmp_path / "old.pt"
    torch.save({"a": torch.zeros(1)}, pickle_lora)
    with pytest.raises(DreamreelError, match="pickle"):
        Txt2ImgRecipe(prompt="x", model="tiny", loras=[f"{pickle_lora}:0.5"]).validate()
    with pytest.raises(DreamreelError, match="does not exist"):
        Txt2ImgRecipe(prompt="x", model="tiny", loras=[str(tmp_path / "missing.safetensors")]).validate()


@pytest.mark.parametrize(
    ("text", "path", "weight"),
    [
        ("style.safetensors", "style.safetensors", 1.0),
        ("style.safetensors:0.6", "style.safetensors", 0.6),
        ("style.safetensors:-1", "style.safetensors", -1.0),
        (r"C:\loras\style.safetensors", r"C:\loras\style.safetensors", 1.0),
        (r"C:\loras\style.safetensors:0.8", r"C:\loras\style.safetensors", 0.8),
    ],
)
def test_parse_lora_spec(text, path, weight):
    spec = parse_lora_spec(text)
    assert str(spec.path) == path and spec.weight == weight


def test_lora_run_is_recorded_and_rerenders_identically(tmp_path, tiny_model):
    from PIL import Image

    from dreamreel.cli.app import cli
    from dreamreel.runs.metadata import parse_parameters, read_png_metadata

    lora = _kohya(_factors(tiny_model), tmp_path / "neon style.safetensors")
    out = tmp_path / "out"
    args = ["txt2img", "a cat", "--model", "tiny", "--seed", "3", "--steps", "3", "--width", "64"]
    args += ["--height", "64", "--lora", f"{lora}:0.8", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (first,) = sorted(out.glob("*.png"))
    parameters, recipe = read_png_metadata(first)
    fields = parse_parameters(parameters)
    assert fields["Lora hashes"] == f"neon style: {lora_hash(lora)}"
    assert fields["Model hash"] == tiny_model.model_hash
    assert recipe["loras"] == [f"{lora}:0.8"]

    again = tmp_path / "again"
    result = CliRunner().invoke(
        cli, ["rerender", str(first), "--out", str(again), "--quiet"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    (second,) = sorted(again.glob("*.png"))
    assert read_png_metadata(second)[0] == parameters
    assert list(Image.open(first).getdata()) == list(Image.open(second).getdata())

    plain = tmp_path / "plain"
    CliRunner().invoke(cli, [*args[:-5], "--out", str(plain), "--quiet"], catch_exceptions=False)
    (third,) = sorted(plain.glob("*.png"))
    assert list(Image.open(third).getdata()) != list(Image.open(first).getdata())  # the LoRA did something


@pytest.mark.parametrize("job", ["zoom", "interpolate", "vid2vid"])
def test_video_jobs_apply_and_record_the_lora(tmp_path, tiny_model, job):
    """Every video command takes the model options (they were once dropped by the video runner)."""
    from PIL import Image

    from dreamreel.cli.app import cli
    from dreamreel.runs.metadata import parse_parameters, read_png_metadata

    lora = _kohya(_factors(tiny_model), tmp_path / "neon.safetensors")
    size = ["--width", "32", "--height", "32", "--steps", "3", "--model", "tiny", "--quiet"]
    if job == "zoom":
        args = ["zoom", "a cat", "--frames", "2", "--seed", "3", *size]
    elif job == "interpolate":
        args = ["interpolate", "a cat", "--seeds", "1,2", "--frames-between", "1", *size]
    else:
        from media import make_video

        source = make_video(tmp_path / "phone.mp4", frames=2, width=32, height=32)
        args = ["vid2vid", "a cat", "--video", str(source), "--seed", "3", "--strength", "0.6", *size]
    frames = {}
    for name, extra in (("plain", []), ("lora", ["--lora", str(lora)])):
        result = CliRunner().invoke(cli, [*args, *extra, "-o", str(tmp_path / f"{name}.mp4")])
        assert result.exit_code == 0, result.output
        frames[name] = sorted((tmp_path / f"{name}.run" / "frames").glob("*.png"))
    fields = parse_parameters(read_png_metadata(frames["lora"][0])[0])
    assert fields["Lora hashes"] == f"neon: {lora_hash(lora)}"
    plain, styled = (list(Image.open(f[-1]).getdata()) for f in frames.values())
    assert plain != styled
