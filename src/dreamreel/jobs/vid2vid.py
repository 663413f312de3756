"""Video to video: the guide's phone video, split into frames, each re-dreamed with one prompt, joined.

Reading top to bottom: plan the source's frames and timing (before any model loads), then per
frame: resize the upright source frame, optionally blend in the previous output (``--feedback``),
img2img it with the frame's seed and values (``--batch`` frames per UNet call when they are
independent and share steps, strength and guidance), optionally pull its colours toward the source
frame or the first output (``--color-match``). The video keeps the source's exact frame times and
its sound, copied untouched. strength, guidance, steps, color_strength and feedback may be keyframe
schedules over the selected frames (see ``Vid2VidRecipe.values_at``).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError
from dreamreel.jobs.runner import VideoJob, VideoPlan

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from dreamreel.jobs.still_pictures import RenderedImage
    from dreamreel.models.loading import LoadedModel
    from dreamreel.recipes.base import Vid2VidRecipe
    from dreamreel.render.renderer import StepCallback
    from dreamreel.runs.store import RunStore


def plan(recipe: Vid2VidRecipe) -> VideoPlan:
    """The selected source frames' times; the source's exact timing unless ``--fps`` retimes them."""
    from dreamreel.media.video import AudioSource, frame_times, probe_video

    info = probe_video(recipe.video)
    times = frame_times(recipe.video, start=recipe.start, end=recipe.end, every=recipe.every)
    if not times:
        raise DreamreelError(f"{recipe.video!r} has no frames between the chosen --start and --end")
    if recipe.fps is not None:  # retimed: frame i at i / fps, and the source's sound no longer fits
        return VideoPlan(frames=len(times), fps=recipe.frame_rate())
    first = times[0]
    step = recipe.every / info.rate  # how long the last frame shows: one (selected) frame's time
    audio = None
    if info.audio_codec and not recipe.mute and not recipe.output.lower().endswith(".gif"):  # GIF: no sound
        audio = AudioSource(recipe.video, start=first, copy=True)
    return VideoPlan(
        frames=len(times),
        fps=info.rate / recipe.every,
        times=[t - first for t in times],
        end_time=times[-1] - first + step,
        time_base=info.time_base,
        audio=audio,
    )


def frames(
    model: LoadedModel,
    recipe: Vid2VidRecipe,
    plan: VideoPlan,
    *,
    start: int = 0,
    store: RunStore | None = None,
    on_step: StepCallback | None = None,
) -> Iterator[RenderedImage]:
    """Frames ``start, ...``; earlier finished frames (for --feedback and --color-match first) are
    read back from ``store``: PNGs are lossless, so a resumed run continues exactly."""
    from dreamreel.media.pictures import pil_to_tensor, resize_image, tensor_to_pil
    from dreamreel.jobs.img2img import target_size
    from dreamreel.render.renderer import Renderer
    from dreamreel.media.video import probe_video, read_frames

    info = probe_video(recipe.video)
    width, height = target_size(
        model, SimpleNamespace(size=(info.width, info.height)), recipe.width, recipe.height
    )  # type: ignore[arg-type]
    renderer = Renderer(model, recipe.scheduler)
    conditioning = renderer.encode(recipe.prompt, recipe.negative)
    values = recipe.all_values(plan.frames)  # every frame's strength, guidance, steps, ... (schedules)
    # Batches are fixed from frame 0, so a resume renders the batch holding frame ``start`` whole
    # (its earlier frames again, identical, not yielded): every frame comes out of its first batch.
    batches = _batches(values, recipe.batch, start)
    first = batches[0][0] if batches else start
    first_output = previous = None
    if first > 0 and store is not None:
        if recipe.color_match == "first":
            first_output = _array(store.read_frame(0))
        if any(v["feedback"] > 0 for v in values):  # then --batch is 1 (checked): first == start
            previous = _array(store.read_frame(first - 1))
    source = read_frames(recipe.video, start=recipe.start, end=recipe.end, every=recipe.every, skip=first)
    numbered = enumerate(source, first)
    for batch in batches:
        chunk = [next(numbered) for _ in batch]
        v = values[chunk[0][0]]  # the same steps, strength and guidance for the whole chunk
        sources = [_array(resize_image(f.image.convert("RGB"), width, height, "crop")) for _, f in chunk]
        # with --batch > 1 feedback is 0 throughout (checked): no frame needs the one before it in a chunk
        inputs = [_fed(s, previous, values[i]["feedback"]) for (i, _), s in zip(chunk, sources, strict=True)]
        seeds = [recipe.frame_seed(i) for i, _ in chunk]
        pictures = renderer.generate(
            [conditioning] * len(chunk),
            seeds,
            steps=v["steps"],
            guidance=v["guidance"],
            width=width,
            height=height,
            init_images=pil_to_tensor([_image(a) for a in inputs]),
            strength=v["strength"],
            on_step=on_step,
        )
        for (index, frame), source_array, picture, seed in zip(
            chunk, sources, tensor_to_pil(pictures), seeds, strict=True
        ):
            output = _array(picture)
            pull = values[index]["color_strength"]
            if recipe.color_match == "source":
                output = _match(output, source_array, pull)
            elif recipe.color_match == "first":
                if first_output is None:
                    first_output = output  # frame 0 is the reference, unchanged
                else:
                    output = _match(output, first_output, pull)
            previous = output
            if index >= start:
                yield _rendered(
                    model,
                    renderer,
                    recipe,
                    index,
                    seed,
                    _image(output),
                    frame.time,
                    width,
                    height,
                    values[index],
                )


def _render_key(values: dict[str, Any]) -> tuple[Any, ...]:
    """Frames may share a UNet call only when everything the denoising loop takes is equal."""
    return values["steps"], values["strength"], values["guidance"]


def _rendered(
    model: LoadedModel,
    renderer: Any,
    recipe: Vid2VidRecipe,
    index: int,
    seed: int,
    image: Image.Image,
    source_time: Fraction,
    width: int,
    height: int,
    values: dict[str, Any],
) -> RenderedImage:
    from dreamreel.jobs.still_pictures import RenderedImage, infotext
    from dreamreel.render.renderer import effective_steps

    parameters = infotext(
        model, renderer, prompt=recipe.prompt, negative=recipe.negative, steps=values["steps"],
        guidance=values["guidance"], seed=seed, width=width, height=height, strength=values["strength"],
        extra={"Frame": index},
    )  # fmt: skip
    return RenderedImage(
        index=index,
        seed=seed,
        image=image,
        recipe=recipe.replace(width=width, height=height, scheduler=renderer.scheduler_name),
        parameters=parameters,
        facts={
            "model_hash": model.model_hash,
            "effective_steps": effective_steps(values["steps"], values["strength"]),
            "values": {"source_time": round(float(source_time), 6), **values},
        },
    )


def _batches(values: list[dict[str, Any]], size: int, start: int) -> list[list[int]]:
    """Frame indices per UNet call, fixed by position from frame 0: runs of consecutive frames with
    equal steps, strength and guidance, cut every ``size`` frames; only the batches holding a frame
    >= ``start``. A batch's pictures equal single renders only within rounding, so a resume must
    form the same batches as the first run to give the same bits."""
    batches: list[list[int]] = []
    for index, frame_values in enumerate(values):
        last = batches[-1] if batches else None
        if last and len(last) < size and _render_key(values[last[0]]) == _render_key(frame_values):
            last.append(index)
        else:
            batches.append([index])
    return [batch for batch in batches if batch[-1] >= start]


def _array(picture: Image.Image) -> np.ndarray:
    import numpy as np

    return np.asarray(picture.convert("RGB"), dtype=np.uint8)


def _image(array: np.ndarray) -> Image.Image:
    from PIL import Image as PILImage

    return PILImage.fromarray(array)


def _fed(source: np.ndarray, previous: np.ndarray | None, amount: float) -> np.ndarray:
    """A frame's img2img input: the source, with ``amount`` of the previous output blended in."""
    return _blend(source, previous, amount) if previous is not None and amount > 0 else source


def _blend(source: np.ndarray, previous: np.ndarray, amount: float) -> np.ndarray:
    """(1 - amount) of the source frame plus ``amount`` of the previous output, on the 8-bit grid."""
    import numpy as np

    mixed = source.astype(np.float64) * (1 - amount) + previous.astype(np.float64) * amount
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def _match(picture: np.ndarray, reference: np.ndarray, strength: float) -> np.ndarray:
    from dreamreel.media.lab_transfer import color_match

    return color_match(picture, reference, strength)


JOB = VideoJob("vid2vid", plan, frames)
