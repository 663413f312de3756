"""The click app, the one place that turns errors into one line and an exit status, and the two
steps every rendering command shares: prepare (announce what was drawn) and run with progress bars.

Command modules (stills.py, films.py, runs.py) import this module and options.py only; the package
``__init__`` imports them so their commands register on ``cli``. Heavy imports happen inside commands.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dreamreel import __version__
from dreamreel.errors import DreamreelError

if TYPE_CHECKING:
    from dreamreel.recipes.base import Recipe

log = logging.getLogger("dreamreel")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dreamreel")
def cli() -> None:
    """Local Stable Diffusion for still images and videos.

    Try it offline in seconds: dreamreel txt2img "a funny cat covered in neon cloth" --model tiny --seeds 1-4
    """


def render(
    recipe: Recipe, *, quiet: bool, announce: bool = False, cluster: str | None = None, workers: int | None = None
) -> list[Path]:
    """Prepare the recipe (everything checked before the model loads), say what was drawn at random
    when ``announce``, run it with progress bars (here, or on a Ray cluster with ``cluster``); a
    video's path goes to stdout."""
    from dreamreel.cli.progress import ProgressBars
    from dreamreel.jobs.runner import prepare, run_job

    check_cluster_options(cluster, workers)
    prepared = prepare(recipe)
    if announce:
        announce_drawn(prepared.recipe)
    note = prepared.recipe.announcement()
    if note:
        click.echo(note, err=True)
    if cluster:
        from dreamreel.cluster import run_on_cluster

        done = run_on_cluster(prepared, workers=workers, address=cluster, reporter=ProgressBars(quiet=quiet))
        written = done.outputs[0]
    else:
        written = run_job(prepared, reporter=ProgressBars(quiet=quiet), quiet_load=quiet)
    if not prepared.job.stills:
        click.echo(str(written[0]))
    return written


def check_cluster_options(cluster: str | None, workers: int | None) -> None:
    if workers is not None and not cluster:
        raise DreamreelError("--workers applies to a cluster run: add --cluster auto (or a cluster's address)")
    if workers is not None and workers < 1:
        raise DreamreelError(f"--workers must be at least 1, got {workers}")


def announce_drawn(recipe: Recipe) -> None:
    """The seeds a run drew at random, so the work can be made again."""
    seeds = getattr(recipe, "seeds", None)
    if seeds is not None:
        click.echo(f"seeds: {', '.join(map(str, seeds))}", err=True)
    elif getattr(recipe, "seed", None) is not None:
        click.echo(f"seed: {recipe.seed}", err=True)  # type: ignore[attr-defined]


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
    except click.UsageError as exc:  # a missing or unknown option, a bad value: one line, like every error
        where = exc.ctx.command_path if exc.ctx is not None else "dreamreel"
        click.echo(f"error: {exc.format_message()} (see: {where} --help)", err=True)
        sys.exit(exc.exit_code)
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
                "error: the GPU ran out of memory; try --offload model, --vae-tiling, a smaller --width/--height, "
                "--batch 1 or --dtype fp16 "
                "(finished frames are kept; `dreamreel resume` continues a video run)",
                err=True,
            )
            sys.exit(3)
        click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(1)


def run() -> None:
    """The ``dreamreel`` command (and ``python -m dreamreel``): ``main``, then the process ends at once.

    Python's own teardown after a render (every module of torch, diffusers and transformers, the
    model's tensors) took 1.3-1.6 s on the project's 2-core machine, each run, and does nothing for
    the user: by the time ``main`` returns, every file dreamreel writes is closed and renamed into
    place. So the exit handlers still run (logging, temporary folders, Ray) and the standard streams
    are flushed, and the interpreter's teardown is skipped with ``os._exit``; unless a thread that
    is not a daemon is still running, which a normal exit would wait for.
    """
    import atexit
    import contextlib
    import os
    import threading

    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # sys.exit("message"): Python prints it and exits 1
            print(exc.code, file=sys.stderr)
            code = 1
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if "torch" not in sys.modules or others:
        sys.exit(code)  # nothing heavy to tear down, or work still running: the ordinary exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can reach it anyway
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    # Run the module proper (``dreamreel.cli.app``), whose group every command module registered on.
    from dreamreel.cli.app import run as _run

    _run()
