"""--offload and --vae-tiling: same pictures, components on the compute device only while they work,
and a CUDA out-of-memory error named in one line with the options that help. On this CPU machine the
moves are no-ops, but the code path is the one a GPU runs."""

from __future__ import annotations

import pytest
import torch

from dreamreel.errors import DreamreelError
from dreamreel.models.loading import load_model
from dreamreel.render.renderer import Renderer


def _pictures(model, sample_picture):
    from dreamreel.media.pictures import load_image, resize_image, to_unit_tensor

    renderer = Renderer(model, "Euler")
    cond = renderer.encode("a castle", "fog")
    made = renderer.generate([cond], [1], steps=3, guidance=5.0, width=64, height=64)
    init = to_unit_tensor([resize_image(load_image(sample_picture), 64, 64)])
    return torch.cat([made, renderer.generate([cond], [2], steps=4, guidance=5.0, width=64, height=64,
                                              init_images=init, strength=0.5)])  # fmt: skip


@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_offload_gives_the_same_pictures(mode, tiny_xl_model, sample_picture):
    offloaded = load_model("tiny-xl", device="cpu", offload=mode)
    assert offloaded.offloader.mode == mode
    plain, moved = _pictures(tiny_xl_model, sample_picture), _pictures(offloaded, sample_picture)
    assert (plain - moved).abs().max() <= 1e-4  # stock vs prepacked CPU convolutions: float rounding only
    if mode == "model":  # each network fetched when its turn comes, the one before sent back
        assert offloaded.offloader.moves == ["text_encoder", "text_encoder_2", "unet", "vae", "unet", "vae"]


def test_vae_tiling_is_switched_on(tiny_xl_model):
    model = load_model("tiny-xl", device="cpu", vae_tiling=True)
    assert model.components["vae"].use_tiling
    assert not tiny_xl_model.components["vae"].use_tiling


def test_cuda_out_of_memory_is_one_line_naming_the_options(tiny_model, monkeypatch):
    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    renderer = Renderer(tiny_model)
    cond = renderer.encode("x")
    monkeypatch.setattr(tiny_model.components["unet"], "forward", no_memory)
    with pytest.raises(DreamreelError, match=r"--offload model.*--vae-tiling") as error:
        renderer.generate([cond], [1], steps=2, guidance=5.0, width=32, height=32)
    assert "\n" not in str(error.value)


def test_offload_options_reach_the_model(run_cli, monkeypatch, tiny_model, tmp_path):
    seen = {}

    def load(spec, **kwargs):
        seen.update(kwargs)
        return tiny_model

    monkeypatch.setattr("dreamreel.models.loading.load_model", load)
    code, _, err = run_cli(["txt2img", "x", "--model", "tiny", "--steps", "1", "--width", "32", "--height", "32",
                            "--offload", "model", "--vae-tiling", "--quiet", "-o", tmp_path])  # fmt: skip
    assert code == 0, err
    assert seen["offload"] == "model" and seen["vae_tiling"] is True


def test_sdxl_vae_stays_fp32_under_fp16():
    """SDXL's VAE overflows in fp16 (black or NaN pictures): it is kept in fp32 where diffusers' SDXL
    pipelines would upcast it (``force_upcast``), the other networks take the asked dtype."""
    model = load_model("tiny-xl", device="cpu", dtype="fp16")
    assert model.components["vae"].dtype == torch.float32
    assert model.components["unet"].dtype == model.components["text_encoder_2"].dtype == torch.float16
    assert load_model("tiny", device="cpu", dtype="fp16").components["vae"].dtype == torch.float16


def test_vae_tiling_switches_itself_on_when_a_cuda_decode_would_not_fit(tiny_xl_model, monkeypatch):
    import copy
    from types import SimpleNamespace

    renderer = Renderer(tiny_xl_model)
    renderer.model = SimpleNamespace(device=torch.device("cuda"), vae_scale_factor=8)  # only what it reads
    vae = copy.deepcopy(tiny_xl_model.components["vae"])
    latents = torch.zeros(1, 4, 128, 128)  # a 1024x1024 picture: ~0.4 GB by the estimate for tiny-xl's VAE
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**30, 2**34))
    renderer._tile_if_it_would_not_fit(vae, latents)
    assert not vae.use_tiling
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**27, 2**34))
    renderer._tile_if_it_would_not_fit(vae, latents)
    assert vae.use_tiling
