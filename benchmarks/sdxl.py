"""A real-layout SDXL single file with random fp16 weights, written once and rendered offline.

The architecture is SDXL base 1.0's (dreamreel's shipped ``data/configs/sdxl``: 2.6 B-parameter UNet,
CLIP-L and OpenCLIP-G text encoders, the SDXL VAE), the key names the original (SGM) ones a downloaded
``sd_xl_base_1.0.safetensors`` carries (tests/sd_layout.py maps diffusers names to them, independently
of diffusers' converters). Weights are random (seeded, PyTorch-default-like scales), so the picture is
noise, but loading, key conversion, strict loading, both text encoders, the added conditioning and the
VAE all run for real. Too big for CI (6.9 GB), hence a benchmark:

    python benchmarks/sdxl.py --file /tmp/drbench/sdxl-random.safetensors --size 256 --steps 2

The file is written tensor by tensor (header, then each tensor's bytes as it is drawn), so the 6.9 GB
never sit in memory twice; the safetensors library's ``save_file`` would first build every tensor's bytes.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import struct
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this checkout first
sys.path.insert(0, str(ROOT / "tests"))  # sd_layout: diffusers names -> original single-file names


def original_layout() -> dict[str, Any]:
    """Original key -> meta tensor (shape only) of SDXL base, built from the shipped configs."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from sd_layout import clip_to_original, open_clip_to_original, unet_to_original, vae_to_original
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from dreamreel.models.checkpoint import config_dir

    folder = config_dir("sdxl")
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
        text_2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(folder / "text_encoder_2"))
    return {
        **unet_to_original(unet.state_dict(), dict(unet.config)),
        **vae_to_original(vae.state_dict()),
        **clip_to_original(text.state_dict(), "conditioner.embedders.0.transformer."),
        **open_clip_to_original(text_2.state_dict(), "conditioner.embedders.1.model."),
    }


def random_tensor(name: str, shape: tuple[int, ...], generator: Any) -> Any:
    """fp16 values at PyTorch's default initial scales: U(±1/sqrt(fan_in)) for matrices and kernels,
    ones for norm scales, zeros for biases (so activations stay finite through 70 blocks)."""
    import torch

    if len(shape) >= 2:
        bound = 1 / math.sqrt(shape[1] * math.prod(shape[2:]))
        return ((torch.rand(shape, generator=generator) * 2 - 1) * bound).half()
    if name.endswith("bias") or "bias" in name.rsplit(".", 1)[-1]:
        return torch.zeros(shape, dtype=torch.float16)
    return torch.ones(shape, dtype=torch.float16)


def write_random_checkpoint(path: Path, seed: int = 0) -> int:
    """Stream a safetensors file of the layout with random weights; returns the tensor count."""
    import torch

    layout = original_layout()
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, meta in layout.items():
        size = math.prod(meta.shape) * 2
        header[name] = {"dtype": "F16", "shape": list(meta.shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format aligns the data to 8 bytes
    generator = torch.Generator().manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for name, meta in layout.items():
            handle.write(random_tensor(name, tuple(meta.shape), generator).contiguous().numpy().tobytes())
    return len(layout)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=Path("/tmp/drbench/sdxl-random.safetensors"))
    parser.add_argument("--size", type=int, default=256, help="picture side in pixels (1024 is native)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--dtype", default="bf16", help="bf16 halves the CPU memory of fp32 (default bf16)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from sd15 import load_average, machine

    from dreamreel.models.checkpoint import detect_architecture
    from dreamreel.models.loading import load_model
    from dreamreel.models.safety import safetensors_keys
    from dreamreel.render.renderer import Renderer

    print(machine(), "|", load_average())
    if not args.file.is_file():
        start = time.perf_counter()
        count = write_random_checkpoint(args.file)
        print(f"wrote {args.file} ({args.file.stat().st_size / 2**30:.2f} GiB, {count} tensors) "
              f"in {time.perf_counter() - start:.0f} s")  # fmt: skip
    print("detected:", detect_architecture(safetensors_keys(args.file), args.file.name))
    start = time.perf_counter()
    model = load_model(str(args.file), device=args.device, dtype=args.dtype, quiet=True)
    loaded = time.perf_counter() - start
    print(f"loaded in {loaded:.0f} s (peak RSS {peak_rss_gib():.1f} GiB); native size {model.native_size}")
    renderer = Renderer(model)
    start = time.perf_counter()
    conditioning = renderer.encode("a lighthouse on a cliff, (stormy sea:1.2)", "blurry")
    picture = renderer.generate(
        [conditioning], [1], steps=args.steps, guidance=5.0, width=args.size, height=args.size
    )[0]
    rendered = time.perf_counter() - start
    finite = bool(picture.isfinite().all())
    print(
        f"rendered {args.size}x{args.size}, {args.steps} steps of {renderer.scheduler_name}, guidance 5 in "
        f"{rendered:.0f} s; finite {finite}, std {picture.std():.3f}, cond {tuple(conditioning.cond.shape)}, "
        f"pooled {tuple(conditioning.pooled.shape)}; peak RSS {peak_rss_gib():.1f} GiB"
    )  # fmt: skip
    if not finite:
        raise SystemExit("the picture has NaN or inf values")


if __name__ == "__main__":
    main()
