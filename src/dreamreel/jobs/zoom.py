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

Every numeric setting is a keyframe schedule (see schedule.py). A frame is a pure function of the
recipe and the earlier frames as 8-bit pictures (what is fed back is quantized, the colour reference
is a finished frame), so ``zoom(..., start=k, history=read_frame)`` continues a run exactly.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dreamreel.errors import DreamreelError
from dreamreel.jobs.runner import VideoJob, VideoPlan
from dreamreel.recipes.base import MAX_SEED, MAX_STEPS, VideoRecipe, check_seed, register_recipe
from dreamreel.keyframes import PromptSchedule, Schedule, parse_prompts, parse_schedule

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from dreamreel.jobs.still_pictures import RenderedImage
    from dreamreel.models.loading import LoadedModel
    from dreamreel.render.renderer import Conditioning, Renderer, StepCallback
    from dreamreel.runs.store import RunStore

MAX_FRAMES = 100_000
SEED_MODES = ("fixed", "iter", "random", "ladder", "alternate")
COLOR_MATCH = ("none", "first", "previous")
BORDERS = ("replicate", "reflect", "wrap")
COLOR_SPACES = ("lab", "rgb", "hsv")

# The numeric settings that take schedules, with the check each frame's value must pass.
SCHEDULED = (
    "zoom",
    "angle",
    "tx",
    "ty",
    "strength",
    "guidance",
    "steps",
    "noise",
    "contrast",
    "blend_back",
    "color_strength",
)

Schedulable = str | float | int


def frame_seed(base: int, index: int, mode: str) -> int:
    """A frame's seed, a pure function of (base seed, frame index, mode).

    fixed: always the base. iter: base + n. random: a fresh seed per frame drawn from a hash of
    (base, n), so it is reproducible. ladder (Deforum's): +2, -1, +2, -1 ... i.e. base, base+2, base+1,
    base+3, base+2, ...: slowly climbing, every seed used twice, two frames apart. alternate: base,
    base+1, base, base+1, ...: two looks taking turns, a flicker between two dreams.
    """
    if mode == "fixed":
        seed = base
    elif mode == "iter":
        seed = base + index
    elif mode == "random":
        digest = hashlib.sha256(f"dreamreel-seed:{base}:{index}".encode()).digest()
        seed = int.from_bytes(digest[:8], "big")
    elif mode == "ladder":
        seed = base + (index // 2 if index % 2 == 0 else (index + 3) // 2)
    elif mode == "alternate":
        seed = base + index % 2
    else:
        raise DreamreelError(f"unknown seed mode {mode!r}; choose one of {', '.join(SEED_MODES)}")
    return seed % (MAX_SEED + 1)


@register_recipe
@dataclass(kw_only=True)
class ZoomRecipe(VideoRecipe):
    """The feedback zoom film; defaults follow the guide (seed 1, guidance 8.5, strength 0.5, 50 steps)."""

    job: ClassVar[str] = "zoom"
    scheduled: ClassVar[tuple[str, ...]] = SCHEDULED

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

    # -- checks -------------------------------------------------------------------------------

    def validate(self) -> None:
        # The shared checks want plain numbers: give them the schedules' largest values, then check
        # every frame of every schedule below.
        for name in SCHEDULED:
            self.schedule(name)
        if (
            not isinstance(self.frames, int)
            or isinstance(self.frames, bool)
            or not 1 <= self.frames <= MAX_FRAMES
        ):
            raise DreamreelError(
                f"--frames must be a whole number from 1 to {MAX_FRAMES}, got {self.frames!r}"
            )
        check_seed(self.seed)
        if self.seed_mode not in SEED_MODES:
            raise DreamreelError(
                f"unknown --seed-mode {self.seed_mode!r}; choose one of {', '.join(SEED_MODES)}"
            )
        values = self.all_values()
        probe = _shared_probe(self, values)
        probe.validate()
        self.scheduler = probe.scheduler
        if not self.prompt.strip() and not self.prompts.strip():
            raise DreamreelError("zoom needs a PROMPT or --prompts")
        self.prompts = self._prompts_text()  # a file's prompts go into the recipe: re-runs need no file
        self.prompt_schedule()
        for name, allowed in (
            ("border", BORDERS),
            ("color_match", COLOR_MATCH),
            ("color_space", COLOR_SPACES),
        ):
            if getattr(self, name) not in allowed:
                flag = "--" + name.replace("_", "-")
                raise DreamreelError(
                    f"unknown {flag} {getattr(self, name)!r}; choose one of {', '.join(allowed)}"
                )
        if self.tint:
            self.tint_color()
        if self.start not in ("noise", "txt2img"):
            from dreamreel.media.pictures import open_image_checked

            open_image_checked(self.start)
        for n, frame in enumerate(values):
            _check_frame(n, frame, first=n == 0 and self.start == "txt2img")

    def schedule(self, name: str) -> Schedule:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise DreamreelError(f"--{name.replace('_', '-')} must be a number or a schedule, got {value!r}")
        return _parsed(value, name)

    def seed_at(self, index: int) -> int:
        return frame_seed(self.seed, index, self.seed_mode)

    def values_at(self, index: int) -> dict[str, float]:
        """Every scheduled setting's value at frame ``index`` (steps as a whole number)."""
        max_f = self.frames - 1
        values = {n: self.schedule(n).at(index, max_f=max_f, seed=self.seed_at) for n in SCHEDULED}
        values["steps"] = round(values["steps"])
        return values

    def all_values(self) -> list[dict[str, float]]:
        return [self.values_at(n) for n in range(self.frames)]

    def _prompts_text(self) -> str:
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
        schedule = parse_prompts(self.prompts or self.prompt)
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


@functools.lru_cache(maxsize=256)
def _parsed(value: Schedulable, name: str) -> Schedule:
    return parse_schedule(value, name)


def _shared_probe(recipe: ZoomRecipe, values: list[dict[str, float]]) -> VideoRecipe:
    """The recipe with plain numbers where the shared checks expect them."""
    data = {f.name: getattr(recipe, f.name) for f in fields(VideoRecipe) if f.init}
    data["steps"] = max(1, max(int(v["steps"]) for v in values))
    data["guidance"] = max(float(v["guidance"]) for v in values)
    data["prompt"] = recipe.prompt
    return VideoRecipe(**data)


def _check_frame(n: int, v: dict[str, float], *, first: bool) -> None:
    def bad(message: str) -> DreamreelError:
        return DreamreelError(f"frame {n}: {message}")

    if not 1 <= v["steps"] <= MAX_STEPS:
        raise bad(f"steps {v['steps']} must be from 1 to {MAX_STEPS}")
    if v["guidance"] < 0:
        raise bad(f"guidance {v['guidance']:g} must be >= 0")
    if v["zoom"] <= 0:
        raise bad(f"zoom {v['zoom']:g} must be > 0")
    if not first:
        if not 0 < v["strength"] <= 1:
            raise bad(f"strength {v['strength']:g} must be in (0, 1]")
        if int(v["steps"] * v["strength"]) < 1:
            raise bad(
                f"strength {v['strength']:g} with {v['steps']} steps runs int({v['steps']} x "
                f"{v['strength']:g}) = 0 denoising steps; raise steps or strength"
            )
    for name in ("blend_back", "color_strength"):
        if not 0 <= v[name] <= 1:
            raise bad(f"{name} {v[name]:g} must be from 0 to 1")
    for name in ("noise", "contrast"):
        if v[name] < 0:
            raise bad(f"{name} {v[name]:g} must be >= 0")


# -- the job ----------------------------------------------------------------------------------

History = Callable[[int], "Image.Image"]


@dataclass
class _State:
    """What the next frame needs from the past, as 8-bit-exact [1, 3, H, W] pictures in [0, 1]."""

    previous: torch.Tensor | None = None  # frame n-1
    before: torch.Tensor | None = None  # frame n-2
    first: torch.Tensor | None = None  # frame 0 (colour reference "first")


def zoom(
    model: LoadedModel,
    recipe: ZoomRecipe,
    on_step: StepCallback | None = None,
    *,
    start: int = 0,
    history: History | None = None,
) -> Iterator[RenderedImage]:
    """Yield frames from ``start`` on; ``history(i)`` gives finished frame i (needed when start > 0)."""
    from dreamreel.media.pictures import pil_to_tensor
    from dreamreel.render.renderer import Renderer

    recipe.validate()
    renderer = Renderer(model, recipe.scheduler)
    width, height = _frame_size(model, recipe)
    prompts = recipe.prompt_schedule()
    state = _State()
    if start > 0:
        if history is None:
            raise ValueError("starting after frame 0 needs the history of finished frames")

        def load(i: int) -> torch.Tensor:
            return (pil_to_tensor([history(i)]) + 1) / 2

        state.previous = load(start - 1)
        state.before = load(start - 2) if start >= 2 else None
        state.first = load(0)
    for index in range(start, recipe.frames):
        item, picture = _render_frame(model, renderer, recipe, prompts, state, index, width, height, on_step)
        state.before, state.previous = state.previous, picture
        if index == 0:
            state.first = picture
        yield item


def _frame_size(model: LoadedModel, recipe: ZoomRecipe) -> tuple[int, int]:
    if recipe.start not in ("noise", "txt2img"):
        from dreamreel.media.pictures import load_image
        from dreamreel.jobs.img2img import target_size

        return target_size(model, load_image(recipe.start), recipe.width, recipe.height)
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

    from dreamreel.media.pictures import load_image, pil_to_tensor, resize_image
    from dreamreel.render.renderer import quantize, seeded_generator

    if recipe.start == "noise":
        return quantize(torch.rand((1, 3, height, width), generator=seeded_generator(seed)))
    picture = resize_image(load_image(recipe.start), width, height, "crop")
    return (pil_to_tensor([picture]) + 1) / 2


def _treated_input(
    recipe: ZoomRecipe, state: _State, index: int, v: dict[str, float], seed: int
) -> torch.Tensor:
    """Steps 1-4 of a frame: the picture img2img starts from."""
    from dreamreel.media import treatments as frames

    motion = {"zoom": v["zoom"], "angle": v["angle"], "tx": v["tx"], "ty": v["ty"]}
    assert state.previous is not None
    picture = frames.warp(state.previous, **motion, border=recipe.border)
    if v["blend_back"] > 0 and state.before is not None:
        last = recipe.values_at(index - 1)
        before = frames.warp(
            state.before,
            zoom=last["zoom"],
            angle=last["angle"],
            tx=last["tx"],
            ty=last["ty"],
            border=recipe.border,
        )
        before = frames.warp(before, **motion, border=recipe.border)
        picture = frames.blend(picture, before, v["blend_back"])
    if recipe.color_match != "none" and v["color_strength"] > 0:
        reference = state.first if recipe.color_match == "first" else state.previous
        assert reference is not None
        picture = frames.color_match(
            picture, reference, strength=v["color_strength"], space=recipe.color_space
        )
    if recipe.grayscale:
        picture = frames.grayscale(picture)
    if recipe.tint:
        color, amount = recipe.tint_color()
        picture = frames.tint(picture, color, amount)
    if v["contrast"] != 1:
        picture = frames.contrast(picture, v["contrast"])
    if v["noise"] > 0:
        picture = frames.add_noise(picture, v["noise"], seed)
    return picture


def _render_frame(
    model: LoadedModel,
    renderer: Renderer,
    recipe: ZoomRecipe,
    prompts: PromptSchedule,
    state: _State,
    index: int,
    width: int,
    height: int,
    on_step: StepCallback | None,
) -> tuple[RenderedImage, torch.Tensor]:
    from dreamreel.media.pictures import tensor_to_pil
    from dreamreel.jobs.still_pictures import RenderedImage, infotext
    from dreamreel.render.renderer import effective_steps, quantize

    v = recipe.values_at(index)
    seed = recipe.seed_at(index)
    steps, guidance = int(v["steps"]), float(v["guidance"])
    cond, prompt, prompt_facts = _conditioning(renderer, recipe, prompts, index)
    strength: float | None = float(v["strength"])
    if index == 0 and recipe.start == "txt2img":
        strength, init = None, None
    elif index == 0:
        init = _start_picture(recipe, recipe.seed, width, height)
    else:
        init = _treated_input(recipe, state, index, v, seed)
    output = renderer.generate(
        [cond],
        [seed],
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
        init_images=None if init is None else init * 2 - 1,
        strength=strength,
        on_step=on_step,
    )
    picture = quantize(output)  # what goes forward is exactly what the PNG holds
    parameters = infotext(
        model, renderer, prompt=prompt, negative=recipe.negative, steps=steps, guidance=guidance,
        seed=seed, width=width, height=height, strength=strength, extra={"Frame": index},
    )  # fmt: skip
    facts: dict[str, Any] = {
        "frame": index,
        "seed": seed,
        "values": {k: (int(x) if k == "steps" else round(float(x), 9)) for k, x in v.items()},
        "effective_steps": effective_steps(steps, strength),
        "model_hash": model.model_hash,
        **prompt_facts,
    }
    item = RenderedImage(
        index=index,
        seed=seed,
        image=tensor_to_pil(picture)[0],
        recipe=recipe,
        parameters=parameters,
        facts=facts,
    )
    return item, picture


# -- wiring into the shared video runner -------------------------------------------------------


def plan_zoom(recipe: ZoomRecipe) -> VideoPlan:
    return VideoPlan(frames=recipe.frames, fps=recipe.frame_rate())


def zoom_frames(
    model: LoadedModel,
    recipe: ZoomRecipe,
    plan: VideoPlan,
    *,
    start: int,
    store: RunStore,
    on_step: StepCallback | None = None,
) -> Iterator[RenderedImage]:
    """The runner's entry point: continue from the finished frames on disk."""
    return zoom(model, recipe, on_step, start=start, history=store.read_frame)


ZOOM_JOB = VideoJob(name="zoom", plan=plan_zoom, frames=zoom_frames)
