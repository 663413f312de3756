"""Still-picture commands: txt2img, img2img (seed loops into a folder) and rerender."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dreamreel.cli.app import cli, render
from dreamreel.cli.options import cluster_options, control_options, recipe_options, still_options
from dreamreel.errors import DreamreelError


def seeds_given(options: dict[str, Any]) -> list[int] | None:
    """--seed, --seeds or --count (one of them), or None for one random seed."""
    from dreamreel.recipes.seeds import check_seed, parse_seeds, random_seeds

    seed, seed_list, count = options.get("seed"), options.get("seed_list"), options.get("count")
    if sum(x is not None for x in (seed, seed_list, count)) > 1:
        raise DreamreelError("use only one of --seed, --seeds and --count")
    if seed is not None:
        check_seed(seed)
        return [seed]
    if seed_list is not None:
        return parse_seeds(seed_list)
    if count is not None:
        if count < 1:
            raise DreamreelError(f"--count must be at least 1, got {count}")
        return random_seeds(count)
    return None


def _seed_loop(recipe_cls: Any, options: dict[str, Any], **fixed: Any) -> None:
    seeds = seeds_given(options)
    recipe = recipe_options(recipe_cls, options, seeds=seeds or [], out=options["out"] or "outputs", **fixed)
    render(
        recipe,
        quiet=options["quiet"],
        announce=seeds is None or options["count"] is not None,
        cluster=options.get("cluster"),
        workers=options.get("workers"),
    )


@cli.command()
@click.argument("prompt")
@still_options
@cluster_options
@control_options
def txt2img(prompt: str, **options: Any) -> None:
    """Text to image: one PNG per seed."""
    from dreamreel.jobs.txt2img import Txt2ImgRecipe

    _seed_loop(Txt2ImgRecipe, options, prompt=prompt)


@cli.command()
@click.argument("prompt")
@click.option("--image", "-i", required=True, help="Starting picture.")
@click.option("--strength", type=float, help="0 keeps the picture, 1 ignores it (default 0.75).")
@click.option("--resize", type=click.Choice(["crop", "fit", "stretch"]), help="How the picture meets the size.")
@still_options
@cluster_options
@control_options
def img2img(prompt: str, **options: Any) -> None:
    """Image and text to image."""
    from dreamreel.jobs.img2img import Img2ImgRecipe

    _seed_loop(Img2ImgRecipe, options, prompt=prompt)


@cli.command()
@click.argument("picture", type=click.Path(dir_okay=False))
@click.option("--prompt", help="Replace the prompt.")
@click.option("--image", "-i", help="Replace the starting picture (img2img pictures).")
@click.option("--strength", type=float, help="Replace the strength (img2img pictures).")
@still_options
def rerender(picture: str, **options: Any) -> None:
    """Render a picture again from its own metadata, with any setting overridden (e.g. --steps 350)."""
    from dreamreel.jobs.from_pictures import recipe_from_picture
    from dreamreel.jobs.img2img import Img2ImgRecipe

    recipe = recipe_from_picture(picture)
    img2img_only = [n for n in ("image", "strength") if options.get(n) is not None]
    if img2img_only and not isinstance(recipe, Img2ImgRecipe):
        raise DreamreelError(f"--{'/--'.join(img2img_only)} only apply to img2img pictures; {picture!r} is txt2img")
    changes = {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in options.items()
        if name in recipe.field_names() and value is not None and value is not False and value != ()
    }
    seeds = seeds_given(options)
    if seeds is not None:
        changes["seeds"] = seeds
    changes["out"] = options["out"] or str(Path(picture).parent)
    render(recipe.replace(**changes), quiet=options["quiet"])
