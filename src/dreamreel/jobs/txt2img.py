"""Text to image: one picture per seed, each reproducible from its own metadata."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from dreamreel.jobs.still_pictures import RenderedImage, render_seeds
from dreamreel.render.renderer import StepCallback

if TYPE_CHECKING:
    from dreamreel.models.loading import LoadedModel
    from dreamreel.recipes.base import Txt2ImgRecipe


def txt2img(
    model: LoadedModel,
    recipe: Txt2ImgRecipe,
    on_step: StepCallback | None = None,
    positions: Sequence[int] | None = None,
) -> Iterator[RenderedImage]:
    """Yield one RenderedImage per seed of the recipe, in order (``recipe.batch`` seeds per UNet call);
    only the seeds at ``positions`` when given (resuming a seed loop)."""
    recipe.validate()
    width = recipe.width or model.native_size
    height = recipe.height or model.native_size
    return render_seeds(model, recipe, width=width, height=height, on_step=on_step, positions=positions)
