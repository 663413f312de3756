"""Control pictures for ControlNets, made from a source picture without annotator weights."""

from __future__ import annotations

from typing import Any


def canny_edges(picture: Any, low: int = 100, high: int = 200) -> Any:
    """A1111's canny preprocessor: OpenCV's Canny on the 8-bit picture (thresholds 100/200, the
    extension's defaults), white edges on black as an RGB picture."""
    import cv2
    import numpy as np
    from PIL import Image

    edges = cv2.Canny(np.asarray(picture.convert("RGB")), low, high)
    return Image.fromarray(np.stack([edges] * 3, axis=-1))
