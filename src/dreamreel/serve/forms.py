"""The page's forms, derived from the job registry and the recipe dataclasses (never a second list
of fields), and the one way a submitted form becomes a recipe: each field's text goes through
``recipes.overrides.text_value``, the same reading ``dreamreel run RECIPE --name value`` uses, so
schedules are parsed by the keyframe language (never evaluated as code) and checked by the recipe.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError
from dreamreel.jobs import JOBS, job_named
from dreamreel.recipes.base import Recipe, VideoRecipe, flag_name
from dreamreel.recipes.overrides import text_value

# One model per server: these recipe fields are the server's, not the form's; ``out``/``output``
# are chosen inside the output folder.
SERVER_FIELDS = ("model", "device", "dtype", "vae", "loras", "allow_unsafe_pickle", "compile", "out", "output")
# Fields that name an input file get an upload button; the file must lie in the output folder.
# (UI facts about fields the recipes declare; the fields themselves come from the dataclasses.)
INPUT_FILES = {"image": "image/*", "video": "video/*", "audio": "audio/*", "start": "image/*"}
NOT_FILES = {"start": ("noise", "txt2img")}  # zoom's start: a word or a picture


def blank_recipe(recipe_cls: type[Recipe]) -> Recipe:
    """The recipe class with its defaults (required text fields empty): what a form starts from."""
    required: dict[str, Any] = {
        f.name: ""
        for f in dataclasses.fields(recipe_cls)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    return recipe_cls(**required)


def _kind(recipe: Recipe, name: str) -> str:
    value = getattr(recipe, name)
    if recipe.is_scheduled(name):
        return "schedule"
    if name == "seeds":
        return "seeds"
    if isinstance(value, bool):
        return "bool"
    if name in INPUT_FILES:
        return "file"
    if isinstance(value, (int, float)):
        return "number"
    return "text"


def _choices(name: str) -> list[str] | None:
    if name == "scheduler":
        from dreamreel.render.samplers import SCHEDULERS

        return list(SCHEDULERS)
    if name == "seed_mode":
        from dreamreel.recipes.seeds import SEED_MODES

        return list(SEED_MODES)
    if name == "resize":
        from dreamreel.media.pictures import RESIZE_MODES

        return list(RESIZE_MODES)
    return None


def _shown(value: Any, name: str = "") -> str:
    """A value as the form's text (how ``text_value`` reads it back: seeds 1,5,9; other lists a|b)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ("," if name == "seeds" else "|").join(map(str, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def form_schema() -> list[dict[str, Any]]:
    """Every job's form: its fields in recipe order, each with its default, kind and flag."""
    forms = []
    for job in JOBS.values():
        recipe = blank_recipe(job.recipe)
        fields = []
        for name in job.recipe.field_names():
            if name in SERVER_FIELDS:
                continue
            field: dict[str, Any] = {
                "name": name,
                "flag": flag_name(name),
                "kind": _kind(recipe, name),
                "default": _shown(getattr(recipe, name), name),
            }
            choices = _choices(name)
            if choices:
                field["choices"] = choices
            if name in INPUT_FILES:
                field["accept"] = INPUT_FILES[name]
            fields.append(field)
        forms.append({"job": job.name, "summary": job.summary, "stills": job.stills, "fields": fields})
    return forms


def recipe_from_form(job_name: str, values: dict[str, Any], *, out: Path, model: str, video_name: str) -> Recipe:
    """The recipe a form asks for: each given field read as the CLI reads its text; files must lie
    in ``out``; the model and where the outputs go are the server's."""
    job = job_named(job_name)
    recipe = blank_recipe(job.recipe)
    names = set(job.recipe.field_names()) - set(SERVER_FIELDS)
    changes: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in names:
            raise DreamreelError(f"{job_name} has no setting {flag_name(name)}")
        text = _shown(raw, name).strip() if not isinstance(raw, str) else raw
        if text == "" and name not in ("prompt", "negative"):
            continue  # an empty field keeps the recipe's default
        if name in INPUT_FILES and text not in NOT_FILES.get(name, ()):
            text = str(input_file(out, text, flag_name(name)))
        changes[name] = text_value(recipe, name, text)
    changes["model"] = model
    if isinstance(recipe, VideoRecipe):
        changes["output"] = str(out / video_name)
    else:
        changes["out"] = str(out)
    return recipe.replace(**changes)


def input_file(out: Path, text: str, flag: str) -> Path:
    """A file a form names: inside the output folder (uploads land there), symlinks resolved."""
    root = out.resolve()
    path = (root / text).resolve()
    if not path.is_relative_to(root):
        raise DreamreelError(f"{flag}: {text!r} is outside the output folder; upload the file instead")
    return path


def field_of_error(job_name: str, message: str) -> str | None:
    """The form field a one-line error names first (its ``--flag``), for showing the error beside it."""
    flags = {flag_name(n): n for n in job_named(job_name).recipe.field_names() if n not in SERVER_FIELDS}
    for match in re.finditer(r"--[a-z][a-z0-9-]*", message):
        if match.group() in flags:
            return flags[match.group()]
    return None
