"""The built-in ``tiny`` model: a random miniature of the SD 1.x architecture.

Same component classes, same wiring, same scheduler config and the real CLIP tokenizer as
Stable Diffusion 1.5, only narrow and shallow, so every job runs anywhere in seconds. Weights
come from a fixed seed inside ``torch.random.fork_rng`` (the caller's RNG state is untouched),
so every machine builds the same model.
"""

from __future__ import annotations

from typing import Any

TINY_SEED = 0
# Native resolution of tiny: 16x16 latents. SD 1.x is 64x64 latents (512 px).
TINY_SAMPLE_SIZE = 16
# Bump when the architecture below changes: it is part of the model hash recorded in outputs.
TINY_REVISION = "tiny-v1"

# Stable Diffusion 1.5's scheduler config (PNDM, scaled-linear betas), so tiny behaves like SD.
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
    "prediction_type": "epsilon",
}


def build_tiny_components() -> dict[str, Any]:
    """Return the diffusers components dict (unet, vae, text_encoder, tokenizer, scheduler, ...)."""
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from dreamreel.models.tokenizer import CLIP_MAX_LENGTH, build_clip_tokenizer

    tokenizer = build_clip_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        unet = UNet2DConditionModel(
            sample_size=TINY_SAMPLE_SIZE,
            in_channels=4,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            block_out_channels=(32, 64, 64),
            layers_per_block=1,
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=8,
        )
        vae = _tiny_vae(scaling_factor=0.18215)
        torch.manual_seed(TINY_SEED)
        text_config = CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=CLIP_MAX_LENGTH,
            layer_norm_eps=1e-5,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            projection_dim=32,
            hidden_act="quick_gelu",
        )
        text_encoder = CLIPTextModel(text_config)
    return sd1_components(unet, vae, text_encoder, tokenizer)


def _tiny_vae(*, scaling_factor: float) -> Any:
    """The miniature VAE both built-ins share (seeded here, so each model's VAE is the same bits).
    ``force_upcast`` stays diffusers' default (True): SDXL's VAE overflows in fp16, so it decodes in fp32."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(TINY_SEED)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=TINY_SAMPLE_SIZE * 8,
        scaling_factor=scaling_factor,
        force_upcast=True,
    )


def sd1_components(unet: Any, vae: Any, text_encoder: Any, tokenizer: Any) -> dict[str, Any]:
    """Freshly built SD 1.x networks as a diffusers components dict: frozen, eval mode, SD 1.5's PNDM
    scheduler, no safety checker (also used by benchmarks/sd15.py for the full-size architecture)."""
    from diffusers import PNDMScheduler

    for module in (unet, vae, text_encoder):
        module.eval().requires_grad_(False)
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG),
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
    }


# ``tiny-xl``: the SDXL architecture in miniature (two text encoders, pooled text + size/crop
# conditioning through ``addition_embed_type="text_time"``, SDXL's VAE scaling and Euler scheduler).
TINY_XL_REVISION = "tiny-xl-v1"
TINY_XL_TIME_EMBED = 8  # addition_time_embed_dim: each of the six size/crop numbers gets 8 features
TINY_XL_TEXT_WIDTH = 32  # hidden size of each text encoder; the UNet sees both concatenated


def build_tiny_xl_components() -> dict[str, Any]:
    """The components dict ``StableDiffusionXLPipeline(**components)`` takes, random but fixed."""
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from dreamreel.models.checkpoint import config_dir, scheduler_from_folder
    from dreamreel.models.tokenizer import CLIP_MAX_LENGTH, build_clip_tokenizer

    tokenizer = build_clip_tokenizer()
    tokenizer_2 = build_clip_tokenizer(pad_token="!")  # SDXL's OpenCLIP tokenizer pads with "!"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        unet = UNet2DConditionModel(
            sample_size=TINY_SAMPLE_SIZE,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(32, 64),
            layers_per_block=1,
            transformer_layers_per_block=(1, 2),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=TINY_XL_TIME_EMBED,
            projection_class_embeddings_input_dim=6 * TINY_XL_TIME_EMBED + TINY_XL_TEXT_WIDTH,
            cross_attention_dim=2 * TINY_XL_TEXT_WIDTH,
            norm_num_groups=8,
        )
        vae = _tiny_vae(scaling_factor=0.13025)  # SDXL's
        encoders = []
        for cls, act in ((CLIPTextModel, "quick_gelu"), (CLIPTextModelWithProjection, "gelu")):
            torch.manual_seed(TINY_SEED)
            config = CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=TINY_XL_TEXT_WIDTH,
                intermediate_size=37,
                num_hidden_layers=3,
                num_attention_heads=4,
                max_position_embeddings=CLIP_MAX_LENGTH,
                layer_norm_eps=1e-5,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                projection_dim=TINY_XL_TEXT_WIDTH,
                hidden_act=act,
            )
            encoders.append(cls(config))
    modules: list[Any] = [unet, vae, *encoders]
    for module in modules:
        module.eval().requires_grad_(False)
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": encoders[0],
        "text_encoder_2": encoders[1],
        "tokenizer": tokenizer,
        "tokenizer_2": tokenizer_2,
        "scheduler": scheduler_from_folder(config_dir("sdxl")),  # SDXL base's Euler, leading spacing
        "image_encoder": None,
        "feature_extractor": None,
        "force_zeros_for_empty_prompt": True,  # SDXL base's: an empty negative prompt is all zeros
    }
