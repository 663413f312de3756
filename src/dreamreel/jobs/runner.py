"""The one way every job runs: recipe -> plan -> frames -> store -> file, for the CLI, the Python API
and whatever drives jobs next (a web studio, a cluster).

1. ``prepare``: resolve the recipe (seeds drawn, names canonical), check it, plan the run: all before
   any model loads;
2. open the output: a seed loop's record in its folder (stills), or a run folder (videos; on a resume
   its finished prefix is kept and checked for exactness);
3. consume the job's generator of finished frames: stills are written by a background thread, video
   frames committed in index order to the run folder, each safe before the next is counted;
4. videos: encode from the frames on disk (memory flat; ``--reverse``/``--pingpong`` are only a
   different order; a resume re-encodes the same way), then reopen and check it; the job's finish.

The library never prints: what a person should hear goes to the ``Reporter``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dreamreel.errors import DreamreelError
from dreamreel.jobs import job_of, recipe_from_dict
from dreamreel.jobs.protocol import Context, Frame, History, Job, Plan
from dreamreel.recipes.base import Recipe, SeedLoopRecipe, VideoRecipe, parse_fps
from dreamreel.runs.interrupts import resumable
from dreamreel.runs.seed_loops import SeedLoop, incomplete_loops
from dreamreel.runs.store import RunStore

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from dreamreel.models.loading import LoadedModel
    from dreamreel.render.renderer import StepCallback


class Reporter(Protocol):
    """Where a run tells a person what happens (the CLI draws progress bars; the default is silent)."""

    def message(self, text: str) -> None: ...
    def begin(self, total: int, unit: str) -> None: ...
    def step(self, step: int, total: int, latents: torch.Tensor | None = None) -> None: ...
    def item(self, path: Path | None) -> None: ...
    def end(self) -> None: ...


class Silent:
    """A Reporter that says nothing."""

    def message(self, text: str) -> None:
        pass

    def begin(self, total: int, unit: str) -> None:
        pass

    def step(self, step: int, total: int, latents: torch.Tensor | None = None) -> None:
        pass

    def item(self, path: Path | None) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass(frozen=True)
class Prepared:
    """A job ready to run: its resolved, checked recipe and its plan. Nothing loaded yet."""

    job: Job[Any]
    recipe: Recipe
    plan: Plan


def prepare(recipe: Recipe, job: Job[Any] | None = None, *, model_given: bool = False) -> Prepared:
    """Check, resolve and plan, once, before any model loads (``job``: the registered one;
    ``model_given``: the caller renders with its own model, so the recipe's model spec is not checked)."""
    job = job or job_of(recipe)
    recipe.check()
    if not model_given:
        recipe.check_model()
    resolved = recipe.resolved()
    plan = job.plan(resolved)
    if plan.count < 1:
        raise DreamreelError(f"{job.name}: nothing to render (0 frames)")
    return Prepared(job, resolved, plan)


def render_frames(
    recipe: Recipe | Prepared,
    model: LoadedModel,
    *,
    wanted: Sequence[int] | None = None,
    history: History | None = None,
    on_step: StepCallback | None = None,
) -> Iterator[Frame]:
    """A job's finished frames without writing any file (the Python API): every item, or the
    ``wanted`` ones given the ``history`` of earlier finished frames (as a resume would)."""
    prepared = recipe if isinstance(recipe, Prepared) else prepare(recipe, model_given=True)
    positions = range(prepared.plan.count) if wanted is None else wanted
    context = Context(model, prepared.recipe, prepared.plan, positions, history, on_step)
    return prepared.job.frames(context)


def run_job(
    recipe: Recipe | Prepared,
    *,
    model: LoadedModel | None = None,
    reporter: Reporter | None = None,
    quiet_load: bool = True,
    resume: bool = False,
    force: bool = False,
) -> list[Path]:
    """Run a job to its files: the pictures of a seed loop, or ``[video]``. A video job with
    ``resume`` continues its run folder (``force``: even when the result would not be exact)."""
    prepared = recipe if isinstance(recipe, Prepared) else prepare(recipe, model_given=model is not None)
    report = reporter or Silent()
    if prepared.job.stills:
        return _run_stills(prepared, None, model, report, quiet_load)
    return [_run_video(prepared, model, report, quiet_load, resume=resume, force=force)]


def resume(
    target: str | Path,
    *,
    force: bool = False,
    model: LoadedModel | None = None,
    reporter: Reporter | None = None,
    quiet_load: bool = True,
) -> list[Path]:
    """Finish interrupted work: a video's run folder (``NAME.run`` or ``NAME.mp4``), or every
    incomplete seed loop of an output folder. Finished frames are kept; the rest render exactly as
    an unbroken run would have rendered them."""
    report = reporter or Silent()
    folder = resume_folder(target)
    if RunStore.is_run_folder(folder):
        recipe = recipe_of_run(folder)
        return run_job(recipe, model=model, reporter=report, quiet_load=quiet_load, resume=True, force=force)
    loops = incomplete_loops(folder, recipe_from_dict)
    if not loops:
        report.message(f"nothing to resume in {folder}")
        return []
    written: list[Path] = []
    for loop in loops:
        prepared = prepare(loop.recipe, model_given=model is not None)
        written += _run_stills(prepared, loop, model, report, quiet_load)
    return written


def resume_folder(target: str | Path) -> Path:
    """What a resume target names: a run folder (given as ``NAME.run`` or its video ``NAME.mp4``) or an
    output folder of seed loops."""
    folder = Path(target)
    if folder.suffix.lower() in (".mp4", ".gif", ".webm") and not folder.is_dir():
        folder = folder.with_suffix(".run")
    if not folder.is_dir():
        raise DreamreelError(f"{str(target)!r} is not a run folder or an output folder")
    return folder


def recipe_of_run(folder: str | Path) -> Recipe:
    """A run folder's recipe; a moved run folder keeps its video beside it."""
    folder = Path(folder)
    recipe = recipe_from_dict(RunStore.open(folder).recipe_data())
    if isinstance(recipe, VideoRecipe) and recipe.run_dir.resolve() != folder.resolve():
        recipe = recipe.replace(output=str(folder.with_suffix(Path(recipe.output).suffix)))
    return recipe


def history_of(store: RunStore) -> History:
    """Finished frame i as the job held it: [1, 3, H, W] in [0, 1], ``byte / 255`` exactly."""
    from dreamreel.media.pictures import to_unit_tensor

    def history(index: int) -> torch.Tensor:
        return to_unit_tensor([store.read_frame(index)])

    return history


# -- seed loops ---------------------------------------------------------------------------------


def _run_stills(
    prepared: Prepared,
    loop: SeedLoop | None,
    model: LoadedModel | None,
    report: Reporter,
    quiet_load: bool,
) -> list[Path]:
    from dreamreel.runs.writer import BackgroundWriter

    recipe = prepared.recipe
    assert isinstance(recipe, SeedLoopRecipe)
    if loop is None:
        loop = SeedLoop.start(recipe)
        wanted: Sequence[int] = list(range(len(recipe.seeds)))
    else:
        wanted = loop.missing_positions()
        report.message(f"resuming {loop.record.name}: {len(wanted)} of {len(recipe.seeds)} pictures to render")
    model = model or _load(recipe, report, quiet_load)
    written: list[Path] = []

    def done(paths: list[Path]) -> None:
        for path in paths:
            written.append(path)
            report.item(path)

    with resumable(f"dreamreel resume {shlex.quote(str(loop.folder))}"):
        report.begin(len(wanted), "image")
        try:
            context = Context(model, recipe, prepared.plan, wanted, on_step=report.step)
            with BackgroundWriter() as writer:
                for frame in prepared.job.frames(context):
                    writer.submit(loop.picture_path(frame.index), frame.image, frame.png_info())
                    done(writer.written())
            done(writer.written())
        finally:
            report.end()
    loop.finished()
    return written


# -- videos -------------------------------------------------------------------------------------


def _run_video(
    prepared: Prepared,
    model: LoadedModel | None,
    report: Reporter,
    quiet_load: bool,
    *,
    resume: bool,
    force: bool,
) -> Path:
    job, recipe, plan = prepared.job, prepared.recipe, prepared.plan
    assert isinstance(recipe, VideoRecipe)
    if resume:
        store = RunStore.open(recipe.run_dir)
        check_resumable(store.resume_conflicts(), store, force, report)
        start = len(store.done())
        store.truncate(start)
    else:
        store = RunStore.create(recipe.run_dir, recipe)
        start = 0
    if start < plan.count:
        if model is None:
            model = _load(recipe, report, quiet_load)
        conflict = store.model_conflict(model.model_hash)
        check_resumable([conflict] if conflict else [], store, force, report)
    with resumable(f"dreamreel resume {shlex.quote(str(store.folder))}"):
        if start < plan.count:
            assert model is not None
            report.begin(plan.count - start, "frame")
            try:
                wanted = range(start, plan.count)
                context = Context(model, recipe, plan, wanted, history_of(store), report.step)
                for frame in job.frames(context):
                    commit_frame(store, plan, frame)
                    report.item(None)
            finally:
                report.end()
        return finish_video(prepared, store, report)


def commit_frame(store: RunStore, plan: Plan, frame: Frame) -> None:
    """Make one finished frame safe in its run folder, with its time (the next in index order)."""
    time = plan.times[frame.index] if plan.times is not None else None
    store.save(frame, time=time)


def finish_video(prepared: Prepared, store: RunStore, report: Reporter) -> Path:
    """Every frame is safe: encode the video, then the job's finish (a local run and a cluster run)."""
    job, recipe, plan = prepared.job, prepared.recipe, prepared.plan
    assert isinstance(recipe, VideoRecipe)
    output = encode_run(store, recipe, plan, report)
    if job.finish is not None:
        job.finish(recipe, plan, store)
    report.message(f"run folder: {store.folder}")
    return output


def playback_order(count: int, reverse: bool, pingpong: bool) -> list[int]:
    """Frame indices in playing order. Pingpong goes forth and back without repeating either end
    frame, so it loops seamlessly: 0 1 2 3 2 1 (then 0 again when looped)."""
    order = list(range(count))
    if reverse:
        order.reverse()
    if pingpong:
        order += order[-2:0:-1]
    return order


def encode_run(store: RunStore, recipe: VideoRecipe, plan: Plan, report: Reporter | None = None) -> Path:
    """Encode the finished frames on disk into ``recipe.output``, checked after writing."""
    from dreamreel import __version__
    from dreamreel.media.video import AudioSource, VideoWriter

    report = report or Silent()
    finished = len(store.done())
    if finished < plan.count:
        raise DreamreelError(
            f"{store.folder} has {finished} of {plan.count} frames; "
            f"finish it with: dreamreel resume {store.folder}"
        )
    assert plan.fps is not None
    order = playback_order(plan.count, recipe.reverse, recipe.pingpong)
    durations = plan.durations()
    uniform = plan.times is None
    audio = AudioSource(recipe.audio, copy=True) if recipe.audio else plan.audio
    first = store.read_frame(0)
    metadata = {
        "dreamreel": json.dumps({"version": __version__, "recipe": recipe.to_dict()}, ensure_ascii=False),
        "comment": f"made with dreamreel {__version__}: dreamreel info on this file prints its recipe",
    }
    if recipe.listens():  # the --audio analysis kept beside the frames (a fresh run had no folder to keep it in)
        recipe.sound([Fraction(0)], [Fraction(1)])
    rate = parse_fps(recipe.interpolate_to) if recipe.interpolate_to is not None else None
    smooth = rate is not None
    writer = VideoWriter(
        recipe.output,
        width=first.width,
        height=first.height,
        fps=rate or plan.fps,
        time_base=None if smooth else plan.time_base,
        metadata=metadata,
        audio=audio,
    )

    def playing() -> Iterator[tuple[Image.Image, Fraction]]:
        """The finished frames in playing order with how long each shows (read one at a time)."""
        for index in order:
            picture = first if index == 0 else store.read_frame(index)
            if plan.overlay is not None:
                picture = plan.overlay(index, picture)
            yield picture, durations[index]

    time = Fraction(0)
    try:
        report.begin(len(order), "encoded frame")
        try:
            if rate is None:
                for picture, duration in playing():
                    writer.add(picture, None if uniform else time)
                    time += duration
                    report.item(None)
            else:
                time = _encode_smooth(writer, playing(), rate, report)
        finally:
            report.end()
    except BaseException:
        writer.abort()
        raise
    return writer.close(end_time=time)


def _encode_smooth(
    writer: Any, pictures: Iterator[tuple[Image.Image, Fraction]], rate: Fraction, report: Reporter
) -> Fraction:
    """``--interpolate-to``: the film sampled at ``rate`` fps; a sample that falls on a frame's start is
    that rendered frame, one between two frames is made by optical flow (media.flow.in_between), so
    the film plays as long as before and the frames on disk stay what was rendered. Two frames are
    held at a time. Returns when the last frame stops showing."""
    from dreamreel.media.flow import FramePair, in_between, to_array_of

    current = next(pictures, None)
    start = Fraction(0)
    sample = 0
    while current is not None:
        picture, duration = current
        following = next(pictures, None)
        end = start + duration
        pair = None
        while Fraction(sample) / rate < end:
            weight = (Fraction(sample) / rate - start) / duration
            if weight == 0 or following is None:
                writer.add(picture)
            else:
                if pair is None:  # the flow of this pair of frames, once
                    pair = FramePair.of(to_array_of(picture), to_array_of(following[0]))
                writer.add(in_between(picture, following[0], float(weight), pair))
            sample += 1
        report.item(None)
        start, current = end, following
    return start


def check_resumable(problems: list[str], store: RunStore, force: bool, report: Reporter) -> None:
    """Refuse a resume that would not be exact, unless forced (and then record that it was)."""
    if not problems:
        return
    if not force:
        raise DreamreelError(
            f"resuming {store.folder} would not be exact: {'; '.join(problems)}. "
            "Re-run it from its recipe, or resume anyway with --force"
        )
    report.message(f"resuming anyway (--force): {'; '.join(problems)}")
    store.record_forced(problems)


def _load(recipe: Recipe, report: Reporter, quiet: bool) -> LoadedModel:
    from dreamreel.models.loading import load_model_for

    report.message(f"loading model {recipe.model} ...")
    return load_model_for(recipe, quiet=quiet)
