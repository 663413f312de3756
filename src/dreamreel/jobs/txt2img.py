"""Text to image: one picture per seed, each reproducible from its own metadata."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from dreamreel.jobs.protocol import Context, Frame, Job, Plan, Samples
from dreamreel.jobs.still_pictures import render_seeds
from dreamreel.recipes.base import SeedLoopRecipe
from dreamreel.recipes.control import ControlRecipe


@dataclass(frozen=True, kw_only=True)
class Txt2ImgRecipe(SeedLoopRecipe, ControlRecipe):
    """Text to image, one PNG per seed."""

    job: ClassVar[str] = "txt2img"


def plan(recipe: Txt2ImgRecipe) -> Plan:
    return Plan(count=len(recipe.seeds))


def frames(context: Context[Txt2ImgRecipe]) -> Iterator[Frame]:
    from dreamreel.jobs.control import control_pictures
    from dreamreel.render.renderer import Renderer

    model, recipe = context.model, context.recipe
    width, height = recipe.width or model.native_size, recipe.height or model.native_size
    return render_seeds(
        model, Renderer(model, recipe.scheduler), recipe, context.wanted, width=width, height=height,
        on_step=context.on_step, control=control_pictures(model, recipe, None, width, height),
    )  # fmt: skip


def example(samples: Samples) -> Txt2ImgRecipe:
    return Txt2ImgRecipe(prompt="a cat", model="tiny", steps=4, width=32, height=32, seeds=[1, 2, 3, 4],
                         out=str(samples.folder / "txt2img"))  # fmt: skip


JOB = Job(
    example=example, name="txt2img", recipe=Txt2ImgRecipe, plan=plan, frames=frames, stills=True,
    summary="Text to image: one PNG per seed.",
)  # fmt: skip
