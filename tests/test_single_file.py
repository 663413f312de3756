"""Single-file checkpoints: architecture detection, offline loading, and equality with diffusers folders."""

from __future__ import annotations

import gc
import json

import pytest
import torch
from sd_layout import clip_to_original, open_clip_to_original, unet_to_original, vae_to_original

from dreamreel.errors import DreamreelError
from dreamreel.models.checkpoint import config_dir, detect_architecture
from dreamreel.models.loading import check_model_spec, file_hash, load_model, weights_hash
from dreamreel.render.renderer import Renderer


def _render(model, seed=7):
    renderer = Renderer(model)
    conditioning = renderer.encode("a lighthouse at dusk", "blurry")
    return renderer.generate([conditioning], [seed], steps=1, guidance=7.5, width=64, height=64)


def _random_sd(arch: str, dtype=torch.float16):
    """Real-size SD components from the shipped configs, random weights (seeded), in ``dtype``."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = config_dir(arch)
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet")).to(dtype)
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")).to(dtype)
    text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder")).to(dtype)
    return unet, vae, text


@pytest.mark.slow
def test_sd15_single_file_equals_diffusers_folder(tmp_path):
    """A random-weight checkpoint with SD 1.5's real layout and key names loads offline and renders
    exactly what the same weights give as a diffusers folder."""
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import save_file

    from dreamreel.models.tiny import build_tiny_components

    unet, vae, text = _random_sd("sd1")
    single = {
        **unet_to_original(unet.state_dict(), dict(unet.config)),
        **vae_to_original(vae.state_dict()),
        **clip_to_original(text.state_dict(), "cond_stage_model.transformer."),
    }
    checkpoint = tmp_path / "v1-5-random.safetensors"
    save_file({k: v.contiguous() for k, v in single.items()}, checkpoint)
    del single
    tiny = build_tiny_components()
    components = dict(tiny, unet=unet, vae=vae, text_encoder=text)
    StableDiffusionPipeline(**components, requires_safety_checker=False).save_pretrained(tmp_path / "folder")
    del unet, vae, text, components
    gc.collect()

    assert detect_architecture(_keys(checkpoint)) == "sd1"
    model = load_model(str(checkpoint), device="cpu", dtype="fp32")
    assert model.native_size == 512 and model.name == "v1-5-random"
    assert model.model_hash == file_hash(checkpoint)  # A1111's: sha256 of the file, 10 hex digits
    from_file = {k: weights_hash(model.components[k]) for k in ("unet", "vae", "text_encoder")}
    picture_file = _render(model)
    del model
    gc.collect()
    model = load_model(str(tmp_path / "folder"), device="cpu", dtype="fp32")
    assert {k: weights_hash(model.components[k]) for k in ("unet", "vae", "text_encoder")} == from_file
    picture_folder = _render(model)
    assert torch.isfinite(picture_file).all()
    assert torch.equal(picture_file, picture_folder)


def _keys(path):
    from dreamreel.models.safety import safetensors_keys

    return safetensors_keys(path)


def test_shipped_configs_have_the_public_parameter_counts():
    """Built on the meta device (no memory): the counts are those of the published SD 1.5, SD 2.1
    and SDXL base models (UNet 859,520,964 / 865,910,724 / 2,567,463,684; VAE 83,653,863;
    CLIP ViT-L 123,060,480; OpenCLIP ViT-H text, 23 layers, 340,387,840; ViT-bigG 694,659,840)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    def count(module):
        return sum(p.numel() for p in module.parameters())

    expected = {"sd1": (859520964, 123060480), "sd2": (865910724, 340387840), "sd2-v": (865910724, 340387840)}
    expected["sdxl"] = (2567463684, 123060480)
    with torch.device("meta"):
        for arch, (unet_count, text_count) in expected.items():
            folder = config_dir(arch)
            assert count(
                UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
            ) == (unet_count)
            assert count(AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))) == 83653863
            assert count(CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))) == text_count
        text2 = CLIPTextModelWithProjection(
            CLIPTextConfig.from_pretrained(config_dir("sdxl") / "text_encoder_2")
        )
        assert count(text2) == 694659840
    for arch in expected:
        index = json.loads((config_dir(arch) / "model_index.json").read_text())
        assert index["unet"] == ["diffusers", "UNet2DConditionModel"]


@pytest.mark.parametrize(
    ("shapes", "arch"),
    [
        (
            {
                "model.diffusion_model.input_blocks.0.0.weight": [320, 4, 3, 3],
                "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, 768],
                "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": [49408, 768],
            },
            "sd1",
        ),
        (
            {
                "model.diffusion_model.input_blocks.0.0.weight": [320, 4, 3, 3],
                "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": [320, 1024],
                "cond_stage_model.model.token_embedding.weight": [49408, 1024],
            },
            "sd2",
        ),
        (
            {
                "model.diffusion_model.input_blocks.0.0.weight": [320, 4, 3, 3],
                "model.diffusion_model.label_emb.0.0.weight": [1280, 2816],
                "conditioner.embedders.1.model.token_embedding.weight": [49408, 1280],
            },
            "sdxl",
        ),
    ],
)
def test_architecture_detected_from_names_and_shapes(shapes, arch):
    assert detect_architecture(shapes) == arch


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": [4, 320]}, "is a LoRA"),
        ({"encoder.down.0.block.0.conv1.weight": [128, 128, 3, 3]}, "VAE only"),
        ({"double_blocks.0.img_attn.norm.key_norm.scale": [128]}, "not a Stable Diffusion checkpoint"),
        ({"model.diffusion_model.input_blocks.0.0.weight": [320, 9, 3, 3]}, "inpainting"),
    ],
)
def test_unknown_files_refused_before_loading(tmp_path, shapes, message):
    from safetensors.torch import save_file

    path = tmp_path / "thing.safetensors"
    save_file({k: torch.zeros(s) for k, s in shapes.items()}, path)
    with pytest.raises(DreamreelError, match=message):
        check_model_spec(str(path))


def _tiny_sdxl(root):
    """An SDXL-architecture miniature (text_time UNet, CLIP-L + bigG-style text encoders with
    projection) and its config folder in the shipped layout."""
    import shutil

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 2),
        attention_head_dim=(2, 4, 4),
        cross_attention_dim=64,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=8 * 6 + 32,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=0.13025,
    )
    common = {
        "vocab_size": 49408,
        "max_position_embeddings": 77,
        "intermediate_size": 37,
        "num_attention_heads": 4,
    }
    text = CLIPTextModel(
        CLIPTextConfig(hidden_size=32, num_hidden_layers=2, hidden_act="quick_gelu", **common)
    )
    text_2 = CLIPTextModelWithProjection(
        CLIPTextConfig(hidden_size=32, num_hidden_layers=3, hidden_act="gelu", projection_dim=32, **common)
    )
    folder = root / "sdxl"
    shutil.copytree(config_dir("sdxl"), folder)
    unet.save_config(folder / "unet")
    vae.save_config(folder / "vae")
    text.config.save_pretrained(folder / "text_encoder")
    text_2.config.save_pretrained(folder / "text_encoder_2")
    return unet, vae, text, text_2


def test_sdxl_layout_single_file_loads_like_diffusers(tmp_path):
    """SDXL's real key layout (label_emb, conditioner.embedders.0/1, OpenCLIP in_proj) in a miniature:
    detected as SDXL, every weight lands where diffusers' folder loading puts it, and the diffusers
    SDXL pipeline gives the same picture from both."""
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import save_file

    from dreamreel.models.checkpoint import load_checkpoint
    from dreamreel.models.safety import load_weights

    unet, vae, text, text_2 = _tiny_sdxl(tmp_path / "configs")
    single = {
        **unet_to_original(unet.state_dict(), dict(unet.config)),
        **vae_to_original(vae.state_dict()),
        **clip_to_original(text.state_dict(), "conditioner.embedders.0.transformer."),
        **open_clip_to_original(text_2.state_dict(), "conditioner.embedders.1.model."),
    }
    path = tmp_path / "xl.safetensors"
    save_file({k: v.contiguous() for k, v in single.items()}, path)
    assert detect_architecture(_keys(path)) == "sdxl"

    loaded = load_checkpoint(load_weights(path), "xl", configs=tmp_path / "configs")
    for key, reference in (("unet", unet), ("vae", vae), ("text_encoder", text), ("text_encoder_2", text_2)):
        assert weights_hash(loaded[key]) == weights_hash(reference), key
    assert loaded["tokenizer_2"].pad_token == "!" and loaded["tokenizer"].pad_token == "<|endoftext|>"

    def picture(components):
        pipe = StableDiffusionXLPipeline(**{k: v for k, v in components.items() if k != "safety_checker"})
        pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator().manual_seed(1)
        return pipe(
            "a cat", num_inference_steps=2, width=64, height=64, generator=generator, output_type="pt"
        )

    expected = picture(dict(loaded, unet=unet, vae=vae, text_encoder=text, text_encoder_2=text_2)).images
    # The weights are bit-identical (hashes above); the pictures differ by ~1.6e-6, float rounding from
    # tensors that arrive with other memory layouts (e.g. q/k/v sliced out of a fused in_proj).
    assert (picture(loaded).images - expected).abs().max() < 1e-5


@pytest.mark.parametrize("layout", ["original", "diffusers"])
def test_vae_swap(tmp_path, tiny_model, layout):
    """--vae FILE replaces the VAE (A1111's original layout or diffusers'), recorded as VAE/VAE hash."""
    from safetensors.torch import save_file

    from dreamreel.models.loading import file_hash

    state = {k: v + 0.01 for k, v in tiny_model.components["vae"].state_dict().items()}
    if layout == "original":
        state = vae_to_original(state, levels=4, layers=1)
        state = {k.removeprefix("first_stage_model."): v for k, v in state.items()}  # as standalone VAEs ship
    path = tmp_path / "better-vae.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    model = load_model("tiny", device="cpu", dtype="fp32", vae=str(path))
    swapped = model.components["vae"].state_dict()
    original = tiny_model.components["vae"].state_dict()
    assert all(torch.allclose(swapped[k], original[k] + 0.01) for k in original)
    assert model.infotext_extras() == {"VAE hash": file_hash(path), "VAE": "better-vae.safetensors"}


def test_vae_that_does_not_fit(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "vae.safetensors"
    save_file({"encoder.down.0.block.0.conv1.weight": torch.zeros(3, 3, 3, 3)}, path)
    with pytest.raises(DreamreelError, match="complete VAE"):
        load_model("tiny", device="cpu", vae=str(path))


def _small_sd2(root):
    """SD 2.x layout in miniature: 1024-wide cross-attention, OpenCLIP-style text encoder, linear
    projections; config folders for both 'sd2' and 'sd2-v' in the shipped layout."""
    import shutil

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        attention_head_dim=(2, 4),
        cross_attention_dim=1024,
        use_linear_projection=True,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=16,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=1024,
            num_hidden_layers=2,
            num_attention_heads=16,
            intermediate_size=64,
            hidden_act="gelu",
        )
    )
    for arch in ("sd2", "sd2-v"):
        shutil.copytree(config_dir(arch), root / arch)
        unet.save_config(root / arch / "unet")
        vae.save_config(root / arch / "vae")
        text.config.save_pretrained(root / arch / "text_encoder")
    return unet, vae, text


@pytest.mark.parametrize("hint", [True, False, None])
def test_sd2_layout_single_file(tmp_path, hint):
    """SD 2.x: detected from the 1024-wide cross-attention and OpenCLIP names; v-prediction or epsilon
    from an A1111 sidecar .yaml when present (``hint``), else by probing the UNet as A1111 does."""
    from safetensors.torch import save_file

    from dreamreel.models.checkpoint import load_checkpoint, sidecar_v_prediction, uses_v_prediction
    from dreamreel.models.safety import load_weights

    unet, vae, text = _small_sd2(tmp_path / "configs")
    single = {
        **unet_to_original(unet.state_dict(), dict(unet.config)),
        **vae_to_original(vae.state_dict(), levels=2, layers=1),
        **open_clip_to_original(text.state_dict(), "cond_stage_model.model."),
    }
    path = tmp_path / "sd2.safetensors"
    save_file({k: v.contiguous() for k, v in single.items()}, path)
    if hint is not None:
        param = "v" if hint else "eps"
        path.with_suffix(".yaml").write_text(f'model:\n  params:\n    parameterization: "{param}"\n')
    assert detect_architecture(_keys(path)) == "sd2"
    assert sidecar_v_prediction(path) is hint

    loaded = load_checkpoint(
        load_weights(path), "sd2", sidecar_v_prediction(path), configs=tmp_path / "configs"
    )
    for key, reference in (("unet", unet), ("vae", vae), ("text_encoder", text)):
        assert weights_hash(loaded[key]) == weights_hash(reference), key
    assert loaded["tokenizer"].pad_token == "!"
    assert loaded["unet"].config.sample_size == 8  # the folder's native size whichever kind it is
    is_v = hint if hint is not None else uses_v_prediction(loaded["unet"])
    prediction = loaded["scheduler"].config.prediction_type
    assert prediction == ("v_prediction" if is_v else "epsilon")
    text_ids = loaded["tokenizer"](
        "a cat", padding="max_length", max_length=77, return_tensors="pt"
    ).input_ids
    with torch.inference_mode():
        assert torch.equal(loaded["text_encoder"](text_ids)[0], text(text_ids)[0])


def test_pickle_checkpoint_loads_only_when_allowed(tmp_path):
    """A .ckpt (torch zip + pickle) with SD 2.x layout: refused by default; with --allow-unsafe-pickle
    read by torch.load(weights_only=True) and converted like the safetensors file."""
    from dreamreel.models.checkpoint import load_checkpoint
    from dreamreel.models.safety import load_weights

    unet, vae, text = _small_sd2(tmp_path / "configs")
    single = {
        **unet_to_original(unet.state_dict(), dict(unet.config)),
        **vae_to_original(vae.state_dict(), levels=2, layers=1),
        **open_clip_to_original(text.state_dict(), "cond_stage_model.model."),
    }
    path = tmp_path / "sd2.ckpt"
    torch.save({"state_dict": single, "global_step": 1000}, path)
    with pytest.raises(DreamreelError, match="pickle"):
        load_weights(path)
    loaded = load_checkpoint(
        load_weights(path, allow_unsafe_pickle=True), "sd2", True, configs=tmp_path / "configs"
    )
    assert weights_hash(loaded["unet"]) == weights_hash(unet)
