"""Single-file checkpoints (what A1111 users download): SD 1.x, SD 2.x and SDXL, fully offline.

The architecture is read from tensor names and shapes (the safetensors header is enough, so a
wrong file is refused before any weights load). The diffusers-format configs of each architecture
ship in ``dreamreel/data/configs/<arch>/``; tokenizers are rebuilt from the shipped CLIP BPE data.
Weights are converted with diffusers' own key converters and loaded STRICTLY: a checkpoint that
does not fill every parameter is an error, never a silently random layer.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError

log = logging.getLogger("dreamreel")

UNET_PREFIX = "model.diffusion_model."
# Which key tells which architecture (the names every SD checkpoint carries).
KEY_CONV_IN = UNET_PREFIX + "input_blocks.0.0.weight"
KEY_CROSS_ATTN = UNET_PREFIX + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
KEY_XL_CROSS_ATTN = UNET_PREFIX + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
KEY_XL_LABEL_EMB = UNET_PREFIX + "label_emb.0.0.weight"
KEY_SD1_CLIP = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
KEY_SD2_CLIP = "cond_stage_model.model.token_embedding.weight"
KEY_XL_CLIP_G = "conditioner.embedders.1.model.token_embedding.weight"
# The SDXL refiner has OpenCLIP-G alone, as embedder 0, and a UNet that reads an aesthetic score
KEY_REFINER_CLIP_G = "conditioner.embedders.0.model.token_embedding.weight"

ARCH_LABELS = {
    "sd1": "SD 1.x",
    "sd2": "SD 2.x (epsilon)",
    "sd2-v": "SD 2.x (v-prediction)",
    "sdxl": "SDXL",
}


def detect_architecture(shapes: dict[str, list[int]], name: str = "checkpoint") -> str:
    """'sd1', 'sd2' (v or epsilon is decided later, from the weights) or 'sdxl'; else a clear error."""
    if KEY_CONV_IN not in shapes:
        keys = list(shapes)
        if any("lora_" in k or ".lora" in k for k in keys[:200]):
            raise DreamreelError(f"{name!r} is a LoRA, not a model: pass it with --lora FILE[:WEIGHT]")
        if any(k.startswith(("encoder.down", "decoder.up", "first_stage_model.")) for k in keys):
            raise DreamreelError(f"{name!r} is a VAE only, not a whole model: pass it with --vae FILE")
        raise DreamreelError(
            f"{name!r} is not a Stable Diffusion checkpoint dreamreel knows (no UNet under "
            f"'{UNET_PREFIX}'): SD 1.x, SD 2.x and SDXL single files load"
        )
    in_channels = shapes[KEY_CONV_IN][1]
    if in_channels != 4:
        raise DreamreelError(
            f"{name!r} has a UNet with {in_channels} input channels (an inpainting or other special model); "
            "only plain 4-channel text-to-image checkpoints load"
        )
    if KEY_REFINER_CLIP_G in shapes:
        raise DreamreelError(
            f"{name!r} is an SDXL refiner, which only finishes another model's pictures; "
            "use an SDXL base model (then img2img with a low --strength refines)"
        )
    if KEY_XL_LABEL_EMB in shapes or KEY_XL_CLIP_G in shapes:
        if KEY_XL_CLIP_G not in shapes:
            raise DreamreelError(f"{name!r} looks like an SDXL refiner or a UNet-only file; use an SDXL base")
        return "sdxl"
    context = shapes.get(KEY_CROSS_ATTN, [0, 0])[-1]
    if context == 768 and KEY_SD1_CLIP in shapes:
        return "sd1"
    if context == 1024 and KEY_SD2_CLIP in shapes:
        return "sd2"
    raise DreamreelError(
        f"{name!r} has an SD-style UNet (cross-attention width {context}) but no matching text encoder; "
        "it may be a UNet-only file or an unknown variant"
    )


def config_dir(arch: str, root: Path | None = None) -> Path:
    """The diffusers config folder of an architecture: shipped package data unless ``root`` is given."""
    if root is not None:
        return root / arch
    return Path(str(resources.files("dreamreel") / "data" / "configs" / arch))


def load_checkpoint(
    state: dict[str, Any], name: str, v_prediction_hint: bool | None = None, configs: Path | None = None
) -> dict[str, Any]:
    """Diffusers components from a single-file state dict. ``v_prediction_hint`` decides SD 2.x's kind
    when known (e.g. from an A1111 sidecar .yaml); otherwise the UNet itself is probed. ``configs``
    replaces the shipped config folders (same ``<arch>/`` layout), e.g. for custom-size variants."""
    arch = detect_architecture({k: list(v.shape) for k, v in state.items()}, name)
    unet = _load_unet(state, config_dir("sd2-v" if arch == "sd2" else arch, configs), name)
    if arch == "sd2":
        is_v = v_prediction_hint if v_prediction_hint is not None else uses_v_prediction(unet)
        arch = "sd2-v" if is_v else "sd2"
        if not is_v:  # the 512 "base" model differs in its native size (the attention upcast built
            # for v models stays on: it only guards fp16 against overflow)
            from diffusers import UNet2DConditionModel

            base = UNet2DConditionModel.load_config(config_dir("sd2", configs) / "unet")
            unet.register_to_config(sample_size=base["sample_size"])
        log.info("%s: %s", name, ARCH_LABELS[arch])
    folder = config_dir(arch, configs)
    components: dict[str, Any] = {
        "unet": unet,
        "vae": load_vae_weights(state, folder / "vae", name),
        "scheduler": scheduler_from_folder(folder),
        "feature_extractor": None,
        "image_encoder": None,
    }
    if arch == "sdxl":  # what StableDiffusionXLPipeline takes (it has no safety checker)
        components["force_zeros_for_empty_prompt"] = True
        components["text_encoder"] = _load_clip(state, folder / "text_encoder", "clip", name)
        components["text_encoder_2"] = _load_clip(state, folder / "text_encoder_2", "open_clip_xl", name)
        components["tokenizer"] = _tokenizer(folder / "tokenizer")
        components["tokenizer_2"] = _tokenizer(folder / "tokenizer_2")
    else:
        kind = "clip" if arch == "sd1" else "open_clip"
        components["text_encoder"] = _load_clip(state, folder / "text_encoder", kind, name)
        components["tokenizer"] = _tokenizer(folder / "tokenizer")
        components["safety_checker"] = None
    return components


def _assign_strict(module: Any, weights: dict[str, Any], what: str, name: str) -> Any:
    """Load ``weights`` into a meta-built module: every parameter must come from the file."""
    expected = set(module.state_dict())
    missing = sorted(expected - set(weights))
    if missing:
        raise DreamreelError(
            f"{name!r} does not hold a complete {what}: {len(missing)} tensors are missing "
            f"(first: {missing[0]}); the file is damaged or a different variant"
        )
    try:
        module.load_state_dict({k: weights[k] for k in expected}, strict=True, assign=True)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise DreamreelError(f"{name!r} does not fit the {what} it looks like: {detail}") from exc
    leftover = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if leftover:
        raise DreamreelError(f"{name!r}: {what} tensor {leftover[0]} was not loaded")
    return module.eval().requires_grad_(False)


def _load_unet(state: dict[str, Any], folder: Path, name: str) -> Any:
    import torch
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    config = UNet2DConditionModel.load_config(folder / "unet")
    weights = convert_ldm_unet_checkpoint(state, config)
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    return _assign_strict(unet, weights, "UNet", name)


def load_vae_weights(state: dict[str, Any], config: Path | dict[str, Any], name: str) -> Any:
    """An AutoencoderKL from original-layout (``first_stage_model.``/bare ``encoder.down...``) or
    diffusers-layout VAE weights, built with the given config folder or config dict."""
    import torch
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    vae_config = dict(AutoencoderKL.load_config(config) if isinstance(config, Path) else config)
    if any(k.startswith("encoder.down_blocks.") for k in state):
        weights = dict(state)  # already diffusers layout
    else:
        weights = convert_ldm_vae_checkpoint(state, vae_config)
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(vae_config)
    return _assign_strict(vae, weights, "VAE", name)


def _load_clip(state: dict[str, Any], folder: Path, kind: str, name: str) -> Any:
    import torch
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint, convert_open_clip_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    from transformers.initialization import no_init_weights

    config = CLIPTextConfig.from_pretrained(folder, local_files_only=True)
    cls = CLIPTextModelWithProjection if kind == "open_clip_xl" else CLIPTextModel
    with no_init_weights():  # every weight comes from the file: skip the random init
        model = cls(config)
    if kind == "clip":
        weights = convert_ldm_clip_checkpoint(state)
    else:
        prefix = "conditioner.embedders.1.model." if kind == "open_clip_xl" else "cond_stage_model.model."
        weights = convert_open_clip_checkpoint(model, state, prefix=prefix)
    own = set(model.state_dict())
    if not any(k.startswith("text_model.") for k in own):  # transformers >= 5.6 flattened CLIPTextModel
        weights = {k.removeprefix("text_model."): v for k, v in weights.items()}
    missing = sorted(own - set(weights))
    if missing:
        raise DreamreelError(
            f"{name!r} does not hold a complete text encoder: {len(missing)} tensors are missing "
            f"(first: {missing[0]})"
        )
    try:
        model.load_state_dict({k: weights[k].to(torch.float32) for k in own}, strict=True)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise DreamreelError(f"{name!r} does not fit its text encoder: {detail}") from exc
    return model.eval().requires_grad_(False)


def _tokenizer(folder: Path) -> Any:
    import json

    from dreamreel.models.tokenizer import build_clip_tokenizer

    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    return build_clip_tokenizer(pad_token=config["pad_token"])


def scheduler_from_folder(folder: Path) -> Any:
    """The scheduler of a shipped config folder (its ``scheduler/scheduler_config.json``)."""
    import diffusers

    config = diffusers.PNDMScheduler.load_config(folder / "scheduler")
    return getattr(diffusers, config["_class_name"]).from_config(config)


def uses_v_prediction(unet: Any) -> bool:
    """SD 2.x v-prediction or epsilon? The weights look the same, so ask the model, as A1111 does:
    at t=999 on a flat 0.5 latent, a v model's output minus the input averages well below -1."""
    import torch

    if next(unet.parameters()).dtype != torch.float32:
        unet.float()  # half precision convolutions are slow or missing on CPUs; the caller casts later
    with torch.inference_mode():
        dtype = torch.float32
        x = torch.full((1, 4, 8, 8), 0.5, dtype=dtype)
        context = torch.full((1, 2, unet.config.cross_attention_dim), 0.5, dtype=dtype)
        out = unet(x, torch.tensor([999]), encoder_hidden_states=context).sample
        return bool((out.float() - x.float()).mean() < -1)


def sidecar_v_prediction(path: Path) -> bool | None:
    """A1111's convention: ``model.yaml`` beside ``model.safetensors`` names the parameterization."""
    yaml = path.with_suffix(".yaml")
    if not yaml.is_file():
        return None
    try:
        text = yaml.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return "parameterization" in text and '"v"' in text.replace("'", '"')
