"""The real Stable Diffusion 1.5 architecture with random weights, built offline for benchmarks.

The configs below are SD 1.5's public ``unet/config.json``, ``vae/config.json`` and
``text_encoder/config.json`` (stable-diffusion-v1-5/stable-diffusion-v1-5), written out so no
network is needed. Random weights cost exactly what trained ones cost: the FLOPs and memory traffic
depend on the shapes only. The tokenizer is dreamreel's offline CLIP tokenizer and the scheduler is
SD 1.5's PNDM config (the same one ``dreamreel.models.tiny`` uses).
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout first

SD15_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}

SD15_VAE_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}

SD15_TEXT_CONFIG: dict[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
    "projection_dim": 768,
}


def build_sd15(device: str = "cpu", dtype: str = "fp32", seed: int = 0) -> Any:
    """A dreamreel LoadedModel holding SD 1.5's architecture with seeded random weights."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from dreamreel.models.loading import LoadedModel, resolve_device, resolve_dtype
    from dreamreel.models.tiny import sd1_components
    from dreamreel.models.tokenizer import build_clip_tokenizer

    tokenizer = build_clip_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**SD15_UNET_CONFIG)
        vae = AutoencoderKL(**SD15_VAE_CONFIG)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                **SD15_TEXT_CONFIG,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
    components = sd1_components(unet, vae, text_encoder, tokenizer)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    # Plain placement (contiguous weights, like from_pretrained gives): callers apply dreamreel's
    # own placement with ``place_model`` where they measure dreamreel.
    for key in ("unet", "vae", "text_encoder"):
        components[key].to(device=torch_device, dtype=torch_dtype)
    return LoadedModel(spec="sd15-random", components=components, device=torch_device, dtype=torch_dtype)


def machine() -> str:
    """One line naming the machine, for RESULTS.md."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


def sync(device: Any) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


def timed(fn: Any, device: Any) -> float:
    """Wall seconds of ``fn()`` (GPU work included)."""
    return timed_both(fn, device)[0]


def timed_both(fn: Any, device: Any) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds of ``fn()``. On a CPU shared with other work the CPU
    seconds are the steadier figure: time slices lost to other processes do not count."""
    sync(device)
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - start, time.process_time() - cpu


def load_average() -> str:
    import os

    try:
        return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        return "load average n/a"
