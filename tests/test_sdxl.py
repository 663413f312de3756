"""SDXL: the built-in ``tiny-xl`` miniature, and our renderer against diffusers' SDXL pipelines.

Tolerance 1e-4 on [0, 1] floats, as tests/test_equivalence.py holds SD 1.x to.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
