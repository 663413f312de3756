"""Parameter sweep: one frame per value (the guide's coyote, strength 0.2 -> 1.0), a video and a
captioned contact sheet.

Each frame is exactly the still ``txt2img``/``img2img`` makes alone with that value and seed (the
frame's PNG carries that still's recipe, derived from every field the two recipes share, so
``dreamreel rerender`` works on any frame, LoRAs and VAE included). The swept values may come from
a keyframe schedule, and the settings not swept may follow schedules over the frame index. One
renderer, one prompt encoding and one VAE encoding of the picture serve the whole run.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dreamreel.errors import DreamreelError
from dreamreel.jobs.img2img import Img2ImgRecipe
from dreamreel.jobs.protocol import Context, Frame, Job, Plan, Samples
from dreamreel.jobs.txt2img import Txt2ImgRecipe
from dreamreel.media.pictures import RESIZE_MODES, open_image_checked
from dreamreel.recipes.base import (
    GUIDANCE,
    STEPS,
    STRENGTH,
    Schedulable,
    VideoRecipe,
    check_choice,
    check_frames,
)
from dreamreel.recipes.seeds import check_seed, random_seeds

if TYPE_CHECKING:
    from PIL import Image

    from dreamreel.runs.store import RunStore

SWEEPABLE = {"strength": float, "guidance": float, "steps": int, "seed": int}


def parse_values_option(text: str) -> list[float] | str:
    """``--values``: a comma list of numbers (``0.2,0.5``) stays a list; anything else is a keyframe
    schedule (``0:(0.2), 16:(1.0)``), checked by the recipe."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return [float(p) for p in parts] if parts else []
    except ValueError:
        return text


@dataclass(frozen=True, kw_only=True)
class SweepRecipe(VideoRecipe):
    """One frame per value of a parameter, the seed held (unless the seed is what varies).

    With ``image`` each frame is an img2img, without it a txt2img. Values come from ``values`` (a
    list, or a keyframe schedule over ``frames`` frames) or ``frames`` steps from ``sweep_from`` to
    ``sweep_to`` (both ends included). The settings not swept (steps, guidance, strength) may be
    schedules over the frame index too; each frame is still the very still its values make alone."""

    job: ClassVar[str] = "sweep"
    SCHEDULED = (STEPS, GUIDANCE, STRENGTH)

    steps: Schedulable = 50  # type: ignore[assignment]
    guidance: Schedulable = 7.5  # type: ignore[assignment]
    param: str = ""
    sweep_from: float | None = None
    sweep_to: float | None = None
    frames: int | None = None
    values: list[float] | str = field(default_factory=list)
    seed: int | None = None  # None: one random seed, drawn and recorded
    image: str = ""
    strength: Schedulable = 0.75
    resize: str = "crop"
    caption: bool = False  # burn "param value" into the video's frames (the PNGs stay clean)

    def check(self) -> None:
        if self.param in ("width", "height", "size"):
            raise DreamreelError(
                f"--param {self.param} cannot be swept: the frames of one video share a size "
                "(set --width/--height for the whole sweep)"
            )
        if self.param not in SWEEPABLE:
            raise DreamreelError(
                f"unknown --param {self.param!r}; choose one of {', '.join(SWEEPABLE)}"
                if self.param
                else f"sweep needs --param, one of {', '.join(SWEEPABLE)}"
            )
        if self.param == "strength" and not self.image:
            raise DreamreelError("sweeping strength needs --image (strength is an img2img setting)")
        super().check()
        if self.seed is not None:
            check_seed(self.seed)
        check_choice(self, "resize", RESIZE_MODES)
        if self.image:
            open_image_checked(self.image)
        self.sweep_values()

    def resolved(self) -> SweepRecipe:
        recipe = super().resolved()
        return recipe if recipe.seed is not None else recipe.replace(seed=random_seeds(1)[0])

    def parse_text(self, name: str, text: str) -> Any:
        return parse_values_option(text) if name == "values" else None

    def unchecked(self, index: int) -> tuple[str, ...]:
        return () if self.image else ("strength",)

    def seed_of(self, index: int) -> int:
        if self.param == "seed":
            return int(self._sweep_values[index])
        return self.seed if self.seed is not None else 0

    def sweep_values(self) -> list[float | int]:
        """The value of every frame, rounded as a person would type it (0.25, not 0.25000000000000006).
        Worked out once per recipe (recipes are immutable): every frame's seed and recipe read it."""
        return list(self._sweep_values)

    @functools.cached_property
    def _sweep_values(self) -> tuple[float | int, ...]:
        kind = SWEEPABLE.get(self.param, float)
        ranged = [self.sweep_from is not None, self.sweep_to is not None]
        if isinstance(self.values, str) and self.values.strip():
            schedule = self.schedule("values")  # a malformed one fails first, with its position
            if any(ranged):
                raise DreamreelError("use either --values or --from/--to, not both")
            if self.frames is None:
                raise DreamreelError("a --values schedule needs --frames N (how many frames it spans)")
            check_frames(self.frames)
            raw = schedule.values(self.frames, seed=self.seed if self.seed is not None else 0)
        elif self.values:
            if not isinstance(self.values, list):
                raise DreamreelError(f"--values must be a list of numbers or a schedule, got {self.values!r}")
            if any(ranged) or self.frames is not None:
                raise DreamreelError("use either --values or --from/--to/--frames, not both")
            try:
                raw = [float(v) for v in self.values]
            except (TypeError, ValueError):
                raise DreamreelError(f"--values must be numbers, got {self.values!r}") from None
        else:
            if self.sweep_from is None and self.sweep_to is None:
                raise DreamreelError("sweep needs --from A --to B --frames N, or --values a,b,c")
            if self.sweep_from is None or self.sweep_to is None:
                raise DreamreelError("--from and --to go together: give both")
            if self.frames is None:
                raise DreamreelError("sweep needs --frames N with --from/--to")
            check_frames(self.frames)
            a, b, n = float(self.sweep_from), float(self.sweep_to), self.frames
            raw = [a if n == 1 else a + (b - a) * i / (n - 1) for i in range(n)]
        if not all(math.isfinite(v) for v in raw):
            raise DreamreelError(f"sweep values must be finite numbers, got {raw}")
        if kind is int:
            return tuple(round(v) for v in raw)
        return tuple(round(v, 10) for v in raw)

    def frame_values(self, values: list[float | int], index: int) -> dict[str, Any]:
        """Frame ``index``'s steps, guidance and strength, the swept one at its swept value."""
        frame = self.values_at(index, len(values) - 1)
        if self.param in frame:
            frame[self.param] = values[index]
        return frame

    def frame_recipes(self) -> list[Txt2ImgRecipe]:
        """Every frame's still recipe, in frame order."""
        values = self.sweep_values()
        return [self.frame_recipe(values, index) for index in range(len(values))]

    def frame_recipe(self, values: list[float | int], index: int) -> Txt2ImgRecipe:
        """The still recipe of frame ``index``: every setting the still recipe shares with the sweep,
        then the frame's seed and values: the same picture ``txt2img``/``img2img`` would make alone."""
        still = Img2ImgRecipe if self.image else Txt2ImgRecipe
        shared = {name: getattr(self, name) for name in still.field_names() if name in self.field_names()}
        frame = self.frame_values(values, index)
        shared.update(steps=frame["steps"], guidance=frame["guidance"], seeds=[self.seed_of(index)])
        if self.image:
            shared["strength"] = frame["strength"]
        else:
            shared.pop("strength", None)
        return still(**shared)


def label(recipe: SweepRecipe, value: float | int) -> str:
    from dreamreel.media.sheet import format_value

    return f"{recipe.param} {format_value(value)}"


def plan(recipe: SweepRecipe) -> Plan:
    from dreamreel.media.sheet import caption_picture

    values = recipe.sweep_values()
    checked = []
    for index in range(len(values)):
        frame = recipe.frame_values(values, index)
        try:
            check_seed(recipe.seed_of(index))
            recipe.check_values(frame, index)
        except DreamreelError as exc:
            raise DreamreelError(f"frame {index}: {exc}") from None
        checked.append(frame)
    overlay = None
    if recipe.caption:

        def overlay(index: int, picture: Image.Image) -> Image.Image:
            return caption_picture(picture, label(recipe, values[index]))

    return Plan(count=len(values), values=checked, fps=recipe.frame_rate(), overlay=overlay)


def frames(context: Context[SweepRecipe]) -> Iterator[Frame]:
    """Each wanted frame: the still job's own picture at that frame's values."""
    import dataclasses

    from dreamreel.jobs.still_pictures import render_seeds, target_size
    from dreamreel.media.pictures import load_image, resize_image, to_unit_tensor
    from dreamreel.render.renderer import Renderer

    model, recipe = context.model, context.recipe
    values = recipe.sweep_values()
    renderer = Renderer(model, recipe.scheduler)
    width, height = recipe.width or model.native_size, recipe.height or model.native_size
    init = None
    if recipe.image:
        picture = load_image(recipe.image)
        width, height = target_size(model, picture.size, recipe.width, recipe.height)
        init = to_unit_tensor([resize_image(picture, width, height, recipe.resize)])  # type: ignore[arg-type]
    scheduled = [s.name for s in recipe.SCHEDULED if s.name != recipe.param and not recipe.is_plain_setting(s.name)]
    for index in context.wanted:
        still = recipe.frame_recipe(values, index)
        strength = getattr(still, "strength", None)
        pictures = render_seeds(
            model, renderer, still, [0], width=width, height=height, on_step=context.on_step,
            init=init, strength=strength,
        )  # fmt: skip
        item = next(pictures)
        frame_values = {recipe.param: values[index], **{n: getattr(still, n) for n in scheduled if hasattr(still, n)}}
        yield dataclasses.replace(item, index=index, facts={**item.facts, "values": frame_values})


def sheet_path(recipe: SweepRecipe) -> Path:
    """``NAME.mp4`` -> ``NAME.sheet.png`` beside it."""
    return Path(recipe.output).with_suffix(".sheet.png")


def finish(recipe: SweepRecipe, plan: Plan, store: RunStore) -> None:
    """Write the contact sheet: every frame, captioned with its value."""
    from dreamreel.media.sheet import contact_sheet
    from dreamreel.runs.files import png_bytes, write_atomic

    values = recipe.sweep_values()
    thumbs = []
    for index in range(len(values)):
        picture = store.read_frame(index)
        picture.thumbnail((192, 192))
        thumbs.append(picture)
    sheet = contact_sheet(thumbs, [label(recipe, v) for v in values])
    write_atomic(sheet_path(recipe), png_bytes(sheet))


def example(samples: Samples) -> SweepRecipe:
    return SweepRecipe(prompt="a coyote", model="tiny", steps=5, width=32, height=32, image=str(samples.picture),
                       param="strength", sweep_from=0.3, sweep_to=0.9, frames=4, seed=3,
                       output=str(samples.folder / "sweep.mp4"))  # fmt: skip


JOB = Job(
    example=example, name="sweep", recipe=SweepRecipe, plan=plan, frames=frames, finish=finish,
    summary="One frame per value of a parameter: a video, its run folder and a contact sheet.",
)  # fmt: skip
