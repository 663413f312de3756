"""ControlNets: ``--controlnet KIND:FILE[:WEIGHT]`` parsed, checked from file headers, and loaded offline.

FILE is a diffusers folder (``ControlNetModel.save_pretrained``), a single ``.safetensors`` file in the
original (lllyasviel / A1111 extension) key layout, or ``tiny``: a random ControlNet grown from the
built-in ``tiny`` model's UNet (``ControlNetModel.from_unet``) for tests and demos. A single file
needs no config download: a ControlNet has its base model's UNet architecture, so its config is the
loaded model's UNet config (what ``from_unet`` derives), and diffusers' own converter renames the keys.
Pickles are refused like checkpoints; a ControlNet made for another model family is refused from its
header (the width of the text embeddings its cross-attention reads) before any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError
from dreamreel.models.safety import SAFETENSORS, check_weights_file, component_folder_config, safetensors_keys

KINDS = ("canny", "tile", "image")  # canny: OpenCV edges of the source; tile: the source; image: --control-image
TINY_CONTROLNET = "tiny"
TINY_CONTROLNET_SEED = 4321
# text-embedding width of each model family (the cross-attention's key input)
FAMILY_CONTEXT = {"sd1": 768, "sd2": 1024, "sdxl": 2048}
BUILT_IN_CONTEXT = {"tiny": 32, "tiny-xl": 64}


@dataclass(frozen=True)
class ControlSpec:
    kind: str
    file: str
    weight: float = 1.0

    @property
    def name(self) -> str:
        return TINY_CONTROLNET if self.file == TINY_CONTROLNET else Path(self.file).stem


def parse_controlnet_spec(text: str) -> ControlSpec:
    """``KIND:FILE`` or ``KIND:FILE:WEIGHT`` -> ControlSpec; the file is checked (headers only)."""
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KINDS or not rest:
        raise DreamreelError(
            f"--controlnet must be KIND:FILE[:WEIGHT] with KIND one of {', '.join(KINDS)}, got {text!r}"
        )
    weight = 1.0
    head, sep, tail = rest.rpartition(":")
    if sep and head:
        try:
            weight = float(tail)
        except ValueError:
            head = ""
        if head:
            rest = head
    if not 0 <= weight <= 2:
        raise DreamreelError(f"--controlnet weight must be from 0 to 2, got {weight:g}")
    return ControlSpec(kind=kind, file=rest, weight=weight)


def parse_controlnet_specs(
    texts: list[str], *, allow_unsafe_pickle: bool = False, model: str | None = None
) -> list[ControlSpec]:
    """Every ``--controlnet``, each file checked and, when the model's family is known from its files,
    its architecture matched to the model's, before anything loads."""
    specs = [parse_controlnet_spec(t) for t in texts]
    for spec in specs:
        width = controlnet_context_width(spec.file, allow_unsafe_pickle=allow_unsafe_pickle)
        wanted = model_context_width(model) if model is not None else None
        if width is not None and wanted is not None and width != wanted:
            raise DreamreelError(
                f"ControlNet {spec.file!r} is for another model architecture: it reads {width}-wide text "
                f"embeddings ({_family_of(width)}), model {model!r} gives {wanted}-wide"
            )
    return specs


def _family_of(width: int) -> str:
    names = {v: k for k, v in FAMILY_CONTEXT.items()} | {v: k for k, v in BUILT_IN_CONTEXT.items()}
    return names.get(width, "an unknown family")


def model_context_width(model: str) -> int | None:
    from dreamreel.models.loading import BUILT_IN, model_family

    if model in BUILT_IN:
        return BUILT_IN_CONTEXT[model]
    family = model_family(model)
    return FAMILY_CONTEXT.get(family) if family else None


def controlnet_context_width(file: str, *, allow_unsafe_pickle: bool = False) -> int | None:
    """The text-embedding width a ControlNet reads, from its config or safetensors header; refuses a
    missing file, a pickle (without permission) and a file that is not a ControlNet."""
    if file == TINY_CONTROLNET:
        return None  # grown from the loaded model's own UNet: it fits any model
    path = Path(file).expanduser()
    if path.is_dir():
        data = component_folder_config(path, file, "ControlNetModel", "ControlNet")
        width = data.get("cross_attention_dim")
        return int(width) if isinstance(width, int) else None
    kind = check_weights_file(file, allow_unsafe_pickle=allow_unsafe_pickle, what="ControlNet file")
    if kind != SAFETENSORS:
        return None
    shapes = safetensors_keys(path)
    if not any("input_hint_block" in k or "controlnet_cond_embedding" in k for k in shapes):
        raise DreamreelError(f"{file!r} is not a ControlNet (no hint/condition embedding in it)")
    for key, shape in shapes.items():
        if key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return int(shape[1])
    return None


def build_tiny_controlnet(unet: Any) -> Any:
    """A random ControlNet of ``unet``'s architecture. ``from_unet`` copies the UNet and zeroes the
    output convolutions (a fresh ControlNet changes nothing); here they are random, so a test can
    tell a ControlNet that is applied from one that is not."""
    import torch
    from diffusers import ControlNetModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_CONTROLNET_SEED)
        net = ControlNetModel.from_unet(unet)
        for name, parameter in net.named_parameters():
            if name.startswith(("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding.conv_out")):
                parameter.data.normal_(0, 0.3)
    return net.eval().requires_grad_(False)


def load_controlnet(spec: ControlSpec, unet: Any, *, allow_unsafe_pickle: bool = False) -> Any:
    """The ControlNetModel of ``spec`` for a model whose UNet is ``unet`` (fp32, CPU; placed by the caller)."""
    from diffusers import ControlNetModel

    if spec.file == TINY_CONTROLNET:
        return build_tiny_controlnet(unet)
    path = Path(spec.file).expanduser()
    if path.is_dir():
        try:
            net = ControlNetModel.from_pretrained(str(path), local_files_only=True, use_safetensors=True)
        except (OSError, ValueError) as exc:
            raise DreamreelError(f"could not load ControlNet {spec.file!r}: {exc}") from exc
        return net.eval().requires_grad_(False)
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    from dreamreel.models.safety import load_weights

    state = load_weights(path, allow_unsafe_pickle=allow_unsafe_pickle)
    config = dict(ControlNetModel.from_unet(unet, load_weights_from_unet=False).config)
    try:
        converted = convert_controlnet_checkpoint(state, config)
        net = ControlNetModel.from_config(config)
        missing, unexpected = net.load_state_dict(converted, strict=False)
    except (KeyError, RuntimeError) as exc:
        raise DreamreelError(f"ControlNet {spec.file!r} does not fit this model: {str(exc).splitlines()[0]}") from exc
    if missing or unexpected:
        raise DreamreelError(
            f"ControlNet {spec.file!r} does not fit this model: {len(missing)} weights missing, "
            f"{len(unexpected)} unexpected (e.g. {(list(missing) + list(unexpected))[0]})"
        )
    return net.eval().requires_grad_(False)


def controlnet_component(nets: list[Any]) -> Any:
    """What diffusers' ControlNet pipelines take as ``controlnet``: the one model, or several combined."""
    if len(nets) == 1:
        return nets[0]
    from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel

    return MultiControlNetModel(nets)

