"""Video commands: sweep, vid2vid, zoom, interpolate. Each builds its recipe from the options named
after its fields (options.recipe_options) and hands it to the shared runner."""

from __future__ import annotations

from typing import Any

import click

from dreamreel.cli.app import cli, render
from dreamreel.cli.options import (
    cluster_options,
    control_options,
    film_seed_options,
    guidance_option,
    picture_options,
    recipe_options,
    schedulable,
    scheduled_guidance_option,
    scheduled_steps_option,
    steps_option,
    video_options,
)
from dreamreel.errors import DreamreelError

CADENCE_HELP = (
    "Diffuse every Nth frame only; the frames between are the diffused ones moved by the known motion "
    "and cross-faded (N times fewer model calls; default 1)"
)


def _film(recipe_cls: Any, options: dict[str, Any], **fixed: Any) -> None:
    """A film whose one seed, when not given, is drawn and announced."""
    recipe = recipe_options(recipe_cls, options, **fixed)
    render(recipe, quiet=options["quiet"], announce=options.get("seed") is None, **cluster_of(options))


def cluster_of(options: dict[str, Any]) -> dict[str, Any]:
    return {"cluster": options.get("cluster"), "workers": options.get("workers")}


@cli.command()
@click.argument("prompt")
@click.option("--param", "-p", required=True, help="What to vary: strength, guidance, steps or seed.")
@click.option("--from", "sweep_from", type=float, help="First value.")
@click.option("--to", "sweep_to", type=float, help="Last value.")
@click.option("--frames", type=int, help="How many frames from --from to --to (both ends included), or of --values.")
@click.option("--values", help="Explicit values instead: 0.2,0.35,0.8, or a schedule '0:(0.2), 16:(1.0)' with --frames.")
@click.option("--image", "-i", help="Starting picture: an img2img sweep (without: txt2img).")
@schedulable("--strength", "img2img strength when another parameter is swept (default 0.75)")
@click.option("--resize", type=click.Choice(["crop", "fit", "stretch"]), help="How the picture meets the size.")
@click.option("--caption", is_flag=True, default=None, help="Burn each frame's value into the video.")
@click.option("--seed", type=int, help="The seed (default: one random seed, printed and recorded).")
@scheduled_steps_option
@scheduled_guidance_option
@video_options
@picture_options
@cluster_options
def sweep(prompt: str, **options: Any) -> None:
    """One frame per value of a parameter: a video, its run folder and a captioned contact sheet.

    dreamreel sweep "photo of a cute friendly animal" --image coyote.png --param strength
    --from 0.2 --to 1.0 --frames 17 -o coyote.mp4
    """
    from dreamreel.jobs.sweep import SweepRecipe, parse_values_option, sheet_path

    if options.get("strength") is not None and not options.get("image"):
        raise DreamreelError("--strength is an img2img setting: give the sweep an --image, or leave it out")
    values = options.pop("values")
    fixed: dict[str, Any] = {"prompt": prompt}
    if values is not None:
        fixed["values"] = parse_values_option(values)
    _film(SweepRecipe, options, **fixed)
    if not options["quiet"]:
        click.echo(f"contact sheet: {sheet_path(SweepRecipe(prompt=prompt, output=options['output']))}", err=True)


@cli.command()
@click.argument("prompt")
@click.option("--video", "-v", required=True, help="The source video.")
@schedulable("--strength", "0 keeps each frame, 1 ignores it (default 0.5)")
@click.option("--start", type=float, help="Start this many seconds into the source.")
@click.option("--end", type=float, help="Stop at this many seconds into the source.")
@click.option("--every", type=int, help="Take every Nth frame (default 1).")
@click.option(
    "--color-match",
    type=click.Choice(["none", "source", "first"]),
    help="Pull colours toward each source frame or the first output (LAB; default none).",
)
@schedulable("--color-strength", "How far --color-match pulls, 0 to 1 (default 1)")
@schedulable("--feedback", "Blend the previous output into the next input, 0 to 1 (default 0)")
@click.option(
    "--batch",
    type=int,
    help="Frames per UNet call (same output as 1; more memory); frames batch when their steps, "
    "strength and guidance agree.",
)
@click.option("--mute", is_flag=True, default=None, help="Leave the source's sound out.")
@click.option(
    "--flow",
    is_flag=True,
    default=None,
    help="Warp the previous output along the source's optical flow before --feedback blends it in, only "
    "where the source shows the same thing (no ghosting; needs --feedback > 0).",
)
@click.option(
    "--flow-noise",
    is_flag=True,
    default=None,
    help="Carry the seed's starting noise along the source's flow, so texture follows the picture.",
)
@click.option("--flow-method", type=click.Choice(["dis", "farneback"]), help="OpenCV optical flow (default dis).")
@schedulable("--cadence", CADENCE_HELP)
@film_seed_options
@scheduled_steps_option
@scheduled_guidance_option
@video_options
@picture_options
@cluster_options
@control_options
def vid2vid(prompt: str, **options: Any) -> None:
    """Every frame of a video through img2img: same timing, same sound, upright.

    dreamreel vid2vid "a watercolour painting" --video phone.mp4 --strength 0.4 -o painted.mp4
    """
    from dreamreel.jobs.vid2vid import Vid2VidRecipe

    _film(Vid2VidRecipe, options, prompt=prompt)


@cli.command()
@click.argument("prompt", required=False)
@click.option("--frames", type=int, help="Number of frames (default 48).")
@click.option("--prompts", help="Keyframed prompts '0:a cat, 60:a dog' or a .txt file of such lines.")
@click.option("--prompt-blend", is_flag=True, default=None, help="Lerp embeddings between prompt keys.")
@film_seed_options
@scheduled_steps_option
@schedulable("--guidance", "Guidance scale (default 8.5)")
@schedulable("--strength", "img2img strength per frame (default 0.5)")
@schedulable("--zoom", "Zoom per frame, > 1 enlarges (default 1.04)")
@schedulable("--angle", "Turn per frame in degrees, + turns counter-clockwise (default 0.5)")
@schedulable("--tx", "Shift right per frame in pixels (default 1)")
@schedulable("--ty", "Shift down per frame in pixels (default 0)")
@click.option("--border", type=click.Choice(["replicate", "reflect", "wrap"]), help="Edge fill.")
@schedulable("--blend-back", "Blend in this much of frame n-2 (the guide's 0.9)")
@click.option("--grayscale", is_flag=True, default=None, help="Turn each input frame grey.")
@click.option("--tint", help="COLOR:AMOUNT laid over each input, e.g. brown:0.15.")
@click.option("--color-match", type=click.Choice(["none", "first", "previous"]), help="Against colour drift (none).")
@click.option("--color-space", type=click.Choice(["lab", "rgb", "hsv"]), help="Colour match space (lab).")
@schedulable("--color-strength", "How fully colours are matched, 0..1 (default 1)")
@schedulable("--contrast", "Contrast factor of each input (default 1)")
@schedulable("--noise", "Seeded noise added to each input, e.g. 0.02 (default 0)")
@click.option("--start", help="Frame 0 from: noise (default), txt2img, or an image file.")
@schedulable("--cadence", CADENCE_HELP)
@click.option("--flow", is_flag=True, hidden=True)  # refused with a reason, not "no such option"
@click.option(
    "--flow-noise",
    is_flag=True,
    default=None,
    help="Carry the seed's starting noise along the zoom's own motion, so texture follows the picture.",
)
@video_options
@picture_options
@cluster_options
@control_options
def zoom(prompt: str | None, **options: Any) -> None:
    """Zoom film: generate, warp, treat the colours, feed back; every number can be keyframed."""
    from dreamreel.jobs.zoom import ZoomRecipe

    if options.pop("flow"):
        raise DreamreelError(
            "--flow warps feedback along a source video's motion (vid2vid --video); a zoom already warps its "
            "feedback by its own schedules, exactly"
        )

    recipe = recipe_options(ZoomRecipe, options, prompt=prompt or "")
    render(recipe, quiet=options["quiet"], **cluster_of(options))  # the guide's seed 1 is the default: nothing drawn


@cli.command()
@click.argument("prompt", required=False)
@click.option("--prompt", "prompts", multiple=True, help="A keyframe prompt (repeat: --prompt A --prompt B).")
@click.option("--seed", "seeds", type=int, multiple=True, help="A keyframe seed (repeat: --seed 1 --seed 2).")
@click.option("--seeds", "seed_list", help="Keyframe seeds as a list: 1,5,9 or 1-4.")
@click.option("--frames-between", type=int, help="Frames between two keyframes (default 24).")
@click.option("--easing", type=click.Choice(["linear", "smooth"]), help="smooth (default) eases in and out.")
@click.option("--loop", is_flag=True, default=None, help="Return to the first keyframe (a seamless loop).")
@click.option("--batch", type=int, help="Frames per UNet call (same pictures; faster on a GPU).")
@steps_option
@guidance_option
@video_options
@picture_options
@cluster_options
def interpolate(prompt: str | None, prompts: tuple[str, ...], seeds: tuple[int, ...], seed_list: str | None, **options: Any) -> None:
    """Smooth video: slerp between seeds' noise, lerp between prompts' embeddings."""
    from dreamreel.jobs.interpolate import InterpolateRecipe
    from dreamreel.recipes.seeds import parse_seeds

    if seeds and seed_list:
        raise DreamreelError("use either --seed (repeated) or --seeds, not both")
    seed_values = parse_seeds(seed_list) if seed_list else list(seeds)
    all_prompts = ([prompt] if prompt else []) + list(prompts)
    recipe = recipe_options(InterpolateRecipe, options, prompts=all_prompts, seeds=seed_values)
    render(recipe, quiet=options["quiet"], announce=not seed_values, **cluster_of(options))
