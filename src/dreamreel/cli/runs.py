"""Commands on recipes and finished work: run a recipe file, resume interrupted work, show what made
a picture, a video or a run folder."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from dreamreel.cli.app import check_cluster_options, cli, render
from dreamreel.cli.options import cluster_options
from dreamreel.errors import DreamreelError

VIDEO_INFO_SUFFIXES = (".mp4", ".webm", ".gif", ".mov", ".mkv", ".m4v", ".avi", ".run")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("recipe_file", type=click.Path(dir_okay=False))
@click.option("--output", "-o", help="Where to write: a video path for video jobs, a folder for stills.")
@cluster_options
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def run(
    ctx: click.Context,
    recipe_file: str,
    output: str | None,
    cluster: str | None,
    workers: int | None,
    quiet: bool,
    debug: bool,
) -> None:
    """Run any job from a recipe TOML; override any setting: --steps 20 --model tiny --reverse.

    Many recipes at once on a cluster: dreamreel run a.toml b.toml c.toml --cluster auto
    """
    from dreamreel.jobs import recipe_from_toml
    from dreamreel.recipes.overrides import parse_overrides

    args = list(ctx.args)
    files = [recipe_file]
    while args and not args[0].startswith("-"):  # more recipe files before the overrides
        files.append(args.pop(0))
    if len(files) > 1 and not cluster:
        raise DreamreelError("several recipe files run together on a cluster: add --cluster auto")
    if len(files) > 1 and output is not None:
        raise DreamreelError("-o names one output: leave it out with several recipe files")
    recipes = []
    for file in files:
        recipe = recipe_from_toml(file)
        changes = parse_overrides(recipe, args)
        if output is not None:
            changes["output" if "output" in recipe.field_names() else "out"] = output
        recipes.append(recipe.from_dict({**recipe.to_dict(), **changes}))
    if len(recipes) == 1:
        render(recipes[0], quiet=quiet, cluster=cluster, workers=workers)
        return
    from dreamreel.cli.progress import ProgressBars
    from dreamreel.cluster import run_on_cluster
    from dreamreel.jobs.runner import prepare

    check_cluster_options(cluster, workers)
    prepared = [prepare(recipe) for recipe in recipes]  # every recipe checked before any worker starts
    done = run_on_cluster(prepared, workers=workers, address=cluster, reporter=ProgressBars(quiet=quiet))
    for job, written in zip(prepared, done.outputs, strict=True):
        if not job.job.stills:
            click.echo(str(written[0]))


@cli.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path())
@click.option("--force", is_flag=True, help="Resume even when the result would not be exact (recorded).")
@cluster_options
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def resume(
    folders: tuple[str, ...], force: bool, cluster: str | None, workers: int | None, quiet: bool, debug: bool
) -> None:
    """Finish interrupted work: a video's run folder (NAME.run or NAME.mp4) or the seed loops of an output folder.

    Frames already safe (file present, sha256 as in the manifest) are kept; rendering continues from the
    first missing one with all state restored, then the video is encoded again. Several folders can be
    given; with --cluster they render together on the cluster's workers.
    """
    from dreamreel.cli.progress import ProgressBars
    from dreamreel.jobs.runner import resume as resume_work

    check_cluster_options(cluster, workers)
    if cluster:
        from dreamreel.cluster import resume_on_cluster

        result = resume_on_cluster(
            list(folders), workers=workers, address=cluster, force=force, reporter=ProgressBars(quiet=quiet)
        )
        outputs = result.outputs
    else:
        outputs = [
            resume_work(folder, force=force, reporter=ProgressBars(quiet=quiet), quiet_load=quiet)
            for folder in folders
        ]
    for written in outputs:
        if len(written) == 1 and written[0].suffix.lower() in (".mp4", ".webm", ".gif"):
            click.echo(str(written[0]))


@cli.command()
@click.argument("path", type=click.Path())
@click.option(
    "--coherence",
    is_flag=True,
    help="Also measure how the video holds together: the flow warping error of consecutive frames "
    "(Lai et al. 2018) under its source's motion (vid2vid) or its own (other films), lower is steadier.",
)
@click.option("--source", help="With --coherence: the source video to follow (default: the recipe's).")
def info(path: str, coherence: bool, source: str | None) -> None:
    """Print what made a PNG (its recipe and A1111 parameters), a video or a run folder."""
    from dreamreel.runs.picture_settings import picture_info_text

    target = Path(path)
    if not target.exists():
        raise DreamreelError(f"{path!r} does not exist")
    if coherence or source:
        print_coherence(target, source)
        return
    if target.is_dir() or target.suffix.lower() in VIDEO_INFO_SUFFIXES:
        print_video_info(target)
        return
    click.echo(picture_info_text(target))


def print_video_info(path: Path) -> None:
    """``dreamreel info`` for a video (its container facts and recipe) or a run folder (its progress
    and recipe). A video without our metadata (a GIF) shows the recipe of the run folder beside it."""
    from dreamreel.jobs import job_of, recipe_from_dict
    from dreamreel.jobs.runner import recipe_of_run
    from dreamreel.recipes.base import run_dir_for
    from dreamreel.recipes.serial import recipe_to_toml
    from dreamreel.runs.store import RunStore

    if path.is_dir():
        store = RunStore.open(path)
        recipe = recipe_from_dict(store.recipe_data())
        done = store.done()
        click.echo(f"run folder: {path}")
        total = ""
        with contextlib.suppress(DreamreelError):  # e.g. the source moved: the finished count still helps
            total = f" of {job_of(recipe).plan(recipe.resolved()).count}"
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
    recipe_data: Any = stored.get("recipe") if isinstance(stored, dict) else None
    source = "its metadata"
    if recipe_data is None and RunStore.is_run_folder(run_dir_for(path)):
        recipe_data = recipe_of_run(run_dir_for(path)).to_dict()
        source = str(run_dir_for(path))
    if recipe_data is None:
        raise DreamreelError(f"{str(path)!r} carries no dreamreel recipe (not made here, and no run folder)")
    click.echo("")
    click.echo(f"# recipe (from {source})")
    click.echo(recipe_to_toml(recipe_from_dict(recipe_data)).rstrip())


def print_coherence(path: Path, source: str | None) -> None:
    """``info --coherence``: the warping error of a video, streamed (two frames held at a time)."""
    from dreamreel.jobs import recipe_from_dict
    from dreamreel.jobs.vid2vid import Vid2VidRecipe
    from dreamreel.media import flow
    from dreamreel.media.pictures import resize_image
    from dreamreel.media.video import probe_video, read_frames

    if path.is_dir() or path.suffix.lower() not in VIDEO_INFO_SUFFIXES:
        raise DreamreelError(f"--coherence measures a video file, not {str(path)!r}")
    flow.check_available()
    info = probe_video(path)
    selection: dict[str, Any] = {}
    stored = info.recipe()
    recipe = recipe_from_dict(stored["recipe"]) if isinstance(stored, dict) and "recipe" in stored else None
    # a vid2vid film follows its source (not when interpolated: in-between frames have no source frame)
    if source is None and isinstance(recipe, Vid2VidRecipe) and recipe.interpolate_to is None:
        source = recipe.video
        selection = {"start": recipe.start, "end": recipe.end, "every": recipe.every}
    if source is not None:
        probe_video(source)
    outputs = (flow.to_array_of(f.image) for f in read_frames(path))
    size = (info.width, info.height)
    guides = (
        (flow.to_array_of(resize_image(f.image, *size, "crop")) for f in read_frames(source, **selection))
        if source is not None
        else None
    )
    result = flow.coherence(outputs, guides)
    against = f"the motion of {source}" if source is not None else "its own motion"
    click.echo(f"video: {path}")
    click.echo(
        f"warping error: {result.error * 1e3:.3f} x1e-3 (mean squared, over {result.pairs} frame pairs, "
        f"against {against}); visible share: {result.share:.3f}"
    )
    if result.long_term_pairs:
        click.echo(
            f"long-term warping error: {result.long_term * 1e3:.3f} x1e-3 (each frame against the first of its "
            f"{flow.LONG_TERM_SPAN}-frame window, {result.long_term_pairs} pairs: does texture move with the picture?)"
        )
