"""A1111 sampler names -> diffusers scheduler classes and config overrides.

Pure data plus one factory; importing this module does not import diffusers, so the CLI can
validate ``--scheduler`` before any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dreamreel.errors import DreamreelError


@dataclass(frozen=True)
class SchedulerChoice:
    class_name: str
    overrides: dict[str, Any] = field(default_factory=dict)


_KARRAS = {"use_karras_sigmas": True}

# Names as AUTOMATIC1111 writes them in `Sampler:` (old style, Karras folded into the name).
SCHEDULERS: dict[str, SchedulerChoice] = {
    "Euler a": SchedulerChoice("EulerAncestralDiscreteScheduler"),
    "Euler": SchedulerChoice("EulerDiscreteScheduler"),
    "LMS": SchedulerChoice("LMSDiscreteScheduler"),
    "LMS Karras": SchedulerChoice("LMSDiscreteScheduler", _KARRAS),
    "Heun": SchedulerChoice("HeunDiscreteScheduler"),
    "DPM2": SchedulerChoice("KDPM2DiscreteScheduler"),
    "DPM2 Karras": SchedulerChoice("KDPM2DiscreteScheduler", _KARRAS),
    "DPM2 a": SchedulerChoice("KDPM2AncestralDiscreteScheduler"),
    "DPM2 a Karras": SchedulerChoice("KDPM2AncestralDiscreteScheduler", _KARRAS),
    "DPM++ 2M": SchedulerChoice("DPMSolverMultistepScheduler"),
    "DPM++ 2M Karras": SchedulerChoice("DPMSolverMultistepScheduler", _KARRAS),
    "DPM++ 2M SDE": SchedulerChoice("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "DPM++ 2M SDE Karras": SchedulerChoice(
        "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", **_KARRAS}
    ),
    "DPM++ SDE": SchedulerChoice("DPMSolverSinglestepScheduler"),
    "DPM++ SDE Karras": SchedulerChoice("DPMSolverSinglestepScheduler", _KARRAS),
    "DDIM": SchedulerChoice("DDIMScheduler"),
    "DDPM": SchedulerChoice("DDPMScheduler"),
    "PNDM": SchedulerChoice("PNDMScheduler"),
    "PLMS": SchedulerChoice("PNDMScheduler"),
    "UniPC": SchedulerChoice("UniPCMultistepScheduler"),
    "DEIS": SchedulerChoice("DEISMultistepScheduler"),
    "LCM": SchedulerChoice("LCMScheduler"),
}

_BY_LOWER = {name.lower(): name for name in SCHEDULERS}


def canonical_scheduler_name(name: str) -> str:
    """Normalise a user-typed name (case, `_`/`-`, `k_euler_a`-ish spellings) or raise a clear error."""
    key = " ".join(name.replace("_", " ").strip().split()).lower()
    key = key.removeprefix("k ")
    if key in _BY_LOWER:
        return _BY_LOWER[key]
    known = ", ".join(f'"{n}"' for n in SCHEDULERS)
    raise DreamreelError(f"unknown scheduler {name!r}; choose one of {known}")


def scheduler_name_for(scheduler: Any) -> str:
    """The A1111-style name of a diffusers scheduler instance: the most specific entry that matches."""
    cls = type(scheduler).__name__
    best: str | None = None
    for name, choice in SCHEDULERS.items():
        matches = choice.class_name == cls and all(
            scheduler.config.get(k) == v for k, v in choice.overrides.items()
        )
        if matches and (best is None or len(choice.overrides) > len(SCHEDULERS[best].overrides)):
            best = name
    return best or cls


def make_scheduler(name: str, base_scheduler: Any) -> Any:
    """A new scheduler of the named kind, configured from the model's own scheduler config."""
    import diffusers

    choice = SCHEDULERS[canonical_scheduler_name(name)]
    cls = getattr(diffusers, choice.class_name)
    return cls.from_config(base_scheduler.config, **choice.overrides)
