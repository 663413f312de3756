"""LoRA files (``--lora FILE[:WEIGHT]``), merged into the model's weights once, at load time.

Formats: kohya/A1111 (``lora_unet_…``/``lora_te_…`` with ``lora_down``/``lora_up``/``alpha``,
linear and conv "LoCon" layers) and diffusers/PEFT (``unet.….lora_A``/``lora_B``, or the older
``….lora.down``/``lora.up`` and attention-processor names). Each pair becomes the weight delta
``weight × alpha / rank × up @ down``, added to the module's weight in fp32 before the model is
cast to its device dtype, as A1111's own Lora extension does. Merging (rather than hooking every
forward) costs nothing per step and needs no extra library (diffusers' loader needs peft).

Matching is strict where it matters: a LoRA none of whose layers exists in the model is an error,
a partial match is a warning naming what did not match, and a shape mismatch (a LoRA for another
architecture) is an error.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError

log = logging.getLogger("dreamreel")

UNSUPPORTED = {
    "hada_w1_a": "LoHa",
    "lokr_w1": "LoKr",
    "oft_blocks": "OFT",
    "diff_b": "full-weight diff",
}
# diffusers' early attention-processor LoRA names: ``….processor.to_out_lora.down.weight``
_PROCESSOR_RE = re.compile(r"processor\.(to_q|to_k|to_v|to_out)_lora\.")
_PAIR_RE = re.compile(r"(.+?)\.(lora_down|lora_up|lora\.down|lora\.up|lora_A|lora_B)(?:\.[^.]+)?\.weight$")


def _processor_name(match: re.Match[str]) -> str:
    return ("to_out.0" if match.group(1) == "to_out" else match.group(1)) + ".lora."


@dataclass(frozen=True)
class LoraSpec:
    path: Path
    weight: float = 1.0

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class AppliedLora:
    name: str
    weight: float
    short_hash: str
    layers: int


def parse_lora_spec(text: str) -> LoraSpec:
    """``FILE`` or ``FILE:WEIGHT``; a colon that is part of the path (``C:\\…``) stays in it."""
    path, weight = text, 1.0
    head, sep, tail = text.rpartition(":")
    if sep and head and not tail.startswith(("\\", "/")):
        try:
            weight = float(tail)
            path = head
        except ValueError:
            pass
    return LoraSpec(Path(path).expanduser(), weight)


def parse_lora_specs(specs: Sequence[str], *, allow_unsafe_pickle: bool = False) -> list[LoraSpec]:
    """Parse and check every ``--lora`` (file exists, safe, finite weight) before anything loads."""
    import math

    from dreamreel.models.safety import check_weights_file

    parsed = []
    for text in specs:
        spec = parse_lora_spec(text)
        if not math.isfinite(spec.weight):
            raise DreamreelError(f"--lora {text!r}: the weight must be a finite number")
        check_weights_file(spec.path, allow_unsafe_pickle=allow_unsafe_pickle, what="LoRA file")
        parsed.append(spec)
    return parsed


def lora_hash(path: Path) -> str:
    """A1111's LoRA short hash: sha256 of a safetensors file's data after its header (kohya's
    "addnet" hash, stable when only metadata changes), whole file otherwise; 12 hex digits."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        head = handle.read(8)
        if path.suffix.lower() == ".safetensors" and len(head) == 8:
            handle.seek(8 + struct.unpack("<Q", head)[0])
        else:
            digest.update(head)
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:12]


@dataclass
class _Pair:
    down: Any = None
    up: Any = None
    alpha: float | None = None


# kohya's SDXL LoRAs name UNet layers as the original (SGM) code does: input_blocks_4_1_…, with resnet
# parts in_layers_2 / emb_layers_1 / out_layers_3. diffusers' own mapper renumbers the blocks
# (_maybe_map_sgm_blocks_to_diffusers, which its SDXL LoRA loader uses); these renames finish the job
# for our name index (the rest of diffusers' converter targets peft adapter names, not weights).
_SGM_RENAMES = (
    (re.compile(r"^lora_unet_input_blocks_0_0_"), "lora_unet_conv_in_"),
    (re.compile(r"^lora_unet_input_blocks_"), "lora_unet_down_blocks_"),
    (re.compile(r"^lora_unet_middle_block_"), "lora_unet_mid_block_"),
    (re.compile(r"^lora_unet_output_blocks_"), "lora_unet_up_blocks_"),
    (re.compile(r"^lora_unet_time_embed_0"), "lora_unet_time_embedding_linear_1"),
    (re.compile(r"^lora_unet_time_embed_2"), "lora_unet_time_embedding_linear_2"),
    (re.compile(r"^lora_unet_label_emb_0_0"), "lora_unet_add_embedding_linear_1"),
    (re.compile(r"^lora_unet_label_emb_0_2"), "lora_unet_add_embedding_linear_2"),
    (re.compile(r"^lora_unet_out_2"), "lora_unet_conv_out"),
    (re.compile(r"_in_layers_2(?=[._])"), "_conv1"),
    (re.compile(r"_emb_layers_1(?=[._])"), "_time_emb_proj"),
    (re.compile(r"_out_layers_3(?=[._])"), "_conv2"),
    (re.compile(r"_skip_connection(?=[._])"), "_conv_shortcut"),
    (re.compile(r"_downsamplers_0_op(?=[._])"), "_downsamplers_0_conv"),
)
_SGM_BLOCKS = ("lora_unet_input_blocks_", "lora_unet_middle_block_", "lora_unet_output_blocks_")


def _from_sgm_names(state: dict[str, Any], unet_config: Any) -> dict[str, Any]:
    """kohya SDXL (SGM-named) UNet keys -> kohya keys with diffusers' module names."""
    if not any(key.startswith(_SGM_BLOCKS) for key in state):
        return state
    from diffusers.loaders.lora_conversion_utils import _maybe_map_sgm_blocks_to_diffusers

    mapped = _maybe_map_sgm_blocks_to_diffusers(dict(state), unet_config)
    renamed = {}
    for key, tensor in mapped.items():
        for pattern, replacement in _SGM_RENAMES:
            key = pattern.sub(replacement, key)
        renamed[key] = tensor
    return renamed


def _check_family(
    state: dict[str, Any], pairs: dict[tuple[str, str], _Pair], components: dict[str, Any], name: str
) -> None:
    """One line for a LoRA made for the other family: SD 1.x/2.x LoRAs on SDXL (one text encoder
    named ``lora_te_``, or cross-attention keys of another width), SDXL LoRAs (a second text encoder)
    on SD 1.x/2.x. Without this, names that exist in both would fail on shapes, one layer at a time."""
    xl = components.get("text_encoder_2") is not None
    width = components["unet"].config.cross_attention_dim
    widths = {
        pair.down.shape[1]
        for (component, module), pair in pairs.items()
        if component == "unet" and pair.down is not None and "attn2" in module and "to_k" in module
    }
    second_encoder = any(component == "text_encoder_2" for component, _ in pairs)
    if xl and not second_encoder and (widths - {width} or any(k.startswith("lora_te_") for k in state)):
        found = f" (cross-attention width {min(widths)})" if widths - {width} else ""
        raise DreamreelError(
            f"LoRA {name!r} is for SD 1.x/2.x{found}, but this model is SDXL; use an SDXL LoRA"
        )
    if not xl and second_encoder:
        raise DreamreelError(f"LoRA {name!r} is for SDXL (two text encoders), but this model is SD 1.x/2.x")


def lora_family(path: Path) -> str | None:
    """'sdxl' or 'sd1/2' from a safetensors LoRA's header alone (key names and the cross-attention
    width of its ``to_k`` factors), None when the header does not tell (a UNet-only LoRA of a
    miniature model, a motion LoRA, a pickle)."""
    from dreamreel.models.safety import safetensors_keys

    if path.suffix.lower() != ".safetensors":
        return None
    shapes = safetensors_keys(path)
    if any(k.startswith(("lora_te1_", "lora_te2_", *_SGM_BLOCKS)) or "text_encoder_2" in k for k in shapes):
        return "sdxl"
    widths = {
        shape[1]
        for key, shape in shapes.items()
        if "attn2" in key and "to_k" in key and ("lora_down" in key or "lora_A" in key) and len(shape) >= 2
    }
    if widths & {768, 1024}:  # CLIP ViT-L (SD 1.x) and OpenCLIP ViT-H (SD 2.x)
        return "sd1/2"
    if 2048 in widths:  # SDXL's two encoders side by side
        return "sdxl"
    return "sd1/2" if any(k.startswith("lora_te_") for k in shapes) else None


def check_lora_families(specs: Sequence[LoraSpec], model_family: str | None) -> None:
    """Refuse, before anything loads, a LoRA whose header says it is for the other family than the
    model's (``apply_loras`` checks the same again on the loaded weights, for what headers cannot tell)."""
    if model_family is None:
        return
    for spec in specs:
        family = lora_family(spec.path)
        if family is None or (family == "sdxl") == (model_family == "sdxl"):
            continue
        if model_family == "sdxl":
            raise DreamreelError(f"LoRA {spec.path.name!r} is for SD 1.x/2.x, but this model is SDXL; use an SDXL LoRA")
        raise DreamreelError(f"LoRA {spec.path.name!r} is for SDXL, but this model is SD 1.x/2.x")


def _group(state: dict[str, Any], name: str) -> dict[tuple[str, str], _Pair]:
    """(component, module name) -> down/up/alpha, whatever the file's naming scheme."""
    for marker, kind in UNSUPPORTED.items():
        if any(marker in key for key in state):
            raise DreamreelError(
                f"LoRA {name!r} is a LyCORIS {kind} file; only LoRA/LoCon files are supported"
            )
    pairs: dict[tuple[str, str], _Pair] = {}
    for raw_key, tensor in state.items():
        key = _PROCESSOR_RE.sub(_processor_name, raw_key)
        if key.endswith(".alpha"):
            base, part = key[: -len(".alpha")], "alpha"
        else:
            match = _PAIR_RE.match(key)
            if match is None:
                continue
            base, part = (
                match.group(1),
                "down" if match.group(2) in ("lora_down", "lora.down", "lora_A") else "up",
            )
        component, module = _locate(base)
        pair = pairs.setdefault((component, module), _Pair())
        if part == "alpha":
            pair.alpha = float(tensor.item()) if hasattr(tensor, "item") else float(tensor)
        else:
            setattr(pair, part, tensor)
    if not pairs:
        raise DreamreelError(f"{name!r} holds no LoRA layers (no lora_down/lora_up or lora_A/lora_B weights)")
    return pairs


def _locate(base: str) -> tuple[str, str]:
    """Component ('unet' / 'text_encoder') and module path of a LoRA key's base name."""
    if base.startswith("lora_unet_"):
        return "unet", base[len("lora_unet_") :]  # underscore form, resolved against the model later
    for prefix in ("lora_te1_", "lora_te_"):
        if base.startswith(prefix):
            return "text_encoder", base[len(prefix) :]
    if base.startswith("lora_te2_"):
        return "text_encoder_2", base[len("lora_te2_") :]
    component, _, module = base.partition(".")
    if component not in ("unet", "text_encoder", "text_encoder_2"):
        component, module = "unet", base  # diffusers UNet-only files name modules bare
    return component, module


def _module_index(root: Any) -> dict[str, Any]:
    """Every weight-carrying module by its dotted name and by kohya's underscore name (with and
    without CLIP's ``text_model`` wrapper, which transformers >= 5.6 flattens away)."""
    index: dict[str, Any] = {}
    for name, module in root.named_modules():
        if not hasattr(module, "weight") or module.weight is None:
            continue
        for alias in (name, "text_model." + name, name.removeprefix("text_model.")):
            index[alias] = module
            index[alias.replace(".", "_")] = module
    return index


def apply_loras(components: dict[str, Any], specs: Sequence[LoraSpec]) -> list[AppliedLora]:
    """Merge each LoRA into the components' weights, in order; returns what was applied."""
    from dreamreel.models.safety import load_weights

    applied = []
    indexes: dict[str, dict[str, Any]] = {}
    for spec in specs:
        state = load_weights(spec.path, allow_unsafe_pickle=True)  # already vetted by parse_lora_specs
        motion = any("motion_modules" in key for key in state)  # AnimateDiff motion LoRA: adapter names
        if motion:
            from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

            state = convert_animatediff_checkpoint_to_diffusers(state)
        elif components.get("text_encoder_2") is not None:
            state = _from_sgm_names(state, components["unet"].config)
        pairs = _group(state, spec.path.name)
        if not motion:
            _check_family(state, pairs, components, spec.path.name)
        unmatched: list[str] = []
        targets = []
        for (component, module_name), pair in pairs.items():
            if components.get(component) is None:
                unmatched.append(f"{component}:{module_name}")
                continue
            if component not in indexes:
                indexes[component] = _module_index(components[component])
            module = indexes[component].get(module_name)
            if module is None or pair.down is None or pair.up is None:
                unmatched.append(f"{component}:{module_name}")
                continue
            targets.append((module, pair, f"{component}:{module_name}"))
        if not targets:
            raise DreamreelError(
                f"LoRA {spec.path.name!r} matches no layer of this model (first: {unmatched[0]}); "
                "is it for another architecture (SD 1.x / SD 2.x / SDXL)?"
            )
        if unmatched:
            log.warning(
                "LoRA %s: %d of %d layers match nothing in this model (e.g. %s)",
                spec.path.name,
                len(unmatched),
                len(pairs),
                unmatched[0],
            )
        for module, pair, label in targets:
            _merge(module, pair, spec.weight, spec.path.name, label)
        applied.append(AppliedLora(spec.name, spec.weight, lora_hash(spec.path), len(targets)))
    return applied


def _merge(module: Any, pair: _Pair, weight: float, name: str, label: str) -> None:
    import torch

    down, up = pair.down.float(), pair.up.float()
    rank = down.shape[0]
    scale = weight * (pair.alpha / rank if pair.alpha is not None else 1.0)
    target = module.weight
    with torch.no_grad():
        if target.ndim == 4 and down.ndim == 4 and down.shape[2:] != (1, 1):
            # conv LoRA with a k x k down projection and a 1x1 up projection
            delta = torch.einsum("or,rikl->oikl", up.flatten(1), down)
        else:
            delta = up.flatten(1) @ down.flatten(1)
        try:
            delta = delta.reshape(target.shape)
        except RuntimeError:
            raise DreamreelError(
                f"LoRA {name!r} does not fit this model: layer {label} is {tuple(target.shape)}, "
                f"the LoRA's is {tuple(delta.shape)} (made for another architecture?)"
            ) from None
        target.copy_((target.float() + scale * delta.to(target.device)).to(target.dtype))
