"""SDXL LoRAs: kohya's SGM-named keys and diffusers' keys merge into the same weights; a LoRA of the
other family is refused in one line."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from dreamreel.errors import DreamreelError
from dreamreel.models.loading import load_model

RANK, ALPHA = 4, 2.0
# (component, diffusers module name, kohya SDXL key base) in tiny-xl (1 resnet per down block, so
# input_blocks 1 = down 0's resnet, 2 = its downsampler, 3 = down 1's resnet + attention)
TARGETS = [
    ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", "input_blocks_3_1_transformer_blocks_0_attn2_to_k"),
    ("unet", "mid_block.attentions.0.proj_in", "middle_block_1_proj_in"),
    ("unet", "up_blocks.0.resnets.0.conv1", "output_blocks_0_0_in_layers_2"),  # a 3x3 LoCon layer
    ("unet", "up_blocks.0.attentions.1.transformer_blocks.1.attn1.to_out.0",
     "output_blocks_1_1_transformer_blocks_1_attn1_to_out_0"),
    ("unet", "down_blocks.0.resnets.0.time_emb_proj", "input_blocks_1_0_emb_layers_1"),
    ("text_encoder", "encoder.layers.0.self_attn.q_proj", "te1_text_model_encoder_layers_0_self_attn_q_proj"),
    ("text_encoder_2", "encoder.layers.1.mlp.fc1", "te2_text_model_encoder_layers_1_mlp_fc1"),
]  # fmt: skip


def _module(model, component, name):
    modules = dict(model.components[component].named_modules())
    return modules.get(name) or modules["text_model." + name]


def _factors(model):
    generator = torch.Generator().manual_seed(5)
    factors = {}
    for component, name, kohya in TARGETS:
        weight = _module(model, component, name).weight
        down = torch.randn(RANK, weight.shape[1], *weight.shape[2:], generator=generator) * 0.1
        up = torch.randn(weight.shape[0], RANK, *([1] * (weight.ndim - 2)), generator=generator) * 0.1
        factors[component, name, kohya] = (down, up)
    return factors


def _kohya_sdxl(factors, path):
    state = {}
    for (component, _, kohya), (down, up) in factors.items():
        base = ("lora_unet_" if component == "unet" else "lora_") + kohya
        state |= {f"{base}.lora_down.weight": down, f"{base}.lora_up.weight": up, f"{base}.alpha": torch.tensor(ALPHA)}
    save_file(state, path)
    return path


def _diffusers(factors, path):
    state = {}
    for (component, name, _), (down, up) in factors.items():
        state[f"{component}.{name}.lora_A.weight"] = down
        state[f"{component}.{name}.lora_B.weight"] = up * (ALPHA / RANK)
    save_file(state, path)
    return path


def test_kohya_and_diffusers_sdxl_loras_merge_alike(tmp_path, tiny_xl_model):
    factors = _factors(tiny_xl_model)
    kohya = load_model("tiny-xl", device="cpu", loras=[f"{_kohya_sdxl(factors, tmp_path / 'k.safetensors')}:0.8"])
    peft = load_model("tiny-xl", device="cpu", loras=[f"{_diffusers(factors, tmp_path / 'd.safetensors')}:0.8"])
    assert kohya.loras[0].layers == peft.loras[0].layers == len(TARGETS)  # every layer found, none left over
    for (component, name, _), (down, up) in factors.items():
        base = _module(tiny_xl_model, component, name).weight
        delta = torch.einsum("or,rikl->oikl", up.flatten(1), down) if down.ndim == 4 else up @ down
        expected = base + 0.8 * ALPHA / RANK * delta.reshape(base.shape)
        for model in (kohya, peft):
            assert torch.allclose(_module(model, component, name).weight, expected, atol=1e-5), name


def test_sd1_lora_on_sdxl_is_one_line(tmp_path):
    base = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    path = tmp_path / "sd15-style.safetensors"
    save_file({f"{base}.lora_down.weight": torch.zeros(4, 768), f"{base}.lora_up.weight": torch.zeros(64, 4),
               "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(4, 32),
               "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.zeros(32, 4)}, path)  # fmt: skip
    with pytest.raises(DreamreelError, match=r"is for SD 1\.x/2\.x \(cross-attention width 768\), but this model is SDXL") as error:
        load_model("tiny-xl", device="cpu", loras=[str(path)])
    assert "\n" not in str(error.value)


def test_a_lora_of_the_other_family_is_refused_before_the_model_loads(tmp_path, run_cli, no_model_load):
    """The header tells: an SD 1.5 LoRA (one text encoder, cross-attention width 768) on SDXL, and a kohya
    SDXL LoRA (te1/te2 keys) on SD 1.x."""
    sd15 = tmp_path / "sd15.safetensors"
    base = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"
    save_file({f"{base}.lora_down.weight": torch.zeros(4, 768), f"{base}.lora_up.weight": torch.zeros(320, 4)}, sd15)
    xl = tmp_path / "xl.safetensors"
    te = "lora_te2_text_model_encoder_layers_0_self_attn_q_proj"
    save_file({f"{te}.lora_down.weight": torch.zeros(4, 32), f"{te}.lora_up.weight": torch.zeros(32, 4)}, xl)
    for model, lora, message in (("tiny-xl", sd15, "is for SD 1.x/2.x, but this model is SDXL"),
                                 ("tiny", xl, "is for SDXL, but this model is SD 1.x/2.x")):  # fmt: skip
        code, _, err = run_cli(["txt2img", "a cat", "--model", model, "--lora", str(lora), "--out", str(tmp_path)])
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
