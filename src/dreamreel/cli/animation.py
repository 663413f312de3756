"""Commands for the animation jobs: ``zoom``, ``interpolate``, and ``run RECIPE.toml`` for any job.

Registered on the ``cli`` group by one import at the bottom of cli.py. Like cli.py, options default
to None and the recipe dataclass supplies the real defaults; numeric zoom options are keyframe
schedules, kept as numbers in the recipe when they are plain numbers.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import click

from dreamreel.cli.app import RECIPE_FIELDS, SCHEDULE_HELP, _given, _options, _run_stills, cli, model_options
from dreamreel.cli.app import schedule_value as _schedule_value
from dreamreel.errors import DreamreelError

shared_options = _options(
    click.option("--negative", help="Negative prompt (what to avoid)."),
    click.option("--width", type=int, help="Width, a multiple of 8 (default: the model's native size)."),
    click.option("--height", type=int, help="Height, a multiple of 8 (default: the model's native size)."),
    click.option("--scheduler", help='A1111 sampler name: "Euler a", "DPM++ 2M Karras", DDIM, PNDM, ...'),
    *model_options,
)

video_options = _options(
    click.option("--output", "-o", help="The video: NAME.mp4 (or .webm/.gif); frames go to NAME.run/."),
    click.option("--fps", help="Frames per second, e.g. 12 or 30000/1001 (default 12)."),
    click.option("--reverse", is_flag=True, default=None, help="Play the frames backwards (zoom out)."),
    click.option("--pingpong", is_flag=True, default=None, help="Play forth and back (a seamless loop)."),
    click.option("--audio", help="Lay this sound file under the video, cut to its length."),
)

VIDEO_FIELDS = ("output", "fps", "reverse", "pingpong", "audio")


def _schedules(options: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: _schedule_value(options[n]) for n in names if options.get(n) is not None}


def _run_video(recipe: Any, quiet: bool) -> None:
    from dreamreel.jobs.runner import run_video_job, video_job

    run_video_job(video_job(recipe.job), recipe, quiet=quiet, echo=lambda m: click.echo(m, err=True))


# -- zoom ------------------------------------------------------------------------------------


zoom_options = _options(
    click.option("--frames", type=int, help="Number of frames (default 48)."),
    click.option("--prompts", help="Keyframed prompts '0:a cat, 60:a dog' or a .txt file of such lines."),
    click.option("--prompt-blend", is_flag=True, default=None, help="Lerp embeddings between prompt keys."),
    click.option("--seed", type=int, help="Base seed (default 1, as in the guide)."),
    click.option(
        "--seed-mode",
        type=click.Choice(["fixed", "iter", "random", "ladder", "alternate"]),
        help="fixed (default), iter +1 a frame, random, ladder +2 -1, alternate between two.",
    ),
    click.option("--steps", help=f"Denoising steps (default 50): {SCHEDULE_HELP}."),
    click.option("--guidance", help="Guidance scale (default 8.5); a schedule."),
    click.option("--strength", help="img2img strength per frame (default 0.5); a schedule."),
    click.option("--zoom", help="Zoom per frame, > 1 enlarges (default 1.04); a schedule."),
    click.option("--angle", help="Turn per frame in degrees, + turns counter-clockwise (default 0.5)."),
    click.option("--tx", help="Shift right per frame in pixels (default 1); a schedule."),
    click.option("--ty", help="Shift down per frame in pixels (default 0); a schedule."),
    click.option("--border", type=click.Choice(["replicate", "reflect", "wrap"]), help="Edge fill."),
    click.option("--blend-back", help="Blend in this much of frame n-2 (the guide's 0.9); a schedule."),
    click.option("--grayscale", is_flag=True, default=None, help="Turn each input frame grey."),
    click.option("--tint", help="COLOR:AMOUNT laid over each input, e.g. brown:0.15."),
    click.option(
        "--color-match", type=click.Choice(["none", "first", "previous"]), help="Against colour drift (none)."
    ),
    click.option("--color-space", type=click.Choice(["lab", "rgb", "hsv"]), help="Colour match space (lab)."),
    click.option("--color-strength", help="How fully colours are matched, 0..1 (default 1); a schedule."),
    click.option("--contrast", help="Contrast factor of each input (default 1); a schedule."),
    click.option("--noise", help="Seeded noise added to each input, e.g. 0.02 (default 0); a schedule."),
    click.option("--start", help="Frame 0 from: noise (default), txt2img, or an image file."),
)


@cli.command()
@click.argument("prompt", required=False)
@zoom_options
@video_options
@shared_options
def zoom(prompt: str | None, **options: Any) -> None:
    """Zoom film: generate, warp, treat the colours, feed back; every number can be keyframed."""
    from dreamreel.jobs.zoom import SCHEDULED, ZoomRecipe

    scheduled = ("steps", "guidance")  # schedules in zoom, numbers elsewhere
    fields = _given(options, tuple(name for name in RECIPE_FIELDS if name not in scheduled))
    fields.update(_given(options, VIDEO_FIELDS))
    plain = ("frames", "prompts", "prompt_blend", "seed", "seed_mode", "border", "grayscale", "tint")
    fields.update(_given(options, (*plain, "color_match", "color_space", "start")))
    fields.update(_schedules(options, SCHEDULED))
    recipe = ZoomRecipe(prompt=prompt or "", **fields)
    _run_video(recipe, options["quiet"])


# -- interpolate -----------------------------------------------------------------------------


@cli.command()
@click.argument("prompt", required=False)
@click.option("--prompt", "prompts", multiple=True, help="A keyframe prompt (repeat: --prompt A --prompt B).")
@click.option("--seed", "seeds", type=int, multiple=True, help="A keyframe seed (repeat: --seed 1 --seed 2).")
@click.option("--seeds", "seed_list", help="Keyframe seeds as a list: 1,5,9 or 1-4.")
@click.option("--frames-between", type=int, help="Frames between two keyframes (default 24).")
@click.option("--easing", type=click.Choice(["linear", "smooth"]), help="smooth (default) eases in and out.")
@click.option("--loop", is_flag=True, default=None, help="Return to the first keyframe (a seamless loop).")
@click.option("--batch", type=int, help="Frames per UNet call (same pictures; faster on a GPU).")
@click.option("--steps", type=int, help="Denoising steps (default 50).")
@click.option("--guidance", type=float, help="Guidance scale (default 7.5).")
@video_options
@shared_options
def interpolate(
    prompt: str | None,
    prompts: tuple[str, ...],
    seeds: tuple[int, ...],
    seed_list: str | None,
    **options: Any,
) -> None:
    """Smooth video: slerp between seeds' noise, lerp between prompts' embeddings."""
    from dreamreel.jobs.interpolate import InterpolateRecipe
    from dreamreel.recipes.base import parse_seeds

    if seeds and seed_list:
        raise DreamreelError("use either --seed (repeated) or --seeds, not both")
    all_prompts = ([prompt] if prompt else []) + list(prompts)
    fields = _given(options, RECIPE_FIELDS)
    fields.update(_given(options, (*VIDEO_FIELDS, "frames_between", "easing", "loop", "batch")))
    seed_values = parse_seeds(seed_list) if seed_list else list(seeds)
    recipe = InterpolateRecipe(prompts=all_prompts, seeds=seed_values, **fields)
    if not seed_values:
        recipe.validate()  # draws the random seeds, announced so the film can be made again
        click.echo(f"seeds: {', '.join(map(str, recipe.seeds))}", err=True)
    _run_video(recipe, options["quiet"])


# -- run -------------------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("recipe_file", type=click.Path(dir_okay=False))
@click.option("--output", "-o", help="Where to write: a video path for video jobs, a folder for stills.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def run(ctx: click.Context, recipe_file: str, output: str | None, quiet: bool, debug: bool) -> None:
    """Run any job from a recipe TOML; override any setting: --steps 20 --model tiny --reverse."""
    from dreamreel.recipes.base import Recipe, recipe_from_toml

    load_job_modules()
    recipe = recipe_from_toml(recipe_file)
    changes = parse_overrides(recipe, list(ctx.args))
    if output is not None:
        changes["output" if hasattr(recipe, "output") else "out"] = output
    recipe = Recipe.from_dict({**recipe.to_dict(), **changes})
    if hasattr(recipe, "output"):
        _run_video(recipe, quiet)
    else:
        _run_stills(recipe, quiet=quiet, announce_seeds=False)


def parse_overrides(recipe: Any, args: list[str]) -> dict[str, Any]:
    """``--name value`` pairs (``--flag`` alone for true/false settings) onto the recipe's fields."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(recipe) if f.init}
    changes: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise DreamreelError(f"unexpected {arg!r}: overrides look like --steps 20")
        name, eq, value = arg[2:].partition("=")
        key = name.replace("-", "_")
        if key.startswith("no_") and key[3:] in fields and isinstance(getattr(recipe, key[3:]), bool):
            changes[key[3:]] = False
            i += 1
            continue
        if key in recipe.scheduled and (eq or i + 1 < len(args)):  # a number or a schedule
            changes[key] = _schedule_value(value if eq else args[i + 1])
            i += 1 if eq else 2
            continue
        if key == "values" and recipe.job == "sweep" and (eq or i + 1 < len(args)):
            from dreamreel.recipes.base import parse_values_option

            changes[key] = parse_values_option(value if eq else args[i + 1])
            i += 1 if eq else 2
            continue
        if key not in fields:
            known = ", ".join("--" + n.replace("_", "-") for n in fields)
            raise DreamreelError(f"{recipe.job} has no setting --{name}; known: {known}")
        current = getattr(recipe, key)
        if isinstance(current, bool) and not eq:
            changes[key] = True
            i += 1
            continue
        if not eq:
            if i + 1 >= len(args):
                raise DreamreelError(f"--{name} needs a value")
            value = args[i + 1]
            i += 1
        changes[key] = _override_value(key, value, current)
        i += 1
    return changes


def _override_value(key: str, text: str, current: Any) -> Any:
    from dreamreel.recipes.base import parse_seeds

    if key == "seeds":
        return parse_seeds(text)
    if isinstance(current, bool):
        if text.lower() in ("true", "yes", "1", "on"):
            return True
        if text.lower() in ("false", "no", "0", "off"):
            return False
        raise DreamreelError(f"--{key.replace('_', '-')} takes true or false, got {text!r}")
    if isinstance(current, list):
        return [_override_value(key + "[]", part.strip(), "") for part in text.split("|")]
    if isinstance(current, str) or current is None:
        number = _schedule_value(text)
        return number if current is None else text
    return _schedule_value(text)


def load_job_modules() -> None:
    """Import every job module so each registers its recipe (``run`` and resume need the whole list)."""
    import dreamreel.jobs as jobs

    for module in pkgutil.iter_modules(jobs.__path__):
        importlib.import_module(f"dreamreel.jobs.{module.name}")


# Every job's recipe class registers itself on import; with all of them known, any command that
# reads a recipe back (run, resume, info on a run folder) understands every job. Job modules import
# no torch at the top, so this stays cheap for `dreamreel --help`.
load_job_modules()
