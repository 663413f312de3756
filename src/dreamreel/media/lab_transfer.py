"""Colour transfer in LAB: pull a picture's colours toward a reference's (vid2vid and zoom use it to
stop colours drifting from frame to frame). Pure function of arrays."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def color_match(picture: np.ndarray, reference: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """``picture`` with each LAB channel's mean and spread moved to ``reference``'s, by ``strength``.

    Both are uint8 RGB arrays [H, W, 3] (sizes may differ: only their statistics meet). Strength 0
    returns the picture unchanged, 1 the full transfer (Reinhard et al.'s mean/std transfer, in CIELAB).
    """
    import numpy as np
    from skimage.color import lab2rgb, rgb2lab

    if strength <= 0:
        return picture
    source_lab = rgb2lab(picture)
    reference_lab = rgb2lab(reference)
    mean = source_lab.reshape(-1, 3).mean(axis=0)
    std = source_lab.reshape(-1, 3).std(axis=0)
    ref_mean = reference_lab.reshape(-1, 3).mean(axis=0)
    ref_std = reference_lab.reshape(-1, 3).std(axis=0)
    scale = np.where(std > 1e-6, ref_std / np.maximum(std, 1e-6), 1.0)  # a flat channel keeps its spread
    matched = (source_lab - mean) * scale + ref_mean
    blended = source_lab + (matched - source_lab) * min(float(strength), 1.0)
    with warnings.catch_warnings():  # out-of-gamut colours are clipped on purpose: not news for the user
        warnings.filterwarnings("ignore", message="Conversion from CIE-LAB", category=UserWarning)
        rgb = lab2rgb(blended)  # clips out-of-gamut colours into [0, 1]
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
