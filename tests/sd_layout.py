"""Diffusers weights -> the original (CompVis/A1111) single-file key layout, written independently
of diffusers' own converters so that loading a file made with it tests those converters for real.

The mapping is the public one of the original ``ldm`` code: UNet ``input_blocks``/``middle_block``/
``output_blocks`` with resnets' ``in_layers``/``out_layers``, VAE ``down.N.block.M``/``up.N`` (reversed),
CLIP under ``cond_stage_model.transformer.`` (SD 1.x) or ``conditioner.embedders.0.transformer.`` (SDXL),
OpenCLIP under ``...model.`` with fused ``in_proj`` attention.
"""

from __future__ import annotations

from typing import Any

import torch

RESNET = [
    ("in_layers.0.", "norm1."),
    ("in_layers.2.", "conv1."),
    ("out_layers.0.", "norm2."),
    ("out_layers.3.", "conv2."),
    ("emb_layers.1.", "time_emb_proj."),
    ("skip_connection.", "conv_shortcut."),
]


def _unet_prefix_map(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(original prefix, diffusers prefix) pairs for every block of the UNet."""
    pairs = [
        ("time_embed.0.", "time_embedding.linear_1."),
        ("time_embed.2.", "time_embedding.linear_2."),
        ("input_blocks.0.0.", "conv_in."),
        ("out.0.", "conv_norm_out."),
        ("out.2.", "conv_out."),
        ("label_emb.0.0.", "add_embedding.linear_1."),
        ("label_emb.0.2.", "add_embedding.linear_2."),
        ("middle_block.1.", "mid_block.attentions.0."),
    ]
    for j in range(2):
        pairs.append((f"middle_block.{2 * j}.", f"mid_block.resnets.{j}."))
    layers = config["layers_per_block"]
    levels = len(config["block_out_channels"])
    down_attn = ["CrossAttn" in t for t in config["down_block_types"]]
    up_attn = ["CrossAttn" in t for t in config["up_block_types"]]
    for i in range(levels):
        for j in range(layers):
            n = (layers + 1) * i + j + 1
            pairs.append((f"input_blocks.{n}.0.", f"down_blocks.{i}.resnets.{j}."))
            if down_attn[i]:
                pairs.append((f"input_blocks.{n}.1.", f"down_blocks.{i}.attentions.{j}."))
        if i < levels - 1:
            pairs.append(
                (f"input_blocks.{(layers + 1) * (i + 1)}.0.op.", f"down_blocks.{i}.downsamplers.0.conv.")
            )
        for j in range(layers + 1):
            n = (layers + 1) * i + j
            pairs.append((f"output_blocks.{n}.0.", f"up_blocks.{i}.resnets.{j}."))
            if up_attn[i]:
                pairs.append((f"output_blocks.{n}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < levels - 1:
            n = (layers + 1) * i + layers
            pairs.append((f"output_blocks.{n}.{2 if up_attn[i] else 1}.", f"up_blocks.{i}.upsamplers.0."))
    return pairs


def unet_to_original(state: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    pairs = sorted(_unet_prefix_map(config), key=lambda p: -len(p[1]))
    out = {}
    for key, value in state.items():
        for original, diffusers in pairs:
            if key.startswith(diffusers):
                rest = key[len(diffusers) :]
                if ".resnets." in diffusers:
                    for old, new in RESNET:
                        if rest.startswith(new):
                            rest = old + rest[len(new) :]
                            break
                out["model.diffusion_model." + original + rest] = value
                break
        else:
            raise KeyError(f"no original name for UNet key {key}")
    return out


def vae_to_original(
    state: dict[str, torch.Tensor], levels: int = 4, layers: int = 2
) -> dict[str, torch.Tensor]:
    pairs = [("encoder.norm_out.", "encoder.conv_norm_out."), ("decoder.norm_out.", "decoder.conv_norm_out.")]
    for side in ("encoder", "decoder"):
        pairs.append((f"{side}.mid.attn_1.", f"{side}.mid_block.attentions.0."))
        for j in range(2):
            pairs.append((f"{side}.mid.block_{j + 1}.", f"{side}.mid_block.resnets.{j}."))
    for i in range(levels):
        for j in range(layers):
            pairs.append((f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}."))
        for j in range(layers + 1):
            pairs.append((f"decoder.up.{levels - 1 - i}.block.{j}.", f"decoder.up_blocks.{i}.resnets.{j}."))
        if i < levels - 1:
            pairs.append((f"encoder.down.{i}.downsample.", f"encoder.down_blocks.{i}.downsamplers.0."))
            pairs.append((f"decoder.up.{levels - 1 - i}.upsample.", f"decoder.up_blocks.{i}.upsamplers.0."))
    pairs.sort(key=lambda p: -len(p[1]))
    attention = {
        "group_norm.": "norm.",
        "to_q.": "q.",
        "to_k.": "k.",
        "to_v.": "v.",
        "to_out.0.": "proj_out.",
    }
    out = {}
    for key, value in state.items():
        new = key
        for original, diffusers in pairs:
            if key.startswith(diffusers):
                new = original + key[len(diffusers) :]
                break
        new = new.replace("conv_shortcut.", "nin_shortcut.")
        if ".mid.attn_1." in new:
            head, _, tail = new.partition(".mid.attn_1.")
            for d_name, o_name in attention.items():
                if tail.startswith(d_name):
                    tail = o_name + tail[len(d_name) :]
                    break
            new = f"{head}.mid.attn_1.{tail}"
            if value.ndim == 2:  # the original attention uses 1x1 convolutions
                value = value[:, :, None, None]
        out["first_stage_model." + new] = value
    return out


def clip_to_original(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """HF CLIP text weights (flattened or not) under the original prefix, keys as ``text_model.*``."""
    out = {}
    for key, value in state.items():
        name = key if key.startswith(("text_model.", "text_projection")) else "text_model." + key
        out[prefix + name] = value
    return out


def open_clip_to_original(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """HF CLIP text weights -> OpenCLIP names (fused q/k/v ``in_proj``, ``resblocks``, ``ln_final``)."""
    state = {k.removeprefix("text_model."): v for k, v in state.items()}
    out = {
        prefix + "token_embedding.weight": state["embeddings.token_embedding.weight"],
        prefix + "positional_embedding": state["embeddings.position_embedding.weight"],
        prefix + "ln_final.weight": state["final_layer_norm.weight"],
        prefix + "ln_final.bias": state["final_layer_norm.bias"],
    }
    if "text_projection.weight" in state:
        out[prefix + "text_projection"] = state["text_projection.weight"].T.contiguous()
    layer = 0
    while f"encoder.layers.{layer}.self_attn.q_proj.weight" in state:
        src, dst = f"encoder.layers.{layer}.", f"{prefix}transformer.resblocks.{layer}."
        for kind in ("weight", "bias"):
            out[dst + f"attn.in_proj_{kind}"] = torch.cat(
                [state[src + f"self_attn.{p}_proj.{kind}"] for p in ("q", "k", "v")]
            )
            out[dst + f"attn.out_proj.{kind}"] = state[src + f"self_attn.out_proj.{kind}"]
            out[dst + f"ln_1.{kind}"] = state[src + f"layer_norm1.{kind}"]
            out[dst + f"ln_2.{kind}"] = state[src + f"layer_norm2.{kind}"]
            out[dst + f"mlp.c_fc.{kind}"] = state[src + f"mlp.fc1.{kind}"]
            out[dst + f"mlp.c_proj.{kind}"] = state[src + f"mlp.fc2.{kind}"]
        layer += 1
    return out


def controlnet_to_original(state: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A diffusers ControlNet -> the original ControlNet 1.1 single-file keys (no ``control_model.``
    prefix): the UNet encoder half as in ``unet_to_original``, ``zero_convs.N.0``, ``middle_block_out.0``
    and ``input_hint_block`` (convs at 0, 2, ..., 14 with SiLUs between)."""
    out: dict[str, torch.Tensor] = {}
    unet_part: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("controlnet_down_blocks."):
            n, rest = key[len("controlnet_down_blocks.") :].split(".", 1)
            out[f"zero_convs.{n}.0.{rest}"] = value
        elif key.startswith("controlnet_mid_block."):
            out["middle_block_out.0." + key[len("controlnet_mid_block.") :]] = value
        elif key.startswith("controlnet_cond_embedding."):
            rest = key[len("controlnet_cond_embedding.") :]
            if rest.startswith("conv_in."):
                index, tail = 0, rest[len("conv_in.") :]
            elif rest.startswith("conv_out."):
                index, tail = 14, rest[len("conv_out.") :]
            else:
                n, tail = rest[len("blocks.") :].split(".", 1)
                index = 2 * (int(n) + 1)
            out[f"input_hint_block.{index}.{tail}"] = value
        else:
            unet_part[key] = value
    for key, value in unet_to_original(unet_part, config).items():
        out[key.removeprefix("model.diffusion_model.")] = value
    return out
