"""The recipe that made a picture (``dreamreel rerender``): our own ``dreamreel`` recipe chunk, or
A1111's infotext."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError
from dreamreel.jobs import recipe_from_dict
from dreamreel.jobs.img2img import Img2ImgRecipe
from dreamreel.jobs.txt2img import Txt2ImgRecipe
from dreamreel.recipes.base import Recipe
from dreamreel.render.samplers import canonical_scheduler_name
from dreamreel.runs.metadata import parse_parameters, read_png_metadata

log = logging.getLogger("dreamreel")


def recipe_from_picture(path: str | Path) -> Recipe:
    """The recipe that made a picture; prefers our JSON chunk, falls back to A1111's ``parameters``."""
    parameters, recipe = read_png_metadata(path)
    if recipe is not None:
        job = recipe.get("job")
        if job not in (Txt2ImgRecipe.job, Img2ImgRecipe.job):
            # A video frame (zoom, sweep, vid2vid...) needs its run: earlier frames, a source video.
            raise DreamreelError(
                f"{str(path)!r} is a frame of a {job} video; make the film again with "
                "dreamreel run NAME.run/recipe.toml (and any setting to change, e.g. --steps 80)"
            )
        return recipe_from_dict(recipe)
    if parameters:
        return recipe_from_a1111(parse_parameters(parameters))
    raise DreamreelError(
        f"{str(path)!r} carries no generation settings (no 'parameters' or 'dreamreel' chunk)"
    )


def recipe_from_a1111(fields: dict[str, Any]) -> Recipe:
    """A recipe from A1111 infotext fields (the model cannot be known from a name: pass --model)."""
    try:
        settings: dict[str, Any] = {
            "prompt": fields["Prompt"],
            "negative": fields.get("Negative prompt", ""),
            "steps": int(fields["Steps"]),
            "guidance": float(fields["CFG scale"]),
            "seeds": [int(fields["Seed"])],
            "width": int(fields["Size-1"]),
            "height": int(fields["Size-2"]),
        }
    except (KeyError, ValueError) as exc:
        raise DreamreelError(f"the picture's A1111 parameters lack a readable {exc}") from exc
    sampler = fields.get("Sampler")
    if sampler:
        try:
            settings["scheduler"] = canonical_scheduler_name(sampler)
        except DreamreelError:
            log.warning("sampler %r is not known here; using the model's own scheduler", sampler)
    if "Denoising strength" in fields:
        return Img2ImgRecipe(strength=float(fields["Denoising strength"]), **settings)
    return Txt2ImgRecipe(**settings)
