"""animate and ControlNet on a GPU: time and peak memory against diffusers' own pipelines.

Not yet run: this session had no GPU lent (issue 17's speed/memory figures are still owed). Both sides
use SD 1.5's architecture with seeded random weights (sd15.py), a random SD 1.5-sized MotionAdapter
(diffusers' default config) and a ControlNet grown from the UNet, interleaved in one process.

    python benchmarks/animate_gpu.py --device cuda            # 16 frames, 512 px, 25 steps, fp16
    python benchmarks/animate_gpu.py --device cpu --size 64 --steps 2 --frames 4   # a smoke run
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sd15 import build_sd15, machine, sync, timed


def peak(fn, device) -> tuple[float, float]:
    """Seconds and peak GPU memory (GiB; 0 on a CPU) of ``fn()``."""
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(fn, device)
    gib = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    return seconds, gib


def main() -> None:
    import torch
    from diffusers import AnimateDiffPipeline, MotionAdapter

    from dreamreel.models.controlnet import build_tiny_controlnet
    from dreamreel.render.animate import ClipRenderer, ClipSettings
    from dreamreel.render.renderer import ControlInput, Renderer, seeded_generator

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    dtype = "fp16" if args.device == "cuda" else "fp32"
    model = build_sd15(args.device, dtype)
    device = model.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        adapter = MotionAdapter().to(device, model.dtype)
    model.components["motion_adapter"] = adapter
    size, steps, frames = args.size, args.steps, args.frames
    clips = ClipRenderer(model)
    settings = ClipSettings(frames=frames, steps=steps, guidance=7.5, width=size, height=size, context=16, stride=4)
    cond = clips.renderer.encode("a cat walking")
    pipe = AnimateDiffPipeline(
        vae=model.components["vae"], text_encoder=model.components["text_encoder"],
        tokenizer=model.components["tokenizer"], unet=clips.pipe.unet, motion_adapter=adapter,
        scheduler=copy.deepcopy(clips.renderer.scheduler),
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)

    def ours() -> None:
        latents = clips.denoise(cond, 1, settings)
        for _ in clips.decode_frames(latents, range(frames)):
            pass

    def reference() -> None:
        pipe("a cat walking", num_frames=frames, width=size, height=size, num_inference_steps=steps,
             generator=seeded_generator(1), output_type="pt")  # fmt: skip

    rows = []
    for name, fn in (("AnimateDiffPipeline", reference), ("dreamreel animate", ours)) * 2:
        rows.append((name, *peak(fn, device)))
    sync(device)

    net = build_tiny_controlnet(model.components["unet"]).to(device, model.dtype)
    model.components["controlnet"] = net
    renderer = Renderer(model)
    control = ControlInput(images=[torch.rand(1, 3, size, size)], weights=[1.0])
    settings_one = {"steps": steps, "guidance": 7.5, "width": size, "height": size}
    for name, kwargs in (("txt2img", {}), ("txt2img + ControlNet", {"control": control})) * 2:
        rows.append((name, *peak(lambda k=kwargs: renderer.generate([cond], [1], **settings_one, **k), device)))
    print(f"## animate / ControlNet ({machine()}, {args.device}, {size} px, {steps} steps, {frames} frames)")
    for name, seconds, gib in rows:
        print(f"{name}: {seconds:.2f} s, peak {gib:.2f} GiB")


if __name__ == "__main__":
    main()
