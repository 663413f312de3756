"""Few-step models: LCM and trailing ("SGM Uniform") schedules equal diffusers' pipelines on tiny and
tiny-xl at 1, 2 and 4 steps, guidance <= 1 runs one UNet pass a step, LCM's guidance embedding,
``--preset``. Tolerance 1e-4 on [0, 1] floats, as in tests/test_equivalence.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dreamreel.render.renderer import Renderer, seeded_generator

TOLERANCE = 1e-4


def _pipeline(model, scheduler_name, img2img=False):
    import copy

    from diffusers import (
        StableDiffusionImg2ImgPipeline,
        StableDiffusionPipeline,
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLPipeline,
    )

    from dreamreel.models.prepack import unpack_convolutions
    from dreamreel.render.samplers import make_scheduler

    components = dict(model.components)
    for key in ("unet", "vae"):
        components[key] = copy.deepcopy(model.components[key])
        unpack_convolutions(components[key])
    components["scheduler"] = make_scheduler(scheduler_name, model.components["scheduler"])
    if "text_encoder_2" in components:
        cls = StableDiffusionXLImg2ImgPipeline if img2img else StableDiffusionXLPipeline
        pipe = cls(**components, add_watermarker=False)
    else:
        cls = StableDiffusionImg2ImgPipeline if img2img else StableDiffusionPipeline
        pipe = cls(**components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(params=["tiny", "tiny-xl"])
def model(request, tiny_model, tiny_xl_model):
    return tiny_model if request.param == "tiny" else tiny_xl_model


@pytest.mark.parametrize(("scheduler", "guidance"), [("LCM", 1.0), ("Euler SGM Uniform", 0.0)])
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_few_step_txt2img_equals_diffusers(model, scheduler, guidance, steps):
    pipe = _pipeline(model, scheduler)
    reference = pipe(
        "a lighthouse at dusk", num_inference_steps=steps, guidance_scale=guidance, width=64, height=64,
        generator=seeded_generator(9), output_type="np",
    ).images[0]  # fmt: skip
    renderer = Renderer(model, scheduler)
    ours = renderer.generate(
        [renderer.encode("a lighthouse at dusk")], [9], steps=steps, guidance=guidance, width=64, height=64
    )[0]
    assert np.abs(ours.permute(1, 2, 0).numpy() - reference).max() <= TOLERANCE


@pytest.mark.parametrize("scheduler", ["LCM", "Euler SGM Uniform"])
def test_few_step_img2img_equals_diffusers(model, sample_picture, scheduler):
    from dreamreel.media.pictures import load_image, resize_image, to_unit_tensor

    picture = resize_image(load_image(sample_picture), 64, 64)
    pipe = _pipeline(model, scheduler, img2img=True)
    reference = pipe(
        "a red barn", image=picture, strength=0.5, num_inference_steps=4, guidance_scale=1.0,
        generator=seeded_generator(2), output_type="np",
    ).images[0]  # fmt: skip
    renderer = Renderer(model, scheduler)
    ours = renderer.generate(
        [renderer.encode("a red barn")], [2], steps=4, guidance=1.0, width=64, height=64,
        init_images=to_unit_tensor([picture]), strength=0.5,
    )[0]  # fmt: skip
    assert np.abs(ours.permute(1, 2, 0).numpy() - reference).max() <= TOLERANCE


def _count_unet_calls(monkeypatch, model):
    unet = model.components["unet"]
    calls = []
    original = unet.forward
    monkeypatch.setattr(unet, "forward", lambda x, *a, **k: calls.append(len(x)) or original(x, *a, **k))
    return calls


def test_a_four_step_strength_half_vid2vid_frame_calls_the_unet_twice(tiny_model, samples, monkeypatch):
    """--preset lcm at --strength 0.5: int(4 x 0.5) = 2 steps, one pass each (guidance 1: no
    unconditional half), so a video frame costs 2 UNet calls of one item, not 50 of two."""
    from dreamreel.jobs.runner import prepare, render_frames
    from dreamreel.jobs.vid2vid import Vid2VidRecipe

    recipe = Vid2VidRecipe.from_dict({
        "prompt": "an aardvark", "model": "tiny", "preset": "lcm", "strength": 0.5, "width": 32, "height": 32,
        "video": str(samples.video), "seed": 5, "output": str(samples.folder / "few.mp4"),
    })  # fmt: skip
    assert (recipe.steps, recipe.guidance, recipe.scheduler) == (4, 1.0, "LCM")
    prepared = prepare(recipe)
    calls = _count_unet_calls(monkeypatch, tiny_model)
    frames = list(render_frames(prepared, tiny_model))
    assert len(frames) == prepared.plan.count >= 2
    assert calls == [1] * (2 * len(frames))


def test_guidance_above_one_runs_both_halves_in_one_call(tiny_model, monkeypatch):
    renderer = Renderer(tiny_model, "Euler SGM Uniform")
    calls = _count_unet_calls(monkeypatch, tiny_model)
    renderer.generate([renderer.encode("x")], [1], steps=2, guidance=3.0, width=32, height=32)
    assert calls == [2, 2]


def test_lcm_guidance_embedding_equals_diffusers(tiny_model, monkeypatch):
    """An LCM-distilled UNet (``time_cond_proj_dim``) takes the guidance as an embedding: one pass
    a step whatever --guidance is, and the pictures equal diffusers'."""
    from diffusers import UNet2DConditionModel

    from dreamreel.models.loading import LoadedModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = {k: v for k, v in tiny_model.components["unet"].config.items() if not k.startswith("_")}
        unet = UNet2DConditionModel(**{**config, "time_cond_proj_dim": 16})
    assert unet.config.time_cond_proj_dim == 16
    components = {**tiny_model.components, "unet": unet.eval().requires_grad_(False)}
    model = LoadedModel.wrap(components, name="tiny-lcm")
    pipe = _pipeline(model, "LCM")
    reference = pipe(
        "a cat", num_inference_steps=3, guidance_scale=8.0, width=32, height=32,
        generator=seeded_generator(4), output_type="np",
    ).images[0]  # fmt: skip
    renderer = Renderer(model, "LCM")
    calls = _count_unet_calls(monkeypatch, model)
    ours = renderer.generate([renderer.encode("a cat")], [4], steps=3, guidance=8.0, width=32, height=32)[0]
    assert calls == [1, 1, 1]
    assert np.abs(ours.permute(1, 2, 0).numpy() - reference).max() <= TOLERANCE
    other = renderer.generate([renderer.encode("a cat")], [4], steps=3, guidance=2.0, width=32, height=32)[0]
    assert (other - ours).abs().max() > 1e-3  # the guidance is heard through the embedding


def test_preset_turbo_equals_diffusers_turbo_settings(cli_tiny_xl_model, run_cli, tmp_path):
    """--preset turbo: 4 steps of Euler a with trailing spacing and no guidance, SDXL-Turbo's settings."""
    from PIL import Image

    code, _, err = run_cli(["txt2img", "a fox", "--model", "tiny-xl", "--preset", "turbo", "--seed", "3",
                            "--width", "64", "--height", "64", "--quiet", "-o", tmp_path])  # fmt: skip
    assert code == 0, err
    written = Image.open(tmp_path / "00000-3.png")
    assert "Steps: 4, Sampler: Euler a, Schedule type: SGM Uniform, CFG scale: 0" in written.text["parameters"]
    pipe = _pipeline(cli_tiny_xl_model, "Euler a SGM Uniform")
    reference = pipe("a fox", num_inference_steps=4, guidance_scale=0.0, width=64, height=64,
                     generator=seeded_generator(3), output_type="np").images[0]  # fmt: skip
    assert np.abs(np.asarray(written, dtype=np.float32) / 255 - reference).max() <= 1 / 255 + TOLERANCE


def test_given_settings_beat_the_preset(cli_tiny_xl_model, run_cli, tmp_path):
    from PIL import Image

    code, _, err = run_cli(["txt2img", "a fox", "--model", "tiny-xl", "--preset", "lightning", "--steps", "2",
                            "--seed", "3", "--width", "32", "--height", "32", "--quiet", "-o", tmp_path])  # fmt: skip
    assert code == 0, err
    text = Image.open(tmp_path / "00000-3.png").text["parameters"]
    assert "Steps: 2, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 0" in text


@pytest.mark.parametrize(("preset", "model", "message"), [
    ("lightning", "tiny", "--preset lightning is for SDXL models (SDXL-Lightning, Hyper-SDXL (4-step)); 'tiny' is SD 1.x"),
    ("turbo", "tiny", "--preset turbo is for SD 2.x or SDXL models"),
])  # fmt: skip
def test_preset_on_a_model_it_does_not_fit_is_one_line(preset, model, message, run_cli, no_model_load, tmp_path):
    code, _, err = run_cli(["txt2img", "x", "--model", model, "--preset", preset, "-o", tmp_path])
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "name", ["Euler SGM Uniform", "Euler a SGM Uniform", "LCM", "DPM++ 2M Karras", "DPM++ 2M SDE Exponential"]
)
def test_few_step_schedules_round_trip_through_infotext(tiny_xl_model, name):
    """What a picture writes (Sampler + Schedule type) reads back as the same scheduler."""
    from dreamreel.render.samplers import infotext_sampler, make_scheduler, scheduler_from_infotext

    scheduler = make_scheduler(name, tiny_xl_model.components["scheduler"])
    assert scheduler_from_infotext(*infotext_sampler(scheduler)) == name
    if "SGM" in name:
        assert scheduler.config.timestep_spacing == "trailing"
