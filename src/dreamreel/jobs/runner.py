"""The one way every video job (sweep, vid2vid, zoom, interpolate) runs: recipe -> frames -> store -> video.

1. validate the recipe and plan the run (frame count, timing, audio) before any model loads;
2. create the run folder (or continue one: ``resume=True`` starts at the first unfinished frame);
3. consume the job's generator of RenderedImage frames into the store, each frame safe on disk
   before the next starts, with a progress bar;
4. encode the video from the frames on disk (memory flat; ``--reverse``/``--pingpong`` are only a
   different order; a resume re-encodes the same way), then reopen and check it.

A job is two functions (see ``VideoJob``). ``frames`` must be able to start at frame ``start``
given the earlier finished frames, which it may read back with ``store.read_frame(i)``: PNGs are
lossless, so a job that feeds quantized frames forward continues exactly as an unbroken run.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError
from dreamreel.runs.interrupts import resumable

if TYPE_CHECKING:
    from PIL import Image

    from dreamreel.jobs.still_pictures import RenderedImage
    from dreamreel.models.loading import LoadedModel
    from dreamreel.recipes.base import VideoRecipe
    from dreamreel.runs.store import RunStore
    from dreamreel.media.video import AudioSource


@dataclass(frozen=True)
class VideoPlan:
    """What a run will produce, known before the model loads."""

    frames: int
    fps: Fraction
    times: list[Fraction] | None = None  # each frame's time (s) when the job keeps a source's timing
    end_time: Fraction | None = None  # when the last frame stops showing (with ``times``)
    time_base: Fraction | None = None  # the timestamp grid (with ``times``: the source's)
    audio: AudioSource | None = None  # a job's own sound (vid2vid: the source's); --audio wins
    overlay: Callable[[int, Image.Image], Image.Image] | None = None  # drawn on frame i when encoding

    def durations(self) -> list[Fraction]:
        """How long each frame shows, in frame order."""
        if self.times is None:
            return [1 / self.fps] * self.frames
        last_end = self.end_time if self.end_time is not None else self.times[-1] + 1 / self.fps
        ends = [*self.times[1:], last_end]
        return [end - time for time, end in zip(self.times, ends, strict=True)]


FramesFn = Callable[..., Iterator["RenderedImage"]]


@dataclass(frozen=True)
class VideoJob:
    """A video job: ``plan(recipe) -> VideoPlan`` (no model), and
    ``frames(model, recipe, plan, *, start, store, on_step) -> Iterator[RenderedImage]`` yielding frames
    ``start, start+1, ...`` (``item.index`` is the frame number; ``item.facts["values"]`` its values);
    optionally ``finish(store, recipe, plan)``, run after the video is written."""

    name: str
    plan: Callable[[Any], VideoPlan]
    frames: FramesFn
    finish: Callable[[RunStore, Any, VideoPlan], None] | None = None  # after the video (contact sheet)


def video_job(name: str) -> VideoJob:
    """The VideoJob of a recipe's job name: the one defined in ``dreamreel.jobs.<name>``."""
    import importlib

    try:
        module = importlib.import_module(f"dreamreel.jobs.{name}")
    except ImportError:
        module = None
    for value in vars(module).values() if module is not None else ():
        if isinstance(value, VideoJob) and value.name == name:
            return value
    raise DreamreelError(f"{name!r} is not a video job (video jobs: sweep, vid2vid, zoom, interpolate)")


def run_video_job(
    job: VideoJob,
    recipe: VideoRecipe,
    *,
    quiet: bool = False,
    resume: bool = False,
    force: bool = False,
    model: LoadedModel | None = None,
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Run (or resume) a video job to its video file; returns the video's path."""
    from dreamreel.cli.progress import Progress
    from dreamreel.runs.store import RunStore

    say = echo or _stderr
    recipe.validate()  # everything checked before the model loads
    plan = job.plan(recipe)
    if plan.frames < 1:
        raise DreamreelError(f"{job.name}: nothing to render (0 frames)")
    if resume:
        store = RunStore.open(recipe.run_dir)
        _check_resumable(store.resume_conflicts(), store, force, say)
        start = len(store.done())
        store.truncate(start)
    else:
        store = RunStore.create(recipe.run_dir, recipe)
        start = 0
    if start < plan.frames:
        if model is None:
            model = _load(recipe, quiet, say)
        conflict = store.model_conflict(model.model_hash)
        _check_resumable([conflict] if conflict else [], store, force, say)
    with resumable(f"dreamreel resume {shlex.quote(str(store.folder))}"):
        if start < plan.frames:
            assert model is not None
            with Progress(plan.frames - start, unit="frame", quiet=quiet) as progress:
                frames = job.frames(model, recipe, plan, start=start, store=store, on_step=progress.on_step)
                for item in frames:
                    time = plan.times[item.index] if plan.times is not None else None
                    store.save(item, time=time)
                    progress.item_done()
        output = encode_run(store, recipe, plan, quiet=quiet)
    if job.finish is not None:
        job.finish(store, recipe, plan)
    if not quiet:
        say(f"run folder: {store.folder}")
    print(output)
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


def encode_run(store: RunStore, recipe: VideoRecipe, plan: VideoPlan, *, quiet: bool = False) -> Path:
    """Encode the finished frames on disk into ``recipe.output``, checked after writing."""
    from dreamreel import __version__
    from dreamreel.cli.progress import Progress
    from dreamreel.media.video import AudioSource, VideoWriter

    finished = len(store.done())
    if finished < plan.frames:
        raise DreamreelError(
            f"{store.folder} has {finished} of {plan.frames} frames; "
            f"finish it with: dreamreel resume {store.folder}"
        )
    order = playback_order(plan.frames, recipe.reverse, recipe.pingpong)
    durations = plan.durations()
    uniform = plan.times is None
    audio = AudioSource(recipe.audio, copy=True) if recipe.audio else plan.audio
    first = store.read_frame(0)
    metadata = {
        "dreamreel": json.dumps({"version": __version__, "recipe": recipe.to_dict()}, ensure_ascii=False),
        "comment": f"made with dreamreel {__version__}: dreamreel info on this file prints its recipe",
    }
    writer = VideoWriter(
        recipe.output,
        width=first.width,
        height=first.height,
        fps=plan.fps,
        time_base=plan.time_base,
        metadata=metadata,
        audio=audio,
    )
    time = Fraction(0)
    try:
        with Progress(len(order), unit="encoded frame", quiet=quiet) as progress:
            for index in order:
                picture = first if index == 0 else store.read_frame(index)
                if plan.overlay is not None:
                    picture = plan.overlay(index, picture)
                writer.add(picture, None if uniform else time)
                time += durations[index]
                progress.item_done()
    except BaseException:
        writer.abort()
        raise
    return writer.close(end_time=time)


def _check_resumable(problems: list[str], store: RunStore, force: bool, say: Callable[[str], None]) -> None:
    """Refuse a resume that would not be exact, unless forced (and then record that it was)."""
    if not problems:
        return
    if not force:
        raise DreamreelError(
            f"resuming {store.folder} would not be exact: {'; '.join(problems)}. "
            "Re-run it from its recipe, or resume anyway with --force"
        )
    say(f"resuming anyway (--force): {'; '.join(problems)}")
    store.record_forced(problems)


def _load(recipe: VideoRecipe, quiet: bool, say: Callable[[str], None]) -> LoadedModel:
    from dreamreel.models.loading import load_model_for

    if not quiet:
        say(f"loading model {recipe.model} ...")
    return load_model_for(recipe, quiet=quiet)


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr)
