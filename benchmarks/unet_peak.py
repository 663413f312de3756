"""The UNet's share of the machine's matmul peak, both measured in this run.

FLOPs of one SD 1.5 UNet call (batch 2: guidance) are counted with torch.utils.flop_counter;
the call is timed in dreamreel's placement (channels_last) and in the stock layout; the peak is
the best of several large square matmuls (fp32 on a CPU, bf16 on a GPU: what its tensor cores do).

    python benchmarks/unet_peak.py                 # CPU: 256x256 (32x32 latents)
    python benchmarks/unet_peak.py --device cuda   # GPU: 512x512, fp16 UNet vs bf16 matmul peak
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sd15 import build_sd15, machine, timed


def matmul_peak(device, dtype, n: int, repeats: int) -> float:
    """Best FLOP/s over ``repeats`` n x n matmuls (2 n^3 FLOPs each)."""
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    best = min(timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n**3 / best


def main() -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dreamreel.models.loading import place_model, resolve_device

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="UNet dtype; auto: fp32 on CPU, fp16 on GPU")
    parser.add_argument("--size", type=int, help="picture side (default 256 on CPU, 512 on GPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed UNet calls per layout")
    parser.add_argument("--compile", action="store_true", help="also time a torch.compile'd UNet")
    args = parser.parse_args()

    gpu = resolve_device(args.device).type != "cpu"
    size = args.size or (512 if gpu else 256)
    model = build_sd15(args.device, args.dtype)
    device, dtype = model.device, model.dtype
    stock = model.components["unet"]
    ours = copy.deepcopy(stock)
    components = {
        "unet": ours,
        "vae": model.components["vae"],
        "text_encoder": model.components["text_encoder"],
    }
    place_model(components, device, dtype, compile=args.compile)  # ours: channels_last UNet (and VAE)

    latent = size // 8
    sample = torch.randn(2, 4, latent, latent, device=device, dtype=dtype)
    embeds = torch.randn(2, 77, 768, device=device, dtype=dtype)
    t = torch.tensor(500, device=device)

    def call(unet):
        return lambda: unet(sample, t, encoder_hidden_states=embeds, return_dict=False)[0]

    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            call(stock)()
        flops = counter.get_total_flops()
        call(ours)()  # warm-up (compiles, with --compile)
        times: dict[str, list[float]] = {"stock": [], "ours": []}
        for _ in range(args.repeats):  # interleaved: load hits both layouts alike
            times["stock"].append(timed(call(stock), device))
            times["ours"].append(timed(call(ours), device))
        peak_dtype = torch.bfloat16 if gpu else torch.float32
        peak = matmul_peak(device, peak_dtype, 8192 if gpu else 2048, 10 if gpu else 5)

    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, {device} {dtype}")
    print(f"# python {' '.join(sys.argv)}")
    print(f"UNet call, batch 2, {size}x{size} ({latent}x{latent} latents): {flops / 1e9:.0f} GFLOP")
    print(f"matmul peak ({str(peak_dtype).removeprefix('torch.')}): {peak / 1e9:.1f} GFLOP/s")
    for name in ("stock", "ours"):
        best = min(times[name])
        achieved = flops / best
        print(
            f"UNet {name:5s}: best {best:.3f} s (median {statistics.median(times[name]):.3f} s), "
            f"{achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.1%} of the matmul peak"
            + (f", {1 / best:.2f} it/s" if gpu else "")
        )
    print(f"ours/stock time ratio (best): {min(times['ours']) / min(times['stock']):.3f}")


if __name__ == "__main__":
    main()
