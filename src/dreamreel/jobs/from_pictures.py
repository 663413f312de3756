"""The recipe that made a picture (``dreamreel rerender``): our own ``dreamreel`` recipe chunk, or the
settings another tool wrote (A1111 text, EXIF or stealth; ComfyUI, InvokeAI, NovelAI, Fooocus), read by
``runs.picture_settings`` and mapped onto a txt2img or img2img recipe."""

from __future__ import annotations

from pathlib import Path

from dreamreel.errors import DreamreelError
from dreamreel.jobs import recipe_from_dict
from dreamreel.jobs.img2img import Img2ImgRecipe
from dreamreel.jobs.txt2img import Txt2ImgRecipe
from dreamreel.recipes.base import Recipe
from dreamreel.runs.picture_settings import read_picture_settings, settings_to_recipe_fields


def recipe_from_picture(path: str | Path) -> Recipe:
    """The recipe that made a picture; ours exactly, another tool's as far as it maps (the model cannot
    be known from another tool's name for it: the recipe names the default, ``--model`` replaces it)."""
    settings = read_picture_settings(path)
    if settings.recipe is not None:
        job = settings.recipe.get("job")
        if job not in (Txt2ImgRecipe.job, Img2ImgRecipe.job):
            # A video frame (zoom, vid2vid...) needs its run: earlier frames, a source video.
            raise DreamreelError(
                f"{str(path)!r} is a frame of a {job} video; make the film again with "
                "dreamreel run NAME.run/recipe.toml (and any setting to change, e.g. --steps 80)"
            )
        return recipe_from_dict(dict(settings.recipe))
    fields = settings_to_recipe_fields(settings)
    if "strength" in fields:
        return Img2ImgRecipe(**fields)
    return Txt2ImgRecipe(**fields)
