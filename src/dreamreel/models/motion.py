"""AnimateDiff motion adapters (``--motion-adapter FILE|FOLDER|tiny``): checked from configs or file
headers before any model loads, loaded offline as diffusers' ``MotionAdapter``.

A motion adapter is trained for one UNet architecture: its temporal layers sit after each block of
that UNet, so its per-level channel widths must be the UNet's (SD 1.5 has four levels, 320-1280;
SDXL three). A single ``.safetensors`` file in the original AnimateDiff layout is read with diffusers'
own key converter and a config read off the weights' shapes (no config download). ``tiny`` is a random
adapter for the built-in ``tiny`` model, for tests and demos.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError
from dreamreel.models.safety import SAFETENSORS, check_weights_file, component_folder_config, safetensors_keys

TINY_ADAPTER = "tiny"
TINY_ADAPTER_SEED = 2024
TINY_CONTEXT = 8  # frames the tiny adapter is "trained" for; its position table holds 32
# the UNet's per-level widths for each family a real adapter may be for
FAMILY_BLOCKS = {"sd1": (320, 640, 1280, 1280), "sd2": (320, 640, 1280, 1280), "sdxl": (320, 640, 1280)}
TINY_BLOCKS = (32, 64, 64)


TINY_XL_BLOCKS = (32, 64)


def tiny_adapter_config(model: str = "tiny") -> dict[str, Any]:
    """The tiny adapter of ``tiny``, or of ``tiny-xl`` (two levels and no motion mid block, as SDXL's)."""
    xl = model == "tiny-xl"
    return {
        "block_out_channels": TINY_XL_BLOCKS if xl else TINY_BLOCKS,
        "motion_layers_per_block": 1,
        "motion_num_attention_heads": 4,
        "motion_norm_num_groups": 8,
        "motion_max_seq_length": 32,
        "use_motion_mid_block": not xl,
    }


def build_tiny_motion_adapter(model: str = "tiny") -> Any:
    """A random MotionAdapter that fits ``tiny``'s (or ``tiny-xl``'s) UNet. Its output projections are
    random, not zero (a fresh adapter is zero-initialised and would change nothing), so tests see the
    frames interact."""
    import torch
    from diffusers import MotionAdapter

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_ADAPTER_SEED)
        adapter: Any = MotionAdapter(**tiny_adapter_config(model))
        for name, parameter in adapter.named_parameters():
            if "proj_out" in name:
                parameter.data.normal_(0, 0.2)
    return adapter.eval().requires_grad_(False)


def adapter_blocks(spec: str, model: str = "tiny") -> tuple[int, ...] | None:
    """The UNet level widths an adapter is for (config or header); refuses a missing or pickle file.
    ``tiny`` is built for the built-in model in use (tiny's own otherwise)."""
    if spec == TINY_ADAPTER:
        return TINY_XL_BLOCKS if model == "tiny-xl" else TINY_BLOCKS
    path = Path(spec).expanduser()
    if path.is_dir():
        data = component_folder_config(path, spec, "MotionAdapter", "motion adapter")
        return tuple(data.get("block_out_channels", FAMILY_BLOCKS["sd1"]))
    if check_weights_file(spec, what="motion adapter file") != SAFETENSORS:
        raise DreamreelError(f"motion adapter {spec!r} is a pickle: convert it to .safetensors")
    return _blocks_from_shapes(safetensors_keys(path), spec)


def _blocks_from_shapes(shapes: dict[str, list[int]], name: str) -> tuple[int, ...]:
    widths: dict[int, int] = {}
    for key, shape in shapes.items():
        found = re.match(r"down_blocks\.(\d+)\.motion_modules\.0\.(?:temporal_transformer\.)?proj_in\.weight$", key)
        if found:
            widths[int(found.group(1))] = int(shape[0])
    if not widths:
        raise DreamreelError(f"{name!r} is not an AnimateDiff motion module (no down_blocks.N.motion_modules)")
    return tuple(widths[i] for i in sorted(widths))


def model_blocks(model: str) -> tuple[int, ...] | None:
    from dreamreel.models.loading import model_family

    if model == "tiny":
        return TINY_BLOCKS
    if model == "tiny-xl":
        return TINY_XL_BLOCKS
    family = model_family(model)
    return FAMILY_BLOCKS.get(family) if family else None


def check_motion_adapter(spec: str, model: str) -> None:
    """Refuse an adapter made for another UNet architecture (an SDXL adapter on SD 1.5...), from configs."""
    blocks = adapter_blocks(spec, model)
    wanted = model_blocks(model)
    if blocks is not None and wanted is not None and tuple(blocks) != tuple(wanted):
        kind = "SDXL" if len(blocks) == 3 and blocks[0] == 320 else f"a UNet with levels {list(blocks)}"
        raise DreamreelError(
            f"motion adapter {spec!r} is for {kind}; model {model!r} has UNet levels {list(wanted)}"
        )


def load_motion_adapter(spec: str, model: str = "tiny") -> Any:
    """The MotionAdapter of a spec (already checked) for ``model``, fp32 on the CPU."""
    from diffusers import MotionAdapter

    if spec == TINY_ADAPTER:
        return build_tiny_motion_adapter(model)
    path = Path(spec).expanduser()
    if path.is_dir():
        try:
            pretrained: Any = MotionAdapter.from_pretrained(str(path), local_files_only=True, use_safetensors=True)
        except (OSError, ValueError) as exc:
            raise DreamreelError(f"could not load motion adapter {spec!r}: {exc}") from exc
        return pretrained.eval().requires_grad_(False)
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

    from dreamreel.models.safety import load_weights

    state = convert_animatediff_checkpoint_to_diffusers(load_weights(path))
    shapes = {k: list(v.shape) for k, v in state.items()}
    blocks = _blocks_from_shapes(shapes, spec)
    per_level = len({k.split(".motion_modules.")[1].split(".")[0] for k in state if k.startswith("down_blocks.0.")})
    adapter: Any = MotionAdapter(
        block_out_channels=blocks,
        motion_layers_per_block=per_level,
        use_motion_mid_block=any(k.startswith("mid_block.") for k in state),
    )
    missing, unexpected = adapter.load_state_dict(state, strict=False)
    missing = [k for k in missing if "pos_embed" not in k]
    if missing or unexpected:
        raise DreamreelError(
            f"motion adapter {spec!r} does not load: {len(missing)} weights missing, {len(unexpected)} unexpected"
        )
    return adapter.eval().requires_grad_(False)


def is_motion_lora(path: Path) -> bool:
    """Does a LoRA file (already vetted) change motion modules (AnimateDiff's motion LoRAs)?"""
    if path.suffix.lower() == ".safetensors":
        return any("motion_modules" in key for key in safetensors_keys(path))
    from dreamreel.models.safety import load_weights

    return any("motion_modules" in key for key in load_weights(path, allow_unsafe_pickle=True))
