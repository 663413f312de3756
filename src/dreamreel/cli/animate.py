"""``dreamreel animate PROMPT``: text to a clip with an AnimateDiff motion adapter."""

from __future__ import annotations

from typing import Any

import click

from dreamreel.cli.app import cli, render
from dreamreel.cli.options import (
    guidance_option,
    picture_options,
    recipe_options,
    steps_option,
    video_options,
)


@cli.command()
@click.argument("prompt")
@click.option("--prompts", help="Keyframed prompts '0:a cat, 16:a dog' (blended between keys).")
@click.option("--motion-adapter", required=True, help="AnimateDiff motion module: FILE (.safetensors), diffusers FOLDER or tiny.")
@click.option("--frames", type=int, help="Frames in the clip (default 16).")
@click.option("--context", type=int, help="Frames denoised together (default 16); longer clips use FreeNoise windows.")
@click.option("--stride", type=int, help="Frames between FreeNoise window starts (default 4).")
@click.option("--seed", type=int, help="The seed (default: drawn at random and printed).")
@click.option("--video", "-v", help="A source clip: its first --frames frames denoised together (video to video).")
@click.option("--strength", type=float, help="With --video: 0 keeps the source, 1 ignores it (default 0.75).")
@steps_option
@guidance_option
@video_options
@picture_options
def animate(prompt: str, **options: Any) -> None:
    """Text to a clip: the motion adapter denoises all frames together.

    dreamreel animate "a cat walking" --model tiny --motion-adapter tiny --frames 24 -o cat.mp4
    """
    from dreamreel.jobs.animate import AnimateRecipe

    recipe = recipe_options(AnimateRecipe, options, prompt=prompt)
    render(recipe, quiet=options["quiet"], announce=options.get("seed") is None)
