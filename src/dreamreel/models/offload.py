"""``--offload``: SDXL on small GPUs. The networks live in CPU memory and visit the GPU while they work.

- ``model``: one whole component on the GPU at a time (text encoders, then the UNet for all steps,
  then the VAE), as diffusers' ``enable_model_cpu_offload`` does. The Renderer says which component it
  is about to use (``LoadedModel.use``); the one before it goes back to CPU memory. Costs a PCIe copy of
  each component per picture; the UNet stays for every step of it.
- ``sequential``: every layer streamed in just before it runs, through accelerate's ``cpu_offload``
  hooks (diffusers' ``enable_sequential_cpu_offload``): the least GPU memory, much slower.

Pictures are the same either way: only where the weights wait changes, not what is computed. On a CPU
the moves are no-ops, but the same code runs (and ``moves`` records them for the tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError

if TYPE_CHECKING:
    import torch

NETWORKS = ("text_encoder", "text_encoder_2", "unet", "vae")


@dataclass
class Offloader:
    mode: str  # "model" or "sequential"
    device: torch.device  # where the networks compute
    moves: list[str] = field(default_factory=list)  # components moved to ``device``, in order
    _active: str | None = None

    def attach(self, components: dict[str, Any]) -> None:
        """Set the networks up for this mode (they are in CPU memory already)."""
        if self.mode != "sequential":
            return
        try:
            from accelerate import cpu_offload
        except ImportError:
            raise DreamreelError(
                "--offload sequential needs accelerate: pip install 'dreamreel[offload]' (or use --offload model)"
            ) from None
        for name in NETWORKS:
            if components.get(name) is not None:
                cpu_offload(components[name], execution_device=self.device)

    def use(self, components: dict[str, Any], name: str) -> Any:
        """``components[name]``, on the compute device, with the component used before it sent back."""
        module = components[name]
        if self.mode != "model" or self._active == name:
            return module
        import torch

        if self._active is not None and components.get(self._active) is not None:
            components[self._active].to(torch.device("cpu"))
            if self.device.type == "cuda":
                torch.cuda.empty_cache()  # hand the freed blocks to the next component's activations
        module.to(self.device)
        self._active = name
        self.moves.append(name)
        return module
