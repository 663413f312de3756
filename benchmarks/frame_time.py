"""Per-frame time: dreamreel against the plain diffusers loop of the guide's script.

Baseline (what the guide's script did for zoom/vid2vid): ``StableDiffusionImg2ImgPipeline`` called
once per frame, PIL picture in, PIL picture out, fed back. Ours: the same feedback through
dreamreel's Renderer (tensors from frame to frame, prompt encoded once, dreamreel's model
placement). Both use the same SD 1.5 weights (random, see sd15.py), settings and seeds, and run
interleaved in one process (baseline, ours, baseline, ours ...) so that machine load hits both.
txt2img: dreamreel's txt2img job per image against ``StableDiffusionPipeline.__call__`` per image.

    python benchmarks/frame_time.py                 # CPU: 256x256, img2img 10 steps, txt2img 5 steps
    python benchmarks/frame_time.py --device cuda   # GPU: 512x512, 50 steps, fp16
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sd15 import build_sd15, load_average, machine, timed, timed_both

PROMPT = "a hallucinated zoom into a city of glass, intricate, detailed"
NEGATIVE = "blurry"


def start_picture(size: int):
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size]
    array = np.stack([x * 255 // (size - 1), y * 255 // (size - 1), (x + y) * 127 // (size - 1)], axis=-1)
    array[size // 4 : size // 2, size // 3 : 2 * size // 3] = (230, 50, 40)
    return Image.fromarray(array.astype(np.uint8))


def ours_model(base, compile: bool, mode: str | None = None):
    """The same weights placed the dreamreel way (copies: the baseline keeps the stock layout)."""
    from dreamreel.models.loading import LoadedModel, compile_networks, place_model

    components = dict(base.components)
    components["unet"] = copy.deepcopy(base.components["unet"])
    components["vae"] = copy.deepcopy(base.components["vae"])
    place_model(components, base.device, base.dtype)
    if compile:
        compile_networks(components, base.device, mode)
    return LoadedModel(spec=base.spec, components=components, device=base.device, dtype=base.dtype)


def interleaved(
    label: str,
    rounds: int,
    baseline: Callable[[int], object],
    ours: Callable[[int], object],
    device,
    *,
    per: int = 1,
    after_warm_up: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Round i runs ``baseline(i)`` then ``ours(i)``, timed (so machine load hits both alike); round 0
    warms both up (and compiles, with --compile) and is not counted. Seconds are per item when a round
    renders ``per`` items."""
    times: dict[str, list[float]] = {"baseline": [], "ours": [], "baseline_cpu": [], "ours_cpu": []}
    for i in range(rounds + 1):
        tb, cb = timed_both(lambda i=i: baseline(i), device)
        to, co = timed_both(lambda i=i: ours(i), device)
        tb, cb, to, co = tb / per, cb / per, to / per, co / per
        if i == 0 and after_warm_up is not None:
            after_warm_up()
        if i:
            for key, value in zip(times, (tb, to, cb, co), strict=True):
                times[key].append(value)
        print(
            f"  {label} {i}: baseline {tb:.3f} s ({cb:.2f} CPU s), ours {to:.3f} s ({co:.2f} CPU s)"
            + (" (warm-up)" if i == 0 else "")
        )
    return times


def img2img_frames(base, ours, args) -> dict[str, list[float]]:
    """Feedback frames, interleaved: baseline frame i, our frame i."""
    import numpy as np
    from diffusers import StableDiffusionImg2ImgPipeline

    from dreamreel.media.pictures import pil_to_tensor, tensor_to_pil
    from dreamreel.render.renderer import Renderer, quantize, seeded_generator

    pipe = StableDiffusionImg2ImgPipeline(**base.components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    renderer = Renderer(ours)
    size, steps = args.size, args.steps

    state = {"pil": start_picture(size), "frame": pil_to_tensor([start_picture(size)]) / 2 + 0.5}

    def baseline_frame(seed: int) -> None:
        state["pil"] = pipe(
            PROMPT,
            negative_prompt=NEGATIVE,
            image=state["pil"],
            strength=args.strength,
            guidance_scale=args.guidance,
            num_inference_steps=steps,
            generator=seeded_generator(seed),
        ).images[0]

    def our_frame(seed: int) -> None:
        conditioning = renderer.encode(PROMPT, NEGATIVE)  # cached after the first frame
        pictures = renderer.generate(
            [conditioning],
            [seed],
            steps=steps,
            guidance=args.guidance,
            width=size,
            height=size,
            init_images=state["frame"] * 2 - 1,
            strength=args.strength,
        )
        state["frame"] = quantize(pictures)  # exactly what a PNG round trip would give

    def report_difference() -> None:
        ours_pixels = np.asarray(tensor_to_pil(state["frame"])[0]).astype(int)
        diff = np.abs(ours_pixels - np.asarray(state["pil"]).astype(int)).max()
        print(f"  img2img frame 0: largest 8-bit difference ours vs baseline = {diff} levels")

    return interleaved(
        "img2img frame",
        args.frames,
        lambda i: baseline_frame(i + 1),
        lambda i: our_frame(i + 1),
        base.device,
        after_warm_up=report_difference,
    )


def zoom_frames(base, ours, args) -> dict[str, list[float]]:
    """The real zoom job per frame against the pipeline per frame.

    Our side runs the whole zoom frame (warp about the centre, feedback, 8-bit quantize, metadata);
    the baseline only the pipeline call, so the comparison favours the baseline.
    """
    import tempfile

    from diffusers import StableDiffusionImg2ImgPipeline

    from dreamreel.jobs.zoom import ZoomRecipe, zoom
    from dreamreel.render.renderer import seeded_generator

    pipe = StableDiffusionImg2ImgPipeline(**base.components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    recipe = ZoomRecipe(
        prompt=PROMPT,
        negative=NEGATIVE,
        width=args.size,
        height=args.size,
        steps=args.steps,
        strength=args.strength,
        guidance=args.guidance,
        frames=args.frames + 2,  # frame 0 starts from noise; frame 1 warms up
        seed=1,
        seed_mode="iter",
        model="random/sd15",  # only recorded in the metadata; the model object is passed in
        output=str(Path(tempfile.mkdtemp()) / "zoom.mp4"),
    )
    job = zoom(ours, recipe)
    next(job)  # frame 0 (from noise): not a feedback frame
    picture = {"pil": start_picture(args.size)}

    def baseline_frame(seed: int) -> None:
        picture["pil"] = pipe(
            PROMPT,
            negative_prompt=NEGATIVE,
            image=picture["pil"],
            strength=args.strength,
            guidance_scale=args.guidance,
            num_inference_steps=args.steps,
            generator=seeded_generator(seed),
        ).images[0]

    return interleaved(
        "zoom frame", args.frames, lambda i: baseline_frame(i + 2), lambda i: next(job), base.device
    )


def source_video(path: Path, size: int, count: int) -> None:
    """A short synthetic phone video: the start picture drifting sideways, ``count`` frames at 30 fps."""
    import av
    import numpy as np

    picture = np.asarray(start_picture(size))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"crf": "12"})
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(np.roll(picture, 4 * i, axis=1).copy(), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def vid2vid_frames(base, ours, args) -> dict[str, list[float]]:
    """The real vid2vid job (``--batch`` frames per UNet call) against the pipeline once per frame.

    Both get the same decoded source frames; the baseline gets them as ready PIL pictures (the guide
    split the video with ffmpeg first), so its reading and resizing are not timed. Seconds per frame,
    over whole passes through the clip, baseline pass and our pass alternating.
    """
    import tempfile

    from diffusers import StableDiffusionImg2ImgPipeline

    from dreamreel.jobs import vid2vid
    from dreamreel.media.video import read_frames
    from dreamreel.recipes.base import Vid2VidRecipe
    from dreamreel.render.renderer import seeded_generator

    folder = Path(tempfile.mkdtemp())
    count = args.batch * max(1, args.frames // args.batch)  # whole batches: one compiled shape
    source_video(folder / "phone.mp4", args.size, count)
    recipe = Vid2VidRecipe(
        prompt=PROMPT,
        negative=NEGATIVE,
        video=str(folder / "phone.mp4"),
        width=args.size,
        height=args.size,
        steps=args.steps,
        strength=args.strength,
        guidance=args.guidance,
        seed=1,
        batch=args.batch,
        model="random/sd15",  # only recorded in the metadata; the model object is passed in
        output=str(folder / "dream.mp4"),
    )
    recipe.validate()
    plan = vid2vid.plan(recipe)
    pictures = [f.image.convert("RGB") for f in read_frames(recipe.video)]
    pipe = StableDiffusionImg2ImgPipeline(**base.components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)

    def baseline_pass() -> None:
        for i, picture in enumerate(pictures):
            pipe(
                PROMPT,
                negative_prompt=NEGATIVE,
                image=picture,
                strength=args.strength,
                guidance_scale=args.guidance,
                num_inference_steps=args.steps,
                generator=seeded_generator(recipe.frame_seed(i)),
            ).images[0]

    def our_pass() -> None:
        for _ in vid2vid.frames(ours, recipe, plan):
            pass

    label = f"vid2vid per frame (pass of {count} frames, batch {args.batch}), pass"
    return interleaved(
        label, args.passes, lambda i: baseline_pass(), lambda i: our_pass(), base.device, per=count
    )


def txt2img_images(base, ours, args) -> dict[str, list[float]]:
    """One picture per seed, interleaved: the pipeline call, then the next image from our job."""
    from diffusers import StableDiffusionPipeline

    from dreamreel.jobs.txt2img import txt2img
    from dreamreel.recipes.base import Txt2ImgRecipe
    from dreamreel.render.renderer import seeded_generator

    pipe = StableDiffusionPipeline(**base.components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    seeds = list(range(100, 100 + args.images + 1))
    recipe = Txt2ImgRecipe(
        prompt=PROMPT,
        negative=NEGATIVE,
        seeds=seeds,
        steps=args.txt_steps,
        guidance=7.5,
        width=args.size,
        height=args.size,
        model="random/sd15",  # only recorded in the metadata; the model object is passed in
    )
    job = txt2img(ours, recipe)

    def baseline_image(seed: int) -> None:
        pipe(
            PROMPT,
            negative_prompt=NEGATIVE,
            num_inference_steps=args.txt_steps,
            guidance_scale=7.5,
            width=args.size,
            height=args.size,
            generator=seeded_generator(seed),
        ).images[0]

    return interleaved(
        "txt2img image", args.images, lambda i: baseline_image(seeds[i]), lambda i: next(job), base.device
    )


def summary(name: str, times: dict[str, list[float]]) -> str:
    """Median and best of each side. On a shared machine the best (least disturbed) is the steadier."""
    b, o = statistics.median(times["baseline"]), statistics.median(times["ours"])
    bb, ob = min(times["baseline"]), min(times["ours"])
    bc, oc = sum(times["baseline_cpu"]), sum(times["ours_cpu"])
    return (
        f"{name}:\n  median wall: baseline {b:.2f} s, ours {o:.2f} s, ratio ours/baseline {o / b:.3f}\n"
        f"  best wall:   baseline {bb:.2f} s, ours {ob:.2f} s, ratio ours/baseline {ob / bb:.3f}\n"
        f"  CPU seconds (all timed): baseline {bc:.1f}, ours {oc:.1f}, ratio ours/baseline {oc / bc:.3f}"
    )


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="auto: fp32 on CPU, fp16 on GPU")
    parser.add_argument("--size", type=int, help="default 256 on CPU, 512 on GPU")
    parser.add_argument("--steps", type=int, help="img2img steps (default 10 on CPU, 50 on GPU)")
    parser.add_argument("--txt-steps", type=int, help="txt2img steps (default 5 on CPU, 50 on GPU)")
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--guidance", type=float, default=8.5)
    parser.add_argument("--frames", type=int, default=2, help="timed frames after one warm-up frame")
    parser.add_argument("--images", type=int, default=2, help="timed txt2img images after one warm-up")
    parser.add_argument("--batch", type=int, default=4, help="vid2vid frames per UNet call (ours)")
    parser.add_argument("--passes", type=int, default=1, help="timed vid2vid passes after a warm-up pass")
    parser.add_argument("--only", choices=["img2img", "zoom", "vid2vid", "txt2img"], action="append")
    parser.add_argument("--compile", action="store_true", help="torch.compile our UNet and VAE")
    parser.add_argument("--compile-mode", help="torch.compile mode (default: dreamreel's choice per device)")
    args = parser.parse_args()

    from dreamreel.models.loading import resolve_device

    gpu = resolve_device(args.device).type != "cpu"
    args.size = args.size or (512 if gpu else 256)
    args.steps = args.steps or (50 if gpu else 10)
    args.txt_steps = args.txt_steps or (50 if gpu else 5)
    base = build_sd15(args.device, args.dtype)
    ours = ours_model(base, args.compile, args.compile_mode)
    # One-time cost per run, outside the per-image timings: the weights hash written into metadata.
    hash_time = timed(lambda: ours.model_hash, base.device)
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}, {base.device} {base.dtype}")
    print(f"# at start: {load_average()}")
    print(f"# python {' '.join(sys.argv)}")
    lines = []

    def wanted(section: str) -> bool:
        return not args.only or section in args.only

    with torch.inference_mode(False):
        img2img_settings = f"{args.steps} steps, strength {args.strength}, guidance {args.guidance}"
        sections = (
            (
                "img2img",
                img2img_frames,
                f"img2img feedback frame, {img2img_settings} (Renderer-level frame loop)",
            ),
            ("zoom", zoom_frames, f"zoom job frame, {img2img_settings} (real dreamreel zoom job)"),
            (
                "vid2vid",
                vid2vid_frames,
                f"vid2vid frame, {img2img_settings} (real vid2vid job, batch {args.batch})",
            ),
            ("txt2img", txt2img_images, f"txt2img image, {args.txt_steps} steps, guidance 7.5"),
        )
        for name, measure, title in sections:
            if wanted(name):
                lines.append(summary(f"{title}, {args.size}x{args.size}", measure(base, ours, args)))
    print(f"# at end: {load_average()}")
    for line in lines:
        print(line)
    print(f"one-time per run (not in the figures above): model hash for the metadata {hash_time:.2f} s")


if __name__ == "__main__":
    main()
