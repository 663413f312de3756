"""AUTOMATIC1111 sampler names <-> diffusers schedulers, in both directions.

Pure data plus small functions; importing this module does not import diffusers, so the CLI can
validate ``--scheduler`` before any model loads.

Names. A dreamreel scheduler name is an A1111 sampler label, optionally followed by a schedule type
(the pre-1.9 A1111 style, ``"DPM++ 2M Karras"``, ``"Euler SGM Uniform"``). What we *write* into a
picture's infotext is A1111's current pair ``Sampler`` + ``Schedule type`` (:func:`infotext_sampler`),
and what we *read* from anyone's infotext goes through :func:`scheduler_from_infotext`, which applies
A1111's own rules (``modules/sd_samplers.py`` ``get_sampler_and_scheduler``): a schedule type folded
into the sampler name is split off, ``Automatic`` means the sampler's default schedule (Karras for
``DPM++ 2M``, Exponential for ``DPM++ 2M SDE``...).

A1111's samplers as of v1.10 (``modules/sd_samplers_kdiffusion.py``, ``sd_samplers_timesteps.py``,
``sd_samplers_lcm.py``) and schedule types (``modules/sd_schedulers.py``) are all listed below. Those
diffusers has no equivalent for are refused in one line naming them; nothing falls back silently.

Equivalence is by algorithm and sigma spacing, as diffusers' own table of A1111 names does: A1111's
``Uniform``/``Normal``/``Automatic`` spacing is the model's own timestep spacing here, ``SGM Uniform``
and ``Simple`` are diffusers' ``trailing`` spacing.

A1111 has no ``PNDM``, ``DDPM`` or ``DEIS`` sampler: ``PNDM`` is read as its A1111 name ``PLMS`` (the same
diffusers scheduler, PNDM with ``skip_prk_steps``), and ``DDPM``/``DEIS`` are refused with the nearest
names, because a picture made with them could not be made again from its ``parameters``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dreamreel.errors import DreamreelError


@dataclass(frozen=True)
class SchedulerChoice:
    class_name: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class A1111Sampler:
    """One A1111 sampler: its diffusers scheduler (None: no equivalent) and default schedule type."""

    label: str
    class_name: str | None
    overrides: dict[str, Any] = field(default_factory=dict)
    default_schedule: str | None = None  # A1111's 'scheduler' option: what "Automatic" means
    timestep_sampler: bool = False  # A1111 ignores the schedule type for these
    why_not: str = ""


_SDE = {"algorithm_type": "sde-dpmsolver++"}

A1111_SAMPLERS: dict[str, A1111Sampler] = {
    s.label: s
    for s in (
        A1111Sampler("DPM++ 2M", "DPMSolverMultistepScheduler", {}, "Karras"),
        A1111Sampler("DPM++ SDE", "DPMSolverSinglestepScheduler", {}, "Karras"),
        A1111Sampler("DPM++ 2M SDE", "DPMSolverMultistepScheduler", _SDE, "Exponential"),
        A1111Sampler(
            "DPM++ 2M SDE Heun", "DPMSolverMultistepScheduler", {**_SDE, "solver_type": "heun"}, "Exponential"
        ),
        A1111Sampler(
            "DPM++ 2S a", None, default_schedule="Karras",
            why_not="diffusers has no ancestral single-step DPM-Solver++",
        ),
        A1111Sampler(
            "DPM++ 3M SDE", "DPMSolverMultistepScheduler", {**_SDE, "solver_order": 3}, "Exponential"
        ),
        A1111Sampler("Euler a", "EulerAncestralDiscreteScheduler"),
        A1111Sampler("Euler", "EulerDiscreteScheduler"),
        A1111Sampler("LMS", "LMSDiscreteScheduler"),
        A1111Sampler("Heun", "HeunDiscreteScheduler"),
        A1111Sampler("DPM2", "KDPM2DiscreteScheduler", {}, "Karras"),
        A1111Sampler("DPM2 a", "KDPM2AncestralDiscreteScheduler", {}, "Karras"),
        A1111Sampler("DPM fast", None, why_not="diffusers has no DPM-Solver fast (adaptive-order) scheduler"),
        A1111Sampler("DPM adaptive", None, why_not="diffusers has no adaptive-step DPM-Solver scheduler"),
        A1111Sampler("Restart", None, default_schedule="Karras", why_not="diffusers has no Restart sampler"),
        A1111Sampler("LCM", "LCMScheduler", timestep_sampler=True),
        A1111Sampler("DDIM", "DDIMScheduler", timestep_sampler=True),
        A1111Sampler(
            "DDIM CFG++", None, timestep_sampler=True,
            why_not="CFG++ changes the guidance itself, which diffusers' schedulers do not do",
        ),
        A1111Sampler("PLMS", "PNDMScheduler", timestep_sampler=True),
        A1111Sampler("UniPC", "UniPCMultistepScheduler", timestep_sampler=True),
    )
}  # fmt: skip

# A1111's aliases (sd_samplers_*.py) and names other tools write for the same samplers.
_ALIASES = {
    "k_dpmpp_2m": "DPM++ 2M", "k_dpmpp_sde": "DPM++ SDE", "k_dpmpp_2m_sde": "DPM++ 2M SDE",
    "k_dpmpp_2m_sde_heun": "DPM++ 2M SDE Heun", "k_dpmpp_2s_a": "DPM++ 2S a",
    "k_dpmpp_3m_sde": "DPM++ 3M SDE", "k_euler_a": "Euler a", "k_euler_ancestral": "Euler a",
    "k_euler": "Euler", "k_lms": "LMS", "k_heun": "Heun", "k_dpm_2": "DPM2", "k_dpm_2_a": "DPM2 a",
    "k_dpm_fast": "DPM fast", "k_dpm_ad": "DPM adaptive", "restart": "Restart", "k_lcm": "LCM",
    "ddim": "DDIM", "ddim_cfgpp": "DDIM CFG++", "plms": "PLMS", "unipc": "UniPC",
    "pndm": "PLMS",  # dreamreel <= 0.1 wrote PNDM; A1111's name for the scheduler is PLMS
}  # fmt: skip

# Samplers diffusers has and A1111 has not: refused, since their pictures would not round-trip.
_NOT_IN_A1111 = {
    "DDPM": "DDIM",
    "DEIS": "UniPC",
}


@dataclass(frozen=True)
class ScheduleType:
    label: str
    name: str  # A1111's lower-case name
    overrides: dict[str, Any] | None  # None: diffusers has no equivalent
    aliases: tuple[str, ...] = ()


# modules/sd_schedulers.py, in A1111's order (label, name, aliases).
A1111_SCHEDULE_TYPES: dict[str, ScheduleType] = {
    s.label: s
    for s in (
        ScheduleType("Automatic", "automatic", {}),
        ScheduleType("Uniform", "uniform", {}),
        ScheduleType("Karras", "karras", {"use_karras_sigmas": True}),
        ScheduleType("Exponential", "exponential", {"use_exponential_sigmas": True}),
        ScheduleType("Polyexponential", "polyexponential", None),
        ScheduleType("SGM Uniform", "sgm_uniform", {"timestep_spacing": "trailing"}, ("SGMUniform",)),
        ScheduleType("KL Optimal", "kl_optimal", None),
        ScheduleType("Align Your Steps", "align_your_steps", None),
        ScheduleType("Simple", "simple", {"timestep_spacing": "trailing"}),
        ScheduleType("Normal", "normal", {}),
        ScheduleType("DDIM", "ddim", None),
        ScheduleType("Beta", "beta", {"use_beta_sigmas": True}),
        ScheduleType("Karras Exponential", "karras_exponential", None),
    )
}

# The schedule types a dreamreel name may carry (the rest are the model's own spacing or refused).
_NAMED_SCHEDULES = ("Karras", "Exponential", "Beta", "SGM Uniform")
_SIGMA_KEYS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")

# Scheduler classes that accept each override key (diffusers 0.35-0.4x).
_SIGMA_CLASSES = {
    "EulerDiscreteScheduler", "LMSDiscreteScheduler", "HeunDiscreteScheduler", "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler", "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler",
}  # fmt: skip
_TRAILING_CLASSES = {*(_SIGMA_CLASSES - {"DPMSolverSinglestepScheduler"}), "EulerAncestralDiscreteScheduler",
                     "DDIMScheduler", "LCMScheduler", "UniPCMultistepScheduler"}  # fmt: skip


def _schedule_supported(sampler: A1111Sampler, schedule: ScheduleType) -> bool:
    if sampler.class_name is None or schedule.overrides is None:
        return False
    if not schedule.overrides:
        return True
    if "timestep_spacing" in schedule.overrides:
        return sampler.class_name in _TRAILING_CLASSES
    return sampler.class_name in _SIGMA_CLASSES and not sampler.timestep_sampler


def _build_table() -> dict[str, SchedulerChoice]:
    table: dict[str, SchedulerChoice] = {}
    for sampler in A1111_SAMPLERS.values():
        if sampler.class_name is None:
            continue
        table[sampler.label] = SchedulerChoice(sampler.class_name, dict(sampler.overrides))
        for label in _NAMED_SCHEDULES:
            schedule = A1111_SCHEDULE_TYPES[label]
            if _schedule_supported(sampler, schedule):
                overrides = {**sampler.overrides, **(schedule.overrides or {})}
                table[f"{sampler.label} {label}"] = SchedulerChoice(sampler.class_name, overrides)
    return table


# Every name dreamreel accepts and writes: A1111 sampler labels, plain or with a schedule type.
SCHEDULERS: dict[str, SchedulerChoice] = _build_table()

_BY_LOWER = {name.lower(): name for name in SCHEDULERS}


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").strip().split()).lower()


def _refuse_sampler(label: str) -> DreamreelError:
    sampler = A1111_SAMPLERS[label]
    return DreamreelError(
        f"sampler {label!r} has no diffusers equivalent ({sampler.why_not}); choose another, e.g. \"DPM++ 2M\""
    )


def canonical_scheduler_name(name: str) -> str:
    """Normalise a user-typed name (case, `_`/`-`, `k_euler_a`-ish spellings) or raise a clear error."""
    key = _key(name)
    if key in _BY_LOWER:
        return _BY_LOWER[key]
    alias = _ALIASES.get(key.replace(" ", "_")) or _ALIASES.get(name.strip().lower())
    if alias is None and key.startswith("k "):
        key = key.removeprefix("k ")
        if key in _BY_LOWER:
            return _BY_LOWER[key]
    if alias is not None:
        if A1111_SAMPLERS[alias].class_name is None:
            raise _refuse_sampler(alias)
        return alias
    for label in A1111_SAMPLERS:
        if A1111_SAMPLERS[label].class_name is None and (
            key == label.lower() or key.startswith(label.lower() + " ")
        ):
            raise _refuse_sampler(label)
    for other, nearest in _NOT_IN_A1111.items():
        if key == other.lower() or key.startswith(other.lower() + " "):
            raise DreamreelError(
                f"scheduler {name!r} has no AUTOMATIC1111 name, so its pictures could not be made again "
                f'from their parameters; use "{nearest}" (or another of A1111\'s samplers)'
            )
    known = ", ".join(f'"{n}"' for n in SCHEDULERS)
    raise DreamreelError(f"unknown scheduler {name!r}; choose one of {known}")


def scheduler_from_infotext(sampler: str | None, schedule_type: str | None = None) -> str | None:
    """The dreamreel scheduler name an A1111 ``Sampler`` + ``Schedule type`` pair means.

    Follows A1111's reading: a schedule type at the end of the sampler name (old infotexts) is split
    off; ``Automatic`` is the sampler's default schedule. A missing ``Schedule type`` (A1111 before
    1.9 and most other tools) means the sampler name says it all, as it did then. Raises a one-line
    DreamreelError naming the sampler (or schedule type) when diffusers has no equivalent; returns
    None when no sampler is given.
    """
    if not sampler or not sampler.strip():
        return None
    name = sampler.strip()
    schedule: ScheduleType | None = None
    if schedule_type and schedule_type.strip():
        schedule = _schedule_type(schedule_type.strip(), sampler=name)
    for candidate in A1111_SCHEDULE_TYPES.values():
        if candidate.label == "Automatic":
            continue
        for option in (candidate.label, candidate.name, *candidate.aliases):
            if name.lower().endswith(" " + option.lower()) and _base_known(name[: -len(option) - 1]):
                schedule, name = candidate, name[: -len(option) - 1]
                break
    label = _sampler_label(name)
    info = A1111_SAMPLERS[label]
    if info.class_name is None:
        raise _refuse_sampler(label)
    if schedule is not None and schedule.label == "Automatic":
        schedule = A1111_SCHEDULE_TYPES[info.default_schedule] if info.default_schedule else None
    if schedule is None or (info.timestep_sampler and "timestep_spacing" not in (schedule.overrides or {})):
        return label
    if schedule.overrides is None:
        raise DreamreelError(
            f"schedule type {schedule.label!r} (sampler {label!r}) has no diffusers equivalent; "
            'choose Karras, Exponential, Beta, SGM Uniform or Uniform'
        )
    if not schedule.overrides:
        return label
    if not _schedule_supported(info, schedule):
        raise DreamreelError(
            f"sampler {label!r} with schedule type {schedule.label!r} has no diffusers equivalent"
        )
    return f"{label} {schedule.label}" if schedule.label != "Simple" else f"{label} SGM Uniform"


def _schedule_type(text: str, *, sampler: str) -> ScheduleType:
    for candidate in A1111_SCHEDULE_TYPES.values():
        if text.lower() in {o.lower() for o in (candidate.label, candidate.name, *candidate.aliases)}:
            return candidate
    raise DreamreelError(f"unknown schedule type {text!r} (sampler {sampler!r})")


def _base_known(name: str) -> bool:
    try:
        _sampler_label(name)
    except DreamreelError:
        return False
    return True


def _sampler_label(name: str) -> str:
    key = _key(name)
    for label in A1111_SAMPLERS:
        if key == label.lower():
            return label
    alias = _ALIASES.get(key.replace(" ", "_")) or _ALIASES.get(name.strip().lower())
    if alias is not None:
        return alias
    if key.upper() in _NOT_IN_A1111:
        return canonical_scheduler_name(name)  # raises the explanation
    raise DreamreelError(f"sampler {name!r} is not one AUTOMATIC1111 knows; no scheduler matches it")


def _choice_of(scheduler: Any) -> tuple[str | None, str | None]:
    """(A1111 sampler label, schedule type label or None) of a diffusers scheduler instance."""
    cls = type(scheduler).__name__
    config = scheduler.config
    best: A1111Sampler | None = None
    for sampler in A1111_SAMPLERS.values():
        if sampler.class_name != cls:
            continue
        if all(config.get(k) == v for k, v in sampler.overrides.items()) and (
            best is None or len(sampler.overrides) > len(best.overrides)
        ):
            best = sampler
    if best is None:
        return None, None
    schedule: str | None = None
    for label in ("Karras", "Exponential", "Beta"):
        overrides = A1111_SCHEDULE_TYPES[label].overrides or {}
        if all(config.get(k) == v for k, v in overrides.items()):
            schedule = label
    if schedule is None and config.get("timestep_spacing") == "trailing" and cls in _TRAILING_CLASSES:
        schedule = "SGM Uniform"
    return best.label, schedule


def infotext_sampler(scheduler: Any) -> tuple[str, str | None]:
    """(``Sampler``, ``Schedule type``) to write for a diffusers scheduler: names A1111 reads back
    as this very scheduler (the type is None where A1111's ``Automatic`` already means it)."""
    label, schedule = _choice_of(scheduler)
    if label is None:
        return type(scheduler).__name__, None
    info = A1111_SAMPLERS[label]
    if info.timestep_sampler:
        return label, schedule if schedule == "SGM Uniform" else None
    if schedule is None:
        return label, "Uniform" if info.default_schedule else None
    return label, schedule


def scheduler_name_for(scheduler: Any) -> str:
    """The dreamreel (A1111-style) name of a diffusers scheduler instance: the most specific entry
    that matches, or the class name when A1111 has none."""
    label, schedule = _choice_of(scheduler)
    if label is None:
        return type(scheduler).__name__
    name = f"{label} {schedule}" if schedule else label
    return name if name in SCHEDULERS else label


def split_scheduler_name(name: str) -> tuple[str, str | None]:
    """A dreamreel name as (``Sampler``, ``Schedule type``) for infotext, e.g. ``"DPM++ 2M Karras"``
    -> ``("DPM++ 2M", "Karras")`` and ``"DPM++ 2M"`` -> ``("DPM++ 2M", "Uniform")``."""
    if name not in SCHEDULERS:
        return name, None
    for label in _NAMED_SCHEDULES:
        if name.endswith(" " + label) and name[: -len(label) - 1] in A1111_SAMPLERS:
            return name[: -len(label) - 1], label
    info = A1111_SAMPLERS[name]
    return name, "Uniform" if info.default_schedule and not info.timestep_sampler else None


def _pipeline_config_fixes(config: Any) -> dict[str, Any]:
    """What diffusers' Stable Diffusion pipelines change in a deprecated scheduler config when they are
    constructed (``StableDiffusionPipeline.__init__``): ``steps_offset`` other than 1 becomes 1 and
    ``clip_sample`` True becomes False. The same pictures need the same config."""
    fixes: dict[str, Any] = {}
    if config.get("steps_offset", 1) != 1:
        fixes["steps_offset"] = 1
    if config.get("clip_sample", False) is True:
        fixes["clip_sample"] = False
    return fixes


def pipeline_normalized(scheduler: Any) -> Any:
    """The scheduler as diffusers' pipeline would use it: itself when its config is current, else a
    fresh copy with the pipeline constructor's corrections (the caller's object is left alone)."""
    fixes = _pipeline_config_fixes(scheduler.config)
    if not fixes:
        return scheduler
    return type(scheduler).from_config({**scheduler.config, **fixes})


def make_scheduler(name: str, base_scheduler: Any) -> Any:
    """A new scheduler of the named kind, configured from the model's own scheduler config (with the
    corrections diffusers' pipelines make to deprecated configs)."""
    import diffusers

    choice = SCHEDULERS[canonical_scheduler_name(name)]
    cls = getattr(diffusers, choice.class_name)
    config = {k: v for k, v in base_scheduler.config.items() if k not in _SIGMA_KEYS}
    config.update(_pipeline_config_fixes(config))
    return cls.from_config(config, **choice.overrides)


@dataclass(frozen=True)
class Preset:
    """Settings that few-step models are made for: ``--preset NAME`` fills the steps, guidance and
    scheduler a recipe does not give (given ones win)."""

    name: str
    steps: int
    guidance: float
    scheduler: str
    families: tuple[str, ...]  # model families it is made for ("sd1", "sd2", "sdxl")
    models: str  # for the help text and the refusal

    def settings(self) -> dict[str, Any]:
        return {"steps": self.steps, "guidance": self.guidance, "scheduler": self.scheduler}


# Guidance <= 1 runs one UNet pass a step (no unconditional pass), as these models are distilled for.
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # SDXL-Turbo / SD-Turbo ship EulerAncestral with trailing spacing and are run without guidance
        Preset("turbo", 4, 0.0, "Euler a SGM Uniform", ("sd2", "sdxl"), "SDXL-Turbo, SD-Turbo"),
        # LCM-LoRA (SD 1.5, SDXL, SSD-1B) and LCM models; guidance 1 (LCM models embed --guidance instead)
        Preset("lcm", 4, 1.0, "LCM", ("sd1", "sdxl"), "LCM-LoRA and LCM models (SD 1.5, SDXL)"),
        # SDXL-Lightning and Hyper-SDXL (4-step LoRAs/UNets): Euler with trailing spacing, no guidance
        Preset("lightning", 4, 0.0, "Euler SGM Uniform", ("sdxl",), "SDXL-Lightning, Hyper-SDXL (4-step)"),
    )
}
FAMILY_LABELS = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL"}


def preset_named(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise DreamreelError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def check_preset_fits(name: str, family: str | None, model: str) -> None:
    """Refuse a preset on a model family it is not made for (``family`` None: not known, allowed)."""
    preset = preset_named(name)
    if family is not None and family not in preset.families:
        made_for = " or ".join(FAMILY_LABELS[f] for f in preset.families)
        raise DreamreelError(
            f"--preset {name} is for {made_for} models ({preset.models}); {model!r} is {FAMILY_LABELS[family]}"
        )
