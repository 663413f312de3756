"""Video to video: the guide's phone video, split into frames, each re-dreamed with one prompt, joined.

Reading top to bottom: plan the source's frames and timing (one opening of the source, before any
model loads), then per frame: fit the upright source frame, optionally blend in the previous output
(``--feedback``), img2img it with the frame's seed and values (``--batch`` frames per UNet call when
they are independent and share steps, strength and guidance), optionally pull its colours toward the
source frame or the first output (``--color-match``). The video keeps the source's exact frame
times and its sound, copied untouched. strength, guidance, steps, color_strength and feedback may be
keyframe schedules over the selected frames.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from dreamreel.errors import DreamreelError
from dreamreel.jobs.protocol import Context, Frame, Job, Plan, Samples
from dreamreel.recipes.base import (
    CADENCE,
    GUIDANCE,
    STEPS,
    STRENGTH,
    Schedulable,
    Scheduled,
    VideoRecipe,
    check_batch,
    check_choice,
    check_interpolation,
    check_seed_settings,
    diffused_frames,
)
from dreamreel.recipes.control import ControlRecipe
from dreamreel.recipes.seeds import random_seeds

if TYPE_CHECKING:
    import torch

COLOR_MATCH_MODES = ("none", "source", "first")
FLOW_METHODS = ("dis", "farneback")


@dataclass(frozen=True, kw_only=True)
class Vid2VidRecipe(VideoRecipe, ControlRecipe):
    """Every frame of a video through img2img; the source's rate, timestamps and sound kept.

    ``fps`` None keeps the source's exact timing (a number retimes the frames to that rate). Sizes:
    neither given, the source's aspect at about the model's native size; one given, the other follows
    the aspect; both given, the frames are cropped to fill them. Always multiples of 8.
    """

    job: ClassVar[str] = "vid2vid"
    SCHEDULED = (
        STRENGTH, GUIDANCE, STEPS, Scheduled("color_strength", 0, 1), Scheduled("feedback", 0, 1), CADENCE,
    )  # fmt: skip

    steps: Schedulable = 50  # type: ignore[assignment]
    guidance: Schedulable = 7.5  # type: ignore[assignment]
    video: str = ""
    fps: str | int | float | None = None
    strength: Schedulable = 0.5
    seed: int | None = None  # None: one random seed, drawn and recorded
    seed_mode: str = "fixed"  # fixed: one seed for all frames (steadier); see recipes.seeds
    start: float | None = None  # seconds into the source
    end: float | None = None
    every: int = 1
    color_match: str = "none"  # none | source (each frame to its source frame) | first (to output 0)
    color_strength: Schedulable = 1.0
    feedback: Schedulable = 0.0  # blend the previous output into the next input by this much
    batch: int = 1
    mute: bool = False  # leave the source's sound out
    flow: bool = False  # --feedback warped along the source's optical flow, only where it is visible
    flow_noise: bool = False  # the seed's starting noise carried along the source's flow
    flow_method: str = "dis"  # dis | farneback (OpenCV)
    cadence: Schedulable = 1  # diffuse every Nth frame; the ones between follow the source's flow

    def has_source_picture(self) -> bool:
        return True

    def check(self) -> None:
        if not self.video:
            if self.flow or self.flow_noise:
                raise DreamreelError("--flow and --flow-noise follow a source video's motion: give --video")
            raise DreamreelError("vid2vid needs --video")
        super().check()
        check_seed_settings(self)
        if not isinstance(self.every, int) or isinstance(self.every, bool) or self.every < 1:
            raise DreamreelError(f"--every must be a whole number of at least 1, got {self.every}")
        for name, value in (("start", self.start), ("end", self.end)):
            if value is not None and (not math.isfinite(value) or value < 0):
                raise DreamreelError(f"--{name} must be seconds >= 0, got {value}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise DreamreelError(f"--end {self.end} must come after --start {self.start}")
        check_choice(self, "color_match", COLOR_MATCH_MODES)
        check_batch(self.batch)
        check_choice(self, "flow_method", FLOW_METHODS)
        for name in ("flow", "flow_noise"):
            if not isinstance(getattr(self, name), bool):
                raise DreamreelError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.moves():
            from dreamreel.media.flow import check_available

            check_available()
            if self.batch > 1:
                raise DreamreelError("--batch needs independent frames; --flow, --flow-noise and --cadence chain them")

    def resolved(self) -> Vid2VidRecipe:
        recipe = super().resolved()
        return recipe if recipe.seed is not None else recipe.replace(seed=random_seeds(1)[0])

    def check_together(self, values: dict[str, Any], index: int) -> None:
        super().check_together(values, index)
        if self.batch > 1 and values["feedback"] > 0:
            raise DreamreelError("--batch needs independent frames, but --feedback chains each to the one before")

    def feeds_back(self) -> bool:
        return not (self.is_plain_setting("feedback") and self.feedback == 0)

    def moves(self) -> bool:
        """Whether frames follow the source's optical flow (then they render one by one, in order)."""
        return self.flow or self.flow_noise or not (self.is_plain_setting("cadence") and self.cadence == 1)


def plan(recipe: Vid2VidRecipe) -> Plan:
    """The selected source frames' times (the source opened once); the source's exact timing unless
    ``--fps`` retimes them; every frame's values, checked."""
    from dreamreel.media.video import AudioSource, survey_video

    info, times = survey_video(recipe.video, start=recipe.start, end=recipe.end, every=recipe.every)
    if not times:
        if recipe.start is not None and info.duration is not None and recipe.start >= info.duration:
            raise DreamreelError(
                f"--start {recipe.start} is past the end of {recipe.video!r} ({info.duration:.2f}s)"
            )
        raise DreamreelError(f"{recipe.video!r} has no frames between the chosen --start and --end")
    first = times[0]
    step = recipe.every / info.rate  # how long the last frame shows: one (selected) frame's time
    if recipe.fps is None:
        shown = [t - first for t in times]
        gaps = [b - a for a, b in zip(shown, [*shown[1:], shown[-1] + step], strict=True)]
        values = recipe.checked_values(len(times), times=shown, durations=gaps)
    else:
        values = recipe.checked_values(len(times))
    facts = {"source": info}
    if recipe.interpolate_to is not None and recipe.fps is None:
        check_interpolation(recipe.interpolate_to, info.rate / recipe.every)
    if recipe.fps is not None:  # retimed: frame i at i / fps, and the source's sound no longer fits
        return Plan(count=len(times), values=values, fps=recipe.frame_rate(), facts=facts)
    audio = None
    if info.audio_codec and not recipe.mute and not recipe.output.lower().endswith(".gif"):  # GIF: no sound
        audio = AudioSource(recipe.video, start=first, copy=True)
    return Plan(
        count=len(times),
        values=values,
        fps=info.rate / recipe.every,
        times=[t - first for t in times],
        end_time=times[-1] - first + step,
        time_base=info.time_base,
        audio=audio,
        facts=facts,
    )


def needs(recipe: Vid2VidRecipe, index: int) -> Sequence[int]:
    if recipe.moves():  # flow and cadence chain every frame to the diffused ones before it
        return list(range(index))
    wanted = set()
    if recipe.feeds_back() and index > 0:
        wanted.add(index - 1)
    if recipe.color_match == "first" and index > 0:
        wanted.add(0)
    return sorted(wanted)


def frames(context: Context[Vid2VidRecipe]) -> Iterator[Frame]:
    """The wanted frames (a suffix of the run); earlier finished frames (for --feedback and
    --color-match first) come from the history: exact 8-bit pictures, so a resume continues exactly."""
    import torch

    from dreamreel.jobs.control import control_infotext, frame_controls
    from dreamreel.jobs.still_pictures import infotext, target_size
    from dreamreel.media.pictures import quantize, resize_image, tensor_to_pil, to_unit_tensor
    from dreamreel.media.treatments import color_match
    from dreamreel.media.video import read_frames
    from dreamreel.render.renderer import Renderer, effective_steps

    if context.recipe.moves():
        yield from _moving_frames(context)
        return
    model, recipe, plan = context.model, context.recipe, context.plan
    info = plan.facts["source"]
    width, height = target_size(model, (info.width, info.height), recipe.width, recipe.height)
    renderer = Renderer(model, recipe.scheduler)
    conditioning = renderer.encode(recipe.prompt, recipe.negative)
    values = plan.values
    # Batches are fixed from frame 0, so a resume renders the batch holding frame ``start`` whole
    # (its earlier frames again, identical, not yielded): every frame comes out of its first batch.
    batches = _batches(values, recipe.batch, context.start)
    first = batches[0][0] if batches else context.start
    first_output: torch.Tensor | None = None
    previous: torch.Tensor | None = None
    if first > 0 and context.history is not None:
        if recipe.color_match == "first":
            first_output = context.history(0)
        if recipe.feeds_back():  # then --batch is 1 (checked): first == start
            previous = context.history(first - 1)
    source = read_frames(recipe.video, start=recipe.start, end=recipe.end, every=recipe.every, skip=first)
    numbered = enumerate(source, first)
    for batch in batches:
        chunk = [next(numbered) for _ in batch]
        v = values[chunk[0][0]]  # the same steps, strength and guidance for the whole chunk
        fitted = [resize_image(f.image, width, height, "crop") for _, f in chunk]
        sources = to_unit_tensor(fitted)
        # with --batch > 1 feedback is 0 throughout (checked): no frame needs the one before it in a chunk
        inputs = [
            _fed(sources[j : j + 1], previous, values[i]["feedback"]) for j, (i, _) in enumerate(chunk)
        ]
        seeds = [recipe.seed_of(i) for i, _ in chunk]
        pictures = renderer.generate(
            [conditioning] * len(chunk), seeds, steps=v["steps"], guidance=v["guidance"], width=width,
            height=height, init_images=torch.cat(inputs), strength=v["strength"], on_step=context.on_step,
            control=frame_controls(model, recipe, fitted),  # ControlNets: from each source frame
        )  # fmt: skip
        for j, ((index, frame), seed) in enumerate(zip(chunk, seeds, strict=True)):
            output = quantize(pictures[j : j + 1])
            pull = values[index]["color_strength"]
            if recipe.color_match == "source":
                output = color_match(output, sources[j : j + 1], strength=pull)
            elif recipe.color_match == "first":
                if first_output is None:
                    first_output = output  # frame 0 is the reference, unchanged
                else:
                    output = color_match(output, first_output, strength=pull)
            previous = output
            if index < context.start:
                continue
            frame_values = values[index]
            parameters = infotext(
                model, renderer, prompt=recipe.prompt, negative=recipe.negative, steps=frame_values["steps"],
                guidance=frame_values["guidance"], seed=seed, width=width, height=height,
                strength=frame_values["strength"], extra={"Frame": index, **control_infotext(model, recipe)},
            )  # fmt: skip
            yield Frame(
                index=index,
                seed=seed,
                image=tensor_to_pil(output)[0],
                recipe=recipe.replace(width=width, height=height, scheduler=renderer.scheduler_name),
                parameters=parameters,
                facts={
                    "model_hash": model.model_hash,
                    "effective_steps": effective_steps(frame_values["steps"], frame_values["strength"]),
                    "values": {"source_time": round(float(frame.time), 6), **frame_values},
                },
            )


# -- frames that follow the source's motion: --flow, --flow-noise, --cadence ----------------------


@dataclass
class _Step:
    """One selected source frame, its motion from the frame before, and its moving noise."""

    index: int
    time: Any
    source: torch.Tensor  # [1, 3, H, W], byte / 255
    pair: Any  # media.flow.FramePair from the frame before (None for frame 0)
    noise: torch.Tensor | None  # --flow-noise: the starting latent noise of this frame


def _steps(context: Context[Vid2VidRecipe], width: int, height: int, latent: tuple[int, int, int]) -> Iterator[_Step]:
    """Every selected source frame from the first, with the flow from the one before (computed once,
    streamed: memory flat in the length) and, for --flow-noise, the noise carried along it."""
    from dreamreel.media import flow, noise
    from dreamreel.media.pictures import resize_image, to_unit_tensor
    from dreamreel.media.video import read_frames
    from dreamreel.render.renderer import seeded_generator

    recipe = context.recipe
    previous: Any = None
    canvas: torch.Tensor | None = None
    for frame in read_frames(recipe.video, start=recipe.start, end=recipe.end, every=recipe.every):
        source = to_unit_tensor([resize_image(frame.image, width, height, "crop")])
        array = flow.to_array(source)
        pair = flow.FramePair.of(previous, array, recipe.flow_method) if previous is not None else None
        previous = array
        step_noise = None
        if recipe.flow_noise:
            seed = recipe.seed_of(frame.index)
            if canvas is None or pair is None:  # the first frame's canvas comes from its seed
                canvas = noise.canvas(latent[0], height, width, seeded_generator(seed))
            else:
                sources = noise.Sources.along(pair.to_earlier, pair.seen_before)
                canvas = noise.carry(canvas, sources, seeded_generator(noise.refill_seed(seed, frame.index)))
            step_noise = noise.cells(canvas, height // latent[1])
        yield _Step(frame.index, frame.time, source, pair, step_noise)


def _moving_frames(context: Context[Vid2VidRecipe]) -> Iterator[Frame]:
    """The frames when they follow the source's motion, one by one in order.

    Diffused frames (all of them, or every ``--cadence``-th) are img2img of their source frame ``s_k``
    with the input (``q``: rounded to 8 bits; ``f_k``: --feedback; ``y``: the previous output carried
    into frame k-1's geometry, see below)::

        --flow:    x_k = q(s_k + (warp(y, F_k) - s_k) * f_k * M_k)
        otherwise: x_k = q(s_k + (y - s_k) * f_k)          (the unwarped, ghosting feedback)

    where ``F_k = flow(s_k, s_{k-1})`` and ``M_k`` is 1 where frame k's pixel was visible in frame k-1
    (media.flow.FramePair). With a cadence, a frame i between diffused frames p and n is
    ``q(A_i + (B_i - A_i) * (i - p) / (n - p))``: ``A`` is output p carried forward along the flow
    (``A_p = y_p``, ``A_i = warp(A_{i-1}, F_i)``), ``B`` output n carried back (``B_n = y_n``,
    ``B_i = warp(B_{i+1}, flow(s_i, s_{i+1}))``); after the last diffused frame, ``q(A_i)``. The
    previous output a diffused frame n sees is ``A_{n-1}`` (with cadence 1: output n-1 itself).
    Everything is a pure function of the source, the recipe and earlier outputs as 8-bit pictures,
    so a resume re-derives the same state from the run folder and continues exactly."""
    import torch

    from dreamreel.jobs.still_pictures import target_size
    from dreamreel.media import flow
    from dreamreel.media.pictures import quantize
    from dreamreel.media.treatments import blend, color_match
    from dreamreel.render.renderer import Renderer

    model, recipe, plan = context.model, context.recipe, context.plan
    info = plan.facts["source"]
    width, height = target_size(model, (info.width, info.height), recipe.width, recipe.height)
    renderer = Renderer(model, recipe.scheduler)
    conditioning = renderer.encode(recipe.prompt, recipe.negative)
    values = plan.values
    keys = diffused_frames(list(values))
    start = context.start
    resume_key = max((k for k in keys if k < start), default=None)  # its output comes from the history
    first_output = context.history(0) if start > 0 and context.history is not None else None
    steps = _steps(context, width, height, renderer.latent_shape(width, height))

    def diffuse(step: _Step, carried: torch.Tensor | None) -> torch.Tensor:
        nonlocal first_output
        v = values[step.index]
        picture = step.source
        if carried is not None and v["feedback"] > 0:
            if recipe.flow:
                moved = flow.warp_tensor(carried, step.pair.to_earlier)
                seen = torch.from_numpy(step.pair.seen_before)[None, None]
                picture = quantize(blend(step.source, moved, seen * v["feedback"]))
            else:
                picture = _fed(step.source, carried, v["feedback"])
        rendered = renderer.generate(
            [conditioning], [recipe.seed_of(step.index)], steps=v["steps"], guidance=v["guidance"], width=width,
            height=height, init_images=picture, strength=v["strength"], on_step=context.on_step,
            start_noise=step.noise,
        )  # fmt: skip
        output = quantize(rendered)
        if recipe.color_match == "source":
            output = color_match(output, step.source, strength=v["color_strength"])
        elif recipe.color_match == "first":
            if first_output is None:
                first_output = output
            else:
                output = color_match(output, first_output, strength=v["color_strength"])
        return output

    def finished(step: _Step, output: torch.Tensor, diffused: bool) -> Frame:
        return _frame(context, renderer, step, output, width, height, diffused)

    carried: torch.Tensor | None = None  # the last diffused output, moved into the last frame's geometry
    pending: tuple[int, list[_Step], list[torch.Tensor]] | None = None  # a segment waiting for its next key
    bounds = [*keys, len(values)]
    for key, following in itertools.pairwise(bounds):
        segment = [next(steps) for _ in range(key, following)]
        if resume_key is not None and key < resume_key:
            continue
        if key == resume_key:
            assert context.history is not None
            output = context.history(key)
        else:
            output = diffuse(segment[0], carried)
        if pending is not None:
            yield from _between(start, pending, (segment[0], output), finished)
        if key >= start:
            yield finished(segment[0], output, True)
        chain = [output]
        for step in segment[1:]:
            chain.append(flow.warp_tensor(chain[-1], step.pair.to_earlier))
        carried = chain[-1]
        pending = (key, segment, chain)
    if pending is not None:
        yield from _between(start, pending, None, finished)


def _between(
    start: int,
    pending: tuple[int, list[_Step], list[torch.Tensor]],
    following: tuple[_Step, torch.Tensor] | None,
    finished: Callable[[_Step, torch.Tensor, bool], Frame],
) -> Iterator[Frame]:
    """The wanted in-between frames of a cadence segment (see ``_moving_frames``); ``following``: the
    next diffused frame's step and output (None after the last one)."""
    from dreamreel.media import flow
    from dreamreel.media.pictures import quantize
    from dreamreel.media.treatments import blend

    key, segment, chain = pending
    span = len(segment)
    back: list[torch.Tensor | None] = [None] * span
    if following is not None:  # B: the next diffused output carried back, frame by frame
        steps = [*segment, following[0]]
        moving = following[1]
        for offset in range(span - 1, 0, -1):
            moving = flow.warp_tensor(moving, steps[offset + 1].pair.to_later)
            back[offset] = moving
    for offset in range(1, span):
        if key + offset < start:
            continue
        other = back[offset]
        forward = chain[offset]
        picture = quantize(forward if other is None else blend(forward, other, offset / span))
        yield finished(segment[offset], picture, False)


def _frame(
    context: Context[Vid2VidRecipe], renderer: Any, step: _Step, output: torch.Tensor, width: int, height: int,
    diffused: bool,
) -> Frame:
    """A finished frame of the moving path (the same record as the plain path's)."""
    from dreamreel.jobs.still_pictures import infotext
    from dreamreel.media.pictures import tensor_to_pil
    from dreamreel.render.renderer import effective_steps

    model, recipe = context.model, context.recipe
    v = context.plan.values[step.index]
    seed = recipe.seed_of(step.index)
    extra: dict[str, Any] = {"Frame": step.index}
    if not diffused:
        extra["Cadence"] = "in-between (moved, not diffused)"
    parameters = infotext(
        model, renderer, prompt=recipe.prompt, negative=recipe.negative, steps=v["steps"], guidance=v["guidance"],
        seed=seed, width=width, height=height, strength=v["strength"], extra=extra,
    )  # fmt: skip
    return Frame(
        index=step.index,
        seed=seed,
        image=tensor_to_pil(output)[0],
        recipe=recipe.replace(width=width, height=height, scheduler=renderer.scheduler_name),
        parameters=parameters,
        facts={
            "model_hash": model.model_hash,
            "effective_steps": effective_steps(v["steps"], v["strength"]) if diffused else 0,
            "diffused": diffused,
            "values": {"source_time": round(float(step.time), 6), **v},
        },
    )


def _fed(source: torch.Tensor, previous: torch.Tensor | None, amount: float) -> torch.Tensor:
    """A frame's img2img input: the source, with ``amount`` of the previous output blended in, on the
    8-bit grid (so the input is the same whether the previous output came from memory or its PNG)."""
    from dreamreel.media.pictures import quantize
    from dreamreel.media.treatments import blend

    return quantize(blend(source, previous, amount)) if previous is not None and amount > 0 else source


def _render_key(values: Any) -> tuple[Any, ...]:
    """Frames may share a UNet call only when everything the denoising loop takes is equal."""
    return values["steps"], values["strength"], values["guidance"]


def _batches(values: Sequence[Any], size: int, start: int) -> list[list[int]]:
    """Frame indices per UNet call, fixed by position from frame 0: runs of consecutive frames with
    equal steps, strength and guidance, cut every ``size`` frames; only the batches holding a frame
    >= ``start``. A batch's pictures equal single renders only within rounding, so a resume must
    form the same batches as the first run to give the same bits."""
    batches: list[list[int]] = []
    for index, frame_values in enumerate(values):
        last = batches[-1] if batches else None
        if last and len(last) < size and _render_key(values[last[0]]) == _render_key(frame_values):
            last.append(index)
        else:
            batches.append([index])
    return [batch for batch in batches if batch[-1] >= start]


def example(samples: Samples) -> Vid2VidRecipe:
    return Vid2VidRecipe(prompt="an aardvark", model="tiny", steps=5, strength=0.6, width=32, height=32,
                         video=str(samples.video), seed=5, feedback=0.3, color_match="first",
                         color_strength=0.7, output=str(samples.folder / "vid2vid.mp4"))  # fmt: skip


JOB = Job(
    example=example, name="vid2vid", recipe=Vid2VidRecipe, plan=plan, frames=frames, needs=needs,
    independent=False,  # feedback and colour match "first" chain frames; plain ones batch anyway
    summary="Every frame of a video through img2img: same timing, same sound, upright.",
)  # fmt: skip
