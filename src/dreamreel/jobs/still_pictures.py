"""What a job yields for every finished picture, and how a still describes itself in metadata."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dreamreel.runs.metadata import a1111_params, format_parameters, png_info

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from dreamreel.models.loading import LoadedModel
    from dreamreel.recipes.base import Recipe, Txt2ImgRecipe
    from dreamreel.render.renderer import Renderer, StepCallback


@dataclass
class RenderedImage:
    """One finished picture: its position in the job, its seed, and the recipe that re-makes it alone."""

    index: int
    seed: int
    image: Image.Image
    recipe: Recipe
    parameters: str
    facts: dict[str, Any] = field(default_factory=dict)  # model hash, effective steps, schedule values...

    def png_info(self) -> Any:
        return png_info(self.parameters, self.recipe.to_dict(), self.facts)


def describe_still(
    model: LoadedModel,
    renderer: Renderer,
    recipe: Recipe,
    *,
    seed: int,
    width: int,
    height: int,
    strength: float | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """The A1111 ``parameters`` text of one picture made with the recipe's own settings."""
    return infotext(
        model, renderer, prompt=recipe.prompt, negative=recipe.negative, steps=recipe.steps,
        guidance=recipe.guidance, seed=seed, width=width, height=height, strength=strength, extra=extra,
    )  # fmt: skip


def infotext(
    model: LoadedModel,
    renderer: Renderer,
    *,
    prompt: str,
    negative: str,
    steps: int,
    guidance: float,
    seed: int,
    width: int,
    height: int,
    strength: float | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """The A1111 ``parameters`` text of any picture (video frames pass their per-frame values)."""
    params = a1111_params(
        steps=steps,
        sampler=renderer.scheduler_name,
        guidance=guidance,
        seed=seed,
        width=width,
        height=height,
        model_hash=model.model_hash,
        model=model.name,
        strength=strength,
        extra={**model.infotext_extras(), **(extra or {})},
    )
    return format_parameters(prompt, negative, params)


def render_seeds(
    model: LoadedModel,
    recipe: Txt2ImgRecipe,
    *,
    width: int,
    height: int,
    on_step: StepCallback | None = None,
    init: torch.Tensor | None = None,
    strength: float | None = None,
    positions: Sequence[int] | None = None,
) -> Iterator[RenderedImage]:
    """One RenderedImage per seed of a still recipe (txt2img, or img2img from ``init`` [1, 3, H, W]);
    only those at ``positions`` of ``recipe.seeds`` when given (a resume), index = the position.

    Seeds go through the UNet ``recipe.batch`` at a time, in fixed batches (render.fixed_batches);
    each keeps its own generator, so the pictures equal one-at-a-time rendering within rounding.
    """
    from dreamreel.media.pictures import tensor_to_pil
    from dreamreel.render.renderer import Renderer, effective_steps, fixed_batches

    renderer = Renderer(model, recipe.scheduler)
    conditioning = renderer.encode(recipe.prompt, recipe.negative)
    facts: dict[str, Any] = {"model_hash": model.model_hash}
    if strength is not None:
        facts["effective_steps"] = effective_steps(recipe.steps, strength)
    seeds = recipe.seeds
    wanted = set(range(len(seeds)) if positions is None else positions)
    for batch in fixed_batches(sorted(wanted), len(seeds), recipe.batch):
        chunk = [seeds[i] for i in batch]
        pictures = renderer.generate(
            [conditioning] * len(chunk),
            chunk,
            steps=recipe.steps,
            guidance=recipe.guidance,
            width=width,
            height=height,
            init_images=None if init is None else init.expand(len(chunk), -1, -1, -1),
            strength=strength,
            on_step=on_step,
        )
        for position, seed, image in zip(batch, chunk, tensor_to_pil(pictures), strict=True):
            if position not in wanted:
                continue
            single = recipe.replace(
                seeds=[seed], width=width, height=height, scheduler=renderer.scheduler_name
            )
            parameters = describe_still(
                model, renderer, single, seed=seed, width=width, height=height, strength=strength
            )
            yield RenderedImage(
                index=position,
                seed=seed,
                image=image,
                recipe=single,
                parameters=parameters,
                facts=dict(facts),
            )
