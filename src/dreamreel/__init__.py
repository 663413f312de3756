"""dreamreel: local Stable Diffusion for still images and videos.

``import dreamreel`` is cheap: torch and diffusers load only when a model is loaded or a job runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it; resolved lazily so `dreamreel --help` never imports torch.
_LAZY = {
    "load_model": "dreamreel.models.loading",
    "LoadedModel": "dreamreel.models.loading",
    "DreamreelError": "dreamreel.errors",
    "txt2img": "dreamreel.jobs.txt2img",
    "img2img": "dreamreel.jobs.img2img",
    "Txt2ImgRecipe": "dreamreel.recipes.base",
    "Img2ImgRecipe": "dreamreel.recipes.base",
    "SweepRecipe": "dreamreel.recipes.base",
    "Vid2VidRecipe": "dreamreel.recipes.base",
    "ZoomRecipe": "dreamreel.jobs.zoom",
    "zoom": "dreamreel.jobs.zoom",
    "InterpolateRecipe": "dreamreel.jobs.interpolate",
    "interpolate": "dreamreel.jobs.interpolate",
    "run_video_job": "dreamreel.jobs.runner",
    "video_job": "dreamreel.jobs.runner",
    "recipe_from_toml": "dreamreel.recipes.base",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dreamreel' has no attribute {name!r}")
