"""SDXL: the built-in ``tiny-xl`` miniature, and our renderer against diffusers' SDXL pipelines.

Tolerance 1e-4 on [0, 1] floats, as tests/test_equivalence.py holds SD 1.x to.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sd_layout import open_clip_to_original, unet_to_original

TOLERANCE = 1e-4


def test_tiny_xl_is_a_pipeline_and_the_same_on_every_build(tiny_xl_model):
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    from dreamreel.models.tiny import build_tiny_xl_components

    StableDiffusionXLPipeline(**tiny_xl_model.components)
    StableDiffusionXLImg2ImgPipeline(**tiny_xl_model.components)
    again = build_tiny_xl_components()
    for name in ("unet", "text_encoder_2"):
        ours, theirs = tiny_xl_model.components[name].state_dict(), again[name].state_dict()
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert tiny_xl_model.native_size == 128
    assert tiny_xl_model.components["tokenizer_2"].pad_token_id == 0  # "!" like SDXL's OpenCLIP tokenizer


def _xl_pipeline(model, pipeline_cls, scheduler_name):
    """diffusers' SDXL pipeline on stock copies of our networks (see test_equivalence.py)."""
    import copy

    from dreamreel.models.prepack import unpack_convolutions
    from dreamreel.render.samplers import make_scheduler

    components = dict(model.components)
    for key in ("unet", "vae"):
        components[key] = copy.deepcopy(model.components[key])
        unpack_convolutions(components[key])
    if scheduler_name is not None:
        components["scheduler"] = make_scheduler(scheduler_name, model.components["scheduler"])
    pipe = pipeline_cls(**components, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _ours(model, scheduler, prompt, negative="", **settings):
    from dreamreel.render.renderer import Renderer

    renderer = Renderer(model, scheduler)
    seed = settings.pop("seed")
    picture = renderer.generate([renderer.encode(prompt, negative)], [seed], **settings)[0]
    return picture.permute(1, 2, 0).numpy()


@pytest.mark.parametrize(
    ("scheduler", "negative"), [(None, "blurry, low quality"), ("DPM++ 2M Karras", None), ("Euler a", "blurry")]
)
def test_sdxl_txt2img_equals_diffusers(tiny_xl_model, scheduler, negative):
    from diffusers import StableDiffusionXLPipeline

    from dreamreel.render.renderer import seeded_generator

    prompt = "a funny cat covered in neon cloth"
    pipe = _xl_pipeline(tiny_xl_model, StableDiffusionXLPipeline, scheduler)
    reference = pipe(
        prompt, negative_prompt=negative, num_inference_steps=4, guidance_scale=6.0, width=64, height=48,
        generator=seeded_generator(7), output_type="np",
    ).images[0]  # fmt: skip
    ours = _ours(
        tiny_xl_model, scheduler, prompt, negative or "", steps=4, guidance=6.0, width=64, height=48, seed=7
    )
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= TOLERANCE


@pytest.mark.parametrize(("scheduler", "strength"), [(None, 0.5), ("UniPC", 0.75)])
def test_sdxl_img2img_equals_diffusers(tiny_xl_model, sample_picture, scheduler, strength):
    from diffusers import StableDiffusionXLImg2ImgPipeline

    from dreamreel.media.pictures import load_image, resize_image, to_unit_tensor
    from dreamreel.render.renderer import seeded_generator

    picture = resize_image(load_image(sample_picture), 64, 48)
    pipe = _xl_pipeline(tiny_xl_model, StableDiffusionXLImg2ImgPipeline, scheduler)
    reference = pipe(
        "photo of a cute friendly animal", negative_prompt="ugly", image=picture, strength=strength,
        num_inference_steps=4, guidance_scale=5.0, generator=seeded_generator(3), output_type="np",
    ).images[0]  # fmt: skip
    ours = _ours(
        tiny_xl_model, scheduler, "photo of a cute friendly animal", "ugly", steps=4, guidance=5.0,
        width=64, height=48, seed=3, init_images=to_unit_tensor([picture]), strength=strength,
    )  # fmt: skip
    assert np.abs(ours - reference).max() <= TOLERANCE


LONG_PROMPT = " ".join(["a very detailed painting of a lighthouse on a cliff above a stormy sea"] * 8)


def test_sdxl_long_prompt(tiny_xl_model):
    """Past 77 tokens diffusers' SDXL pipeline truncates each encoder's input to its first 75 tokens;
    we (like A1111) encode every 75-token chunk and concatenate them. What the reference defines is
    compared: our first chunk is its truncated encoding (this prompt has no comma, so A1111's comma
    backtracking does not move the cut), and given our whole long embedding the pipeline draws our
    picture (its denoising of a 154-token context equals ours)."""
    from diffusers import StableDiffusionXLPipeline

    from dreamreel.render.renderer import Renderer, seeded_generator

    pipe = _xl_pipeline(tiny_xl_model, StableDiffusionXLPipeline, None)
    renderer = Renderer(tiny_xl_model)
    conditioning = renderer.encode(LONG_PROMPT, "dark")
    assert conditioning.cond.shape[1] == 2 * 77
    embeds, negative, pooled, negative_pooled = pipe.encode_prompt(LONG_PROMPT, negative_prompt="dark")
    assert (conditioning.cond[:, :77] - embeds).abs().max() <= 1e-6
    assert (conditioning.pooled - pooled).abs().max() <= 1e-6
    assert (conditioning.uncond[:, :77] - negative).abs().max() <= 1e-6
    assert (conditioning.uncond_pooled - negative_pooled).abs().max() <= 1e-6

    reference = pipe(
        prompt_embeds=conditioning.cond, negative_prompt_embeds=conditioning.uncond,
        pooled_prompt_embeds=conditioning.pooled, negative_pooled_prompt_embeds=conditioning.uncond_pooled,
        num_inference_steps=3, guidance_scale=7.0, width=64, height=64, generator=seeded_generator(11),
        output_type="np",
    ).images[0]  # fmt: skip
    ours = renderer.generate([conditioning], [11], steps=3, guidance=7.0, width=64, height=64)[0]
    assert np.abs(ours.permute(1, 2, 0).numpy() - reference).max() <= TOLERANCE
    short = renderer.generate([renderer.encode("a lighthouse", "dark")], [11], steps=3, guidance=7.0,
                              width=64, height=64)[0]  # fmt: skip
    assert (short - ours).abs().max() > 0.01  # the second chunk is heard


def test_sdxl_weighted_prompt_changes_the_picture_and_keeps_the_length(tiny_xl_model):
    from dreamreel.render.renderer import Renderer

    renderer = Renderer(tiny_xl_model)
    plain, weighted = renderer.encode("a red (cat:1.5)"), renderer.encode("a red cat")
    assert plain.cond.shape == weighted.cond.shape == (1, 77, 64)
    assert (plain.cond - weighted.cond).abs().max() > 1e-3
    assert torch.equal(plain.pooled, weighted.pooled)  # weights act on the hidden states, as in A1111


def test_sdxl_refiner_single_file_is_refused_in_one_line(tmp_path, run_cli, no_model_load, tiny_xl_model):
    """The refiner's layout: OpenCLIP-G alone as embedder 0 (no CLIP-L), a UNet with label_emb."""
    import copy

    from safetensors.torch import save_file

    from dreamreel.models.prepack import unpack_convolutions

    stock = copy.deepcopy(tiny_xl_model.components["unet"])
    unpack_convolutions(stock)
    text_2 = tiny_xl_model.components["text_encoder_2"]
    single = {
        **unet_to_original(stock.state_dict(), dict(stock.config)),
        **open_clip_to_original(text_2.state_dict(), "conditioner.embedders.0.model."),
    }
    path = tmp_path / "sd_xl_refiner_1.0.safetensors"
    save_file({k: v.contiguous() for k, v in single.items()}, path)
    code, _, err = run_cli(["txt2img", "x", "--model", path, "-o", tmp_path])
    assert code == 2 and "is an SDXL refiner" in err and len(err.strip().splitlines()) == 1
