"""The CUDA paths: fp16 rendering, ``--compile`` with CUDA graphs. Skipped where no CUDA GPU is.

Run on a lent H100 (see benchmarks/RESULTS.md). Tolerance 3/255 on [0, 1]: fp16 arithmetic through a
differently fused graph moves a pixel by up to ~2 levels of 8 bits (measured on SD 1.5 at 512 px,
benchmarks/logs/2026-11-24-h100), well under anything visible.
"""

from __future__ import annotations

import copy

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
TOLERANCE = 3 / 255


@pytest.fixture(scope="module")
def cuda_model():
    from dreamreel.models.loading import load_model

    return load_model("tiny", device="cuda", dtype="fp16")


def _compiled(model):
    from dreamreel.models.loading import LoadedModel, compile_networks

    components = dict(model.components)
    components["unet"] = copy.deepcopy(model.components["unet"])
    components["vae"] = copy.deepcopy(model.components["vae"])
    compile_networks(components, model.device)
    return LoadedModel(spec=model.spec, components=components, device=model.device, dtype=model.dtype)


def _render(model, scheduler: str, guidance: float, init=None):
    from dreamreel.render.renderer import Renderer

    renderer = Renderer(model, scheduler)
    settings = {"steps": 8, "guidance": guidance, "width": 64, "height": 64}
    if init is not None:
        settings.update(init_images=init, strength=0.6)
    return renderer.generate([renderer.encode("a lighthouse at dusk", "fog")], [42], **settings)


def test_fp16_txt2img_equals_the_diffusers_pipeline(cuda_model):
    from diffusers import StableDiffusionPipeline

    from dreamreel.render.renderer import seeded_generator

    pipe = StableDiffusionPipeline(**cuda_model.components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    reference = pipe(
        "a lighthouse at dusk", negative_prompt="fog", num_inference_steps=8, guidance_scale=7.5,
        width=64, height=64, generator=seeded_generator(42), output_type="pt",
    ).images.float().cpu()  # fmt: skip
    ours = _render(cuda_model, "PNDM", 7.5)
    assert (ours - reference).abs().max() <= TOLERANCE


@pytest.mark.parametrize(("scheduler", "guidance"), [("PNDM", 7.5), ("PNDM", 1.0), ("DPM++ 2M", 1.0)])
def test_compiled_cuda_graphs_give_the_eager_pictures(cuda_model, scheduler, guidance):
    # guidance 1.0: the UNet output itself goes into the multistep schedulers' history, which a
    # CUDA-graph replay would overwrite unless the Renderer copies it
    init = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))  # [0, 1] pixels
    compiled = _compiled(cuda_model)
    for start in (None, init):
        eager = _render(cuda_model, scheduler, guidance, start)
        for _ in range(3):  # warm-up, recording, replay
            fast = _render(compiled, scheduler, guidance, start)
        assert (fast - eager).abs().max() <= TOLERANCE


def test_cli_zoom_on_cuda_with_compile_resumes_exactly(tmp_path):
    from PIL import Image, ImageChops

    from dreamreel.cli.app import main

    out = tmp_path / "zoom.mp4"
    main(["zoom", "a city of glass", "--model", "tiny", "--device", "cuda", "--compile", "--frames", "4",
          "--steps", "6", "--width", "64", "--height", "64", "--seed", "3", "-o", str(out), "--quiet"])  # fmt: skip
    frames = sorted((tmp_path / "zoom.run" / "frames").glob("*.png"))
    assert len(frames) == 4 and out.is_file()
    kept = Image.open(frames[-1]).convert("RGB")
    frames[-1].unlink()  # as if the run had died before its last frame was safe
    main(["resume", str(out), "--quiet"])
    again = Image.open(frames[-1]).convert("RGB")
    assert ImageChops.difference(again, kept).getbbox() is None
