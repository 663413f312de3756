"""Parameter sweep: one frame per value (the guide's coyote, strength 0.2 -> 1.0), a video and a
captioned contact sheet.

Each frame is exactly the still ``txt2img``/``img2img`` makes alone with that value and seed (the
frame's PNG carries that still's recipe, so ``dreamreel rerender`` works on any frame). The swept
values may come from a keyframe schedule, and the settings not swept may follow schedules over the
frame index: a frame is then the still of that frame's values.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dreamreel.jobs.runner import VideoJob, VideoPlan

if TYPE_CHECKING:
    from dreamreel.jobs.still_pictures import RenderedImage
    from dreamreel.models.loading import LoadedModel
    from dreamreel.recipes.base import SweepRecipe
    from dreamreel.render.renderer import StepCallback
    from dreamreel.runs.store import RunStore


def label(recipe: SweepRecipe, value: float | int) -> str:
    from dreamreel.media.sheet import format_value

    return f"{recipe.param} {format_value(value)}"


def plan(recipe: SweepRecipe) -> VideoPlan:
    from dreamreel.media.sheet import caption_picture

    values = recipe.sweep_values()
    overlay = None
    if recipe.caption:

        def overlay(index, picture):  # type: ignore[no-untyped-def]
            return caption_picture(picture, label(recipe, values[index]))

    return VideoPlan(frames=len(values), fps=recipe.frame_rate(), overlay=overlay)


def frames(
    model: LoadedModel,
    recipe: SweepRecipe,
    plan: VideoPlan,
    *,
    start: int = 0,
    store: RunStore | None = None,
    on_step: StepCallback | None = None,
) -> Iterator[RenderedImage]:
    """Frames ``start, ...``: each the still job's own picture at that frame's value."""
    from dreamreel.media.pictures import load_image
    from dreamreel.jobs.img2img import img2img
    from dreamreel.jobs.txt2img import txt2img
    from dreamreel.recipes.base import Img2ImgRecipe

    values = recipe.sweep_values()
    picture = load_image(recipe.image) if recipe.image else None
    for index in range(start, len(values)):
        still = recipe.frame_recipe(values[index], index, max_f=len(values) - 1)
        if isinstance(still, Img2ImgRecipe):
            item = next(img2img(model, still, on_step, source=picture))
        else:
            item = next(txt2img(model, still, on_step))
        item.index = index
        frame_values = {recipe.param: values[index], **recipe.scheduled_values(still)}
        item.facts = {**item.facts, "values": frame_values}
        yield item


def sheet_path(recipe: SweepRecipe) -> Path:
    """``NAME.mp4`` -> ``NAME.sheet.png`` beside it."""
    return Path(recipe.output).with_suffix(".sheet.png")


def finish(store: RunStore, recipe: SweepRecipe, plan: VideoPlan) -> None:
    """Write the contact sheet: every frame, captioned with its value."""
    from dreamreel.runs.files import png_bytes, write_atomic
    from dreamreel.media.sheet import contact_sheet

    values = recipe.sweep_values()
    thumbs = []
    for index in range(len(values)):
        picture = store.read_frame(index)
        picture.thumbnail((192, 192))
        thumbs.append(picture)
    sheet = contact_sheet(thumbs, [label(recipe, v) for v in values])
    write_atomic(sheet_path(recipe), png_bytes(sheet))


JOB = VideoJob("sweep", plan, frames, finish)
