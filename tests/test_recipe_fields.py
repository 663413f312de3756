"""Derive, never list: every field of every job's recipe survives the ways a recipe travels.

For each recipe class and each of its fields, a value other than the default must come back
unchanged from a recipe file (TOML), from a ``dreamreel run`` override on the command line, and,
for a sweep, in every frame's own still recipe (what ``rerender FRAME.png`` reads back). A hand-kept
field list once dropped a sweep frame's LoRAs and VAE; a new field now cannot be forgotten.
"""

from __future__ import annotations

import dataclasses

import pytest

from dreamreel.jobs import JOBS, recipe_from_dict, recipe_from_toml
from dreamreel.jobs.sweep import SweepRecipe
from dreamreel.recipes.overrides import parse_overrides
from dreamreel.recipes.serial import recipe_to_toml

RECIPES = sorted({job.recipe for job in JOBS.values()}, key=lambda cls: cls.job)
BASE = {"prompt": "a cat", "model": "tiny"}


def other_value(cls, field: dataclasses.Field):
    """A value of the field's type that is not its default, and how a command line writes it."""
    name = field.name
    if name == "prompt":
        return "a dog", "a dog"
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
    if any(s.name == name for s in cls.SCHEDULED):
        return "0:(0.25), 3:(0.5)", "0:(0.25), 3:(0.5)"
    if isinstance(default, bool):
        return (not default), None  # a flag: --name or --no-name
    if name in ("seeds",):
        return [5, 6], "5,6"
    if name == "values":
        return [0.25, 0.5], "0.25,0.5"
    if isinstance(default, list):
        return ["first", "second"], "first|second"
    if name == "fps":
        return "30000/1001", "30000/1001"
    if name in ("width", "height"):
        return 64, "64"
    if name in ("seed", "frames", "batch", "every", "frames_between", "steps"):
        value = (default or 0) + 3
        return value, str(value)
    if isinstance(default, float) or name in ("start", "end", "sweep_from", "sweep_to", "guidance"):
        if isinstance(default, str):
            return "elsewhere.png", "elsewhere.png"
        return 0.25, "0.25"
    return "something-else", "something-else"


CASES = [(cls, f) for cls in RECIPES for f in dataclasses.fields(cls) if f.init and f.name not in BASE]


@pytest.mark.parametrize(("cls", "field"), CASES, ids=[f"{c.job}.{f.name}" for c, f in CASES])
def test_every_field_survives_files_and_overrides(cls, field, tmp_path):
    value, text = other_value(cls, field)
    base = cls(**BASE)
    recipe = base.replace(**{field.name: value})
    assert getattr(recipe, field.name) == value
    path = tmp_path / "recipe.toml"
    path.write_text(recipe_to_toml(recipe), encoding="utf-8")
    assert recipe_from_toml(path) == recipe
    assert recipe_from_dict(recipe.to_dict()) == recipe
    flag = "--" + field.name.replace("_", "-")
    words = [flag] if value is True else [f"--no-{field.name.replace('_', '-')}"] if value is False else [flag, text]
    assert parse_overrides(base, words) == {field.name: value}


STILL_SHARED = [
    f.name
    for f in dataclasses.fields(SweepRecipe)
    if f.name in JOBS["img2img"].recipe.field_names() and f.name not in ("steps", "guidance", "strength", "seeds")
]


@pytest.mark.parametrize("name", STILL_SHARED)
def test_a_sweep_frame_recipe_keeps_every_shared_setting(name):
    value, _ = other_value(SweepRecipe, next(f for f in dataclasses.fields(SweepRecipe) if f.name == name))
    sweep = SweepRecipe(**BASE, param="guidance", values=[3.0, 5.0], seed=2, image="in.png").replace(**{name: value})
    frames = sweep.frame_recipes()
    assert [f.guidance for f in frames] == [3.0, 5.0]
    assert all(getattr(f, name) == value for f in frames), name
