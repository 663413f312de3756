"""Typed, validated parameters of every job; TOML and JSON in and out.

A recipe is everything needed to re-run a job. ``validate()`` checks it completely before any
model loads and raises a one-line DreamreelError naming the problem. Image files named by a
recipe are checked there too (opened and decoded), because a bad picture should cost no model load.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

from dreamreel.errors import DreamreelError
from dreamreel.images import RESIZE_MODES, check_size, open_image_checked
from dreamreel.lora import parse_lora_specs
from dreamreel.model import DEFAULT_MODEL, DEVICES, DTYPES, check_model_spec
from dreamreel.safety import check_weights_file
from dreamreel.schedulers import canonical_scheduler_name

MAX_SEED = 2**32 - 1  # A1111 and diffusers users share 32-bit seeds
MAX_STEPS = 10_000


@dataclass(kw_only=True)
class Recipe:
    """Settings every job shares."""

    job: ClassVar[str] = ""

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
            from dreamreel.video import probe_audio

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


# -- video jobs' recipes ------------------------------------------------------------------------

SWEEPABLE = {"strength": float, "guidance": float, "steps": int, "seed": int}
MAX_FRAMES = 100_000


@dataclass(kw_only=True)
class SweepRecipe(VideoRecipe):
    """One frame per value of a parameter, the seed held (unless the seed is what varies).

    With ``image`` each frame is an img2img, without it a txt2img. Values come from ``values`` or
    ``frames`` steps from ``sweep_from`` to ``sweep_to`` (both ends included)."""

    job: ClassVar[str] = "sweep"

    param: str = ""
    sweep_from: float | None = None
    sweep_to: float | None = None
    frames: int | None = None
    values: list[float] = field(default_factory=list)
    seed: int | None = None  # None: one random seed, drawn and recorded
    image: str = ""
    strength: float = 0.75
    resize: str = "crop"
    caption: bool = False  # burn "param value" into the video's frames (the PNGs stay clean)

    def validate(self) -> None:
        super().validate()
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
        for value in self.sweep_values():
            still = self.frame_recipe(value)
            Recipe.validate(still)  # steps, guidance, ... of this frame (the image is checked above)
            check_seed(still.seeds[0])
            if isinstance(still, Img2ImgRecipe):
                check_strength(still.strength, still.steps)

    def sweep_values(self) -> list[float | int]:
        """The value of every frame, rounded as a person would type it (0.25, not 0.25000000000000006)."""
        kind = SWEEPABLE.get(self.param, float)
        ranged = [self.sweep_from is not None, self.sweep_to is not None, self.frames is not None]
        if self.values:
            if any(ranged):
                raise DreamreelError("use either --values or --from/--to/--frames, not both")
            raw = [float(v) for v in self.values]
        else:
            if self.sweep_from is None and self.sweep_to is None:
                raise DreamreelError("sweep needs --from A --to B --frames N, or --values a,b,c")
            if self.sweep_from is None or self.sweep_to is None:
                raise DreamreelError("--from and --to go together: give both")
            if self.frames is None:
                raise DreamreelError("sweep needs --frames N with --from/--to")
            if not isinstance(self.frames, int) or not 1 <= self.frames <= MAX_FRAMES:
                raise DreamreelError(f"--frames must be from 1 to {MAX_FRAMES}, got {self.frames}")
            a, b, n = float(self.sweep_from), float(self.sweep_to), self.frames
            raw = [a if n == 1 else a + (b - a) * i / (n - 1) for i in range(n)]
        if not all(math.isfinite(v) for v in raw):
            raise DreamreelError(f"sweep values must be finite numbers, got {raw}")
        if kind is int:
            return [round(v) for v in raw]
        return [round(v, 10) for v in raw]

    def frame_recipe(self, value: float | int) -> Txt2ImgRecipe:
        """The still recipe of one frame: the same picture ``txt2img``/``img2img`` would make alone."""
        settings = {
            "prompt": self.prompt,
            "negative": self.negative,
            "steps": self.steps,
            "guidance": self.guidance,
            "width": self.width,
            "height": self.height,
            "scheduler": self.scheduler,
            "model": self.model,
            "device": self.device,
            "dtype": self.dtype,
            "seeds": [self.seed if self.seed is not None else 0],
        }
        if self.param == "seed":
            settings["seeds"] = [int(value)]
        elif self.param in settings:
            settings[self.param] = value
        if self.image:
            strength = value if self.param == "strength" else self.strength
            return Img2ImgRecipe(image=self.image, strength=strength, resize=self.resize, **settings)
        return Txt2ImgRecipe(**settings)


COLOR_MATCH_MODES = ("none", "source", "first")
SEED_MODES = ("fixed", "iter")
MAX_BATCH = 64


@dataclass(kw_only=True)
class Vid2VidRecipe(VideoRecipe):
    """Every frame of a video through img2img; the source's rate, timestamps and sound kept.

    ``fps`` None keeps the source's exact timing (a number retimes the frames to that rate). Sizes:
    neither given, the source's aspect at about the model's native size; one given, the other follows
    the aspect; both given, the frames are cropped to fill them. Always multiples of 8.
    """

    job: ClassVar[str] = "vid2vid"

    video: str = ""
    fps: str | int | float | None = None
    strength: float = 0.5
    seed: int | None = None  # None: one random seed, drawn and recorded
    seed_mode: str = "fixed"  # fixed: one seed for all frames (steadier); iter: seed + frame
    start: float | None = None  # seconds into the source
    end: float | None = None
    every: int = 1
    color_match: str = "none"  # none | source (each frame to its source frame) | first (to output 0)
    color_strength: float = 1.0
    feedback: float = 0.0  # blend the previous output into the next input by this much
    batch: int = 1
    mute: bool = False  # leave the source's sound out

    def validate(self) -> None:
        super().validate()
        if self.seed is None:
            self.seed = random_seeds(1)[0]
        check_seed(self.seed)
        check_strength(self.strength, self.steps)
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
        for name, value in (("color-strength", self.color_strength), ("feedback", self.feedback)):
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise DreamreelError(f"--{name} must be between 0 and 1, got {value}")
        if not isinstance(self.batch, int) or not 1 <= self.batch <= MAX_BATCH:
            raise DreamreelError(f"--batch must be from 1 to {MAX_BATCH}, got {self.batch}")
        if self.batch > 1 and self.feedback > 0:
            raise DreamreelError(
                "--batch needs independent frames, but --feedback chains each to the one before"
            )
        if not self.video:
            raise DreamreelError("vid2vid needs --video")
        from dreamreel.video import probe_video

        info = probe_video(self.video)
        if self.start is not None and info.duration is not None and self.start >= info.duration:
            raise DreamreelError(
                f"--start {self.start} is past the end of {self.video!r} ({info.duration:.2f}s)"
            )

    def frame_seed(self, index: int) -> int:
        """Frame ``index``'s seed: a pure function of the base seed, the index and the seed mode."""
        assert self.seed is not None
        return self.seed if self.seed_mode == "fixed" else (self.seed + index) % (MAX_SEED + 1)


RECIPES.update({r.job: r for r in (SweepRecipe, Vid2VidRecipe)})
