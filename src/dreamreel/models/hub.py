"""Hugging Face model ids: the local cache first, a download (with progress bars) only when online.

The cache is looked up on disk (``try_to_load_from_cache``), never over the network, so an offline
machine without the model gets its one-line answer at once instead of after connection timeouts.
``HF_HOME``, ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` are read at call time (not at import), so
tests and users can change them per run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError

# Pipelines whose components our renderer drives; anything else (custom code included) is refused.
KNOWN_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionXLPipeline")
KNOWN_LIBRARIES = ("diffusers", "transformers", "stable_diffusion", "stable_diffusion_xl")
MODEL_PARTS = ("unet", "vae", "text_encoder", "text_encoder_2")


def _is_true(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def is_offline() -> bool:
    return _is_true(os.environ.get("HF_HUB_OFFLINE")) or _is_true(os.environ.get("TRANSFORMERS_OFFLINE"))


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps models: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.path.expandvars(os.environ["HF_HUB_CACHE"])).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def fetch_command(repo_id: str) -> str:
    patterns = '"*.json" "*.txt" "*/diffusion_pytorch_model.safetensors" "*/model.safetensors"'
    return f"hf download {repo_id} --include {patterns}"


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id`` (revision main), found on disk only; None if absent."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "model_index.json", cache_dir=str(hub_cache_dir()))
    if isinstance(found, str):
        return Path(found).parent
    return None


def tiny_hint(repo_id: str) -> str:
    """For the default model, the way to check an install with no download at all."""
    from dreamreel.models.loading import DEFAULT_MODEL

    if repo_id != DEFAULT_MODEL:
        return ""
    return "; meanwhile `--model tiny` checks the install without downloads"


def check_pipeline_index(repo_id: str, index: dict[str, Any]) -> None:
    """Refuse repos that need custom code or are not a Stable Diffusion pipeline we can drive."""
    name = index.get("_class_name")
    if name not in KNOWN_PIPELINES:
        raise DreamreelError(
            f"model {repo_id!r} is a {name or 'unknown'} pipeline; dreamreel drives Stable Diffusion 1.x/2.x "
            "(and loads SDXL); custom pipelines are not run"
        )
    for part, value in index.items():
        if part.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        if value[0] not in KNOWN_LIBRARIES:
            raise DreamreelError(
                f"model {repo_id!r} needs custom code for its {part} ({value[0]}.{value[1]}); "
                "dreamreel never runs code shipped in a model repository"
            )


def check_cached(repo_id: str) -> Path | None:
    """Validate what the cache holds for ``repo_id``; offline and absent is an error naming the fix."""
    from dreamreel.models.safety import check_weights_file

    snapshot = cached_snapshot(repo_id)
    if snapshot is None:
        if is_offline():
            raise DreamreelError(
                f"model {repo_id!r} is not in the local Hugging Face cache ({hub_cache_dir()}) and "
                f"HF_HUB_OFFLINE is set; fetch it once online with `{fetch_command(repo_id)}` "
                f"(or run dreamreel once without HF_HUB_OFFLINE=1){tiny_hint(repo_id)}"
            )
        return None
    try:
        index = json.loads((snapshot / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DreamreelError(f"the cached model_index.json of {repo_id!r} is unreadable: {exc}") from exc
    check_pipeline_index(repo_id, index)
    missing = []
    for part in MODEL_PARTS:
        if part not in index or index[part][0] is None:
            continue
        weights = sorted((snapshot / part).glob("*.safetensors"))
        plain = [w for w in weights if w.name.count(".") == 1]  # no fp16/non_ema variants
        if not plain:
            missing.append(part)
        for path in plain:
            check_weights_file(path, what=f"cached {part} weights")
    if missing and is_offline():
        raise DreamreelError(
            f"model {repo_id!r} is only partly in the local Hugging Face cache (no safetensors weights for "
            f"{', '.join(missing)}) and HF_HUB_OFFLINE is set; fetch it with `{fetch_command(repo_id)}`"
            f"{tiny_hint(repo_id)}"
        )
    return None if missing else snapshot


def pipeline_class_for(index: dict[str, Any]) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return (
        StableDiffusionXLPipeline
        if index.get("_class_name") == "StableDiffusionXLPipeline"
        else (StableDiffusionPipeline)
    )


def check_reachable(repo_id: str) -> None:
    """Fail at once when the hub's host name does not even resolve (no network), instead of after
    huggingface_hub's retries with growing pauses."""
    import socket
    from urllib.parse import urlparse

    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    host = urlparse(endpoint).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError as exc:
        raise DreamreelError(
            f"model {repo_id!r} is not in the local Hugging Face cache ({hub_cache_dir()}) and {host} "
            f"cannot be reached ({exc.strerror or exc}); fetch it on a connected machine with "
            f"`{fetch_command(repo_id)}`, or point HF_HOME at a cache that has it{tiny_hint(repo_id)}"
        ) from exc


def download_index(repo_id: str) -> dict[str, Any]:
    """model_index.json from the hub (online only), so the repo is vetted before any weights come down."""
    import logging

    from huggingface_hub import hf_hub_download

    check_reachable(repo_id)
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retry chatter is not for our users; the outcome is
    try:
        path = hf_hub_download(repo_id, "model_index.json", cache_dir=str(hub_cache_dir()))
    except Exception as exc:  # network, auth, missing repo: all one line for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DreamreelError(
            f"could not fetch model {repo_id!r} from Hugging Face: {first}{tiny_hint(repo_id)}"
        ) from exc
    finally:
        hub_log.setLevel(level)
    index = json.loads(Path(path).read_text(encoding="utf-8"))
    check_pipeline_index(repo_id, index)
    return index
