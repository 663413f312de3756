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
    "JOBS": "dreamreel.jobs",
    "prepare": "dreamreel.jobs.runner",
    "run_job": "dreamreel.jobs.runner",
    "resume": "dreamreel.jobs.runner",
    "render_frames": "dreamreel.jobs.runner",
    "recipe_from_toml": "dreamreel.jobs",
    "recipe_from_dict": "dreamreel.jobs",
    "Txt2ImgRecipe": "dreamreel.jobs.txt2img",
    "Img2ImgRecipe": "dreamreel.jobs.img2img",
    "SweepRecipe": "dreamreel.jobs.sweep",
    "Vid2VidRecipe": "dreamreel.jobs.vid2vid",
    "ZoomRecipe": "dreamreel.jobs.zoom",
    "InterpolateRecipe": "dreamreel.jobs.interpolate",
    "AnimateRecipe": "dreamreel.jobs.animate",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dreamreel' has no attribute {name!r}")
