"""What a job is asked to do: typed, immutable recipes, checked purely before any model loads.

A recipe is everything needed to re-run a job. ``check()`` raises a one-line DreamreelError naming
the problem and never changes the recipe; ``resolved()`` returns a new recipe with whatever was left
open decided (random seeds drawn, the scheduler's canonical name, a prompts file inlined), so what is
recorded re-runs exactly. Image files named by a recipe are opened in ``check()``: a bad picture
should cost no model load.

Numeric settings that may change from frame to frame are declared once per recipe class in
``SCHEDULED`` (a table of ``Scheduled`` bounds); the base class owns their parsing, per-frame values
(one rounding rule), the per-frame check (one message format naming the flag and the frame) and the
seed each frame's ``s`` sees.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from dreamreel.errors import DreamreelError
from dreamreel.keyframes import SOUND, Schedule, Signals, parse_schedule
from dreamreel.media.pictures import check_size
from dreamreel.models.loading import (
    DEFAULT_MODEL,
    DEVICES,
    DTYPES,
    OFFLOAD_MODES,
    check_model_spec,
    model_family,
)
from dreamreel.models.lora import check_lora_families, parse_lora_specs
from dreamreel.models.safety import check_weights_file
from dreamreel.recipes.seeds import check_seed, check_seed_mode, frame_seed, random_seeds
from dreamreel.render.samplers import PRESETS, canonical_scheduler_name, check_preset_fits, preset_named

MAX_STEPS = 10_000
MAX_BATCH = 64
MAX_FRAMES = 100_000
MAX_FPS = 1000
VIDEO_SUFFIXES = (".mp4", ".webm", ".gif")
AUDIO_CACHE = "audio-analysis.json"  # in the run folder: the --audio file's loudness and onsets

Schedulable = str | float | int  # a plain number, or keyframes text like "0:(0.2), max_f:(0.8)"
R = TypeVar("R", bound="Recipe")
V = TypeVar("V", bound="VideoRecipe")


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def is_plain(value: Any) -> bool:
    """A plain number (kept as a number in recipe files), not a schedule."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Scheduled:
    """A setting that takes a number or a keyframe schedule, with the bounds every frame's value keeps."""

    name: str
    low: float | None = None
    high: float | None = None
    above: bool = False  # ``low`` itself is not allowed (zoom > 0)
    integer: bool = False  # rounded to a whole number (steps)

    @property
    def flag(self) -> str:
        return flag_name(self.name)

    def rounded(self, value: float) -> float | int:
        """The one rounding rule of scheduled values: whole numbers where the setting counts something,
        otherwise 10 decimals (0.25, not 0.25000000000000006: what a person would have typed)."""
        return round(value) if self.integer else round(value, 10)

    def check(self, value: float) -> None:
        too_low = self.low is not None and (value <= self.low if self.above else value < self.low)
        too_high = self.high is not None and value > self.high
        if too_low or too_high or not math.isfinite(value):
            raise DreamreelError(f"{self.flag} must be {self._bounds()}, got {value:g}")

    def _bounds(self) -> str:
        low = f"{self.low:g}" if self.low is not None else ""
        if self.low is not None and self.high is not None:
            return f"above {low} and at most {self.high:g}" if self.above else f"from {low} to {self.high:g}"
        if self.low is not None:
            return f"> {low}" if self.above else f">= {low}"
        return f"at most {self.high:g}"


STEPS = Scheduled("steps", 1, MAX_STEPS, integer=True)
GUIDANCE = Scheduled("guidance", 0)
STRENGTH = Scheduled("strength", 0, 1)
CADENCE = Scheduled("cadence", 1, MAX_FRAMES, integer=True)  # diffuse every Nth frame (zoom, vid2vid)
UNIT = ("color_strength", "feedback", "blend_back")  # settings that are fractions from 0 to 1


def with_preset(settings: dict[str, Any]) -> dict[str, Any]:
    """Recipe settings with a ``preset``'s steps, guidance and scheduler filled in where not given."""
    settings = dict(settings)
    name = settings.get("preset")
    if isinstance(name, str) and name in PRESETS:  # an unknown name is check()'s one-line error
        for key, value in PRESETS[name].settings().items():
            if settings.get(key) is None:
                settings[key] = value
    return settings


@functools.lru_cache(maxsize=512)
def parsed_schedule(value: Schedulable, flag: str) -> Schedule:
    return parse_schedule(value, flag)


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Settings every job shares."""

    job: ClassVar[str] = ""
    SCHEDULED: ClassVar[tuple[Scheduled, ...]] = ()  # settings that take a number or a keyframe schedule

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
    preset: str | None = None  # few-step settings (render.samplers.PRESETS); fills what is not given
    offload: str = "none"  # none | model | sequential: components on the GPU only while they work
    vae_tiling: bool = False  # decode (and encode) large pictures in tiles: less memory, same size

    # -- checks (pure) ------------------------------------------------------------------------

    def check(self) -> None:
        """Everything that can be known without a model, except the model options (``check_model``);
        raises one line, changes nothing."""
        check_prompt("prompt", self.prompt)
        check_prompt("negative prompt", self.negative)
        for setting in self.SCHEDULED:
            self.schedule(setting.name)  # malformed schedules fail first, with their position
        for setting in self.SCHEDULED:
            heard = sorted(self.schedule(setting.name).names & set(SOUND))
            if heard and not getattr(self, "audio", ""):
                raise DreamreelError(
                    f"{setting.flag} uses {' and '.join(heard)}, the soundtrack at each frame: give --audio FILE"
                )
        if not self.is_scheduled("steps"):
            if not isinstance(self.steps, int) or isinstance(self.steps, bool):
                raise DreamreelError(f"--steps must be a whole number, got {self.steps!r}")
            STEPS.check(self.steps)
        if not self.is_scheduled("guidance"):
            if not is_plain(self.guidance):
                raise DreamreelError(f"--guidance must be a number, got {self.guidance!r}")
            GUIDANCE.check(self.guidance)
        if self.width is not None:
            check_size("width", self.width)
        if self.height is not None:
            check_size("height", self.height)
        if self.scheduler is not None:
            canonical_scheduler_name(self.scheduler)
        if self.device not in DEVICES:
            raise DreamreelError(f"unknown --device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.dtype not in DTYPES:
            raise DreamreelError(f"unknown --dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")
        if self.preset is not None:
            preset_named(self.preset)
        if self.offload not in OFFLOAD_MODES:
            raise DreamreelError(f"unknown --offload {self.offload!r}; choose one of {', '.join(OFFLOAD_MODES)}")
        for name in ("compile", "allow_unsafe_pickle", "vae_tiling"):
            if not isinstance(getattr(self, name), bool):
                raise DreamreelError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.loras, list) or not all(isinstance(x, str) for x in self.loras):
            raise DreamreelError("loras must be a list of 'FILE' or 'FILE:WEIGHT' strings")
        if self.all_plain() and not self.listens():  # one set of values for every frame: checked now
            self.check_values(self.values_at(0, 0))

    def check_model(self) -> None:
        """The model options: the model, VAE and LoRA files exist and can load (headers only). Not
        checked when the caller hands the job a model of its own: then the recipe's model is not what
        renders."""
        check_model_spec(self.model, allow_unsafe_pickle=self.allow_unsafe_pickle)
        if self.vae is not None:
            check_weights_file(self.vae, allow_unsafe_pickle=self.allow_unsafe_pickle, what="VAE file")
        loras = parse_lora_specs(self.loras, allow_unsafe_pickle=self.allow_unsafe_pickle)
        family = model_family(self.model) if loras or self.preset is not None else None
        check_lora_families(loras, family)
        if self.preset is not None:
            check_preset_fits(self.preset, family, self.model)

    def resolved(self: R) -> R:
        """A new recipe with everything left open decided (the scheduler's canonical name here)."""
        if self.scheduler is None:
            return self
        return self.replace(scheduler=canonical_scheduler_name(self.scheduler))

    # -- scheduled settings -------------------------------------------------------------------

    def is_scheduled(self, name: str) -> bool:
        return any(s.name == name for s in self.SCHEDULED)

    def schedule(self, name: str) -> Schedule:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise DreamreelError(f"{flag_name(name)} must be a number or a schedule, got {value!r}")
        return parsed_schedule(value, flag_name(name))

    def listens(self) -> bool:
        """Whether a schedule follows the soundtrack (``a``, ``beat``)."""
        return any(self.schedule(s.name).names & set(SOUND) for s in self.SCHEDULED)

    def is_plain_setting(self, name: str) -> bool:
        return is_plain(getattr(self, name))

    def all_plain(self) -> bool:
        return all(self.is_plain_setting(s.name) for s in self.SCHEDULED)

    def seed_of(self, index: int) -> int:
        """The seed of frame ``index`` (what ``s`` means in a schedule)."""
        seed = getattr(self, "seed", None)
        mode = getattr(self, "seed_mode", "fixed")
        return 0 if seed is None else frame_seed(seed, index, mode)

    def values_at(self, index: int, max_f: int, signals: Signals | None = None) -> dict[str, Any]:
        """Every scheduled setting's value at frame ``index`` of a run whose last frame is ``max_f``:
        plain numbers as they are, schedules evaluated and rounded by ``Scheduled.rounded``."""
        values: dict[str, Any] = {}
        for setting in self.SCHEDULED:
            value = getattr(self, setting.name)
            if is_plain(value):
                values[setting.name] = round(value) if setting.integer else value
            else:
                number = self.schedule(setting.name).at(index, max_f=max_f, seed=self.seed_of, signals=signals)
                values[setting.name] = setting.rounded(number)
        return values

    def check_values(self, values: dict[str, Any], index: int = 0) -> None:
        """One frame's values against the table, then the job's rules across settings."""
        for setting in self.SCHEDULED:
            if setting.name in values and setting.name not in self.unchecked(index):
                setting.check(values[setting.name])
        self.check_together(values, index)

    def unchecked(self, index: int) -> tuple[str, ...]:
        """Settings frame ``index`` does not use (zoom's strength on a txt2img first frame)."""
        return ()

    def check_together(self, values: dict[str, Any], index: int) -> None:
        """Rules across settings of one frame; jobs add theirs."""
        if "strength" in values and "strength" not in self.unchecked(index):
            check_strength(values["strength"], values.get("steps", self.steps))

    def checked_values(self, count: int, signals: Signals | None = None) -> list[dict[str, Any]]:
        """Every frame's values of a ``count``-frame run, each checked (the error names the frame);
        ``signals``: the sound variables per frame, for schedules that use them."""
        frames = []
        for index in range(count):
            values = self.values_at(index, count - 1, signals)
            try:
                self.check_values(values, index)
            except DreamreelError as exc:
                if self.all_plain():
                    raise
                raise DreamreelError(f"frame {index}: {exc}") from None
            frames.append(values)
        return frames

    # -- data ---------------------------------------------------------------------------------

    def announcement(self) -> str | None:
        """A line a person should read before the run starts (e.g. how many steps img2img runs)."""
        return None

    def parse_text(self, name: str, text: str) -> Any:
        """A setting written as command-line text, where this job reads it its own way (else None)."""
        return None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"job": self.job}
        data.update({k: v for k, v in dataclasses.asdict(self).items() if v is not None})
        return data

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        """This class's recipe from ``data`` (its ``job`` key, if any, must name this job)."""
        data = with_preset(data)
        job = data.pop("job", cls.job)
        if job != cls.job:
            raise DreamreelError(f"a {job} recipe is not a {cls.job} recipe")
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise DreamreelError(f"unknown setting(s) for {job}: {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise DreamreelError(f"incomplete {job} recipe: {exc}") from exc

    def replace(self: R, **changes: Any) -> R:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class SeedLoopRecipe(Recipe):
    """Still pictures, one per seed, into an output folder."""

    seeds: list[int] = field(default_factory=list)  # empty: one random seed, drawn and recorded
    out: str = "outputs"
    batch: int = 1  # seeds per UNet call; the pictures are the same for any batch size

    def check(self) -> None:
        super().check()
        if not isinstance(self.seeds, list):
            raise DreamreelError(f"seeds must be a list of whole numbers, got {self.seeds!r}")
        for seed in self.seeds:
            check_seed(seed)
        check_batch(self.batch)

    def resolved(self: R) -> R:
        recipe = super().resolved()
        return recipe if recipe.seeds else recipe.replace(seeds=random_seeds(1))  # type: ignore[attr-defined]


@dataclass(frozen=True, kw_only=True)
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
    interpolate_to: str | int | float | None = None  # a higher rate, in-between frames made by optical flow
    audio_sha256: str | None = None  # recorded when schedules follow the --audio file (its analysis)

    def check(self) -> None:
        super().check()
        check_output(self.output)
        if self.fps is not None:
            parse_fps(self.fps)
        if self.interpolate_to is not None:
            from dreamreel.media.flow import check_available

            check_interpolation(self.interpolate_to, parse_fps(self.fps) if self.fps is not None else None)
            check_available()
        if self.audio:
            if Path(self.output).suffix.lower() == ".gif":
                raise DreamreelError("a .gif has no sound; drop --audio or write .mp4/.webm")
            from dreamreel.media.video import probe_audio

            probe_audio(self.audio)

    @property
    def run_dir(self) -> Path:
        return run_dir_for(self.output)

    def resolved(self: V) -> V:
        """Schedules that follow the soundtrack record its sha256: the recipe (and so a resume's check)
        names the very sound its values came from."""
        recipe = super().resolved()
        if recipe.listens() and recipe.audio and recipe.audio_sha256 is None:
            from dreamreel.media.audio import file_sha256

            recipe = recipe.replace(audio_sha256=file_sha256(recipe.audio))
        return recipe

    def checked_values(
        self,
        count: int,
        signals: Signals | None = None,
        times: list[Fraction] | None = None,
        durations: list[Fraction] | None = None,
    ) -> list[dict[str, Any]]:
        """As Recipe's; schedules that use the soundtrack hear it at each frame's time (``times``,
        showing for ``durations``; default: frame k at k / fps)."""
        if signals is None and self.listens():
            if times is None or durations is None:
                rate = self.frame_rate()
                times, durations = [k / rate for k in range(count)], [1 / rate] * count
            signals = self.sound(times, durations)
        return super().checked_values(count, signals)

    def sound(self, times: list[Fraction], durations: list[Fraction]) -> dict[str, list[float]]:
        """``a`` and ``beat`` at each frame, from the analysis cached in the run folder."""
        from dreamreel.media.audio import envelopes, file_sha256

        sha = self.audio_sha256 or file_sha256(self.audio)
        return envelopes(self.audio, sha, self.run_dir / AUDIO_CACHE).at(times, durations)

    def frame_rate(self) -> Fraction:
        """The recipe's own rate (None in a subclass means the job supplies it)."""
        if self.fps is None:
            raise DreamreelError("this job takes its frame rate from its source")
        return parse_fps(self.fps)


def diffused_frames(values: list[dict[str, Any]] | Any) -> list[int]:
    """The frames a ``--cadence`` film diffuses: frame 0, then each one ``cadence`` (its value at the
    last diffused frame) after the one before; the frames between are moved and cross-faded."""
    frames, index = [], 0
    while index < len(values):
        frames.append(index)
        index += int(values[index].get("cadence", 1))
    return frames


def check_interpolation(target: str | int | float, rate: Fraction | None) -> Fraction:
    """``--interpolate-to`` as a rate above the film's own ``rate`` (when known)."""
    try:
        wanted = parse_fps(target)
    except DreamreelError:
        raise DreamreelError(f"--interpolate-to {target!r} must be a frame rate such as 24 or 30000/1001") from None
    if rate is not None and wanted <= rate:
        raise DreamreelError(f"--interpolate-to {target} must be above the film's {float(rate):g} fps")
    return wanted


def check_seed_settings(recipe: Recipe) -> None:
    """A recipe with ``seed`` and ``seed_mode``: both valid."""
    seed = getattr(recipe, "seed", None)
    if seed is not None:
        check_seed(seed)
    check_seed_mode(getattr(recipe, "seed_mode", "fixed"))


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


def check_batch(batch: int) -> None:
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= MAX_BATCH:
        raise DreamreelError(f"--batch must be a whole number from 1 to {MAX_BATCH}, got {batch!r}")


def check_frames(frames: Any, flag: str = "--frames") -> None:
    if not isinstance(frames, int) or isinstance(frames, bool) or not 1 <= frames <= MAX_FRAMES:
        raise DreamreelError(f"{flag} must be a whole number from 1 to {MAX_FRAMES}, got {frames!r}")


def check_choice(recipe: Recipe, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(recipe, name)
    if value not in allowed:
        raise DreamreelError(f"unknown {flag_name(name)} {value!r}; choose one of {', '.join(allowed)}")


def check_strength(strength: float, steps: int) -> None:
    if not is_plain(strength) or not 0.0 <= strength <= 1.0:
        raise DreamreelError(f"--strength must be from 0 to 1, got {strength}")
    if int(steps * strength) < 1:
        raise DreamreelError(
            f"--strength {strength:g} with --steps {steps} runs int({steps} x {strength:g}) = 0 denoising "
            "steps; raise --steps or --strength"
        )
