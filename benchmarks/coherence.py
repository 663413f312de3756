"""How well vid2vid films hold together: the flow warping error (Lai et al., ECCV 2018) per method.

Synthetic source videos (no files needed): a panning texture crossed by a faster red disk (occlusions),
and a texture zooming in. Each is put through vid2vid with: no feedback, the unwarped ``--feedback``
(0.3, 0.7), ``--flow`` feedback (0.3, 0.7), ``--flow-noise``, both, and ``--cadence 3`` (with and
without ``--flow-noise``). The figure is the warping error of consecutive output frames under the
*source's* motion, over the pixels visible in both (``media.flow.coherence``, what
``dreamreel info --coherence`` prints), x1e-3; lower holds together better.

Two "models":

- a weightless stand-in stylizer in place of ``Renderer.generate``: the output is the img2img input
  with its contrast raised, plus the texture of the starting latent noise (upsampled) scaled by the
  strength. A trained model does both things the methods act on: its picture follows the input (so
  feedback and its warping show), and its invented detail comes from the starting noise (so a fixed
  seed's noise, fixed to the screen, shows as texture that does not move with the picture).
- ``tiny``, the random-weight miniature SD the tests use. Its figures are reported but say little:
  random weights hide coherence. An untrained VAE does not give back the picture it encoded and an
  untrained UNet does not denoise toward anything, so the output barely depends on where things are
  in the input: moving the input (``--flow``) or the noise (``--flow-noise``) moves nothing
  recognisable, and every method measures the generator's own flicker.

Two figures per method (``media.flow.Coherence``): the short-term error of consecutive frames and the
long-term error of each frame against the first of its window (Lai et al. report both). Why both: at
motions of a fraction of a latent cell per frame the short-term error cannot rank moving noise below
fixed noise, whatever the transport, as long as the noise stays white Gaussian. A latent cell is 8 px;
when the picture moves d of a cell per frame (3 px: d = 3/8), the carried cell sums share 1 - d of
their values with the cell they came from, so every frame re-draws a share d of each cell's noise (a
change of order 2d(1 - d) at a fixed point of the picture), while noise fixed to the screen changes at a
point of the picture only by its own slope over d cells, small under the smooth upsampling of the
stand-in (and of a VAE decoder). Jumping by whole cells now and then instead costs the same on
average. What moving noise is for shows in the long-term error: fixed noise sits at a different place
of the picture in every frame of the window, carried noise is the same noise wherever the motion has
added up to whole cells and never drifts off the picture. At whole-cell motion both errors show it.

    python benchmarks/coherence.py                   # stand-in on both videos, tiny on the pan
    python benchmarks/coherence.py --frames 8 --no-tiny
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

SIZE = (128, 96)  # DIS needs some room: at 64x48 an 8 px step is missed

METHODS: dict[str, dict[str, Any]] = {
    "none": {},
    "feedback 0.3 (unwarped)": {"feedback": 0.3},
    "feedback 0.7 (unwarped)": {"feedback": 0.7},
    "--flow, feedback 0.3": {"flow": True, "feedback": 0.3},
    "--flow, feedback 0.7": {"flow": True, "feedback": 0.7},
    "--flow-noise": {"flow_noise": True},
    "--flow-noise --flow 0.3": {"flow_noise": True, "flow": True, "feedback": 0.3},
    "--cadence 3": {"cadence": 3},
    "--cadence 3 --flow-noise": {"cadence": 3, "flow_noise": True},
}


def texture(seed: int, height: int, width: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), 3)
    return (big - big.min()) / (big.max() - big.min())


def pan_with_disk(k: int) -> np.ndarray:
    """A texture panning left 3 px a frame, a red disk crossing right 6 px a frame."""
    width, height = SIZE
    picture = texture(1, height, width + 200)[:, 3 * k : 3 * k + width].copy()
    ys, xs = np.mgrid[0:height, 0:width]
    picture[(xs - (20 + 6 * k)) ** 2 + (ys - height // 2) ** 2 < 14**2] = (0.9, 0.15, 0.1)
    return picture


def pan_whole_cells(k: int) -> np.ndarray:
    """A texture panning left 8 px a frame: exactly one latent cell, where moved noise stays white."""
    width, height = SIZE
    return texture(3, height, width + 400)[:, 8 * k : 8 * k + width].copy()


def pan_whole_cells_with_disk(k: int) -> np.ndarray:
    """The one-cell pan crossed by the red disk moving right 8 px a frame (occlusions and disocclusions)."""
    width, height = SIZE
    picture = pan_whole_cells(k)
    ys, xs = np.mgrid[0:height, 0:width]
    picture[(xs - (20 + 8 * k)) ** 2 + (ys - height // 2) ** 2 < 14**2] = (0.9, 0.15, 0.1)
    return picture


def zoom_in(k: int) -> np.ndarray:
    """A texture zooming in 3 % a frame about the centre."""
    import cv2

    width, height = SIZE
    base = texture(2, height, width)
    scale = 1.03**k
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0, scale)
    return cv2.warpAffine(base, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


VIDEOS = {
    "pan + occluding disk": pan_with_disk,
    "zoom": zoom_in,
    "pan, 8 px (one latent cell)": pan_whole_cells,
    "pan, 8 px, + occluding disk": pan_whole_cells_with_disk,
}


def write_video(path: Path, make: Any, frames: int) -> Path:
    """Lossless RGB H.264 at 12 fps, so the source is exactly what was drawn."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=Fraction(12))
        stream.width, stream.height, stream.pix_fmt = *SIZE, "rgb24"
        stream.options = {"qp": "0"}
        for k in range(frames):
            array = np.clip(np.rint(make(k) * 255), 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def stand_in_generate(self: Any, conditioning: Any, seeds: Any, **settings: Any) -> Any:
    """The weightless stylizer (see the module docstring), with Renderer.generate's signature."""
    import torch

    from dreamreel.render.renderer import seeded_generator

    picture = settings["init_images"]
    height, width = picture.shape[-2:]
    noise = settings.get("start_noise")
    if noise is None:  # what the renderer would draw: the seed's latent noise
        shape = (1, *self.latent_shape(width, height))
        noise = torch.cat([torch.randn(shape, generator=seeded_generator(s)) for s in seeds])
    detail = torch.nn.functional.interpolate(noise[:, :3].float(), size=(height, width), mode="bilinear")
    styled = 0.5 + 0.5 * torch.tanh(3 * (picture - 0.5))
    return (styled + 0.25 * settings["strength"] * detail).clamp(0, 1)


def measure(video: Path, model: Any, settings: dict[str, Any], frames: int) -> tuple[float, float, float]:
    from dreamreel.jobs.runner import prepare, render_frames
    from dreamreel.jobs.vid2vid import Vid2VidRecipe
    from dreamreel.media import flow
    from dreamreel.media.pictures import resize_image
    from dreamreel.media.video import read_frames

    recipe = Vid2VidRecipe(prompt="an oil painting", model="tiny", video=str(video), seed=7, steps=4,
                           strength=0.5, width=SIZE[0], height=SIZE[1], output="unused.mp4", **settings)  # fmt: skip
    outputs = [flow.to_array_of(f.image) for f in render_frames(prepare(recipe), model)][:frames]
    sources = [flow.to_array_of(resize_image(f.image, *SIZE, "crop")) for f in read_frames(video)][:frames]
    result = flow.coherence(outputs, sources)
    return result.error * 1e3, result.long_term * 1e3, result.share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--no-tiny", action="store_true", help="Only the stand-in.")
    parser.add_argument("--videos", nargs="*", choices=list(VIDEOS), default=list(VIDEOS))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from dreamreel.models.loading import load_model
    from dreamreel.render.renderer import Renderer

    model = load_model("tiny", device="cpu", dtype="fp32")
    real = Renderer.generate
    began = time.time()
    with tempfile.TemporaryDirectory() as folder:
        videos = {name: write_video(Path(folder) / f"{i}.mp4", VIDEOS[name], args.frames) for i, name in
                  enumerate(args.videos)}  # fmt: skip
        runs = [("stand-in", name) for name in videos]
        if not args.no_tiny and "pan + occluding disk" in videos:
            runs.append(("tiny", "pan + occluding disk"))
        print(f"warping error x1e-3: short-term (consecutive frames), long-term (against the window's first "
              f"frame), visible share; {args.frames} frames at {SIZE[0]}x{SIZE[1]}, strength 0.5")  # fmt: skip
        for stylizer, name in runs:
            Renderer.generate = stand_in_generate if stylizer == "stand-in" else real  # type: ignore[method-assign]
            print(f"\n{stylizer}, {name}:{'short-term':>21s} {'long-term':>10s}")
            for method, settings in METHODS.items():
                error, long_term, share = measure(videos[name], model, settings, args.frames)
                print(f"  {method:28s} {error:8.3f} {long_term:10.3f}  ({share:.3f})", flush=True)
    Renderer.generate = real  # type: ignore[method-assign]
    print(f"\n{time.time() - began:.0f} s")


if __name__ == "__main__":
    main()
