"""The command line: a thin layer that turns flags into a recipe, runs a job, and reports.

Every option defaults to None here and the recipe dataclass supplies the real default, so
``rerender`` can tell which settings the user overrode. Heavy imports happen inside commands.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dreamreel import __version__
from dreamreel.errors import DreamreelError

log = logging.getLogger("dreamreel")

F = Callable[..., Any]


def _options(*decorators: F) -> F:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


# What loads and runs the model: every command that renders takes these.
model_options = (
    click.option(
        "--model",
        help="tiny, a diffusers folder, a .safetensors checkpoint or a Hugging Face id (default SD 1.5).",
    ),
    click.option("--vae", help="A VAE file (.safetensors) to use instead of the model's."),
    click.option("--lora", "loras", multiple=True, help="A LoRA file, FILE or FILE:WEIGHT (repeatable)."),
    click.option(
        "--allow-unsafe-pickle",
        is_flag=True,
        default=None,
        help="Load pickle weights (.ckpt/.pt/.bin) with torch.load(weights_only=True); trusted files only.",
    ),
    click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), help="Default auto."),
    click.option("--dtype", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), help="Default auto."),
    click.option(
        "--compile",
        is_flag=True,
        default=None,
        help="torch.compile UNet and VAE (CUDA graphs on a GPU): same pictures within fp16 rounding; "
        "the first frame compiles for a minute or two, later ones run ~3x faster on a GPU.",
    ),
    click.option("--quiet", is_flag=True, help="No progress bars."),
    click.option("--debug", is_flag=True, help="Show tracebacks."),
)

SCHEDULE_HELP = "a number or keyframes like '0:(1.02), 30:(1.0+0.01*sin(t/5))'"


def _common(steps: F, guidance: F) -> F:
    return _options(
        click.option("--negative", help="Negative prompt (what to avoid)."),
        steps,
        guidance,
        click.option("--width", type=int, help="Width, a multiple of 8 (default: the model's native size)."),
        click.option(
            "--height", type=int, help="Height, a multiple of 8 (default: the model's native size)."
        ),
        click.option("--scheduler", help='A1111 sampler name: "Euler a", "DPM++ 2M Karras", DDIM, PNDM, ...'),
        *model_options,
    )


common_options = _common(
    click.option("--steps", type=int, help="Denoising steps (default 50)."),
    click.option("--guidance", type=float, help="Classifier-free guidance scale (default 7.5)."),
)
# The same for video jobs whose steps and guidance may change from frame to frame.
scheduled_common_options = _common(
    click.option("--steps", help=f"Denoising steps (default 50): {SCHEDULE_HELP}."),
    click.option("--guidance", help="Classifier-free guidance scale (default 7.5); a schedule too."),
)


def schedule_value(text: str | None) -> str | float | int | None:
    """A plain number stays a number in the recipe; anything else is a schedule, checked by the recipe."""
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


seed_options = _options(
    click.option("--seed", type=int, help="One seed."),
    click.option("--seeds", "seed_list", help="Seeds to loop over: 1,5,9 or 1-20."),
    click.option("--count", type=int, help="Draw N random seeds (printed and recorded)."),
    click.option("--out", "-o", help="Output folder (default outputs/)."),
)

RECIPE_FIELDS = (
    "negative", "steps", "guidance", "width", "height", "scheduler", "model", "device", "dtype", "vae",
    "loras", "allow_unsafe_pickle", "compile",
)  # fmt: skip

batch_option = click.option(
    "--batch", type=int, help="Seeds per UNet call (default 1; same pictures, can be faster on GPUs)."
)


def _given(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Options the user actually gave (None, an unset flag and an empty repeatable are not given)."""
    given = {}
    for name in names:
        value = values.get(name)
        if value is None or value is False or value == ():
            continue
        given[name] = list(value) if isinstance(value, tuple) else value
    return given


def _seeds(seed: int | None, seed_list: str | None, count: int | None) -> list[int] | None:
    from dreamreel.recipes.base import check_seed, parse_seeds, random_seeds

    given = [x is not None for x in (seed, seed_list, count)]
    if sum(given) > 1:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dreamreel")
def cli() -> None:
    """Local Stable Diffusion for still images and videos.

    Try it offline in seconds: dreamreel txt2img "a funny cat covered in neon cloth" --model tiny --seeds 1-4
    """


@cli.command()
@click.argument("prompt")
@common_options
@seed_options
@batch_option
def txt2img(prompt: str, **options: Any) -> None:
    """Text to image: one PNG per seed."""
    from dreamreel.recipes.base import Txt2ImgRecipe

    fields = _given(options, (*RECIPE_FIELDS, "batch"))
    seeds = _seeds(options["seed"], options["seed_list"], options["count"])
    recipe = Txt2ImgRecipe(prompt=prompt, seeds=seeds or [], out=options["out"] or "outputs", **fields)
    _run_stills(recipe, quiet=options["quiet"], announce_seeds=seeds is None or options["count"] is not None)


@cli.command()
@click.argument("prompt")
@click.option("--image", "-i", required=True, help="Starting picture.")
@click.option("--strength", type=float, help="0 keeps the picture, 1 ignores it (default 0.75).")
@click.option(
    "--resize", type=click.Choice(["crop", "fit", "stretch"]), help="How the picture meets the size."
)
@common_options
@seed_options
@batch_option
def img2img(prompt: str, image: str, strength: float | None, resize: str | None, **options: Any) -> None:
    """Image and text to image."""
    from dreamreel.recipes.base import Img2ImgRecipe

    fields = _given(options, (*RECIPE_FIELDS, "batch"))
    fields.update(_given({"strength": strength, "resize": resize}, ("strength", "resize")))
    seeds = _seeds(options["seed"], options["seed_list"], options["count"])
    recipe = Img2ImgRecipe(
        prompt=prompt, image=image, seeds=seeds or [], out=options["out"] or "outputs", **fields
    )
    _run_stills(recipe, quiet=options["quiet"], announce_seeds=seeds is None or options["count"] is not None)


@cli.command()
@click.argument("picture", type=click.Path(dir_okay=False))
@click.option("--prompt", help="Replace the prompt.")
@click.option("--image", "-i", help="Replace the starting picture (img2img pictures).")
@click.option("--strength", type=float, help="Replace the strength (img2img pictures).")
@common_options
@seed_options
def rerender(
    picture: str, prompt: str | None, image: str | None, strength: float | None, **options: Any
) -> None:
    """Render a picture again from its own metadata, with any setting overridden (e.g. --steps 350)."""
    from dreamreel.jobs.rerender import recipe_from_picture
    from dreamreel.recipes.base import Img2ImgRecipe

    recipe = recipe_from_picture(picture)
    changes = _given(options, RECIPE_FIELDS)
    changes.update(_given({"prompt": prompt}, ("prompt",)))
    extra = _given({"image": image, "strength": strength}, ("image", "strength"))
    if extra and not isinstance(recipe, Img2ImgRecipe):
        raise DreamreelError(f"--{'/--'.join(extra)} only apply to img2img pictures; {picture!r} is txt2img")
    changes.update(extra)
    seeds = _seeds(options["seed"], options["seed_list"], options["count"])
    if seeds is not None:
        changes["seeds"] = seeds
    changes["out"] = options["out"] or str(Path(picture).parent)
    _run_stills(recipe.replace(**changes), quiet=options["quiet"], announce_seeds=False)


@cli.command()
@click.argument("path", type=click.Path())
def info(path: str) -> None:
    """Print what made a PNG (its recipe and A1111 parameters), a video or a run folder."""
    import json

    from dreamreel.runs.metadata import read_png_metadata

    target = Path(path)
    if not target.exists():
        raise DreamreelError(f"{path!r} does not exist")
    from dreamreel.cli.video import VIDEO_INFO_SUFFIXES, print_video_info

    if target.is_dir() or target.suffix.lower() in VIDEO_INFO_SUFFIXES:
        print_video_info(target)
        return
    parameters, recipe = read_png_metadata(target)
    if parameters is None and recipe is None:
        raise DreamreelError(f"{path!r} carries no generation settings")
    if parameters:
        click.echo(parameters)
    if recipe:
        click.echo("")
        click.echo(json.dumps(recipe, indent=2, ensure_ascii=False))


def _run_stills(recipe: Any, *, quiet: bool, announce_seeds: bool) -> None:
    """Validate, load the model, render every seed, write each PNG atomically as it finishes."""
    from dreamreel.recipes.base import Img2ImgRecipe
    from dreamreel.render.renderer import effective_steps
    from dreamreel.runs.seed_loops import StillRun

    recipe.validate()  # everything checked before the model loads
    if announce_seeds:
        click.echo(f"seeds: {', '.join(map(str, recipe.seeds))}", err=True)
    if isinstance(recipe, Img2ImgRecipe):
        run_steps = effective_steps(recipe.steps, recipe.strength)
        click.echo(
            f"strength {recipe.strength} of {recipe.steps} steps: {run_steps} denoising steps run", err=True
        )
    model = _load(recipe, quiet)
    _render_still_run(model, StillRun.start(recipe), list(range(len(recipe.seeds))), quiet)


def _render_still_run(model: Any, run: Any, positions: list[int], quiet: bool) -> None:
    from dreamreel.runs.interrupts import resumable
    from dreamreel.cli.progress import Progress
    from dreamreel.runs.seed_loops import render_stills

    with (
        resumable(f"dreamreel resume {_shell_quote(str(run.folder))}"),
        Progress(len(positions), quiet=quiet) as bar,
    ):
        render_stills(model, run, positions, bar)


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


@cli.command()
@click.argument("folder", type=click.Path())
@click.option("--force", is_flag=True, help="Resume even when the result would not be exact (recorded).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def resume(folder: str, force: bool, quiet: bool, debug: bool) -> None:
    """Finish interrupted work: a video's run folder (NAME.run or NAME.mp4) or the seed loops of an output folder.

    Frames already safe (file present, sha256 as in the manifest) are kept; rendering continues from the
    first missing one with all state restored, then the video is encoded again.
    """
    target = Path(folder)
    if target.suffix.lower() in (".mp4", ".gif", ".webm") and not target.is_dir():
        target = target.with_suffix(".run")
    if not target.is_dir():
        raise DreamreelError(f"{folder!r} is not a run folder or an output folder")
    if (target / "recipe.toml").is_file():
        _resume_video_run(target, force=force, quiet=quiet)
    else:
        _resume_still_runs(target, quiet=quiet)


def _resume_video_run(folder: Path, *, force: bool, quiet: bool) -> None:
    from dreamreel.jobs.runner import run_video_job, video_job
    from dreamreel.runs.store import RunStore

    recipe = RunStore.open(folder).recipe()
    if Path(recipe.run_dir).resolve() != folder.resolve():  # the run folder was moved: follow it
        recipe = recipe.replace(output=str(folder.with_suffix(Path(recipe.output).suffix)))
    run_video_job(
        video_job(recipe.job),
        recipe,
        resume=True,
        force=force,
        quiet=quiet,
        echo=lambda m: click.echo(m, err=True),
    )


def _resume_still_runs(folder: Path, *, quiet: bool) -> None:
    from dreamreel.runs.seed_loops import incomplete_runs

    runs = incomplete_runs(folder)
    if not runs:
        click.echo(f"nothing to resume in {folder}", err=True)
        return
    for run in runs:
        run.recipe.validate()
        missing = run.missing_positions()
        click.echo(
            f"resuming {run.record.name}: {len(missing)} of {len(run.recipe.seeds)} pictures to render",
            err=True,
        )
        model = _load(run.recipe, quiet)
        _render_still_run(model, run, missing, quiet)


def _load(recipe: Any, quiet: bool) -> Any:
    from dreamreel.models.loading import load_model_for

    if not quiet:
        click.echo(f"loading model {recipe.model} ...", err=True)
    return load_model_for(recipe, quiet=quiet)


def _quiet_libraries() -> None:
    """transformers/diffusers chatter (e.g. torchvision hints) is not for our users."""
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors (exit 2) unless --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING, stream=sys.stderr)
    if not debug:
        _quiet_libraries()
    try:
        cli.main(args=args, prog_name="dreamreel", standalone_mode=False)
    except DreamreelError as exc:
        from dreamreel.runs.interrupts import Interrupted

        if debug:
            raise
        click.echo(str(exc) if isinstance(exc, Interrupted) else f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug or an environment problem: still one line without --debug
        if debug:
            raise
        if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
            click.echo(
                "error: the GPU ran out of memory; try a smaller --width/--height, --batch 1, or --dtype fp16 "
                "(finished frames are kept; `dreamreel resume` continues a video run)",
                err=True,
            )
            sys.exit(3)
        click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    # Run the module proper (``dreamreel.cli.app``), whose group every command module registered on.
    from dreamreel.cli.app import main as _main

    _main()
