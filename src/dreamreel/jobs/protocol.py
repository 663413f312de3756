"""What a job is: a declared object that plans without a model and yields finished frames.

    recipe --plan()--> Plan --frames(Context)--> Frame, Frame, ... --> store --> file

A ``Job`` names its recipe class and four things about itself:

- ``plan(recipe)``: everything knowable before the model loads (how many items, every item's
  scheduled values, each checked; timing, sound and source facts for videos). It is made once per
  run and handed to ``frames``; a source video is opened and probed there, once.
- ``frames(context)``: a generator of finished ``Frame``s for the positions ``context.wanted`` (all of
  them for a fresh run; the missing ones on a resume), in increasing order. Earlier finished frames
  come from ``context.history(i)``, as exact 8-bit pictures, so a resumed run feeds forward what an
  unbroken one fed forward, bit for bit.
- ``needs(recipe, k)``: the earlier frames frame ``k`` reads (a feedback film: k-1, k-2, 0); empty
  when items are independent.
- ``independent``: items may render in any order and on any worker (seed loops, sweeps,
  interpolations, vid2vid without feedback). Independent items render in batches fixed from item 0
  (``render.renderer.fixed_batches``), so an item always has the same company in its UNet call.

``stills`` jobs write one PNG per item into a folder (a seed loop); the others write a run folder
and a video. A new job is one module defining a recipe class and a ``Job``, plus one line in
``jobs/__init__.py``; it then inherits the job contract tests (tests/test_job_contract.py).

Pictures inside a job are [B, 3, H, W] float tensors in [0, 1]; PIL appears only in ``Frame.image``,
the 8-bit picture that goes to disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from dreamreel.recipes.base import Recipe

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from dreamreel.media.video import AudioSource
    from dreamreel.models.loading import LoadedModel
    from dreamreel.render.renderer import StepCallback
    from dreamreel.runs.store import RunStore

R = TypeVar("R", bound=Recipe)
History = Callable[[int], "torch.Tensor"]  # finished frame i as [1, 3, H, W] in [0, 1], 8-bit exact


@dataclass(frozen=True)
class Frame:
    """One finished picture: its position in the job, its seed, and the recipe that re-makes it alone."""

    index: int
    seed: int
    image: Image.Image
    recipe: Recipe
    parameters: str  # A1111 infotext
    facts: Mapping[str, Any] = field(default_factory=dict)  # model hash, effective steps, values...

    def png_info(self) -> Any:
        from dreamreel.runs.metadata import png_info

        return png_info(self.parameters, self.recipe.to_dict(), dict(self.facts))


@dataclass(frozen=True)
class Plan:
    """What a run will produce, known before the model loads."""

    count: int  # pictures of a seed loop, frames of a video
    values: Sequence[Mapping[str, Any]] = ()  # each item's scheduled values, checked
    fps: Fraction | None = None  # videos: the playing rate
    times: Sequence[Fraction] | None = None  # each frame's time (s) when the job keeps a source's timing
    end_time: Fraction | None = None  # when the last frame stops showing (with ``times``)
    time_base: Fraction | None = None  # the timestamp grid (with ``times``: the source's)
    audio: AudioSource | None = None  # a job's own sound (vid2vid: the source's); --audio wins
    overlay: Callable[[int, Image.Image], Image.Image] | None = None  # drawn on frame i when encoding
    facts: Mapping[str, Any] = field(default_factory=dict)  # job-specific facts (a source's size...)

    def durations(self) -> list[Fraction]:
        """How long each frame shows, in frame order."""
        if self.times is None:
            assert self.fps is not None
            return [Fraction(1) / self.fps] * self.count
        last_end = self.end_time if self.end_time is not None else self.times[-1] + Fraction(1) / (self.fps or 1)
        ends = [*self.times[1:], last_end]
        return [end - time for time, end in zip(self.times, ends, strict=True)]


def no_history(recipe: Any, index: int) -> Sequence[int]:
    return ()


class Samples(Protocol):
    """Input files an example recipe may name (the contract tests make them)."""

    picture: Path  # a small RGB picture
    video: Path  # a short source video
    folder: Path  # where outputs go


@dataclass(frozen=True)
class Context(Generic[R]):
    """Everything ``frames`` gets: the loaded model, the resolved recipe, its plan, what to yield."""

    model: LoadedModel
    recipe: R
    plan: Plan
    wanted: Sequence[int]  # positions to yield, increasing
    history: History | None = None  # earlier finished frames (feedback jobs, on a resume)
    on_step: StepCallback | None = None

    @property
    def start(self) -> int:
        return self.wanted[0] if self.wanted else self.plan.count


@dataclass(frozen=True)
class Job(Generic[R]):
    """A job, declared (see the module docstring)."""

    name: str
    recipe: type[R]
    plan: Callable[[R], Plan]
    frames: Callable[[Context[R]], Iterator[Frame]]
    summary: str
    independent: bool = True
    stills: bool = False
    needs: Callable[[R, int], Sequence[int]] = no_history
    example: Callable[[Samples], R] | None = None  # a small recipe with ``tiny``: contract tests, demos
    finish: Callable[[R, Plan, RunStore], None] | None = None  # after the video (a contact sheet)
