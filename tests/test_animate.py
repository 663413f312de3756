"""AnimateDiff: ``animate`` gives diffusers' AnimateDiffPipeline's frames (tiny + the tiny random
motion adapter, ≤ 1e-4 on [0, 1] floats, the project's equivalence tolerance), also with FreeNoise
windows at twice the context; a SIGKILLed ``dreamreel animate`` resumes to byte-identical frames;
an adapter of another architecture is refused in one line before the model loads."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
from test_resume_video import frame_bytes, render, resume

from dreamreel.errors import DreamreelError
from dreamreel.render.renderer import seeded_generator

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tiny_motion():
    from dreamreel.models.loading import load_model

    return load_model("tiny", device="cpu", dtype="fp32", motion_adapter="tiny")


def _reference(model, frames, free_noise=None):
    from diffusers import AnimateDiffPipeline

    from dreamreel.models.prepack import unpack_convolutions
    from dreamreel.render.samplers import pipeline_normalized

    keys = ("vae", "text_encoder", "tokenizer", "unet", "motion_adapter", "scheduler")
    components = {k: model.components[k] for k in keys}
    for key in ("unet", "vae"):
        components[key] = copy.deepcopy(components[key])
        unpack_convolutions(components[key])
    components["scheduler"] = pipeline_normalized(components["scheduler"])
    pipe = AnimateDiffPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    if free_noise:
        pipe.enable_free_noise(context_length=free_noise[0], context_stride=free_noise[1])
    return pipe(
        "a cat", negative_prompt="blurry", num_frames=frames, width=32, height=32, num_inference_steps=3,
        guidance_scale=7.5, generator=seeded_generator(5), output_type="np",
    ).frames[0]  # fmt: skip


@pytest.mark.parametrize(("frames", "context", "stride"), [(4, 16, 4), (8, 4, 2)], ids=["one-clip", "freenoise-2x"])
def test_animate_equals_animatediff_pipeline(tiny_motion, frames, context, stride):
    """One clip within the context equals AnimateDiffPipeline; twice the context equals the pipeline
    with ``enable_free_noise`` at the same context and stride."""
    from dreamreel.render.animate import ClipRenderer, ClipSettings

    clips = ClipRenderer(tiny_motion)
    settings = ClipSettings(frames=frames, steps=3, guidance=7.5, width=32, height=32, context=context, stride=stride)
    latents = clips.denoise(clips.renderer.encode("a cat", "blurry"), 5, settings)
    ours = np.stack([p[0].permute(1, 2, 0).numpy() for _, p in clips.decode_frames(latents, range(frames))])
    reference = _reference(tiny_motion, frames, (context, stride) if frames > context else None)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= TOLERANCE
    assert np.abs(ours[0] - ours[-1]).max() > 0.01  # frames differ: the adapter acts


def test_components_carry_the_motion_adapter(tiny_motion):
    from diffusers import MotionAdapter

    assert isinstance(tiny_motion.components["motion_adapter"], MotionAdapter)


ANIMATE = ["animate", "a cat", "--model", "tiny", "--motion-adapter", "tiny", "--frames", "24", "--width", "32",
           "--height", "32", "--steps", "2", "--seed", "3", "--quiet"]  # fmt: skip


@pytest.mark.slow
def test_animate_cli_killed_mid_run_resumes_byte_identical(tmp_path):
    """The issue's command: 24 frames (beyond the default context of 16: FreeNoise windows), killed by
    SIGKILL while frame 10 is decoded, then ``dreamreel resume``: every frame is byte for byte the
    unbroken run's, and the video is written."""
    unbroken, killed = tmp_path / "a", tmp_path / "b"
    unbroken.mkdir()
    killed.mkdir()
    done = subprocess.run([sys.executable, "-m", "dreamreel", *ANIMATE, "-o", "x.mp4"], capture_output=True,
                          text=True, timeout=600, cwd=unbroken)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (unbroken / "x.mp4").stat().st_size > 0
    assert "job = \"animate\"" in (unbroken / "x.run" / "recipe.toml").read_text()
    assert len(frame_bytes(unbroken / "x.run")) == 24
    died = render("mid-frame", 11, [*ANIMATE, "-o", "x.mp4"], killed)
    assert died.returncode == -9, died.stderr
    written = len(frame_bytes(killed / "x.run"))
    assert 0 < written < 24
    resume(killed / "x.mp4")
    assert frame_bytes(killed / "x.run") == frame_bytes(unbroken / "x.run")
    assert (killed / "x.mp4").stat().st_size > 0


def test_adapter_for_sdxl_refused_on_sd15_before_loading(tmp_path, run_cli, no_model_load):
    folder = tmp_path / "mm_sdxl"
    folder.mkdir()
    config = {"_class_name": "MotionAdapter", "block_out_channels": [320, 640, 1280]}
    (folder / "config.json").write_text(json.dumps(config))
    import torch
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(folder / "diffusion_pytorch_model.safetensors"))
    code, _, err = run_cli(["animate", "a cat", "--model", "tiny", "--motion-adapter", str(folder), "-o",
                            str(tmp_path / "x.mp4")])  # fmt: skip
    assert code == 2 and "SDXL" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames", "0"], "--frames must be"),
        (["--context", "4", "--stride", "5"], "--stride must be"),
        (["--motion-adapter", "/no/such.safetensors"], "not found|no such|does not exist"),
    ],
)
def test_bad_animate_input_one_line(tmp_path, run_cli, no_model_load, args, message):
    base = ["animate", "a cat", "--model", "tiny", "-o", str(tmp_path / "x.mp4")]
    if "--motion-adapter" not in args:
        base += ["--motion-adapter", "tiny"]
    code, _, err = run_cli([*base, *args])
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    import re

    assert re.search(message, err, re.IGNORECASE), err


def test_pickle_adapter_refused(tmp_path, no_model_load):
    import torch

    from dreamreel.models.motion import check_motion_adapter

    torch.save({"a": torch.zeros(1)}, tmp_path / "mm.ckpt")
    with pytest.raises(DreamreelError, match="pickle"):
        check_motion_adapter(str(tmp_path / "mm.ckpt"), "tiny")


@pytest.mark.parametrize("scheduler", [None, "Euler a"])
def test_animate_from_a_video_equals_animatediff_video_to_video(tiny_motion, samples, scheduler):
    """``animate --video``: the source's frames denoised together equal AnimateDiffVideoToVideoPipeline."""
    from diffusers import AnimateDiffVideoToVideoPipeline

    from dreamreel.media.pictures import resize_image, to_unit_tensor
    from dreamreel.media.video import read_frames
    from dreamreel.models.prepack import unpack_convolutions
    from dreamreel.render.animate import ClipRenderer, ClipSettings
    from dreamreel.render.samplers import make_scheduler, pipeline_normalized

    source = [resize_image(f.image, 32, 32, "crop") for f in read_frames(str(samples.video))][:3]
    components = {k: tiny_motion.components[k] for k in ("vae", "text_encoder", "tokenizer", "unet", "motion_adapter")}
    for key in ("unet", "vae"):
        components[key] = copy.deepcopy(components[key])
        unpack_convolutions(components[key])
    base = tiny_motion.components["scheduler"]
    components["scheduler"] = make_scheduler(scheduler, base) if scheduler else pipeline_normalized(base)
    pipe = AnimateDiffVideoToVideoPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    reference = pipe(
        video=source, prompt="a cat", num_inference_steps=4, strength=0.6, height=32, width=32,
        guidance_scale=7.5, generator=seeded_generator(5), output_type="np",
    ).frames[0]  # fmt: skip
    clips = ClipRenderer(tiny_motion, scheduler)
    settings = ClipSettings(frames=3, steps=4, guidance=7.5, width=32, height=32, context=16, stride=4)
    latents = clips.denoise(
        clips.renderer.encode("a cat"), 5, settings, init_frames=to_unit_tensor(source), strength=0.6
    )  # fmt: skip
    ours = np.stack([p[0].permute(1, 2, 0).numpy() for _, p in clips.decode_frames(latents, range(3))])
    assert np.abs(ours - reference).max() <= TOLERANCE


def test_animate_video_job_runs(tiny_motion, samples, tmp_path):
    from dreamreel.jobs.animate import AnimateRecipe
    from dreamreel.jobs.runner import render_frames

    recipe = AnimateRecipe(prompt="a cat", model="tiny", motion_adapter="tiny", video=str(samples.video), frames=4,
                           strength=0.5, steps=4, width=32, height=32, seed=2, output=str(tmp_path / "v.mp4"))  # fmt: skip
    frames = list(render_frames(recipe, tiny_motion))
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert "Denoising strength: 0.5" in frames[0].parameters and "AnimateDiff: " in frames[0].parameters


def test_clip_longer_than_the_source_refused_before_loading(samples, tmp_path, run_cli, no_model_load):
    code, _, err = run_cli(["animate", "a cat", "--model", "tiny", "--motion-adapter", "tiny", "--video",
                            str(samples.video), "--frames", "24", "-o", str(tmp_path / "x.mp4")])  # fmt: skip
    assert code == 2 and "longer than the source" in err and len(err.strip().splitlines()) == 1, err


def test_sdxl_animate_equals_animatediff_sdxl_pipeline():
    """tiny-xl + its tiny adapter: one clip equals AnimateDiffSDXLPipeline given the same motion UNet
    (diffusers' ``UNetMotionModel.from_unet2d`` does not copy SDXL's ``add_embedding``: ours does, and
    the reference gets our motion UNet so that both run the same weights)."""
    import torch
    from diffusers import AnimateDiffSDXLPipeline

    from dreamreel.models.loading import load_model
    from dreamreel.models.prepack import unpack_convolutions
    from dreamreel.render.animate import ClipRenderer, ClipSettings
    from dreamreel.render.samplers import pipeline_normalized

    model = load_model("tiny-xl", device="cpu", dtype="fp32", motion_adapter="tiny")
    keys = ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "motion_adapter")
    components = {k: model.components[k] for k in keys}
    for key in ("unet", "vae"):
        components[key] = copy.deepcopy(components[key])
        unpack_convolutions(components[key])
    components["scheduler"] = pipeline_normalized(model.components["scheduler"])
    clips = ClipRenderer(model)
    components["unet"] = copy.deepcopy(clips.pipe.unet)
    assert torch.equal(components["unet"].add_embedding.linear_1.weight, model.components["unet"].add_embedding.linear_1.weight)
    pipe = AnimateDiffSDXLPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    reference = pipe(
        "a cat", num_frames=4, width=64, height=64, num_inference_steps=3, guidance_scale=5.0,
        generator=seeded_generator(5), output_type="np",
    ).frames[0]  # fmt: skip
    settings = ClipSettings(frames=4, steps=3, guidance=5.0, width=64, height=64, context=16, stride=4)
    latents = clips.denoise(clips.renderer.encode("a cat"), 5, settings)
    ours = np.stack([p[0].permute(1, 2, 0).numpy() for _, p in clips.decode_frames(latents, range(4))])
    assert np.abs(ours - reference).max() <= TOLERANCE


def test_sdxl_windows_refused_before_loading(tmp_path, run_cli, no_model_load):
    code, _, err = run_cli(["animate", "a cat", "--model", "tiny-xl", "--motion-adapter", "tiny", "--frames", "24",
                            "-o", str(tmp_path / "x.mp4")])  # fmt: skip
    assert code == 2 and "SD 1.x only" in err and len(err.strip().splitlines()) == 1, err


def test_motion_lora_merges_into_the_adapter(tmp_path):
    """A motion LoRA in AnimateDiff's original key layout (``…temporal_transformer…attention_blocks.0.
    processor.to_q_lora.down.weight``) given with --lora goes into the motion adapter: its layer changes
    by exactly weight × up @ down (no alpha: scale 1, as the motion LoRAs are trained); the UNet is untouched."""
    import torch
    from safetensors.torch import save_file

    from dreamreel.models.loading import load_model
    from dreamreel.models.motion import build_tiny_motion_adapter

    generator = torch.Generator().manual_seed(3)
    down, up = torch.randn(2, 32, generator=generator), torch.randn(32, 2, generator=generator)
    base = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0"
    file = tmp_path / "v2_lora_ZoomIn.safetensors"
    save_file({f"{base}.processor.to_q_lora.down.weight": down, f"{base}.processor.to_q_lora.up.weight": up}, str(file))
    model = load_model("tiny", device="cpu", dtype="fp32", motion_adapter="tiny", loras=[f"{file}:0.5"])
    layer = model.components["motion_adapter"].down_blocks[0].motion_modules[0].transformer_blocks[0].attn1.to_q
    stock = build_tiny_motion_adapter().down_blocks[0].motion_modules[0].transformer_blocks[0].attn1.to_q
    assert torch.allclose(layer.weight, stock.weight + 0.5 * up @ down, atol=1e-6)
    assert [lora.name for lora in model.loras] == ["v2_lora_ZoomIn"]
    plain = load_model("tiny", device="cpu", dtype="fp32")
    assert all(torch.equal(a, b) for a, b in zip(model.components["unet"].state_dict().values(),
                                                   plain.components["unet"].state_dict().values(), strict=True))


def test_prompt_schedule_equals_freenoise_prompt_interpolation(tiny_motion):
    """``--prompts "0:a cat, 5:a dog"`` over 8 frames (FreeNoise windows of 4) equals diffusers' FreeNoise
    with the prompt dict {0: "a cat", 5: "a dog"} (embeddings lerped between keys, held after)."""
    from diffusers import AnimateDiffPipeline

    from dreamreel.jobs.animate import AnimateRecipe, frame_conditionings
    from dreamreel.models.prepack import unpack_convolutions
    from dreamreel.render.animate import ClipRenderer, ClipSettings
    from dreamreel.render.samplers import pipeline_normalized

    components = {k: tiny_motion.components[k] for k in ("vae", "text_encoder", "tokenizer", "unet", "motion_adapter")}
    for key in ("unet", "vae"):
        components[key] = copy.deepcopy(components[key])
        unpack_convolutions(components[key])
    components["scheduler"] = pipeline_normalized(tiny_motion.components["scheduler"])
    pipe = AnimateDiffPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    pipe.enable_free_noise(context_length=4, context_stride=2)
    reference = pipe(
        {0: "a cat", 5: "a dog"}, num_frames=8, width=32, height=32, num_inference_steps=3, guidance_scale=7.5,
        generator=seeded_generator(5), output_type="np",
    ).frames[0]  # fmt: skip
    clips = ClipRenderer(tiny_motion)
    recipe = AnimateRecipe(prompt="a cat", prompts="0:a cat, 5:a dog", motion_adapter="tiny", frames=8)
    settings = ClipSettings(frames=8, steps=3, guidance=7.5, width=32, height=32, context=4, stride=2)
    latents = clips.denoise(frame_conditionings(clips.renderer, recipe), 5, settings)
    ours = np.stack([p[0].permute(1, 2, 0).numpy() for _, p in clips.decode_frames(latents, range(8))])
    assert np.abs(ours - reference).max() <= TOLERANCE
