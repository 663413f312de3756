"""Video commands (sweep, vid2vid) on the ``cli`` group: thin layers that build a recipe and hand it
to the shared video-job runner. Heavy imports stay inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dreamreel.cli.app import (
    RECIPE_FIELDS,
    SCHEDULE_HELP,
    _given,
    _options,
    cli,
    schedule_value,
    scheduled_common_options,
)
from dreamreel.errors import DreamreelError

VIDEO_FIELDS = ("fps", "reverse", "pingpong", "audio")

video_options = _options(
    click.option(
        "--output", "-o", required=True, help="The video: NAME.mp4, .webm or .gif (run folder NAME.run/)."
    ),
    click.option("--fps", help="Frames per second; fractions allowed (30000/1001)."),
    click.option("--reverse", is_flag=True, default=None, help="Play backwards."),
    click.option("--pingpong", is_flag=True, default=None, help="Play forth and back (loops seamlessly)."),
    click.option("--audio", help="Sound file to lay under the video, cut to its length."),
    click.option("--seed", type=int, help="The seed (default: one random seed, printed and recorded)."),
)


def _video_fields(options: dict[str, Any]) -> dict[str, Any]:
    fields = _given(options, RECIPE_FIELDS + VIDEO_FIELDS + ("seed",))
    fields["output"] = options["output"]
    return fields


def _scheduled(options: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Options that take a number or a keyframe schedule: a plain number stays a number."""
    return {n: schedule_value(options[n]) for n in names if options.get(n) is not None}


def _run(job: Any, recipe: Any, *, quiet: bool, seed_given: bool) -> None:
    from dreamreel.jobs.runner import run_video_job

    recipe.validate()  # before any model loads; draws the seed when none was given
    if not seed_given:
        click.echo(f"seed: {recipe.seed}", err=True)
    run_video_job(job, recipe, quiet=quiet, echo=lambda m: click.echo(m, err=True))


@cli.command()
@click.argument("prompt")
@click.option("--param", "-p", required=True, help="What to vary: strength, guidance, steps or seed.")
@click.option("--from", "sweep_from", type=float, help="First value.")
@click.option("--to", "sweep_to", type=float, help="Last value.")
@click.option(
    "--frames", type=int, help="How many frames from --from to --to (both ends included), or of --values."
)
@click.option(
    "--values", help="Explicit values instead: 0.2,0.35,0.8, or a schedule '0:(0.2), 16:(1.0)' with --frames."
)
@click.option("--image", "-i", help="Starting picture: an img2img sweep (without: txt2img).")
@click.option(
    "--strength", help="img2img strength when another parameter is swept (default 0.75); a schedule too."
)
@click.option(
    "--resize", type=click.Choice(["crop", "fit", "stretch"]), help="How the picture meets the size."
)
@click.option("--caption", is_flag=True, default=None, help="Burn each frame's value into the video.")
@video_options
@scheduled_common_options
def sweep(prompt: str, **options: Any) -> None:
    """One frame per value of a parameter: a video, its run folder and a captioned contact sheet.

    dreamreel sweep "photo of a cute friendly animal" --image coyote.png --param strength
    --from 0.2 --to 1.0 --frames 17 -o coyote.mp4
    """
    from dreamreel.jobs.sweep import JOB, sheet_path
    from dreamreel.recipes.base import SweepRecipe, parse_values_option

    if options.get("strength") is not None and not options.get("image"):
        raise DreamreelError("--strength is an img2img setting: give the sweep an --image, or leave it out")
    fields = _video_fields(options)
    fields.update(_given(options, ("sweep_from", "sweep_to", "frames", "image", "resize", "caption")))
    fields.update(_scheduled(options, SweepRecipe.scheduled))
    if options["values"] is not None:
        fields["values"] = parse_values_option(options["values"])
    recipe = SweepRecipe(prompt=prompt, param=options["param"], **fields)
    _run(JOB, recipe, quiet=options["quiet"], seed_given=options["seed"] is not None)
    if not options["quiet"]:
        click.echo(f"contact sheet: {sheet_path(recipe)}", err=True)


@cli.command()
@click.argument("prompt")
@click.option("--video", "-v", required=True, help="The source video.")
@click.option("--strength", help=f"0 keeps each frame, 1 ignores it (default 0.5): {SCHEDULE_HELP}.")
@click.option("--seed-mode", type=click.Choice(["fixed", "iter"]), help="fixed (default, steadier) or iter.")
@click.option("--start", type=float, help="Start this many seconds into the source.")
@click.option("--end", type=float, help="Stop at this many seconds into the source.")
@click.option("--every", type=int, help="Take every Nth frame (default 1).")
@click.option(
    "--color-match",
    type=click.Choice(["none", "source", "first"]),
    help="Pull colours toward each source frame or the first output (LAB; default none).",
)
@click.option("--color-strength", help="How far --color-match pulls, 0 to 1 (default 1); a schedule too.")
@click.option(
    "--feedback", help="Blend the previous output into the next input (0 to 1; default 0); a schedule too."
)
@click.option(
    "--batch",
    type=int,
    help="Frames per UNet call (same output as 1; more memory); frames batch when their steps, "
    "strength and guidance agree.",
)
@click.option("--mute", is_flag=True, default=None, help="Leave the source's sound out.")
@video_options
@scheduled_common_options
def vid2vid(prompt: str, **options: Any) -> None:
    """Every frame of a video through img2img: same timing, same sound, upright.

    dreamreel vid2vid "a watercolour painting" --video phone.mp4 --strength 0.4 -o painted.mp4
    """
    from dreamreel.jobs.vid2vid import JOB
    from dreamreel.recipes.base import Vid2VidRecipe

    fields = _video_fields(options)
    fields.update(_given(options, ("seed_mode", "start", "end", "every", "color_match", "batch", "mute")))
    fields.update(_scheduled(options, Vid2VidRecipe.scheduled))
    recipe = Vid2VidRecipe(prompt=prompt, video=options["video"], **fields)
    _run(JOB, recipe, quiet=options["quiet"], seed_given=options["seed"] is not None)


VIDEO_INFO_SUFFIXES = (".mp4", ".webm", ".gif", ".mov", ".mkv", ".m4v", ".avi", ".run")


def print_video_info(path: Path) -> None:
    """``dreamreel info`` for a video (its container facts and recipe) or a run folder (its progress
    and recipe). A video without our metadata (a GIF) shows the recipe of the run folder beside it."""
    from dreamreel.recipes.base import Recipe, recipe_to_toml, run_dir_for
    from dreamreel.runs.store import RunStore

    if path.is_dir():
        store = RunStore.open(path)
        recipe = store.recipe()
        done = store.done()
        click.echo(f"run folder: {path}")
        total = ""
        try:
            from dreamreel.jobs.runner import video_job

            total = f" of {video_job(recipe.job).plan(recipe).frames}"
        except DreamreelError:
            pass  # e.g. the source video moved: the count of finished frames still helps
        click.echo(f"job: {recipe.job}; {len(done)}{total} frames finished")
        video = getattr(recipe, "output", "")
        if video:
            state = "written" if Path(video).is_file() else "not written yet"
            click.echo(f"video: {video} ({state})")
        click.echo("")
        click.echo(recipe_to_toml(recipe).rstrip())
        return
    from dreamreel.media.sheet import format_value
    from dreamreel.media.video import probe_video

    info = probe_video(path)
    frames = f"{info.frames} frames, " if info.frames else ""
    length = f", {info.duration:.3f} s" if info.duration is not None else ""
    rate = f"{float(info.rate):.6g} fps" + (f" ({info.rate})" if info.rate.denominator != 1 else "")
    click.echo(f"video: {path}")
    click.echo(f"{info.width}x{info.height}, {frames}{rate}{length}, audio: {info.audio_codec or 'none'}")
    if info.rotation:
        click.echo(f"rotation: {format_value(info.rotation)} degrees (shown upright)")
    stored = info.recipe()
    recipe_data = stored.get("recipe") if isinstance(stored, dict) else None
    source = "its metadata"
    if recipe_data is None and (run_dir_for(path) / "recipe.toml").is_file():
        recipe_data = RunStore.open(run_dir_for(path)).recipe().to_dict()
        source = str(run_dir_for(path))
    if recipe_data is None:
        raise DreamreelError(f"{str(path)!r} carries no dreamreel recipe (not made here, and no run folder)")
    click.echo("")
    click.echo(f"# recipe (from {source})")
    click.echo(recipe_to_toml(Recipe.from_dict(recipe_data)).rstrip())
