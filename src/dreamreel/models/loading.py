"""Model spec string -> loaded diffusers components on a device and dtype.

Specs understood here: ``tiny`` (built in, see tiny.py), a local diffusers folder (what
``save_pretrained`` writes), a single-file checkpoint (checkpoint.py) and a Hugging Face id
(hub.py). ``check_model_spec`` validates a spec reading at most file headers, so the CLI can refuse
a bad one before any weights are read. ``--vae`` swaps the VAE, ``--lora`` merges LoRAs (lora.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError
from dreamreel.models.checkpoint import detect_architecture
from dreamreel.models.safety import SAFETENSORS, check_weights_file, safetensors_keys

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "fp32", "fp16", "bf16")
OFFLOAD_MODES = ("none", "model", "sequential")
MODEL_PARTS = ("unet", "vae", "text_encoder", "text_encoder_2")
BUILT_IN = ("tiny", "tiny-xl")  # random miniatures built offline (tiny.py): SD 1.x and SDXL


@dataclass
class LoadedModel:
    """Diffusers components plus where they live. ``components`` feeds ``StableDiffusionPipeline(**...)``."""

    spec: str
    components: dict[str, Any]
    device: torch.device
    dtype: torch.dtype
    source_file: Path | None = None  # a single-file checkpoint
    vae_file: Path | None = None  # --vae
    loras: list[Any] = field(default_factory=list)  # lora.AppliedLora, in the order applied
    controls: list[Any] = field(default_factory=list)  # controlnet.ControlSpec of components["controlnet"]
    motion_adapter: str | None = None  # the spec of components["motion_adapter"]
    offloader: Any = None  # offload.Offloader under --offload model/sequential
    _hash: str | None = field(default=None, repr=False)
    _extras: dict[str, str] | None = field(default=None, repr=False)

    @classmethod
    def wrap(cls, components: dict[str, Any], name: str = "custom") -> LoadedModel:
        """Components the caller built (the dict ``StableDiffusionPipeline(**...)`` takes), used where
        they are: device and dtype are read from the UNet; nothing is moved, cast or loaded. ``name``
        goes into the pictures' metadata."""
        parameter = next(iter(components["unet"].parameters()))
        return cls(spec=name, components=components, device=parameter.device, dtype=parameter.dtype)

    def use(self, name: str) -> Any:
        """The network ``name`` ready to run: on the compute device (``--offload`` moves it there now)."""
        if self.offloader is None:
            return self.components[name]
        return self.offloader.use(self.components, name)

    @property
    def name(self) -> str:
        """Short model name for metadata (A1111 writes the checkpoint's file stem)."""
        if self.spec in BUILT_IN:
            return self.spec
        if self.source_file is not None:
            return self.source_file.stem
        return Path(self.spec.rstrip("/")).name

    def infotext_extras(self) -> dict[str, str]:
        """A1111 infotext fields beyond Model/Model hash: the VAE and LoRAs in use. Every picture's
        metadata carries them, so they are worked out once (the VAE file's hash is not looked up, or
        read, again for every frame of a film)."""
        if self._extras is None:
            extras: dict[str, str] = {}
            if self.vae_file is not None:
                extras["VAE hash"] = file_hash(self.vae_file)
                extras["VAE"] = self.vae_file.name
            if self.loras:
                extras["Lora hashes"] = ", ".join(f"{lora.name}: {lora.short_hash}" for lora in self.loras)
            self._extras = extras
        return dict(self._extras)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.components["vae"].config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        """The square resolution the model was trained at (512 for SD 1.x, 128 for tiny)."""
        return int(self.components["unet"].config.sample_size) * self.vae_scale_factor

    @property
    def model_hash(self) -> str:
        """A1111's short hash: the first 10 hex digits of the checkpoint file's sha256; for folders,
        hub ids and tiny, of a sha256 over the UNet weights (taken before any LoRA is merged)."""
        if self._hash is None:
            if self.source_file is not None:
                self._hash = file_hash(self.source_file)
            else:
                self._hash = self._weights_hash()
        return self._hash

    def _weights_hash(self) -> str:
        """``weights_hash`` of the UNet, remembered by the UNet's weights file (path, size, mtime) when
        it came from one (a diffusers folder or a Hugging Face snapshot), so a second run does not
        hash again. Components built in memory are hashed each time."""
        from dreamreel.models.hash_cache import cached_digest

        unet = self.components["unet"]
        weights = _unet_weights_file(self.spec)
        if weights is None:
            return weights_hash(unet)
        dtype = str(next(iter(unet.parameters())).dtype).removeprefix("torch.")
        return cached_digest(weights, lambda: weights_hash(unet), kind=f"unet-weights-{dtype}")


def _unet_weights_file(spec: str) -> Path | None:
    """The one weights file of a diffusers folder's (or cached hub snapshot's) UNet, if there is one."""
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        if spec in BUILT_IN or folder.is_file():
            return None
        try:
            from dreamreel.models.hub import cached_snapshot

            snapshot = cached_snapshot(spec)
        except Exception:  # not a hub id: nothing to key a cache entry on
            return None
        if snapshot is None:
            return None
        folder = snapshot
    files = [p for p in (folder / "unet").glob("diffusion_pytorch_model*") if p.suffix in (".safetensors", ".bin")]
    plain = [p for p in files if p.name.count(".") == 1]
    return plain[0] if len(plain) == 1 else None


def file_hash(path: Path, length: int = 10) -> str:
    """A1111's short model hash: the file's sha256, first ``length`` hex digits. Remembered in the user
    cache by (path, size, mtime): a 4 GB checkpoint is read once, not on every run (hash_cache.py)."""
    from dreamreel.models.hash_cache import cached_sha256

    return cached_sha256(path)[:length]


def weights_hash(module: Any) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()[:10]


def check_model_spec(spec: str, *, allow_unsafe_pickle: bool = False) -> None:
    """Refuse a spec that cannot possibly load, reading at most file headers (no torch, no weights)."""
    if spec in BUILT_IN:
        return
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_dir():
            check_diffusers_folder(path, allow_unsafe_pickle=allow_unsafe_pickle)
        else:
            kind = check_weights_file(path, allow_unsafe_pickle=allow_unsafe_pickle, what="model file")
            if kind == SAFETENSORS:
                detect_architecture(safetensors_keys(path), spec)
        return
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1 or Path(spec).suffix in WEIGHT_SUFFIXES:
        raise DreamreelError(
            f"model {spec!r} not found: no such file or folder, and it is not a Hugging Face id"
        )
    from dreamreel.models.hub import check_cached

    check_cached(spec)  # on disk only: offline and not cached fails here, at once


WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")


def model_family(spec: str) -> str | None:
    """'sd1', 'sd2' or 'sdxl' from what is on disk without loading weights (built-ins, safetensors
    headers, a folder's or cached snapshot's configs); None when it cannot be told that way."""
    import json

    if spec in BUILT_IN:
        return "sdxl" if spec == "tiny-xl" else "sd1"
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            return None
        arch = detect_architecture(safetensors_keys(path), spec)
        return "sd2" if arch.startswith("sd2") else arch
    folder: Path | None = path if path.is_dir() else None
    if folder is None and spec.count("/") == 1:
        from dreamreel.models.hub import cached_snapshot

        try:
            folder = cached_snapshot(spec)
        except Exception:  # not a usable hub id: nothing to tell
            return None
    if folder is None or not (folder / "model_index.json").is_file():
        return None
    index = _read_index(folder)
    if "text_encoder_2" in index or "XL" in str(index.get("_class_name", "")):
        return "sdxl"
    try:
        config = json.loads((folder / "text_encoder" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {768: "sd1", 1024: "sd2"}.get(config.get("hidden_size"))


def check_diffusers_folder(path: Path, *, allow_unsafe_pickle: bool = False) -> None:
    """A diffusers folder: model_index.json, and safetensors weights in every model subfolder."""
    if not (path / "model_index.json").is_file():
        raise DreamreelError(f"model folder {str(path)!r} has no model_index.json; is it a diffusers folder?")
    from dreamreel.models.hub import check_pipeline_index

    index = _read_index(path)
    check_pipeline_index(str(path), index)  # custom code is refused before anything loads
    if index.get("requires_aesthetics_score") or ("text_encoder_2" in index and not (index.get("text_encoder") or [None])[0]):
        raise DreamreelError(
            f"model folder {str(path)!r} is an SDXL refiner, which only finishes another model's pictures; "
            "use an SDXL base model"
        )
    for sub in ("unet", "vae", "text_encoder", "text_encoder_2"):
        folder = path / sub
        if not (folder / "config.json").is_file():
            continue
        safe = sorted(folder.glob("*.safetensors"))
        for weights in safe:
            check_weights_file(weights, what="weights file")
        if safe:
            continue
        pickles = sorted(p for p in folder.iterdir() if p.suffix in (".bin", ".ckpt", ".pt", ".pth"))
        if not pickles:
            raise DreamreelError(f"model folder {str(path)!r} has no weights in {sub}/")
        for weights in pickles:
            check_weights_file(weights, allow_unsafe_pickle=allow_unsafe_pickle, what="weights file")


def resolve_device(device: str) -> torch.device:
    import torch

    if device not in DEVICES:
        raise DreamreelError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DreamreelError("--device cuda asked for, but torch sees no CUDA GPU")
    if device == "mps" and not torch.backends.mps.is_available():
        raise DreamreelError("--device mps asked for, but torch sees no Apple GPU")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    import torch

    if dtype not in DTYPES:
        raise DreamreelError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]


def load_model(
    spec: str = DEFAULT_MODEL,
    device: str = "auto",
    dtype: str = "auto",
    *,
    vae: str | None = None,
    loras: Sequence[str] = (),
    allow_unsafe_pickle: bool = False,
    quiet: bool = False,
    compile: bool = False,
    controlnet: Sequence[str] = (),
    motion_adapter: str | None = None,
    offload: str = "none",
    vae_tiling: bool = False,
) -> LoadedModel:
    """Load a model by spec onto a device: ``tiny``, a diffusers folder, a single-file checkpoint,
    or a Hugging Face id (from the local cache when offline); then swap in ``vae`` (a file) and
    merge ``loras`` (``FILE`` or ``FILE:WEIGHT`` each). ``offload`` (offload.py) keeps the networks
    in CPU memory until they work; ``vae_tiling`` decodes and encodes in tiles. ``controlnet``
    (``KIND:FILE[:WEIGHT]`` each) adds ``components["controlnet"]`` and ``motion_adapter`` (FILE, FOLDER
    or tiny) adds ``components["motion_adapter"]``, so diffusers' ControlNet and AnimateDiff pipelines
    can be built from exactly what dreamreel renders with."""
    if offload not in OFFLOAD_MODES:
        raise DreamreelError(f"unknown offload {offload!r}; choose one of {', '.join(OFFLOAD_MODES)}")
    from dreamreel.models.lora import apply_loras, parse_lora_specs

    check_model_spec(spec, allow_unsafe_pickle=allow_unsafe_pickle)
    control_specs, adapter_spec = _check_extras(spec, controlnet, motion_adapter, allow_unsafe_pickle)
    if vae is not None:
        check_weights_file(vae, allow_unsafe_pickle=allow_unsafe_pickle, what="VAE file")
    lora_specs = parse_lora_specs(loras, allow_unsafe_pickle=allow_unsafe_pickle)
    motion_loras = []
    if adapter_spec is not None:  # motion LoRAs go into the motion adapter, not the UNet
        from dreamreel.models.motion import is_motion_lora

        motion_loras = [s for s in lora_specs if is_motion_lora(s.path)]
        lora_specs = [s for s in lora_specs if s not in motion_loras]
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    path = Path(spec).expanduser()
    source_file = None
    if spec in BUILT_IN:
        from dreamreel.models.tiny import build_tiny_components, build_tiny_xl_components

        components = build_tiny_components() if spec == "tiny" else build_tiny_xl_components()
    elif path.is_file():
        from dreamreel.models.checkpoint import load_checkpoint, sidecar_v_prediction
        from dreamreel.models.safety import load_weights

        source_file = path
        state = load_weights(path, allow_unsafe_pickle=allow_unsafe_pickle)
        components = load_checkpoint(state, spec, sidecar_v_prediction(path))
        del state
    else:
        components = _load_diffusers(spec, allow_unsafe_pickle=allow_unsafe_pickle, quiet=quiet)
    model = LoadedModel(
        spec=spec, components=components, device=torch_device, dtype=torch_dtype, source_file=source_file
    )
    if vae is not None:
        _swap_vae(model, Path(vae).expanduser(), allow_unsafe_pickle)
    if lora_specs:
        _ = model.model_hash  # the base model's hash, before LoRAs change the weights
        model.loras = apply_loras(components, lora_specs)
    _add_extras(model, control_specs, adapter_spec, allow_unsafe_pickle, motion_loras)  # from the stock UNet
    if offload == "none":
        place_model(components, torch_device, torch_dtype, compile=compile)
    else:
        from dreamreel.models.offload import Offloader

        _ = model.model_hash  # hashed where the weights are plain tensors, before any hooks
        # stored in CPU memory, stock layouts (prepacked CPU weights could not move to a GPU)
        place_model(components, resolve_device("cpu"), torch_dtype, prepack=False)
        model.offloader = Offloader(offload, torch_device)
        model.offloader.attach(components)
    if vae_tiling:
        components["vae"].enable_tiling()
    return model


def _check_extras(
    spec: str, controlnet: Sequence[str], motion_adapter: str | None, allow_unsafe_pickle: bool
) -> tuple[list[Any], str | None]:
    from dreamreel.models.controlnet import parse_controlnet_specs

    controls = parse_controlnet_specs(list(controlnet), allow_unsafe_pickle=allow_unsafe_pickle, model=spec)
    if motion_adapter is not None:
        from dreamreel.models.motion import check_motion_adapter

        check_motion_adapter(motion_adapter, spec)
    return controls, motion_adapter


def _add_extras(
    model: LoadedModel, controls: list[Any], adapter: str | None, allow_unsafe_pickle: bool, motion_loras: list[Any]
) -> None:
    """ControlNets and a motion adapter, built for the loaded UNet and placed beside it."""
    components = model.components
    if controls:
        from dreamreel.models.controlnet import controlnet_component, load_controlnet

        unet = components["unet"]
        nets = [load_controlnet(c, unet, allow_unsafe_pickle=allow_unsafe_pickle) for c in controls]
        components["controlnet"] = controlnet_component(nets).to(model.device, model.dtype)
        model.controls = controls
    if adapter is not None:
        from dreamreel.models.motion import load_motion_adapter

        motion = load_motion_adapter(adapter, model.spec)
        if motion_loras:
            from dreamreel.models.lora import apply_loras

            _ = model.model_hash
            model.loras += apply_loras({"unet": motion}, motion_loras)
        components["motion_adapter"] = motion.to(model.device, model.dtype)
        model.motion_adapter = adapter


def _upcasts(components: dict[str, Any], dtype: torch.dtype) -> bool:
    """diffusers decodes SDXL's VAE in fp32 when the model runs in fp16 (``force_upcast``: it overflows)."""
    import torch

    vae = components.get("vae")
    return (
        components.get("text_encoder_2") is not None
        and dtype == torch.float16
        and vae is not None
        and bool(getattr(vae.config, "force_upcast", False))
    )


def load_model_for(recipe: Any, *, quiet: bool = False) -> LoadedModel:
    """The model a recipe names, with its VAE, LoRAs, pickle permission and compile choice."""
    return load_model(
        recipe.model,
        device=recipe.device,
        dtype=recipe.dtype,
        vae=recipe.vae,
        loras=recipe.loras,
        allow_unsafe_pickle=recipe.allow_unsafe_pickle,
        quiet=quiet,
        compile=recipe.compile,
        controlnet=getattr(recipe, "controlnet", ()),
        motion_adapter=getattr(recipe, "motion_adapter", None),
        offload=recipe.offload,
        vae_tiling=recipe.vae_tiling,
    )


def place_model(
    components: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype,
    *,
    channels_last: bool | None = None,
    compile: bool = False,
    prepack: bool = True,
    keep_vae_fp32: bool | None = None,
) -> None:
    """Move the networks to ``device``/``dtype`` in the memory layout that runs them fastest.

    channels_last (NHWC) lets oneDNN / cuDNN run convolutions without layout reorders. Measured on the
    project's quiet 2-core Xeon (SD 1.5, 256x256, best of 3, benchmarks/RESULTS.md): the VAE decode
    1.65-1.79 s vs 1.95 s contiguous and the encode 0.76-0.81 s vs 0.86 s, but the UNet 1.71 s vs
    1.63-1.66 s, so on CPUs only the VAE goes NHWC; on CUDA both do (tensor-core convolutions). Results
    agree with the contiguous layout to float rounding (tests/test_speed.py). ``channels_last``
    True/False forces the layout of both. ``compile`` wraps the UNet's forward in ``torch.compile``
    in place (opt-in: the first call compiles for minutes on a CPU; it pays off over long runs).
    On CPUs without ``compile``, convolutions keep their weights in oneDNN's layout and linear layers
    run on oneDNN's matmul, not MKL's (prepack.py;
    ``prepack=False`` leaves them stock). An SDXL VAE stays fp32 under fp16 (``keep_vae_fp32``, by
    default where diffusers' SDXL pipelines upcast it): it overflows in fp16.
    """
    import torch

    if keep_vae_fp32 is None:
        keep_vae_fp32 = _upcasts(components, dtype)
    for key in MODEL_PARTS:
        network = components.get(key)
        if network is not None:
            target = torch.float32 if key == "vae" and keep_vae_fp32 else dtype
            # a dtype argument makes diffusers warn about fp32-kept modules even when there are none
            # and nothing changes: name it only when it changes
            if all(p.dtype == target for p in network.parameters()):
                network.to(device=device)
            else:
                network.to(device=device, dtype=target)
    nhwc = {
        "unet": device.type == "cuda" if channels_last is None else channels_last,
        "vae": device.type in ("cpu", "cuda") if channels_last is None else channels_last,
    }
    for key, wanted in nhwc.items():
        if components.get(key) is not None:
            components[key].to(memory_format=torch.channels_last if wanted else torch.contiguous_format)
    from dreamreel.models.prepack import prepack_convolutions, prepack_linears, unpack_convolutions

    for key in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if components.get(key) is not None:
            unpack_convolutions(components[key])
            if device.type == "cpu" and not compile and prepack:
                prepack_convolutions(components[key])
                prepack_linears(components[key])
    if compile:
        compile_networks(components, device)


def compile_networks(components: dict[str, Any], device: torch.device, mode: str | None = None) -> None:
    """``torch.compile`` the UNet and the VAE's encoder and decoder in place (fixed shapes).

    On CUDA the default mode is ``reduce-overhead``: inductor's fused kernels replayed as CUDA graphs,
    because the eager SD 1.5 UNet at 512 px spends more time launching its ~1,500 kernels than
    running them on a large GPU. The Renderer never keeps a UNet output across calls, which graph
    replay would overwrite. Each new shape (a batch size, a size) compiles once more.
    """
    if mode is None and device.type == "cuda":
        mode = "reduce-overhead"
    components["unet"].compile(fullgraph=True, dynamic=False, mode=mode)
    vae = components.get("vae")
    if vae is not None:
        vae.encoder.compile(fullgraph=True, dynamic=False, mode=mode)
        vae.decoder.compile(fullgraph=True, dynamic=False, mode=mode)


def _swap_vae(model: LoadedModel, path: Path, allow_unsafe_pickle: bool) -> None:
    """Replace the VAE with one from a file (original or diffusers layout), same architecture."""
    from dreamreel.models.checkpoint import load_vae_weights
    from dreamreel.models.safety import load_weights

    state = load_weights(path, allow_unsafe_pickle=allow_unsafe_pickle)
    config = dict(model.components["vae"].config)
    model.components["vae"] = load_vae_weights(state, config, str(path))
    model.vae_file = path


def _load_diffusers(spec: str, *, allow_unsafe_pickle: bool = False, quiet: bool = False) -> dict[str, Any]:
    """A diffusers folder, or a Hugging Face id: from the cache when there, else downloaded (online)."""
    from dreamreel.models import hub

    folder = Path(spec).expanduser()
    if folder.is_dir():
        index = _read_index(folder)
        hub.check_pipeline_index(spec, index)
        return _from_pretrained(hub.pipeline_class_for(index), folder, spec, allow_unsafe_pickle)
    snapshot = hub.check_cached(spec)
    if snapshot is not None:
        return _from_pretrained(hub.pipeline_class_for(_read_index(snapshot)), snapshot, spec, False)
    index = hub.download_index(spec)
    if quiet:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    try:
        pipe = hub.pipeline_class_for(index).from_pretrained(
            spec, use_safetensors=True, cache_dir=str(hub.hub_cache_dir()), **_NO_SAFETY
        )
    except (OSError, ValueError) as exc:
        raise DreamreelError(f"could not download model {spec!r}: {_first_line(exc)}") from exc
    return _components(pipe)


_NO_SAFETY = {"safety_checker": None, "requires_safety_checker": False}


def _read_index(folder: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DreamreelError(f"model_index.json in {str(folder)!r} is unreadable: {exc}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _from_pretrained(pipeline_cls: Any, folder: Path, spec: str, allow_unsafe_pickle: bool) -> dict[str, Any]:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    # their "Loading pipeline components" / "Loading weights" bars: a second of local reading, shown
    # even under --quiet; dreamreel reports its own progress. A caller's own setting is put back.
    libraries = [lib for lib in (diffusers_logging, transformers_logging) if lib.is_progress_bar_enabled()]
    for lib in libraries:
        lib.disable_progress_bar()
    try:
        pipe = pipeline_cls.from_pretrained(
            str(folder), use_safetensors=not allow_unsafe_pickle, local_files_only=True, **_NO_SAFETY
        )
    except (OSError, ValueError) as exc:
        raise DreamreelError(f"could not load model {spec!r}: {_first_line(exc)}") from exc
    finally:
        for lib in libraries:
            lib.enable_progress_bar()
    return _components(pipe)


def _components(pipe: Any) -> dict[str, Any]:
    components = dict(pipe.components)
    if "text_encoder_2" in components:  # SDXL: the pipeline setting its constructor takes
        components["force_zeros_for_empty_prompt"] = bool(pipe.config.get("force_zeros_for_empty_prompt", True))
    for key in MODEL_PARTS:
        if components.get(key) is not None:
            components[key].eval().requires_grad_(False)
    return components
