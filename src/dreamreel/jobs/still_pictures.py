"""What every job's pictures share: the A1111 infotext of a picture, the size img2img renders at, and
the seed-batch loop of seed loops (txt2img, img2img) and sweeps."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dreamreel.jobs.protocol import Frame
from dreamreel.media.pictures import fit_size, tensor_to_pil
from dreamreel.runs.metadata import a1111_params, format_parameters

if TYPE_CHECKING:
    import torch

    from dreamreel.models.loading import LoadedModel
    from dreamreel.recipes.base import SeedLoopRecipe
    from dreamreel.render.renderer import Renderer, StepCallback


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


def target_size(
    model: LoadedModel, source_size: tuple[int, int], width: int | None, height: int | None
) -> tuple[int, int]:
    """The size img2img renders a picture of ``source_size`` at. Both sizes given: those. One given:
    the other follows the picture's aspect. None: the picture's aspect at about the model's native
    pixel count. Always multiples of 8."""
    if width and height:
        return width, height
    src_w, src_h = source_size
    if width:
        return width, max(8, round(width * src_h / src_w / 8) * 8)
    if height:
        return max(8, round(height * src_w / src_h / 8) * 8), height
    return fit_size(src_w, src_h, side=model.native_size)


def render_seeds(
    model: LoadedModel,
    renderer: Renderer,
    recipe: SeedLoopRecipe,
    wanted: Sequence[int],
    *,
    width: int,
    height: int,
    on_step: StepCallback | None = None,
    init: torch.Tensor | None = None,
    strength: float | None = None,
    control: list[torch.Tensor] | None = None,
) -> Iterator[Frame]:
    """One Frame per wanted position of ``recipe.seeds`` (txt2img, or img2img from ``init``
    [1, 3, H, W] in [0, 1]); ``frame.index`` is the position.

    Seeds go through the UNet ``recipe.batch`` at a time, in fixed batches (render.fixed_batches);
    each keeps its own generator, so the pictures equal one-at-a-time rendering within rounding.
    """
    from dreamreel.jobs.control import control_infotext, control_input
    from dreamreel.render.renderer import effective_steps, fixed_batches

    extra = control_infotext(model, recipe) if control is not None else None  # type: ignore[arg-type]
    conditioning = renderer.encode(recipe.prompt, recipe.negative)
    facts: dict[str, Any] = {"model_hash": model.model_hash}
    if strength is not None:
        facts["effective_steps"] = effective_steps(recipe.steps, strength)
    seeds = recipe.seeds
    keep = set(wanted)
    for batch in fixed_batches(sorted(keep), len(seeds), recipe.batch):
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
            control=control_input(model, recipe, control, len(chunk)),  # type: ignore[arg-type]
        )
        for position, seed, image in zip(batch, chunk, tensor_to_pil(pictures), strict=True):
            if position not in keep:
                continue
            single = recipe.replace(seeds=[seed], width=width, height=height, scheduler=renderer.scheduler_name)
            parameters = infotext(
                model, renderer, prompt=single.prompt, negative=single.negative, steps=single.steps,
                guidance=single.guidance, seed=seed, width=width, height=height, strength=strength, extra=extra,
            )  # fmt: skip
            yield Frame(index=position, seed=seed, image=image, recipe=single, parameters=parameters, facts=facts)
