"""The job registry: every job dreamreel runs, listed once. Recipes, ``run``, ``resume`` and ``info``
dispatch on it; a new job is one module plus one line here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError
from dreamreel.jobs import animate, img2img, interpolate, sweep, txt2img, vid2vid, zoom
from dreamreel.jobs.protocol import Job
from dreamreel.recipes.base import Recipe

JOBS: dict[str, Job[Any]] = {
    job.name: job
    for job in (
        txt2img.JOB,
        img2img.JOB,
        sweep.JOB,
        vid2vid.JOB,
        zoom.JOB,
        interpolate.JOB,
        animate.JOB,
    )
}


def job_named(name: str) -> Job[Any]:
    try:
        return JOBS[name]
    except KeyError:
        raise DreamreelError(f"unknown job {name!r}; choose one of {', '.join(JOBS)}") from None


def job_of(recipe: Recipe) -> Job[Any]:
    return job_named(recipe.job)


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    """The recipe of ``data["job"]``, refusing unknown keys by name."""
    job = data.get("job")
    if not isinstance(job, str) or not job:
        raise DreamreelError(f"a recipe names its job (job = one of {', '.join(JOBS)})")
    return job_named(job).recipe.from_dict(data)


def recipe_from_toml(path: str | Path) -> Recipe:
    from dreamreel.recipes.serial import read_toml

    return recipe_from_dict(read_toml(path))
