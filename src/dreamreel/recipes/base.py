"""Typed, validated parameters of every job; TOML and JSON in and out.

A recipe is everything needed to re-run a job. ``validate()`` checks it completely before any
model loads and raises a one-line DreamreelError naming the problem. Image files named by a
recipe are checked there too (opened and decoded), because a bad picture should cost no model load.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import secrets
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

from dreamreel.errors import DreamreelError
from dreamreel.media.pictures import RESIZE_MODES, check_size, open_image_checked
from dreamreel.models.lora import parse_lora_specs
from dreamreel.models.loading import DEFAULT_MODEL, DEVICES, DTYPES, check_model_spec
from dreamreel.models.safety import check_weights_file
from dreamreel.keyframes import Schedule, parse_schedule
from dreamreel.render.samplers import canonical_scheduler_name

MAX_SEED = 2**32 - 1  # A1111 and diffusers users share 32-bit seeds
MAX_STEPS = 10_000


@dataclass(kw_only=True)
class Recipe:
    """Settings every job shares."""

    job: ClassVar[str] = ""
    scheduled: ClassVar[tuple[str, ...]] = ()  # settings that take a number or a keyframe schedule

    prompt: str
    negative: str = ""
    steps: int = 50
    guidance: float = 7.5
    width: int | None = None  # None: the model's native size (512 for SD 1.x)
    height: int | None = None
    scheduler: str | None = None  # None: the model's own scheduler
    model: str = DEFAULT_MODEL
    device: str = "auto"
    dtype: str = "auto"
    vae: str | None = None  # a VAE file replacing the model's
    loras: list[str] = field(default_factory=list)  # "FILE" or "FILE:WEIGHT", merged in order
    allow_unsafe_pickle: bool = False  # load pickle weights with torch.load(weights_only=True)
    compile: bool = False  # torch.compile the UNet (same pictures; pays off on long runs, mostly GPUs)

    def validate(self) -> None:
        check_prompt("prompt", self.prompt)
        check_prompt("negative prompt", self.negative)
        if not isinstance(self.steps, int) or self.steps < 1:
            raise DreamreelError(f"--steps must be at least 1, got {self.steps}")
        if self.steps > MAX_STEPS:
            raise DreamreelError(f"--steps {self.steps} is more than {MAX_STEPS}")
        if not math.isfinite(self.guidance) or self.guidance < 0:
            raise DreamreelError(f"--guidance must be a finite number >= 0, got {self.guidance}")
        if self.width is not None:
            check_size("width", self.width)
        if self.height is not None:
            check_size("height", self.height)
        if self.scheduler is not None:
            self.scheduler = canonical_scheduler_name(self.scheduler)
        if self.device not in DEVICES:
            raise DreamreelError(f"unknown --device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.dtype not in DTYPES:
            raise DreamreelError(f"unknown --dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")
        if not isinstance(self.compile, bool):
            raise DreamreelError(f"compile must be true or false, got {self.compile!r}")
        check_model_spec(self.model, allow_unsafe_pickle=self.allow_unsafe_pickle)
        if self.vae is not None:
            check_weights_file(self.vae, allow_unsafe_pickle=self.allow_unsafe_pickle, what="VAE file")
        if not isinstance(self.loras, list) or not all(isinstance(x, str) for x in self.loras):
            raise DreamreelError("loras must be a list of 'FILE' or 'FILE:WEIGHT' strings")
        parse_lora_specs(self.loras, allow_unsafe_pickle=self.allow_unsafe_pickle)

    def to_dict(self) -> dict[str, Any]:
        data = {"job": self.job}
        data.update({k: v for k, v in dataclasses.asdict(self).items() if v is not None})
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Build the recipe of ``data["job"]`` (or of ``cls``), refusing unknown keys by name."""
        data = dict(data)
        job = data.pop("job", cls.job)
        recipe_cls = _recipe_class(job) if job else cls
        if recipe_cls is None:
            raise DreamreelError(f"unknown job {job!r}; choose one of {', '.join(RECIPES)}")
        names = {f.name for f in dataclasses.fields(recipe_cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise DreamreelError(f"unknown setting(s) for {job}: {', '.join(unknown)}")
        try:
            return recipe_cls(**data)
        except TypeError as exc:
            raise DreamreelError(f"incomplete {job} recipe: {exc}") from exc

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)


@dataclass(kw_only=True)
class Txt2ImgRecipe(Recipe):
    """Text to image, one PNG per seed."""

    job: ClassVar[str] = "txt2img"

    seeds: list[int] = field(default_factory=list)  # empty: one random seed, drawn and recorded
    out: str = "outputs"
    batch: int = 1  # seeds per UNet call; the pictures are the same for any batch size

    def validate(self) -> None:
        super().validate()
        if not self.seeds:
            self.seeds = random_seeds(1)
        for seed in self.seeds:
            check_seed(seed)
        check_batch(self.batch)


@dataclass(kw_only=True)
class Img2ImgRecipe(Txt2ImgRecipe):
    """Image and text to image (diffusers strength: 0 keeps the picture, 1 ignores it)."""

    job: ClassVar[str] = "img2img"

    image: str = ""
    strength: float = 0.75
    resize: str = "crop"

    def validate(self) -> None:
        super().validate()
        check_strength(self.strength, self.steps)
        if self.resize not in RESIZE_MODES:
            raise DreamreelError(f"unknown --resize {self.resize!r}; choose one of {', '.join(RESIZE_MODES)}")
        if not self.image:
            raise DreamreelError("img2img needs --image")
        open_image_checked(self.image)


VIDEO_SUFFIXES = (".mp4", ".webm", ".gif")
MAX_FPS = 1000


@dataclass(kw_only=True)
class VideoRecipe(Recipe):
    """Settings every video job shares: where the video goes and how it plays.

    The run folder sits beside the video: ``NAME.mp4`` -> ``NAME.run/``. ``fps`` is a number or a
    fraction string ("30000/1001"); subclasses whose frame rate comes from a source use None.
    """

    output: str = "dreamreel.mp4"
    fps: str | int | float | None = 12
    reverse: bool = False
    pingpong: bool = False
    audio: str = ""

    def validate(self) -> None:
        super().validate()
        check_output(self.output)
        if self.fps is not None:
            parse_fps(self.fps)
        if self.audio:
            if Path(self.output).suffix.lower() == ".gif":
                raise DreamreelError("a .gif has no sound; drop --audio or write .mp4/.webm")
            from dreamreel.media.video import probe_audio

            probe_audio(self.audio)

    @property
    def run_dir(self) -> Path:
        return run_dir_for(self.output)

    def frame_rate(self) -> Fraction:
        """The recipe's own rate (None in a subclass means the job supplies it)."""
        if self.fps is None:
            raise DreamreelError("this job takes its frame rate from its source")
        return parse_fps(self.fps)


RECIPES: dict[str, type[Recipe]] = {r.job: r for r in (Txt2ImgRecipe, Img2ImgRecipe)}


def _recipe_class(job: str) -> type[Recipe] | None:
    """The recipe class of a job; a job module registers its recipe when first imported."""
    if job not in RECIPES and job.isidentifier():
        import importlib

        try:
            importlib.import_module(f"dreamreel.jobs.{job}")
        except ImportError:
            return None
    return RECIPES.get(job)


def register_recipe(recipe_cls: type[Recipe]) -> type[Recipe]:
    """Add a job's recipe to RECIPES (usable as a class decorator by job modules)."""
    RECIPES[recipe_cls.job] = recipe_cls
    return recipe_cls


def run_dir_for(output: str | Path) -> Path:
    """``NAME.mp4`` -> ``NAME.run`` beside it."""
    return Path(output).with_suffix(".run")


def check_output(output: str) -> None:
    path = Path(output)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise DreamreelError(
            f"-o {output!r}: a video name must end in {', '.join(VIDEO_SUFFIXES)} (e.g. -o film.mp4)"
        )
    if path.is_dir():
        raise DreamreelError(f"-o {output!r} is a directory")
    if path.parent != Path("") and path.parent.exists() and not path.parent.is_dir():
        raise DreamreelError(f"-o {output!r}: {str(path.parent)!r} is not a directory")


def parse_fps(value: str | int | float) -> Fraction:
    """A frame rate as an exact fraction: 12, 29.97, "30000/1001"."""
    try:
        rate = Fraction(str(value).strip()) if not isinstance(value, bool) else None
    except (ValueError, ZeroDivisionError):
        rate = None
    if rate is None or not 0 < rate <= MAX_FPS:
        raise DreamreelError(f"--fps {value!r} must be a number or fraction above 0 and at most {MAX_FPS}")
    return rate


def check_prompt(what: str, text: str) -> None:
    if not isinstance(text, str):
        raise DreamreelError(f"the {what} must be text")
    if "\x00" in text:
        raise DreamreelError(f"the {what} contains a NUL byte")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # argv bytes that were not UTF-8 arrive as lone surrogates
        raise DreamreelError(f"the {what} is not valid UTF-8 text; check the terminal's encoding") from None


MAX_BATCH = 64


def check_batch(batch: int) -> None:
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_BATCH:
        raise DreamreelError(f"--batch must be a whole number from 1 to {MAX_BATCH}, got {batch!r}")


def check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise DreamreelError(f"seed {seed!r} must be a whole number from 0 to {MAX_SEED}")


def check_strength(strength: float, steps: int) -> None:
    if not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise DreamreelError(f"--strength must be between 0 and 1, got {strength}")
    if int(steps * strength) < 1:
        raise DreamreelError(
            f"--strength {strength} with --steps {steps} runs int({steps} x {strength}) = 0 denoising steps; "
            "raise --steps or --strength"
        )


def random_seeds(count: int) -> list[int]:
    """Fresh random seeds (the guide's endless loop), recorded so every picture stays reproducible."""
    return [secrets.randbelow(MAX_SEED + 1) for _ in range(count)]


def parse_seeds(text: str) -> list[int]:
    """``5``, ``1,5,9``, ``1-20`` or a mix like ``1-3,10``."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            if dash and low:
                start, stop = int(low), int(high)
                if stop < start:
                    raise DreamreelError(f"seed range {part!r} runs backwards")
                if stop - start >= 100_000:
                    raise DreamreelError(f"seed range {part!r} is over 100000 seeds")
                seeds.extend(range(start, stop + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise DreamreelError(f"bad seed list {text!r}: use N, N,M,... or N-M") from None
    if not seeds:
        raise DreamreelError(f"bad seed list {text!r}: no seeds in it")
    for seed in seeds:
        check_seed(seed)
    return seeds


def recipe_to_toml(recipe: Recipe) -> str:
    import tomli_w

    return tomli_w.dumps(recipe.to_dict())


def recipe_from_toml(path: str | Path) -> Recipe:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    path = Path(path)
    if not path.is_file():
        raise DreamreelError(f"recipe {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DreamreelError(f"recipe {str(path)!r} is not valid TOML: {exc}") from exc
    return Recipe.from_dict(data)


# -- keyframe schedules in recipes --------------------------------------------------------------

Schedulable = str | float | int  # a plain number, or keyframes text like "0:(0.2), max_f:(0.8)"


def is_plain(value: Any) -> bool:
    """A plain number (kept as a number in recipe files), not a schedule."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def schedule_of(value: Any, name: str) -> Schedule:
    """The parsed schedule of a setting's value (a plain number is a one-value schedule)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DreamreelError(f"{flag_name(name)} must be a number or a schedule, got {value!r}")
    return _parsed(value, flag_name(name))


@functools.lru_cache(maxsize=256)
def _parsed(value: Schedulable, name: str) -> Schedule:
    return parse_schedule(value, name)


def _plain_probe(recipe: Recipe) -> Recipe:
    """The recipe with harmless plain numbers in place of a steps/guidance schedule, for the shared
    checks (which want numbers); scheduled values are then checked frame by frame."""
    changes: dict[str, Any] = {}
    if not is_plain(recipe.steps):
        changes["steps"] = 1
    if not is_plain(recipe.guidance):
        changes["guidance"] = 0.0
    return recipe.replace(**changes)


def _frame_error(index: int, exc: DreamreelError) -> DreamreelError:
    return DreamreelError(f"frame {index}: {exc}")


# -- video jobs' recipes ------------------------------------------------------------------------

SWEEPABLE = {"strength": float, "guidance": float, "steps": int, "seed": int}
SWEEP_SCHEDULED = ("steps", "guidance", "strength")  # the non-swept settings that take schedules
MAX_FRAMES = 100_000


def parse_values_option(text: str) -> list[float] | str:
    """``--values``: a comma list of numbers (``0.2,0.5``) stays a list; anything else is a keyframe
    schedule (``0:(0.2), 16:(1.0)``), checked by the recipe."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return [float(p) for p in parts] if parts else []
    except ValueError:
        return text


@dataclass(kw_only=True)
class SweepRecipe(VideoRecipe):
    """One frame per value of a parameter, the seed held (unless the seed is what varies).

    With ``image`` each frame is an img2img, without it a txt2img. Values come from ``values`` (a
    list, or a keyframe schedule over ``frames`` frames) or ``frames`` steps from ``sweep_from`` to
    ``sweep_to`` (both ends included). The settings not swept (steps, guidance, strength) may be
    schedules over the frame index too; each frame is still the very still its values make alone."""

    job: ClassVar[str] = "sweep"
    scheduled: ClassVar[tuple[str, ...]] = SWEEP_SCHEDULED

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

    def validate(self) -> None:
        for name in SWEEP_SCHEDULED:
            schedule_of(getattr(self, name), name)  # malformed schedules fail first, with their position
        probe = _plain_probe(self)
        VideoRecipe.validate(probe)
        self.scheduler = probe.scheduler
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
        if self.seed is None:
            self.seed = random_seeds(1)[0]
        check_seed(self.seed)
        if self.resize not in RESIZE_MODES:
            raise DreamreelError(f"unknown --resize {self.resize!r}; choose one of {', '.join(RESIZE_MODES)}")
        if self.image:
            open_image_checked(self.image)
        for index, still in enumerate(self.frame_recipes()):
            try:
                Recipe.validate(still)  # steps, guidance, ... of this frame (the image is checked above)
                check_seed(still.seeds[0])
                if isinstance(still, Img2ImgRecipe):
                    check_strength(still.strength, still.steps)
            except DreamreelError as exc:
                raise _frame_error(index, exc) from None

    def sweep_values(self) -> list[float | int]:
        """The value of every frame, rounded as a person would type it (0.25, not 0.25000000000000006)."""
        kind = SWEEPABLE.get(self.param, float)
        ranged = [self.sweep_from is not None, self.sweep_to is not None]
        if isinstance(self.values, str) and self.values.strip():
            schedule = schedule_of(self.values, "values")  # a malformed one fails first, with its position
            if any(ranged):
                raise DreamreelError("use either --values or --from/--to, not both")
            if self.frames is None:
                raise DreamreelError("a --values schedule needs --frames N (how many frames it spans)")
            self._check_frames()
            assert self.frames is not None
            base = self.seed if self.seed is not None else 0
            raw = schedule.values(self.frames, seed=base)
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
            self._check_frames()
            a, b, n = float(self.sweep_from), float(self.sweep_to), self.frames
            raw = [a if n == 1 else a + (b - a) * i / (n - 1) for i in range(n)]
        if not all(math.isfinite(v) for v in raw):
            raise DreamreelError(f"sweep values must be finite numbers, got {raw}")
        if kind is int:
            return [round(v) for v in raw]
        return [round(v, 10) for v in raw]

    def _check_frames(self) -> None:
        if (
            not isinstance(self.frames, int)
            or isinstance(self.frames, bool)
            or not 1 <= self.frames <= MAX_FRAMES
        ):
            raise DreamreelError(f"--frames must be from 1 to {MAX_FRAMES}, got {self.frames}")

    def frame_recipes(self) -> list[Txt2ImgRecipe]:
        """Every frame's still recipe, in frame order."""
        values = self.sweep_values()
        return [self.frame_recipe(v, index, max_f=len(values) - 1) for index, v in enumerate(values)]

    def setting_at(self, name: str, index: int, max_f: int, seed: int) -> float | int:
        """A non-swept setting's value at frame ``index``: a plain number as it is, a schedule's value
        rounded like the swept values (steps to a whole number)."""
        value = getattr(self, name)
        if is_plain(value):
            return value
        number = schedule_of(value, name).at(index, max_f=max_f, seed=seed)
        return round(number) if name == "steps" else round(number, 10)

    def frame_recipe(self, value: float | int, index: int = 0, max_f: int | None = None) -> Txt2ImgRecipe:
        """The still recipe of frame ``index`` (swept value ``value``): the same picture
        ``txt2img``/``img2img`` would make alone."""
        seed = int(value) if self.param == "seed" else (self.seed if self.seed is not None else 0)
        if max_f is None and not all(is_plain(getattr(self, n)) for n in SWEEP_SCHEDULED):
            max_f = len(self.sweep_values()) - 1
        at = {n: self.setting_at(n, index, max_f or 0, seed) for n in SWEEP_SCHEDULED}
        settings = {
            "prompt": self.prompt,
            "negative": self.negative,
            "steps": at["steps"],
            "guidance": at["guidance"],
            "width": self.width,
            "height": self.height,
            "scheduler": self.scheduler,
            "model": self.model,
            "device": self.device,
            "dtype": self.dtype,
            "seeds": [seed],
        }
        if self.param in settings:
            settings[self.param] = value
        if self.image:
            strength = value if self.param == "strength" else at["strength"]
            return Img2ImgRecipe(image=self.image, strength=strength, resize=self.resize, **settings)
        return Txt2ImgRecipe(**settings)

    def scheduled_values(self, still: Txt2ImgRecipe) -> dict[str, float | int]:
        """A frame's values of the settings given as schedules (for its manifest line)."""
        names = [n for n in SWEEP_SCHEDULED if n != self.param and not is_plain(getattr(self, n))]
        return {n: getattr(still, n) for n in names if hasattr(still, n)}


COLOR_MATCH_MODES = ("none", "source", "first")
SEED_MODES = ("fixed", "iter")
MAX_BATCH = 64
VID2VID_SCHEDULED = ("strength", "guidance", "steps", "color_strength", "feedback")


@dataclass(kw_only=True)
class Vid2VidRecipe(VideoRecipe):
    """Every frame of a video through img2img; the source's rate, timestamps and sound kept.

    ``fps`` None keeps the source's exact timing (a number retimes the frames to that rate). Sizes:
    neither given, the source's aspect at about the model's native size; one given, the other follows
    the aspect; both given, the frames are cropped to fill them. Always multiples of 8.

    strength, guidance, steps, color_strength and feedback are plain numbers or keyframe schedules
    over the selected frames (``t`` the frame, ``max_f`` the last one, ``s`` the frame's seed).
    """

    job: ClassVar[str] = "vid2vid"
    scheduled: ClassVar[tuple[str, ...]] = VID2VID_SCHEDULED

    steps: Schedulable = 50  # type: ignore[assignment]
    guidance: Schedulable = 7.5  # type: ignore[assignment]
    video: str = ""
    fps: str | int | float | None = None
    strength: Schedulable = 0.5
    seed: int | None = None  # None: one random seed, drawn and recorded
    seed_mode: str = "fixed"  # fixed: one seed for all frames (steadier); iter: seed + frame
    start: float | None = None  # seconds into the source
    end: float | None = None
    every: int = 1
    color_match: str = "none"  # none | source (each frame to its source frame) | first (to output 0)
    color_strength: Schedulable = 1.0
    feedback: Schedulable = 0.0  # blend the previous output into the next input by this much
    batch: int = 1
    mute: bool = False  # leave the source's sound out

    def validate(self) -> None:
        for name in VID2VID_SCHEDULED:
            schedule_of(getattr(self, name), name)  # malformed schedules fail first, with their position
        probe = _plain_probe(self)
        VideoRecipe.validate(probe)
        self.scheduler = probe.scheduler
        if self.seed is None:
            self.seed = random_seeds(1)[0]
        check_seed(self.seed)
        if self.seed_mode not in SEED_MODES:
            raise DreamreelError(
                f"unknown --seed-mode {self.seed_mode!r}; choose one of {', '.join(SEED_MODES)}"
            )
        if not isinstance(self.every, int) or self.every < 1:
            raise DreamreelError(f"--every must be a whole number of at least 1, got {self.every}")
        for name, value in (("start", self.start), ("end", self.end)):
            if value is not None and (not math.isfinite(value) or value < 0):
                raise DreamreelError(f"--{name} must be seconds >= 0, got {value}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise DreamreelError(f"--end {self.end} must come after --start {self.start}")
        if self.color_match not in COLOR_MATCH_MODES:
            raise DreamreelError(
                f"unknown --color-match {self.color_match!r}; choose one of {', '.join(COLOR_MATCH_MODES)}"
            )
        if not isinstance(self.batch, int) or not 1 <= self.batch <= MAX_BATCH:
            raise DreamreelError(f"--batch must be from 1 to {MAX_BATCH}, got {self.batch}")
        if self.all_plain():  # one set of values for every frame: checked without counting frames
            self._check_values(self.values_at(0, 0))
        if not self.video:
            raise DreamreelError("vid2vid needs --video")
        from dreamreel.media.video import probe_video

        info = probe_video(self.video)
        if self.start is not None and info.duration is not None and self.start >= info.duration:
            raise DreamreelError(
                f"--start {self.start} is past the end of {self.video!r} ({info.duration:.2f}s)"
            )
        if not self.all_plain():  # every frame's values, before any model loads
            for index, values in enumerate(self.all_values(self.frame_count())):
                try:
                    self._check_values(values)
                except DreamreelError as exc:
                    raise _frame_error(index, exc) from None

    def _check_values(self, v: dict[str, Any]) -> None:
        """One frame's values (the caller names the frame when they come from schedules)."""
        if not 1 <= v["steps"] <= MAX_STEPS:
            raise DreamreelError(f"--steps must be from 1 to {MAX_STEPS}, got {v['steps']}")
        if v["guidance"] < 0:
            raise DreamreelError(f"--guidance must be a finite number >= 0, got {v['guidance']:g}")
        check_strength(v["strength"], v["steps"])
        for name in ("color_strength", "feedback"):
            if not 0.0 <= v[name] <= 1.0:
                raise DreamreelError(f"{flag_name(name)} must be between 0 and 1, got {v[name]:g}")
        if self.batch > 1 and v["feedback"] > 0:
            raise DreamreelError(
                "--batch needs independent frames, but --feedback chains each to the one before"
            )

    def all_plain(self) -> bool:
        return all(is_plain(getattr(self, n)) for n in VID2VID_SCHEDULED)

    def frame_count(self) -> int:
        """How many source frames are selected (decodes the source's timestamps; no model)."""
        from dreamreel.media.video import frame_times

        times = frame_times(self.video, start=self.start, end=self.end, every=self.every)
        if not times:
            raise DreamreelError(f"{self.video!r} has no frames between the chosen --start and --end")
        return len(times)

    def values_at(self, index: int, max_f: int) -> dict[str, Any]:
        """Frame ``index``'s strength, guidance, steps (a whole number), color_strength and feedback in a
        run whose last frame is ``max_f``; plain numbers come back as they are."""
        values: dict[str, Any] = {}
        for name in VID2VID_SCHEDULED:
            value = getattr(self, name)
            if is_plain(value):
                values[name] = value
            else:
                values[name] = schedule_of(value, name).at(index, max_f=max_f, seed=self.frame_seed)
        values["steps"] = round(values["steps"])
        return values

    def all_values(self, count: int) -> list[dict[str, Any]]:
        return [self.values_at(index, count - 1) for index in range(count)]

    def frame_seed(self, index: int) -> int:
        """Frame ``index``'s seed: a pure function of the base seed, the index and the seed mode."""
        assert self.seed is not None
        return self.seed if self.seed_mode == "fixed" else (self.seed + index) % (MAX_SEED + 1)


RECIPES.update({r.job: r for r in (SweepRecipe, Vid2VidRecipe)})
