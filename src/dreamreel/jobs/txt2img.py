"""Text to image: one picture per seed, each reproducible from its own metadata."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from dreamreel.images import tensor_to_pil
from dreamreel.jobs.still import RenderedImage, describe_still
from dreamreel.render import Renderer, StepCallback

if TYPE_CHECKING:
    from dreamreel.model import LoadedModel
    from dreamreel.recipe import Txt2ImgRecipe


def txt2img(
    model: LoadedModel, recipe: Txt2ImgRecipe, on_step: StepCallback | None = None
) -> Iterator[RenderedImage]:
    """Yield one RenderedImage per seed of the recipe, in order (``recipe.batch`` seeds per UNet call)."""
    recipe.validate()
    renderer = Renderer(model, recipe.scheduler)
    width = recipe.width or model.native_size
    height = recipe.height or model.native_size
    conditioning = renderer.encode(recipe.prompt, recipe.negative)
    seeds = recipe.seeds
    # Seeds go through the UNet ``recipe.batch`` at a time; each keeps its own generator, so the
    # pictures equal one-at-a-time rendering.
    for start in range(0, len(seeds), recipe.batch):
        chunk = seeds[start : start + recipe.batch]
        pictures = renderer.generate(
            [conditioning] * len(chunk),
            chunk,
            steps=recipe.steps,
            guidance=recipe.guidance,
            width=width,
            height=height,
            on_step=on_step,
        )
        for offset, (seed, image) in enumerate(zip(chunk, tensor_to_pil(pictures), strict=True)):
            single = recipe.replace(
                seeds=[seed], width=width, height=height, scheduler=renderer.scheduler_name
            )
            yield RenderedImage(
                index=start + offset,
                seed=seed,
                image=image,
                recipe=single,
                parameters=describe_still(model, renderer, single, seed=seed, width=width, height=height),
                facts={"model_hash": model.model_hash},
            )
