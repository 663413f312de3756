"""What a job yields for every finished picture, and how a still describes itself in metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dreamreel.metadata import a1111_params, format_parameters, png_info

if TYPE_CHECKING:
    from PIL import Image

    from dreamreel.model import LoadedModel
    from dreamreel.recipe import Recipe
    from dreamreel.render import Renderer


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
