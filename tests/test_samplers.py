"""Sampler names both ways: what we write, A1111 reads back as the same scheduler; what A1111 writes
(every sampler and schedule type of v1.10) maps to the scheduler it means or is refused in one line."""

from __future__ import annotations

import re

import pytest

from dreamreel.errors import DreamreelError
from dreamreel.models.tiny import SD15_SCHEDULER_CONFIG
from dreamreel.render.samplers import (
    SCHEDULERS,
    canonical_scheduler_name,
    infotext_sampler,
    make_scheduler,
    scheduler_from_infotext,
    scheduler_name_for,
    split_scheduler_name,
)
from dreamreel.runs.metadata import a1111_params, format_parameters, parse_parameters

# AUTOMATIC1111 v1.10 as data (modules/sd_samplers_kdiffusion.py, sd_samplers_timesteps.py,
# sd_samplers_lcm.py): label -> the 'scheduler' option (what "Automatic" means), and
# modules/sd_schedulers.py: (label, name) of every schedule type.
A1111_SAMPLER_DEFAULTS = {
    "DPM++ 2M": "karras", "DPM++ SDE": "karras", "DPM++ 2M SDE": "exponential",
    "DPM++ 2M SDE Heun": "exponential", "DPM++ 2S a": "karras", "DPM++ 3M SDE": "exponential",
    "Euler a": None, "Euler": None, "LMS": None, "Heun": None, "DPM2": "karras", "DPM2 a": "karras",
    "DPM fast": None, "DPM adaptive": None, "Restart": "karras", "DDIM": None, "DDIM CFG++": None,
    "PLMS": None, "UniPC": None, "LCM": None,
}  # fmt: skip
A1111_SCHEDULES = [
    ("Automatic", "automatic"), ("Uniform", "uniform"), ("Karras", "karras"), ("Exponential", "exponential"),
    ("Polyexponential", "polyexponential"), ("SGM Uniform", "sgm_uniform"), ("KL Optimal", "kl_optimal"),
    ("Align Your Steps", "align_your_steps"), ("Simple", "simple"), ("Normal", "normal"), ("DDIM", "ddim"),
    ("Beta", "beta"), ("Karras Exponential", "karras_exponential"),
]  # fmt: skip
NO_DIFFUSERS_SAMPLER = {"DPM++ 2S a", "DPM fast", "DPM adaptive", "Restart", "DDIM CFG++"}
NO_DIFFUSERS_SCHEDULE = {"Polyexponential", "KL Optimal", "Align Your Steps", "DDIM", "Karras Exponential"}
TIMESTEP_SAMPLERS = {"DDIM", "DDIM CFG++", "PLMS", "UniPC", "LCM"}


def a1111_reads(sampler: str, schedule_type: str | None) -> tuple[str, str]:
    """What A1111's get_sampler_and_scheduler makes of an infotext pair (its rules, restated): a
    schedule label/name at the end of the sampler is split off; an unknown sampler becomes the first
    one (DPM++ 2M); a schedule equal to the sampler's default becomes Automatic."""
    found = next((s for s in A1111_SCHEDULES if schedule_type in s), A1111_SCHEDULES[0])
    name = sampler
    for label, short in A1111_SCHEDULES:
        for option in (label, short):
            if name.endswith(" " + option):
                found, name = (label, short), name[: -len(option) - 1]
                break
    if name not in A1111_SAMPLER_DEFAULTS:
        name = "DPM++ 2M"
    if A1111_SAMPLER_DEFAULTS[name] == found[1]:
        found = A1111_SCHEDULES[0]
    return name, found[0]


def _base():
    from diffusers import PNDMScheduler

    return PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)


def _kind(scheduler) -> tuple[str, tuple]:
    keys = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "timestep_spacing",
            "algorithm_type", "solver_type", "solver_order")  # fmt: skip
    return type(scheduler).__name__, tuple(scheduler.config.get(k) for k in keys)


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_name_we_write_round_trips_through_our_reader_and_a1111s(name):
    scheduler = make_scheduler(name, _base())
    assert scheduler_name_for(scheduler) == name
    sampler, schedule_type = infotext_sampler(scheduler)
    assert (sampler, schedule_type) == split_scheduler_name(name)
    # our reader: the very same scheduler
    again = make_scheduler(scheduler_from_infotext(sampler, schedule_type), _base())
    assert _kind(again) == _kind(scheduler)
    # A1111's reader: a sampler it has (not its DPM++ 2M fallback) with the schedule we meant
    a1111_sampler, a1111_schedule = a1111_reads(sampler, schedule_type)
    assert a1111_sampler == sampler
    assert scheduler_from_infotext(a1111_sampler, a1111_schedule) == name
    # and the whole text through our A1111-rules parser
    text = format_parameters("p", "", a1111_params(steps=5, sampler=name, guidance=7, seed=1, width=64,
                                                   height=64, model_hash=None, model="m"))  # fmt: skip
    assert parse_parameters(text)["Sampler"] == name


def test_a_default_sd15_render_is_written_as_plms_which_a1111_knows():
    sampler, schedule_type = infotext_sampler(_base())
    assert (sampler, schedule_type) == ("PLMS", None)
    assert a1111_reads(sampler, schedule_type) == ("PLMS", "Automatic")
    assert scheduler_from_infotext("PLMS", "Automatic") == "PLMS"
    assert canonical_scheduler_name("PNDM") == "PLMS"  # our old name still works on the command line


@pytest.mark.parametrize("sampler", sorted(A1111_SAMPLER_DEFAULTS))
@pytest.mark.parametrize("schedule", [None] + [label for label, _ in A1111_SCHEDULES])
def test_every_a1111_sampler_and_schedule_type_maps_or_is_refused_in_one_line(sampler, schedule):
    if sampler in NO_DIFFUSERS_SAMPLER:
        with pytest.raises(DreamreelError, match=re.escape(f"sampler '{sampler}'")) as refused:
            scheduler_from_infotext(sampler, schedule)
        assert "\n" not in str(refused.value)
        return
    try:
        name = scheduler_from_infotext(sampler, schedule)
    except DreamreelError as exc:  # a schedule type diffusers lacks, or lacks for this scheduler
        assert schedule not in (None, "Automatic", "Uniform", "Normal")
        assert f"'{schedule}'" in str(exc) and f"'{sampler}'" in str(exc) and "\n" not in str(exc)
        return
    if schedule in NO_DIFFUSERS_SCHEDULE:
        assert sampler in TIMESTEP_SAMPLERS  # A1111 itself ignores the schedule type for these
    assert name is not None and name.startswith(sampler)
    scheduler = make_scheduler(name, _base())
    config = scheduler.config
    effective = schedule
    if schedule == "Automatic":
        effective = {"karras": "Karras", "exponential": "Exponential", None: None}[A1111_SAMPLER_DEFAULTS[sampler]]
    if sampler in TIMESTEP_SAMPLERS and effective not in ("SGM Uniform", "Simple"):
        effective = None  # A1111's timestep samplers ignore the schedule type
    assert bool(config.get("use_karras_sigmas")) == (effective == "Karras")
    assert bool(config.get("use_exponential_sigmas")) == (effective == "Exponential")
    assert bool(config.get("use_beta_sigmas")) == (effective == "Beta")
    assert (config.get("timestep_spacing") == "trailing") == (effective in ("SGM Uniform", "Simple"))


@pytest.mark.parametrize(
    ("infotext", "expected"),
    [
        (("DPM++ 2M Karras", None), "DPM++ 2M Karras"),  # before A1111 1.9
        (("DPM++ 2M", None), "DPM++ 2M"),  # before 1.9 this meant uniform sigmas
        (("DPM++ 2M", "Automatic"), "DPM++ 2M Karras"),  # 1.9+: Automatic is the sampler's default
        (("DPM++ 2M", "Uniform"), "DPM++ 2M"),
        (("DPM++ 2M SDE", "Automatic"), "DPM++ 2M SDE Exponential"),
        (("Euler a", "Automatic"), "Euler a"),
        (("Euler", "sgm_uniform"), "Euler SGM Uniform"),
        (("k_euler_a", None), "Euler a"),
        (("DPM++ 2M SDE Heun", "Karras"), "DPM++ 2M SDE Heun Karras"),
        (("PLMS", "Karras"), "PLMS"),
        (("DDIM", "SGM Uniform"), "DDIM SGM Uniform"),
    ],
)
def test_infotext_pairs_read_as_a1111_means_them(infotext, expected):
    assert scheduler_from_infotext(*infotext) == expected


def test_a1111_schedule_types_become_diffusers_sigmas():
    assert make_scheduler("DPM++ 2M Karras", _base()).config.use_karras_sigmas
    heun = make_scheduler("DPM++ 2M SDE Heun", _base()).config
    assert (heun.algorithm_type, heun.solver_type) == ("sde-dpmsolver++", "heun")
    assert make_scheduler("DPM++ 3M SDE", _base()).config.solver_order == 3
    # a plain name after a Karras model default drops the Karras sigmas
    plain = make_scheduler("Euler", make_scheduler("Euler Karras", _base()))
    assert not plain.config.use_karras_sigmas


@pytest.mark.parametrize(("name", "nearest"), [("DDPM", "DDIM"), ("DEIS", "UniPC")])
def test_samplers_a1111_lacks_are_refused_with_the_nearest(name, nearest):
    with pytest.raises(DreamreelError, match=f"no AUTOMATIC1111 name.*{nearest}"):
        canonical_scheduler_name(name)


def test_unknown_names_are_refused():
    with pytest.raises(DreamreelError, match="unknown scheduler 'Bogus'"):
        canonical_scheduler_name("Bogus")
    with pytest.raises(DreamreelError, match="not one AUTOMATIC1111 knows"):
        scheduler_from_infotext("Bogus", None)
    with pytest.raises(DreamreelError, match="unknown schedule type"):
        scheduler_from_infotext("Euler", "Wobbly")
    assert scheduler_from_infotext("", None) is None


@pytest.mark.parametrize("kind", ["DDIMScheduler", "PNDMScheduler"])
def test_deprecated_scheduler_configs_are_corrected_as_the_pipeline_corrects_them(tiny_model, kind):
    import diffusers

    from dreamreel.render.renderer import Renderer

    config = {**SD15_SCHEDULER_CONFIG, "steps_offset": 0, "clip_sample": True}
    old = getattr(diffusers, kind).from_config(config)
    components = {**tiny_model.components, "scheduler": getattr(diffusers, kind).from_config(config)}
    components.update(safety_checker=None, feature_extractor=None)
    pipe = diffusers.StableDiffusionPipeline(**components, requires_safety_checker=False)
    model = type(tiny_model)(spec="tiny", components={**tiny_model.components, "scheduler": old},
                             device=tiny_model.device, dtype=tiny_model.dtype)  # fmt: skip
    named = kind.removesuffix("Scheduler").replace("PNDM", "PLMS")
    for ours in (Renderer(model).scheduler, Renderer(model, named).scheduler):
        assert (ours.config.steps_offset, ours.config.clip_sample) == (1, False)
        assert (pipe.scheduler.config.steps_offset, pipe.scheduler.config.clip_sample) == (1, False)
        ours.set_timesteps(7)
        pipe.scheduler.set_timesteps(7)
        assert ours.timesteps.tolist() == pipe.scheduler.timesteps.tolist()
