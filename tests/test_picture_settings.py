"""Other tools' pictures: what made them is read back (tool, prompt, seed, ...) and, where it maps, turned
into dreamreel recipe fields; what does not map is named in one line. Sample files: fixtures/pictures."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from dreamreel.errors import DreamreelError
from dreamreel.runs.metadata import parse_parameters
from dreamreel.runs.picture_settings import (
    read_picture_settings,
    settings_to_recipe_fields,
)

PICTURES = Path(__file__).parent / "fixtures" / "pictures"
SIZELESS = {"img2img_cropped.png", "novelai1_cropped.png"}  # cropped to a pixel, and no size in the settings

A1111_TEXT = (
    "photo of a duck\nNegative prompt: monochrome\n"
    "Steps: 15, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 235284042, Size: 64x48, "
    "Model hash: c0d1994c73, Model: realisticVision, Version: v1.10.0"
)


def _resaved(source: Path, target: Path, size=(64, 64)) -> Path:
    """The sample's metadata on a picture of a renderable size (the samples are cropped to a pixel)."""
    info = PngImagePlugin.PngInfo()
    for key, value in Image.open(source).info.items():
        if isinstance(value, str):
            info.add_text(key, value)
    Image.new("RGB", size, "gray").save(target, pnginfo=info)
    return target


@pytest.mark.parametrize(
    ("name", "tool", "prompt", "seed", "steps", "sampler", "cfg", "size"),
    [
        ("automatic1111_cropped.png", "AUTOMATIC1111", "photo of a duck", 235284042, 15, "UniPC", 5, (512, 400)),
        ("automatic1111_cropped.jpg", "AUTOMATIC1111", "photo of a duck", 235284042, 15, "UniPC", 5, (512, 400)),
        ("automatic1111_stealth.png", "AUTOMATIC1111", "a circle", 2015833630, 20, "Euler", 7, (64, 64)),
        ("img2img_cropped.png", "ComfyUI", "photograph of victorian woman with wings, sky clouds, meadow grass",
         280823642470253, 20, "dpmpp_2m", 8, (1, 1)),
        ("unclip_2pass_cropped.png", "ComfyUI", "beautiful scenery landscape outdoors mountains",
         119080905858220, 8, "dpmpp_sde", 9, (1920, 1088)),
        ("invokeai_dream1.png", "InvokeAI", "professional full body photo of young woman", 2980747362, 50, "k_lms",
         5, (512, 768)),
        ("invokeai_sdmeta1.png", "InvokeAI", "professional full body photo of young woman", 2980747362, 50,
         "k_lms", 5, (512, 768)),
        ("invokeai_imeta1.png", "InvokeAI", "digital artwork, oil painting.", 3293022630, 35, "euler", 8,
         (1024, 1024)),
        ("novelai1_cropped.png", "NovelAI", "masterpiece, best quality,  cat, space, icon", 2253955223, 50,
         "k_euler_ancestral", 10, (1, 1)),
        ("fooocus1_cropped.png", "Fooocus", "cinematic still a smiling goldfish", 6952411511246973023, 30,
         "dpmpp_2m_sde_gpu", 4, (768, 1280)),
    ],
)  # fmt: skip
def test_each_tools_picture_shows_its_tool_prompt_seed_and_settings(name, tool, prompt, seed, steps, sampler,
                                                                    cfg, size):  # fmt: skip
    settings = read_picture_settings(PICTURES / name)
    assert settings.tool == tool
    assert settings.prompt.startswith(prompt)
    assert (settings.seed, settings.steps, settings.sampler, settings.cfg) == (seed, steps, sampler, cfg)
    assert (settings.width, settings.height) == size
    shown = settings.summary()
    assert shown["Tool"] == tool and shown["Seed"] == str(seed) and shown["Prompt"].startswith(prompt)


def test_comfyui_img2img_sample_maps_to_img2img_but_for_its_64_bit_seed(tmp_path, monkeypatch):
    monkeypatch.setattr("dreamreel.recipes.seeds.MAX_SEED", 2**64 - 1)  # what torch.Generator accepts
    path = _resaved(PICTURES / "img2img_cropped.png", tmp_path / "c.png")
    fields = settings_to_recipe_fields(read_picture_settings(path))
    assert (fields["scheduler"], fields["seeds"]) == ("DPM++ 2M", [280823642470253])
    assert fields["strength"] == pytest.approx(0.87)


def test_sample_details_that_matter_for_a_rerender():
    a1111 = read_picture_settings(PICTURES / "automatic1111_cropped.jpg")
    assert (a1111.negative, a1111.model, a1111.strength) == ("monochrome", "realistic_realisticVisionV20_v20", None)
    comfy = read_picture_settings(PICTURES / "img2img_cropped.png")
    assert comfy.negative == "watermark, text"
    assert comfy.strength == pytest.approx(0.87)  # the sampler starts from an encoded picture
    assert (comfy.schedule_type, comfy.model) == ("normal", "v1-5-pruned-emaonly.ckpt")
    stealth = read_picture_settings(PICTURES / "automatic1111_stealth.png")
    assert (stealth.negative, stealth.schedule_type) == ("a square", "Automatic")
    novelai = read_picture_settings(PICTURES / "novelai1_cropped.png")
    assert novelai.negative.startswith("lowres, bad anatomy") and novelai.strength is None
    dream = read_picture_settings(PICTURES / "invokeai_dream1.png")
    assert dream.negative == "rendering, glowing eyes, skinny"


@pytest.mark.parametrize(
    ("name", "scheduler", "strength"),
    [
        ("automatic1111_cropped.png", "UniPC", None),
        ("automatic1111_cropped.jpg", "UniPC", None),
        ("invokeai_dream1.png", "LMS", None),
        ("invokeai_sdmeta1.png", "LMS", None),
        ("novelai1_cropped.png", "Euler a", None),
    ],
)
def test_pictures_that_map_give_recipe_fields(tmp_path, name, scheduler, strength):
    path = PICTURES / name
    if name in SIZELESS:  # the graph or NovelAI does not say the size: the picture's own
        path = _resaved(path, tmp_path / name)
    settings = read_picture_settings(path)
    fields = settings_to_recipe_fields(settings)
    assert fields["prompt"] == settings.prompt and fields["negative"] == settings.negative
    assert fields["seeds"] == [settings.seed] and fields["steps"] == settings.steps
    assert fields["guidance"] == settings.cfg and fields["scheduler"] == scheduler
    assert (fields["width"], fields["height"]) == (settings.width, settings.height)
    assert fields.get("strength") == (pytest.approx(strength) if strength else None)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("automatic1111_stealth.png", "AUTOMATIC1111 setting 'Clip skip' does not map"),
        ("unclip_2pass_cropped.png", "ComfyUI setting 'latent_image' does not map.*LatentUpscale"),
        ("invokeai_imeta1.png", "InvokeAI setting 'ipAdapters' does not map"),
        ("fooocus1_cropped.png", "Fooocus setting 'sharpness' does not map"),
        ("img2img_cropped.png", "ComfyUI seed 280823642470253 is beyond dreamreel's seeds"),
    ],
)
def test_what_does_not_map_is_named_with_its_tool_in_one_line(tmp_path, name, message):
    with pytest.raises(DreamreelError, match=message) as refused:
        settings_to_recipe_fields(read_picture_settings(PICTURES / name))
    assert "\n" not in str(refused.value)


def _exif_comment(text: str, order: str = "be") -> Image.Exif:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + text.encode(f"utf-16-{order}")
    return exif


@pytest.mark.parametrize(("suffix", "order"), [(".webp", "be"), (".jpg", "be"), (".jpg", "le")])
def test_a1111_jpeg_and_webp_settings_in_exif_user_comment(tmp_path, suffix, order):
    path = tmp_path / f"a1111{suffix}"
    Image.new("RGB", (64, 48), "white").save(path, exif=_exif_comment(A1111_TEXT, order))
    settings = read_picture_settings(path)
    assert (settings.tool, settings.prompt, settings.seed) == ("AUTOMATIC1111", "photo of a duck", 235284042)
    assert settings_to_recipe_fields(settings)["scheduler"] == "DPM++ 2M Karras"


def _hide(image: Image.Image, text: str, *, rgb: bool, compressed: bool) -> Image.Image:
    """Stealth-pnginfo's layout: signature, 32-bit length in bits, data; low bits, column by column."""
    kind = ("rgb" if rgb else "png") + ("comp" if compressed else "info")
    data = gzip.compress(text.encode()) if compressed else text.encode()
    payload = f"stealth_{kind}".encode() + (len(data) * 8).to_bytes(4, "big") + data
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    pixels = np.array(image.convert("RGBA" if not rgb else "RGB"))
    plane = pixels.transpose(1, 0, 2)  # column by column
    flat = plane.reshape(-1) if rgb else plane[:, :, 3].reshape(-1)  # rgb: R, G, B of each pixel in turn
    assert bits.size <= flat.size
    flat[: bits.size] = (flat[: bits.size] & 0xFE) | bits
    if rgb:
        pixels = flat.reshape(plane.shape).transpose(1, 0, 2)
    else:
        plane[:, :, 3] = flat.reshape(plane.shape[:2])
        pixels = plane.transpose(1, 0, 2)
    return Image.fromarray(np.ascontiguousarray(pixels))


@pytest.mark.parametrize(("rgb", "compressed"), [(False, False), (False, True), (True, False), (True, True)])
def test_stealth_pngs_in_alpha_or_rgb_bits_compressed_or_not(tmp_path, rgb, compressed):
    path = tmp_path / "stealth.png"
    _hide(Image.new("RGB", (64, 48), (120, 80, 200)), A1111_TEXT, rgb=rgb, compressed=compressed).save(path)
    settings = read_picture_settings(path)
    assert (settings.tool, settings.prompt, settings.seed, settings.steps) == (
        "AUTOMATIC1111", "photo of a duck", 235284042, 15)  # fmt: skip
    assert settings_to_recipe_fields(settings)["width"] == 64


def _comfy_graph(seed_link: bool = False) -> dict:
    graph = {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": ["10", 0] if seed_link else 1566802087, "steps": 20, "cfg": 8.0,
            "sampler_name": "euler", "scheduler": "karras", "denoise": 1.0, "model": ["4", 0],
            "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 384, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "beautiful scenery nature glass bottle",
                                                          "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }  # fmt: skip
    if seed_link:
        graph["10"] = {"class_type": "PrimitiveInt", "inputs": {"value": 42}}
    return graph


def _comfy_picture(path: Path, graph: dict) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(graph))
    info.add_text("workflow", "{}")
    Image.new("RGB", (512, 384)).save(path, pnginfo=info)
    return path


def test_comfyui_txt2img_graph_maps_through_the_wires(tmp_path):
    settings = read_picture_settings(_comfy_picture(tmp_path / "c.png", _comfy_graph()))
    fields = settings_to_recipe_fields(settings)
    assert fields == {
        "prompt": "beautiful scenery nature glass bottle", "negative": "text, watermark", "steps": 20,
        "guidance": 8.0, "seeds": [1566802087], "width": 512, "height": 384, "scheduler": "Euler Karras",
    }  # fmt: skip
    linked = read_picture_settings(_comfy_picture(tmp_path / "l.png", _comfy_graph(seed_link=True)))
    assert linked.seed == 42


def test_comfyui_graph_changes_are_named(tmp_path):
    graph = _comfy_graph()
    graph["11"] = {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1],
                                                          "lora_name": "x.safetensors"}}  # fmt: skip
    graph["3"]["inputs"]["model"] = ["11", 0]
    with pytest.raises(DreamreelError, match=r"ComfyUI setting 'model' does not map.*LoraLoader"):
        settings_to_recipe_fields(read_picture_settings(_comfy_picture(tmp_path / "c.png", graph)))
    graph = _comfy_graph()
    graph["5"]["inputs"]["width"] = 500
    with pytest.raises(DreamreelError, match="ComfyUI setting width 500 is not a multiple of 8"):
        settings_to_recipe_fields(read_picture_settings(_comfy_picture(tmp_path / "w.png", graph)))
    graph = _comfy_graph()
    graph["3"]["inputs"]["sampler_name"] = "dpmpp_2s_ancestral"
    with pytest.raises(DreamreelError, match=r"ComfyUI: sampler 'DPM\+\+ 2S a' has no diffusers equivalent"):
        settings_to_recipe_fields(read_picture_settings(_comfy_picture(tmp_path / "s.png", graph)))


def test_a1111_sampler_without_a_diffusers_equivalent_is_named(tmp_path):
    path = tmp_path / "a.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_TEXT.replace("DPM++ 2M", "DPM adaptive"))
    Image.new("RGB", (64, 48)).save(path, pnginfo=info)
    with pytest.raises(DreamreelError, match="AUTOMATIC1111: sampler 'DPM adaptive' has no diffusers equivalent"):
        settings_to_recipe_fields(read_picture_settings(path))


def test_our_own_pictures_carry_the_recipe(tmp_path):
    from dreamreel.runs.metadata import png_info

    path = tmp_path / "ours.png"
    recipe = {"job": "txt2img", "prompt": "a cat", "negative": "", "steps": 6, "guidance": 7.5, "seeds": [3],
              "width": 64, "height": 64, "scheduler": "Euler a", "model": "tiny"}  # fmt: skip
    text = "a cat\nSteps: 6, Sampler: Euler a, CFG scale: 7.5, Seed: 3, Size: 64x64, Model: tiny"
    Image.new("RGB", (64, 64)).save(path, pnginfo=png_info(text, recipe))
    settings = read_picture_settings(path)
    assert (settings.tool, settings.prompt, settings.seed, settings.recipe) == ("dreamreel", "a cat", 3, recipe)
    assert settings_to_recipe_fields(settings)["scheduler"] == "Euler a"


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_a_picture_without_settings_says_so(tmp_path, suffix):
    path = tmp_path / f"plain{suffix}"
    Image.new("RGBA" if suffix == ".png" else "RGB", (32, 32), "white").save(path)
    with pytest.raises(DreamreelError, match=r"carries no generation settings$"):
        read_picture_settings(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["automatic1111_cropped.jpg", "comfyui", "novelai1_cropped.png",
                                  "invokeai_sdmeta1.png", "stealth"])  # fmt: skip
def test_a_mapped_picture_renders_with_its_prompt_seed_sampler_and_cfg(tmp_path, tiny_model, name):
    """What ``rerender --model tiny`` does with the fields (steps and size cut for speed)."""
    from dreamreel.jobs.img2img import Img2ImgRecipe
    from dreamreel.jobs.runner import render_frames
    from dreamreel.jobs.txt2img import Txt2ImgRecipe

    if name == "comfyui":
        path = _comfy_picture(tmp_path / "c.png", _comfy_graph(seed_link=True))
    elif name == "stealth":
        path = tmp_path / "stealth.png"
        _hide(Image.new("RGB", (64, 48)), A1111_TEXT, rgb=False, compressed=True).save(path)
    else:
        path = _resaved(PICTURES / name, tmp_path / "picture.png") if name in SIZELESS else PICTURES / name
    settings = read_picture_settings(path)
    fields = {**settings_to_recipe_fields(settings), "steps": 2, "width": 64, "height": 64, "model": "tiny"}
    if "strength" in fields:
        fields["strength"] = 0.5  # int(2 * 0.5) = 1 step
        made = next(iter(render_frames(Img2ImgRecipe(image=str(path), **fields), tiny_model)))
    else:
        made = next(iter(render_frames(Txt2ImgRecipe(**fields), tiny_model)))
    written = parse_parameters(made.parameters)
    assert written["Prompt"] == settings.prompt.strip()
    assert int(written["Seed"]) == settings.seed
    assert float(written["CFG scale"]) == settings.cfg
    assert written["Sampler"] == fields["scheduler"]


def _foreign_picture(name: str, tmp_path):
    if name == "comfyui":
        return _comfy_picture(tmp_path / "c.png", _comfy_graph(seed_link=True))
    if name == "stealth":
        path = tmp_path / "stealth.png"
        _hide(Image.new("RGB", (64, 48)), A1111_TEXT, rgb=False, compressed=True).save(path)
        return path
    return _resaved(PICTURES / name, tmp_path / "picture.png") if name in SIZELESS else PICTURES / name


FOREIGN = ["automatic1111_cropped.jpg", "automatic1111_stealth.png", "comfyui", "novelai1_cropped.png",
           "invokeai_sdmeta1.png", "stealth"]  # fmt: skip


@pytest.mark.parametrize("name", FOREIGN)
def test_info_and_rerender_of_other_tools_pictures(name, tmp_path, run_cli, cli_tiny):
    """``dreamreel info`` names the tool, prompt and seed; ``rerender --model tiny`` writes a PNG whose
    A1111 text carries the original prompt, seed, sampler and CFG."""
    path = _foreign_picture(name, tmp_path)
    settings = read_picture_settings(path)
    code, out, err = run_cli(["info", path])
    assert code == 0, err
    assert f"Tool: {settings.tool}" in out and f"Seed: {settings.seed}" in out
    assert settings.prompt.strip()[:40] in out
    if settings.unmappable:  # refused in one line naming the tool and the setting
        code, _, err = run_cli(["rerender", path, "--model", "tiny"])
        assert code == 2 and settings.tool in err and settings.unmappable[0][0] in err and err.count("\n") == 1
        return
    fields = settings_to_recipe_fields(settings)
    extra = ["--image", path, "--strength", "0.5"] if "strength" in fields else []
    code, _, err = run_cli(["rerender", path, "--model", "tiny", "--steps", "2", "--width", "64", "--height", "64",
                            "--out", tmp_path / "again", "--quiet", *extra])  # fmt: skip
    assert code == 0, err
    (made,) = sorted((tmp_path / "again").glob("*.png"))
    from dreamreel.runs.metadata import read_png_metadata

    written = parse_parameters(read_png_metadata(made)[0])
    assert written["Prompt"] == settings.prompt.strip()
    assert int(written["Seed"]) == settings.seed
    assert float(written["CFG scale"]) == settings.cfg
    assert written["Sampler"] == fields.get("scheduler", written["Sampler"])


def test_the_cli_says_a_picture_carries_no_settings(tmp_path, run_cli):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    code, _, err = run_cli(["info", plain])
    assert code == 2 and "carries no generation settings" in err
    code, _, err = run_cli(["rerender", plain, "--model", "tiny"])
    assert code == 2 and "carries no generation settings" in err
