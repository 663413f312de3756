"""A NaN or all-black VAE decode in half precision is retried in fp32 (A1111's --no-half-vae, automatic)."""

from __future__ import annotations

import logging

import pytest
import torch

from dreamreel.errors import DreamreelError
from dreamreel.models.loading import load_model
from dreamreel.render.renderer import Renderer


def _broken_in_half(vae, value):
    """Make the VAE decode give ``value`` everywhere unless it runs in fp32 (as fp16 overflow does)."""
    original = vae.decode
    calls = []

    def decode(latents, *args, **kwargs):
        calls.append(vae.dtype)
        images = original(latents, *args, **kwargs)
        if vae.dtype != torch.float32:
            images = (torch.full_like(images[0], value),)
        return images

    vae.decode = decode
    return calls


@pytest.mark.parametrize("value", [float("nan"), -1.0])
def test_broken_half_precision_decode_is_retried_in_fp32(caplog, value):
    model = load_model("tiny", device="cpu", dtype="bf16")
    renderer = Renderer(model)
    latents = renderer.initial_noise(1, 64, 64)
    calls = _broken_in_half(model.components["vae"], value)
    with caplog.at_level(logging.WARNING, logger="dreamreel"):
        pictures = renderer.decode(latents)
    assert calls == [torch.bfloat16, torch.float32]
    assert "retrying in fp32" in caplog.text
    assert torch.isfinite(pictures).all() and pictures.max() > 0
    assert model.components["vae"].dtype == torch.float32  # later frames decode in fp32 straight away
    # the retry equals an fp32 decode with the same (bf16-rounded) weights
    reference = load_model("tiny", device="cpu", dtype="fp32")
    vae = reference.components["vae"]
    vae.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in vae.state_dict().items()})
    assert torch.allclose(pictures, Renderer(reference).decode(latents.float()), atol=1e-5)


def test_nan_even_in_fp32_is_a_clear_error():
    model = load_model("tiny", device="cpu", dtype="fp32")
    vae = model.components["vae"]
    vae.decode = lambda latents, *a, **k: (torch.full((1, 3, 64, 64), float("nan")),)
    with pytest.raises(DreamreelError, match="NaN values even in fp32"):
        Renderer(model).decode(torch.zeros(1, 4, 8, 8))
