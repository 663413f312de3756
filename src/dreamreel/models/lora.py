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
        pairs = _group(state, spec.path.name)
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
