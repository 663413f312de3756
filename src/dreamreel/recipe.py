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
from pathlib import Path
from typing import Any, ClassVar

from dreamreel.errors import DreamreelError
from dreamreel.images import RESIZE_MODES, check_size, open_image_checked
from dreamreel.model import DEFAULT_MODEL, DEVICES, DTYPES, check_model_spec
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
        check_model_spec(self.model)

    def to_dict(self) -> dict[str, Any]:
        data = {"job": self.job}
        data.update({k: v for k, v in dataclasses.asdict(self).items() if v is not None})
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Build the recipe of ``data["job"]`` (or of ``cls``), refusing unknown keys by name."""
        data = dict(data)
        job = data.pop("job", cls.job)
        recipe_cls = RECIPES.get(job) if job else cls
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


RECIPES: dict[str, type[Recipe]] = {r.job: r for r in (Txt2ImgRecipe, Img2ImgRecipe)}


def check_prompt(what: str, text: str) -> None:
    if not isinstance(text, str):
        raise DreamreelError(f"the {what} must be text")
    if "\x00" in text:
        raise DreamreelError(f"the {what} contains a NUL byte")


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
