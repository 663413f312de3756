"""ControlNet: our renderer with ``--controlnet`` gives diffusers' ControlNet pipelines' pictures (tiny +
a random ControlNet grown from tiny's UNet, ≤ 1e-4 on [0, 1] floats, the project's equivalence
tolerance); a single file in the original (A1111) key layout loads offline; bad files are refused
in one line before any model loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from dreamreel.errors import DreamreelError
from dreamreel.media.control import canny_edges
from dreamreel.media.pictures import load_image, resize_image, to_unit_tensor
from dreamreel.render.renderer import ControlInput, Renderer, seeded_generator
from dreamreel.render.samplers import make_scheduler, pipeline_normalized

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tiny_cn():
    from dreamreel.models.loading import load_model

    return load_model("tiny", device="cpu", dtype="fp32", controlnet=["canny:tiny:0.8"])


def _pipe(model, cls, scheduler):
    import copy

    from dreamreel.models.prepack import unpack_convolutions

    components = {k: v for k, v in model.components.items() if k != "motion_adapter"}
    for key in ("unet", "vae", "controlnet"):
        components[key] = copy.deepcopy(model.components[key])
        unpack_convolutions(components[key])
    base = model.components["scheduler"]
    components["scheduler"] = make_scheduler(scheduler, base) if scheduler else pipeline_normalized(base)
    import inspect

    takes = set(inspect.signature(cls.__init__).parameters)
    components = {k: v for k, v in components.items() if k in takes}
    if "requires_safety_checker" in takes:
        components["requires_safety_checker"] = False
    pipe = cls(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_components_carry_the_controlnet(tiny_cn):
    from diffusers import ControlNetModel

    assert isinstance(tiny_cn.components["controlnet"], ControlNetModel)
    assert [c.kind for c in tiny_cn.controls] == ["canny"]


def test_txt2img_with_controlnet_equals_diffusers(tiny_cn, sample_picture):
    from diffusers import StableDiffusionControlNetPipeline

    edges = canny_edges(resize_image(load_image(sample_picture), 64, 64))
    pipe = _pipe(tiny_cn, StableDiffusionControlNetPipeline, "Euler a")
    settings = {"num_inference_steps": 4, "guidance_scale": 7.5, "width": 64, "height": 64}
    reference = pipe(
        "a cat", image=edges, controlnet_conditioning_scale=0.8, control_guidance_start=0.0,
        control_guidance_end=0.75, generator=seeded_generator(7), output_type="np", **settings,
    ).images[0]  # fmt: skip
    renderer = Renderer(tiny_cn, "Euler a")
    control = ControlInput(images=[to_unit_tensor([edges])], weights=[0.8], start=0.0, end=0.75)
    ours = renderer.generate(
        [renderer.encode("a cat")], [7], steps=4, guidance=7.5, width=64, height=64, control=control
    )[0].permute(1, 2, 0).numpy()
    plain = renderer.generate([renderer.encode("a cat")], [7], steps=4, guidance=7.5, width=64, height=64)
    assert np.abs(ours - reference).max() <= TOLERANCE
    assert np.abs(plain[0].permute(1, 2, 0).numpy() - reference).max() > 1e-3  # the ControlNet acts


def test_img2img_with_controlnet_equals_diffusers(tiny_cn, sample_picture):
    from diffusers import StableDiffusionControlNetImg2ImgPipeline

    picture = resize_image(load_image(sample_picture), 64, 48)
    edges = canny_edges(picture)
    pipe = _pipe(tiny_cn, StableDiffusionControlNetImg2ImgPipeline, "DPM++ 2M Karras")
    reference = pipe(
        "a wolf", image=picture, control_image=edges, strength=0.6, num_inference_steps=5,
        guidance_scale=6.0, controlnet_conditioning_scale=0.8, control_guidance_start=0.2,
        generator=seeded_generator(3), output_type="np",
    ).images[0]  # fmt: skip
    renderer = Renderer(tiny_cn, "DPM++ 2M Karras")
    control = ControlInput(images=[to_unit_tensor([edges])], weights=[0.8], start=0.2, end=1.0)
    ours = renderer.generate(
        [renderer.encode("a wolf")], [3], steps=5, guidance=6.0, width=64, height=48,
        init_images=to_unit_tensor([picture]), strength=0.6, control=control,
    )[0].permute(1, 2, 0).numpy()  # fmt: skip
    assert np.abs(ours - reference).max() <= TOLERANCE


def test_two_controlnets_equal_diffusers_multi(sample_picture):
    from diffusers import StableDiffusionControlNetPipeline

    from dreamreel.models.loading import load_model

    model = load_model("tiny", device="cpu", dtype="fp32", controlnet=["canny:tiny", "tile:tiny:0.5"])
    picture = resize_image(load_image(sample_picture), 32, 32)
    edges = canny_edges(picture)
    pipe = _pipe(model, StableDiffusionControlNetPipeline, "DDIM")
    reference = pipe(
        "a cat", image=[edges, picture], controlnet_conditioning_scale=[1.0, 0.5], num_inference_steps=3,
        width=32, height=32, generator=seeded_generator(5), output_type="np",
    ).images[0]  # fmt: skip
    renderer = Renderer(model, "DDIM")
    control = ControlInput(images=[to_unit_tensor([edges]), to_unit_tensor([picture])], weights=[1.0, 0.5])
    ours = renderer.generate([renderer.encode("a cat")], [5], steps=3, guidance=7.5, width=32, height=32,
                             control=control)[0].permute(1, 2, 0).numpy()  # fmt: skip
    assert np.abs(ours - reference).max() <= TOLERANCE


# -- files ----------------------------------------------------------------------------------------


def tiny_controlnet_file(path, unet, seed=11):
    """A random ControlNet for ``unet`` saved in the original single-file layout (as A1111 users have
    them: ``control_v11p_sd15_canny`` keys, no prefix)."""
    from sd_layout import controlnet_to_original

    from dreamreel.models.controlnet import build_tiny_controlnet

    net = build_tiny_controlnet(unet)
    generator = torch.Generator().manual_seed(seed)
    # the grown net's weights nudged (all-random weights give wild residuals that blow float rounding up)
    state = {k: v + torch.randn(v.shape, generator=generator) * 0.01 for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    save_file(controlnet_to_original(state, dict(unet.config)), str(path))
    return net


def test_single_file_controlnet_loads_offline(tmp_path, tiny_model):
    from dreamreel.models.controlnet import ControlSpec, load_controlnet

    unet = tiny_model.components["unet"]
    file = tmp_path / "control_tiny_canny.safetensors"
    expected = tiny_controlnet_file(file, load_model_stock_unet())
    loaded = load_controlnet(ControlSpec("canny", str(file)), load_model_stock_unet())
    for key, value in expected.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert unet is not None


def load_model_stock_unet():
    from dreamreel.models.tiny import build_tiny_components

    return build_tiny_components()["unet"]


def test_controlnet_of_another_architecture_refused_before_loading(tmp_path, no_model_load):
    from dreamreel.models.controlnet import parse_controlnet_specs
    from dreamreel.models.tiny import build_tiny_xl_components

    file = tmp_path / "xl.safetensors"
    tiny_controlnet_file(file, build_tiny_xl_components()["unet"])
    with pytest.raises(DreamreelError, match="another model architecture") as err:
        parse_controlnet_specs([f"canny:{file}"], model="tiny")
    assert "\n" not in str(err.value)


def test_pickle_controlnet_refused(tmp_path, no_model_load):
    from dreamreel.models.controlnet import parse_controlnet_specs

    file = tmp_path / "control.pth"
    torch.save({"a": torch.zeros(1)}, file)
    with pytest.raises(DreamreelError, match="pickle") as err:
        parse_controlnet_specs([f"canny:{file}"], model="tiny")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("bad", ["edges:tiny", "canny", "canny:tiny:9", "canny:/nope.safetensors"])
def test_bad_controlnet_specs_one_line(bad, no_model_load):
    from dreamreel.models.controlnet import parse_controlnet_specs

    with pytest.raises(DreamreelError) as err:
        parse_controlnet_specs([bad], model="tiny")
    assert "\n" not in str(err.value)


# -- jobs -----------------------------------------------------------------------------------------


def test_img2img_job_with_single_file_controlnet_equals_diffusers(tmp_path, sample_picture, run_cli):
    """``dreamreel img2img --controlnet canny:FILE`` with a random ControlNet in A1111's single-file
    layout: loads offline, and the picture equals StableDiffusionControlNetImg2ImgPipeline's (8-bit
    PNG vs the pipeline's floats: within one level of rounding)."""
    from diffusers import StableDiffusionControlNetImg2ImgPipeline
    from PIL import Image

    from dreamreel.models.loading import load_model

    file = tmp_path / "control_tiny_canny.safetensors"
    tiny_controlnet_file(file, load_model_stock_unet())
    code, _, err = run_cli([
        "img2img", "a wolf", "--model", "tiny", "--image", str(sample_picture), "--width", "32", "--height", "32",
        "--steps", "4", "--strength", "0.75", "--seed", "9", "--controlnet", f"canny:{file}:0.9",
        "--control-end", "0.5", "-o", str(tmp_path / "out"),
    ])  # fmt: skip
    assert code == 0, err
    [png] = sorted((tmp_path / "out").glob("*.png"))
    ours = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64) / 255
    assert 'ControlNet 0: "Module: canny, Model: control_tiny_canny [' in Image.open(png).info["parameters"]

    model = load_model("tiny", device="cpu", dtype="fp32", controlnet=[f"canny:{file}:0.9"])
    picture = resize_image(load_image(sample_picture), 32, 32)
    reference = _pipe(model, StableDiffusionControlNetImg2ImgPipeline, None).__call__(
        "a wolf", image=picture, control_image=canny_edges(picture), strength=0.75, num_inference_steps=4,
        controlnet_conditioning_scale=0.9, control_guidance_end=0.5, generator=seeded_generator(9),
        output_type="np",
    ).images[0]  # fmt: skip
    assert np.abs(ours - reference).max() <= 1 / 255 + TOLERANCE


def test_controlnet_flags_refused_before_the_model_loads(tmp_path, sample_picture, run_cli, no_model_load):
    torch.save({"a": torch.zeros(1)}, tmp_path / "cn.pth")
    for extra, message in [
        ([f"--controlnet=canny:{tmp_path / 'cn.pth'}"], "pickle"),
        (["--controlnet=canny:tiny", "--control-start", "0.6", "--control-end", "0.5"], "below"),
    ]:
        code, _, err = run_cli(["img2img", "a", "--model", "tiny", "-i", str(sample_picture), *extra])
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run_cli(["txt2img", "a", "--model", "tiny", "--controlnet", "canny:tiny"])
    assert code == 2 and "--control-image" in err, err


def test_vid2vid_with_single_file_controlnet_equals_diffusers(tmp_path, samples, run_cli):
    """``dreamreel vid2vid --controlnet canny:FILE`` (a random ControlNet in A1111's single-file layout):
    frame 0 equals StableDiffusionControlNetImg2ImgPipeline on the source frame and its canny edges
    (8-bit PNG vs the pipeline's floats: within one level of rounding)."""
    from diffusers import StableDiffusionControlNetImg2ImgPipeline
    from PIL import Image

    from dreamreel.media.video import read_frames
    from dreamreel.models.loading import load_model

    file = tmp_path / "control_tiny_canny.safetensors"
    tiny_controlnet_file(file, load_model_stock_unet(), seed=12)
    code, _, err = run_cli([
        "vid2vid", "an aardvark", "--video", str(samples.video), "--model", "tiny", "--width", "32", "--height",
        "32", "--steps", "4", "--strength", "0.6", "--seed", "5", "--controlnet", f"canny:{file}",
        "-o", str(tmp_path / "v.mp4"), "--quiet",
    ])  # fmt: skip
    assert code == 0, err
    frames = sorted((tmp_path / "v.run" / "frames").glob("*.png"))
    assert len(frames) >= 2
    ours = np.asarray(Image.open(frames[0]).convert("RGB"), dtype=np.float64) / 255

    source = resize_image(next(iter(read_frames(str(samples.video)))).image, 32, 32, "crop")
    model = load_model("tiny", device="cpu", dtype="fp32", controlnet=[f"canny:{file}"])
    reference = _pipe(model, StableDiffusionControlNetImg2ImgPipeline, None)(
        "an aardvark", image=source, control_image=canny_edges(source), strength=0.6, num_inference_steps=4,
        controlnet_conditioning_scale=1.0,  # this pipeline's default is 0.8
        generator=seeded_generator(5), output_type="np",
    ).images[0]  # fmt: skip
    assert np.abs(ours - reference).max() <= 1 / 255 + TOLERANCE


def test_sdxl_txt2img_with_controlnet_equals_diffusers(sample_picture):
    """tiny-xl with a ControlNet grown from its UNet equals StableDiffusionXLControlNetPipeline."""
    from diffusers import StableDiffusionXLControlNetPipeline

    from dreamreel.models.loading import load_model

    model = load_model("tiny-xl", device="cpu", dtype="fp32", controlnet=["tile:tiny:0.7"])
    picture = resize_image(load_image(sample_picture), 64, 64)
    pipe = _pipe(model, StableDiffusionXLControlNetPipeline, "Euler a")
    reference = pipe(
        "a cat", image=picture, controlnet_conditioning_scale=0.7, num_inference_steps=3, width=64, height=64,
        generator=seeded_generator(8), output_type="np",
    ).images[0]  # fmt: skip
    renderer = Renderer(model, "Euler a")
    control = ControlInput(images=[to_unit_tensor([picture])], weights=[0.7])
    ours = renderer.generate([renderer.encode("a cat")], [8], steps=3, guidance=5.0, width=64, height=64,
                             control=control)[0].permute(1, 2, 0).numpy()  # fmt: skip
    assert np.abs(ours - reference).max() <= TOLERANCE


def test_zoom_with_controlnet_from_the_warped_input_resumes_exactly(tiny_cn):
    """zoom --controlnet canny:tiny: each frame follows the edges of its own warped input (the frames
    differ from a zoom without it, the infotext names the unit) and a resume is bit-identical."""
    from test_resume_exact import assert_resumes_exactly

    from dreamreel.jobs.runner import render_frames
    from dreamreel.jobs.zoom import ZoomRecipe

    recipe = ZoomRecipe(prompt="a cat", model="tiny", seed=3, frames=4, steps=4, width=32, height=32,
                        strength=0.6, controlnet=["canny:tiny:0.8"], output="unused.mp4")  # fmt: skip
    controlled = list(render_frames(recipe, tiny_cn))
    assert 'ControlNet 0: "Module: canny, Model: tiny, Weight: 0.8' in controlled[1].parameters
    plain = list(render_frames(recipe.replace(controlnet=[]), load_plain_tiny()))
    assert controlled[2].image.tobytes() != plain[2].image.tobytes()
    assert_resumes_exactly(recipe, tiny_cn)


def load_plain_tiny():
    from dreamreel.models.loading import load_model

    return load_model("tiny", device="cpu", dtype="fp32")


def test_diffusers_folder_controlnet_loads_offline(tmp_path):
    from dreamreel.models.controlnet import (
        ControlSpec,
        build_tiny_controlnet,
        load_controlnet,
        parse_controlnet_specs,
    )

    unet = load_model_stock_unet()
    build_tiny_controlnet(unet).save_pretrained(str(tmp_path / "cn"))
    [spec] = parse_controlnet_specs([f"tile:{tmp_path / 'cn'}:0.5"], model="tiny")
    assert spec == ControlSpec("tile", str(tmp_path / "cn"), 0.5)
    loaded = load_controlnet(spec, unet)
    expected = build_tiny_controlnet(unet).state_dict()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in expected.items())
