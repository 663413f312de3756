"""The zoom film: generate, warp, treat the colours, feed back, again and again (the guide's favourite).

Frame 0 comes from ``start``: a picture of pure noise (the guide's way, the default) or an image, each
put through img2img with the prompt; or plain txt2img. Every later frame n, in this order (SPEC):

1. warp frame n-1: zoom, angle, tx, ty about the centre, uncovered edges filled by ``border``;
2. blend in frame n-2 (``blend_back``, the guide's calmer 90 %), itself warped by frames n-1's and
   n's motion so that it lines up with the warped frame n-1;
3. input-only colour treatment: colour match to the reference (``first``: frame 0's output,
   ``previous``: frame n-1's), then grayscale, tint, contrast. The match comes first so that it
   does not undo the grey or the tint the user asked for;
4. seeded noise;
5. img2img with frame n's strength, guidance, steps, prompt and seed.

Every numeric setting is a keyframe schedule (see keyframes.py). A frame is a pure function of the
recipe and the earlier frames as 8-bit pictures: what is fed forward is the quantized picture, and a
resume reads earlier frames back through the same conversion (``media.pictures.to_unit_tensor``), so
the frame in memory and the frame from its PNG are the same floats and a resume continues exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dreamreel.errors import DreamreelError
from dreamreel.jobs.protocol import Context, Frame, Job, Plan, Samples
from dreamreel.keyframes import PromptSchedule, parse_prompts
from dreamreel.media.treatments import BORDERS, COLOR_SPACES
from dreamreel.recipes.base import (
    CADENCE,
    GUIDANCE,
    STEPS,
    STRENGTH,
    Schedulable,
    Scheduled,
    VideoRecipe,
    check_choice,
    check_frames,
    check_seed_settings,
    diffused_frames,
)
from dreamreel.recipes.control import ControlRecipe

if TYPE_CHECKING:
    import torch

    from dreamreel.models.loading import LoadedModel
    from dreamreel.render.renderer import Conditioning, Renderer

COLOR_MATCH = ("none", "first", "previous")
STARTS = ("noise", "txt2img")  # or the path of an image


@dataclass(frozen=True, kw_only=True)
class ZoomRecipe(VideoRecipe, ControlRecipe):
    """The feedback zoom film; defaults follow the guide (seed 1, guidance 8.5, strength 0.5, 50 steps)."""

    job: ClassVar[str] = "zoom"
    SCHEDULED = (
        Scheduled("zoom", 0, above=True), Scheduled("angle"), Scheduled("tx"), Scheduled("ty"),
        STRENGTH, GUIDANCE, STEPS, Scheduled("noise", 0), Scheduled("contrast", 0),
        Scheduled("blend_back", 0, 1), Scheduled("color_strength", 0, 1), CADENCE,
    )  # fmt: skip

    prompt: str = ""
    prompts: str = ""  # keyframed prompts "0:a cat, 60:a dog" (or a file of such lines); wins over prompt
    prompt_blend: bool = False  # lerp the embeddings between prompt keyframes instead of holding
    frames: int = 48
    seed: int = 1
    seed_mode: str = "fixed"
    guidance: Schedulable = 8.5  # type: ignore[assignment]
    steps: Schedulable = 50  # type: ignore[assignment]
    strength: Schedulable = 0.5
    zoom: Schedulable = 1.04
    angle: Schedulable = 0.5
    tx: Schedulable = 1.0
    ty: Schedulable = 0.0
    border: str = "replicate"
    blend_back: Schedulable = 0.0
    grayscale: bool = False
    tint: str = ""  # "brown:0.15" or "#8b5a2b:0.2"
    color_match: str = "none"
    color_space: str = "lab"
    color_strength: Schedulable = 1.0
    contrast: Schedulable = 1.0
    noise: Schedulable = 0.0
    start: str = "noise"  # noise | txt2img | path of an image
    cadence: Schedulable = 1  # diffuse every Nth frame; the ones between are warped and cross-faded
    flow_noise: bool = False  # the seed's starting noise carried along the zoom's motion (media.noise)

    def has_source_picture(self) -> bool:
        return True  # each frame's img2img input (the warped previous frame)

    def check(self) -> None:
        check_frames(self.frames)
        check_seed_settings(self)
        super().check()
        if not self.prompt.strip() and not self.prompts.strip():
            raise DreamreelError("zoom needs a PROMPT or --prompts")
        self.prompt_schedule()
        check_choice(self, "border", BORDERS)
        check_choice(self, "color_match", COLOR_MATCH)
        check_choice(self, "color_space", COLOR_SPACES)
        if self.tint:
            self.tint_color()
        if self.start not in STARTS:
            from dreamreel.media.pictures import open_image_checked

            open_image_checked(self.start)

    def resolved(self) -> ZoomRecipe:
        """A prompts file's lines go into the recipe: re-runs need no file."""
        recipe = super().resolved()
        text = recipe.prompts_text()
        return recipe if text == recipe.prompts else recipe.replace(prompts=text)

    def uses_cadence(self) -> bool:
        return not (self.is_plain_setting("cadence") and self.cadence == 1)

    def unchecked(self, index: int) -> tuple[str, ...]:
        return ("strength",) if index == 0 and self.start == "txt2img" else ()

    def prompts_text(self) -> str:
        """``prompts`` itself, or the keyframe lines of the .txt file it names, joined."""
        if not self.prompts or "\n" in self.prompts or Path(self.prompts).suffix.lower() != ".txt":
            return self.prompts
        path = Path(self.prompts)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DreamreelError(f"--prompts file {self.prompts!r} cannot be read: {exc}") from exc
        return ", ".join(line.strip() for line in lines if line.strip() and not line.startswith("#"))

    def prompt_schedule(self) -> PromptSchedule:
        schedule = parse_prompts(self.prompts_text() or self.prompt)
        schedule.frames(self.frames - 1)
        return schedule

    def tint_color(self) -> tuple[tuple[float, float, float], float]:
        from dreamreel.media.treatments import parse_color

        color, _, amount = self.tint.rpartition(":")
        try:
            value = float(amount)
        except ValueError:
            value = -1.0
        if not color or not 0 <= value <= 1:
            raise DreamreelError(
                f"--tint {self.tint!r}: write COLOR:AMOUNT with AMOUNT from 0 to 1, e.g. brown:0.15"
            )
        return parse_color(color), value


def plan(recipe: ZoomRecipe) -> Plan:
    return Plan(count=recipe.frames, values=recipe.checked_values(recipe.frames), fps=recipe.frame_rate())


def needs(recipe: ZoomRecipe, index: int) -> Sequence[int]:
    """Frame k reads frame k-1 (the one it warps), k-2 (blend-back) and 0 (colour reference "first");
    with a cadence, the diffused frame before it (and that one's neighbours): any earlier frame."""
    if recipe.uses_cadence():
        return list(range(index))
    return sorted({i for i in (index - 1, index - 2, 0) if 0 <= i < index})


@dataclass
class _State:
    """What the next frame needs from the past, as 8-bit-exact [1, 3, H, W] pictures in [0, 1]."""

    previous: torch.Tensor | None = None  # frame n-1
    before: torch.Tensor | None = None  # frame n-2
    first: torch.Tensor | None = None  # frame 0 (colour reference "first")


def frames(context: Context[ZoomRecipe]) -> Iterator[Frame]:
    """Frames from ``context.start`` on; a resume reads frames start-1, start-2 and 0 from the history."""
    from dreamreel.render.renderer import Renderer

    model, recipe, start = context.model, context.recipe, context.start
    renderer = Renderer(model, recipe.scheduler)
    width, height = _frame_size(model, recipe)
    prompts = recipe.prompt_schedule()
    noise = _MovingNoise(context, renderer, width, height) if recipe.flow_noise else None
    if recipe.uses_cadence():
        yield from _cadence_frames(context, renderer, prompts, width, height, noise)
        return
    state = _State()
    if start > 0:
        if context.history is None:
            raise ValueError("starting after frame 0 needs the history of finished frames")
        state.previous = context.history(start - 1)
        state.before = context.history(start - 2) if start >= 2 else None
        state.first = context.history(0)
    for index in range(start, recipe.frames):
        item, picture = _render_frame(context, renderer, prompts, state, index, width, height, noise)
        state.before, state.previous = state.previous, picture
        if index == 0:
            state.first = picture
        yield item


def _motion(v: Any) -> dict[str, float]:
    return {"zoom": v["zoom"], "angle": v["angle"], "tx": v["tx"], "ty": v["ty"]}


class _MovingNoise:
    """--flow-noise: each frame's starting noise, the noise canvas (media.noise) of frame 0's seed
    carried along every frame's motion (the exact map of ``treatments.warp``), fresh noise where the
    motion uncovers the edges. Advanced frame by frame from 0, so a resume replays it exactly."""

    def __init__(self, context: Context[ZoomRecipe], renderer: Renderer, width: int, height: int) -> None:
        from dreamreel.media import noise
        from dreamreel.render.renderer import seeded_generator

        self.context, self.width, self.height = context, width, height
        channels, latent_height, _ = renderer.latent_shape(width, height)
        self.factor = height // latent_height
        self.index = 0
        self.canvas = noise.canvas(channels, height, width, seeded_generator(context.recipe.seed_of(0)))

    def at(self, index: int) -> torch.Tensor:
        from dreamreel.media import noise, treatments
        from dreamreel.render.renderer import seeded_generator

        recipe, values = self.context.recipe, self.context.plan.values
        if index < self.index:
            raise ValueError("the moving noise only goes forward")
        while self.index < index:
            self.index += 1
            v = values[self.index]
            x, y = treatments.motion_coordinates(
                self.height, self.width, zoom=v["zoom"], angle=v["angle"], tx=v["tx"], ty=v["ty"]
            )
            if recipe.border == "wrap":  # what leaves one edge comes back at the other
                x, y = x.remainder(self.width), y.remainder(self.height)
            sources = noise.Sources.at(x.numpy(), y.numpy())
            refill = seeded_generator(noise.refill_seed(recipe.seed_of(self.index), self.index))
            self.canvas = noise.carry(self.canvas, sources, refill)
        return noise.cells(self.canvas, self.factor)


def _cadence_frames(
    context: Context[ZoomRecipe], renderer: Renderer, prompts: PromptSchedule, width: int, height: int,
    noise: _MovingNoise | None = None,
) -> Iterator[Frame]:
    """A film diffused every ``--cadence`` frames (Deforum's diffusion cadence).

    Between diffused frames p and n (n - p = cadence at p), frame i is
    ``q(A_i + (B_i - A_i) * (i - p) / (n - p))``, ``q`` rounding to 8 bits: ``A`` is output p moved on
    by each frame's motion (``A_p = y_p``, ``A_i = warp(A_{i-1}, motion_i)``) and ``B`` output n moved
    back (``B_n = y_n``, ``B_i = warp(B_{i+1}, inverse of motion_{i+1})``); after the last diffused
    frame, ``q(A_i)``. Diffused frame n is made as usual (steps 1-5 of the module docstring) with
    ``A_{n-1}`` as its frame n-1 and ``A_{n-2}`` (or frame n-2, when that is p-1) as its frame n-2.
    A resume reads the last diffused frame before it from the run folder and re-diffuses the next
    one, so every frame comes out as in an unbroken run."""
    from dreamreel.media import treatments
    from dreamreel.media.pictures import quantize

    recipe, values, start = context.recipe, context.plan.values, context.start
    keys = diffused_frames(list(values))
    resume_key = max((k for k in keys if k < start), default=None)
    history = context.history
    first = history(0) if start > 0 and history is not None else None
    chain: list[torch.Tensor] = []  # A of the segment before, from its diffused frame on
    previous_key: int | None = None
    recent: dict[int, torch.Tensor] = {}  # the last finished frames (blend-back may read frame n-2)

    def finished(index: int, picture: torch.Tensor) -> None:
        recent[index] = picture
        recent.pop(index - 3, None)

    bounds = [*keys, len(values)]
    for key, following in itertools.pairwise(bounds):
        if resume_key is not None and key < resume_key:
            continue
        item: Frame | None = None
        if key == resume_key:
            assert history is not None
            output = history(key)
        else:
            state = _State(first=first)
            if key > 0:
                assert previous_key is not None
                state.previous = chain[key - 1 - previous_key]
                if key - 2 >= previous_key:
                    state.before = chain[key - 2 - previous_key]
                elif key >= 2:
                    assert key - 2 in recent or history is not None
                    state.before = recent[key - 2] if key - 2 in recent else history(key - 2)  # type: ignore[misc]
            item, output = _render_frame(context, renderer, prompts, state, key, width, height, noise)
            if key == 0:
                first = output
        if previous_key is not None:  # the frames between the last diffused one and this one
            back = output
            moved_back: dict[int, torch.Tensor] = {}
            for index in range(key - 1, previous_key, -1):
                undo = treatments.inverse_motion(**_motion(values[index + 1]))
                back = treatments.warp(back, **undo, border=recipe.border)
                moved_back[index] = back
            span = key - previous_key
            for index in range(previous_key + 1, key):
                picture = quantize(
                    treatments.blend(chain[index - previous_key], moved_back[index], (index - previous_key) / span)
                )
                finished(index, picture)
                if index >= start:
                    yield _moved_frame(context, renderer, prompts, index, picture, width, height)
        finished(key, output)
        if item is not None:
            yield item
        chain = [output]
        for index in range(key + 1, following):
            chain.append(treatments.warp(chain[-1], **_motion(values[index]), border=recipe.border))
        previous_key = key
    assert previous_key is not None
    for index in range(previous_key + 1, len(values)):  # after the last diffused frame: moved on only
        if index >= start:
            picture = quantize(chain[index - previous_key])
            yield _moved_frame(context, renderer, prompts, index, picture, width, height)


def _moved_frame(
    context: Context[ZoomRecipe], renderer: Renderer, prompts: PromptSchedule, index: int, picture: torch.Tensor,
    width: int, height: int,
) -> Frame:
    """A cadence frame that was moved, not diffused: the same record, marked, with 0 effective steps."""
    from dreamreel.jobs.still_pictures import infotext
    from dreamreel.media.pictures import tensor_to_pil

    model, recipe = context.model, context.recipe
    v = dict(context.plan.values[index])
    seed = recipe.seed_of(index)
    prompt, _, _ = prompts.at(index, recipe.frames - 1)
    parameters = infotext(
        model, renderer, prompt=prompt, negative=recipe.negative, steps=int(v["steps"]), guidance=float(v["guidance"]),
        seed=seed, width=width, height=height, strength=float(v["strength"]),
        extra={"Frame": index, "Cadence": "in-between (moved, not diffused)"},
    )  # fmt: skip
    facts: dict[str, Any] = {
        "frame": index, "seed": seed, "diffused": False, "effective_steps": 0, "model_hash": model.model_hash,
        "values": {k: (int(x) if k == "steps" else round(float(x), 9)) for k, x in v.items()}, "prompt": prompt,
    }  # fmt: skip
    return Frame(
        index=index, seed=seed, image=tensor_to_pil(picture)[0], recipe=recipe, parameters=parameters, facts=facts
    )


def _frame_size(model: LoadedModel, recipe: ZoomRecipe) -> tuple[int, int]:
    if recipe.start not in STARTS:
        from dreamreel.jobs.still_pictures import target_size
        from dreamreel.media.pictures import load_image

        return target_size(model, load_image(recipe.start).size, recipe.width, recipe.height)
    return recipe.width or model.native_size, recipe.height or model.native_size


def _conditioning(
    renderer: Renderer, recipe: ZoomRecipe, prompts: PromptSchedule, index: int
) -> tuple[Conditioning, str, dict[str, Any]]:
    current, following, weight = prompts.at(index, recipe.frames - 1)
    cond = renderer.encode(current, recipe.negative)
    facts: dict[str, Any] = {"prompt": current}
    if recipe.prompt_blend and weight > 0 and following != current:
        cond = cond.lerp(renderer.encode(following, recipe.negative), weight)
        facts.update(prompt_next=following, prompt_blend=round(weight, 6))
    return cond, current, facts


def _start_picture(recipe: ZoomRecipe, seed: int, width: int, height: int) -> torch.Tensor:
    """Frame 0's input: a picture of pure noise (uniform, seeded), or the user's image fitted to size."""
    import torch

    from dreamreel.media.pictures import load_image, quantize, resize_image, to_unit_tensor
    from dreamreel.render.renderer import seeded_generator

    if recipe.start == "noise":
        return quantize(torch.rand((1, 3, height, width), generator=seeded_generator(seed)))
    return to_unit_tensor([resize_image(load_image(recipe.start), width, height, "crop")])


def _treated_input(
    recipe: ZoomRecipe, state: _State, v: dict[str, Any], last: dict[str, Any], seed: int
) -> torch.Tensor:
    """Steps 1-4 of a frame: the picture img2img starts from (``last``: frame n-1's values)."""
    from dreamreel.media import treatments

    motion = {"zoom": v["zoom"], "angle": v["angle"], "tx": v["tx"], "ty": v["ty"]}
    assert state.previous is not None
    picture = treatments.warp(state.previous, **motion, border=recipe.border)
    if v["blend_back"] > 0 and state.before is not None:
        before = treatments.warp(
            state.before, zoom=last["zoom"], angle=last["angle"], tx=last["tx"], ty=last["ty"], border=recipe.border
        )
        before = treatments.warp(before, **motion, border=recipe.border)
        picture = treatments.blend(picture, before, v["blend_back"])
    if recipe.color_match != "none" and v["color_strength"] > 0:
        reference = state.first if recipe.color_match == "first" else state.previous
        assert reference is not None
        picture = treatments.color_match(picture, reference, strength=v["color_strength"], space=recipe.color_space)
    if recipe.grayscale:
        picture = treatments.grayscale(picture)
    if recipe.tint:
        color, amount = recipe.tint_color()
        picture = treatments.tint(picture, color, amount)
    if v["contrast"] != 1:
        picture = treatments.contrast(picture, v["contrast"])
    if v["noise"] > 0:
        picture = treatments.add_noise(picture, v["noise"], seed)
    return picture


def _render_frame(
    context: Context[ZoomRecipe],
    renderer: Renderer,
    prompts: PromptSchedule,
    state: _State,
    index: int,
    width: int,
    height: int,
    noise: _MovingNoise | None = None,
) -> tuple[Frame, torch.Tensor]:
    from dreamreel.jobs.control import control_infotext, picture_control
    from dreamreel.jobs.still_pictures import infotext
    from dreamreel.media.pictures import quantize, tensor_to_pil
    from dreamreel.render.renderer import effective_steps

    model, recipe, values = context.model, context.recipe, context.plan.values
    v = dict(values[index])
    seed = recipe.seed_of(index)
    steps, guidance = int(v["steps"]), float(v["guidance"])
    cond, prompt, prompt_facts = _conditioning(renderer, recipe, prompts, index)
    strength: float | None = float(v["strength"])
    if index == 0 and recipe.start == "txt2img":
        strength, init = None, None
    elif index == 0:
        init = _start_picture(recipe, recipe.seed, width, height)
    else:
        init = _treated_input(recipe, state, v, dict(values[index - 1]), seed)
    moving = noise.at(index) if noise is not None else None  # --flow-noise: starts txt2img, or img2img adds it
    output = renderer.generate(
        [cond], [seed], steps=steps, guidance=guidance, width=width, height=height, init_images=init,
        strength=strength, on_step=context.on_step, noise=moving if init is None else None,
        start_noise=moving if init is not None else None,
        control=picture_control(model, recipe, init),  # ControlNets: from the warped input
    )  # fmt: skip
    picture = quantize(output)  # what goes forward is exactly what the PNG holds
    parameters = infotext(
        model, renderer, prompt=prompt, negative=recipe.negative, steps=steps, guidance=guidance,
        seed=seed, width=width, height=height, strength=strength,
        extra={"Frame": index, **(control_infotext(model, recipe) if init is not None else {})},
    )  # fmt: skip
    facts: dict[str, Any] = {
        "frame": index,
        "seed": seed,
        "values": {k: (int(x) if k == "steps" else round(float(x), 9)) for k, x in v.items()},
        "effective_steps": effective_steps(steps, strength),
        "model_hash": model.model_hash,
        **prompt_facts,
    }
    item = Frame(
        index=index, seed=seed, image=tensor_to_pil(picture)[0], recipe=recipe, parameters=parameters, facts=facts
    )
    return item, picture


def example(samples: Samples) -> ZoomRecipe:
    return ZoomRecipe(prompt="a funny cat", model="tiny", steps=8, width=32, height=32, frames=5, seed=3,
                      blend_back=0.5, color_match="first", output=str(samples.folder / "zoom.mp4"))  # fmt: skip


JOB = Job(
    example=example, name="zoom", recipe=ZoomRecipe, plan=plan, frames=frames, needs=needs, independent=False,
    summary="Zoom film: generate, warp, treat the colours, feed back; every number can be keyframed.",
)  # fmt: skip
