"""Model spec string -> loaded diffusers components on a device and dtype.

Specs understood here: ``tiny`` (built in, see tiny.py) and a local diffusers folder (what
``save_pretrained`` writes). ``check_model_spec`` validates a spec without loading anything, so
the CLI can refuse a bad one before any weights are read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "fp32", "fp16", "bf16")


@dataclass
class LoadedModel:
    """Diffusers components plus where they live. ``components`` feeds ``StableDiffusionPipeline(**...)``."""

    spec: str
    components: dict[str, Any]
    device: torch.device
    dtype: torch.dtype
    _hash: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """Short model name for metadata (A1111 writes the checkpoint's file stem)."""
        return "tiny" if self.spec == "tiny" else Path(self.spec.rstrip("/")).name

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.components["vae"].config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        """The square resolution the model was trained at (512 for SD 1.x, 128 for tiny)."""
        return int(self.components["unet"].config.sample_size) * self.vae_scale_factor

    @property
    def model_hash(self) -> str:
        """First 10 hex digits of a sha256 over the UNet weights (A1111's short-hash length)."""
        if self._hash is None:
            self._hash = weights_hash(self.components["unet"])
        return self._hash


def weights_hash(module: Any) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()[:10]


def check_model_spec(spec: str) -> None:
    """Refuse a spec that cannot possibly load, without touching torch or the weights."""
    if spec == "tiny":
        return
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise DreamreelError(f"model {spec!r} is a file; only diffusers folders and 'tiny' load so far")
        if not (path / "model_index.json").is_file():
            raise DreamreelError(f"model folder {spec!r} has no model_index.json; is it a diffusers folder?")
        return
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise DreamreelError(f"model {spec!r} not found: no such folder, and it is not a Hugging Face id")


def resolve_device(device: str) -> torch.device:
    import torch

    if device not in DEVICES:
        raise DreamreelError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DreamreelError("--device cuda asked for, but torch sees no CUDA GPU")
    if device == "mps" and not torch.backends.mps.is_available():
        raise DreamreelError("--device mps asked for, but torch sees no Apple GPU")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    import torch

    if dtype not in DTYPES:
        raise DreamreelError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]


def load_model(
    spec: str = DEFAULT_MODEL, device: str = "auto", dtype: str = "auto", *, compile: bool = False
) -> LoadedModel:
    """Load a model by spec onto a device: ``tiny``, a diffusers folder, or a cached Hugging Face id.

    ``compile=True`` wraps the UNet in ``torch.compile`` (see ``place_model``).
    """
    check_model_spec(spec)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if spec == "tiny":
        from dreamreel.tiny import build_tiny_components

        components = build_tiny_components()
    else:
        components = _load_diffusers(spec)
    place_model(components, torch_device, torch_dtype, compile=compile)
    return LoadedModel(spec=spec, components=components, device=torch_device, dtype=torch_dtype)


def place_model(
    components: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    *,
    channels_last: bool | None = None,
    compile: bool = False,
) -> None:
    """Move the networks to ``device``/``dtype`` in the memory layout that runs them fastest.

    channels_last (NHWC) weights make every convolution of the UNet and the VAE run NHWC end to
    end (oneDNN on CPUs, tensor cores on CUDA), which saves the layout reorders around each one;
    results agree with the contiguous layout to float rounding (tests/test_speed.py). On the
    project's 2-core Xeon the best-of timings of the SD 1.5 UNet were about 1.25x faster, though
    that machine was too loaded for a firm figure (benchmarks/RESULTS.md). None means: on for CPU
    and CUDA, off elsewhere (MPS, untested).
    ``compile`` wraps the UNet's forward in ``torch.compile`` in place (opt-in: the first call
    compiles for minutes on a CPU; it pays off over long runs at a fixed size, mostly on GPUs).
    """
    import torch

    if channels_last is None:
        channels_last = device.type in ("cpu", "cuda")
    layout = torch.channels_last if channels_last else torch.contiguous_format
    for key in ("unet", "vae", "text_encoder"):
        if components.get(key) is not None:
            components[key].to(device=device, dtype=dtype)
    for key in ("unet", "vae"):
        if components.get(key) is not None:
            components[key].to(memory_format=layout)
    if compile:
        components["unet"].compile(fullgraph=True, dynamic=False)


def _load_diffusers(spec: str) -> dict[str, Any]:
    from diffusers import StableDiffusionPipeline

    is_folder = Path(spec).expanduser().is_dir()
    try:
        pipe = StableDiffusionPipeline.from_pretrained(
            str(Path(spec).expanduser()) if is_folder else spec,
            use_safetensors=True,
            local_files_only=True,
            safety_checker=None,
            requires_safety_checker=False,
        )
    except (OSError, ValueError) as exc:
        if is_folder:
            raise DreamreelError(
                f"could not load diffusers folder {spec!r}: {str(exc).splitlines()[0]}"
            ) from exc
        raise DreamreelError(
            f"model {spec!r} is not in the local Hugging Face cache; fetch it once with "
            f"`huggingface-cli download {spec}` (or run online)"
        ) from exc
    components = dict(pipe.components)
    for module in (components["unet"], components["vae"], components["text_encoder"]):
        module.eval().requires_grad_(False)
    return components
