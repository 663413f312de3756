"""Starting noise that follows the picture: Gaussian noise carried along a motion, frame to frame.

A fixed seed gives every frame the same noise, fixed to the screen, so the detail a model invents
from it stays put while the picture moves ("texture sticking"); a new seed per frame re-draws it
(flicker). Moving the noise with the picture avoids both, but a plain warp of the latent noise
interpolates it (its variance shrinks: a diffusion model renders blur) and a latent cell is 8x8
pixels, so most motions move it by a fraction of a cell.

Hence the noise *canvas*, after Chang et al., "How I Warped Your Noise" (ICLR 2024): one N(0, 1)
value per picture pixel and latent channel. A frame's latent noise is the sum of each cell's
factor x factor canvas values divided by ``factor`` (``cells``): unit variance again, and a motion
of a few pixels moves part of each cell's sum into its neighbour. Carrying the canvas along a
motion (``carry``) keeps it exactly white Gaussian, which nearest-pixel warping alone does not
where the motion stretches the picture (a zoom-in, the flow around an approaching object): a pixel
read by ``m`` pixels of the next frame is split into ``m`` values that are independent N(0, 1) and
sum to ``sqrt(m)`` times it (the conditional sampling of the paper's integral noise), and pixels that
were not visible before (occlusions, uncovered edges) are drawn fresh. Where the motion is a plain
move, every pixel is read once and keeps its value exactly.

The canvases are a pure function of the seeds and the motion, so a resumed film replays them from
frame 0 and continues with the same noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch


def refill_seed(seed: int, index: int) -> int:
    """The seed of the fresh noise that frame ``index`` (> 0) draws for what was not visible before,
    mixed with the index so that a fixed seed does not paint the same noise into every hole."""
    return (seed * 1_000_003 + index) % 2**63


@dataclass(frozen=True)
class Sources:
    """For every pixel of a frame (row-major), the pixel of the frame before it continues (nearest),
    and whether it has one (it was visible, and inside the picture)."""

    index: np.ndarray  # [H * W] int64
    valid: np.ndarray  # [H * W] bool

    @classmethod
    def at(cls, x: np.ndarray, y: np.ndarray, visible: np.ndarray | None = None) -> Sources:
        """From the [H, W] coordinates in the earlier frame that each pixel reads (a backward warp's
        map), optionally limited to where ``visible`` ([H, W], nonzero) says it was seen."""
        import numpy as np

        h, w = x.shape
        column, row = np.floor(x + 0.5).astype(np.int64), np.floor(y + 0.5).astype(np.int64)
        valid = (column >= 0) & (column < w) & (row >= 0) & (row < h)
        if visible is not None:
            valid &= visible > 0
        index = np.where(valid, row.clip(0, h - 1) * w + column.clip(0, w - 1), 0)
        return cls(index.reshape(-1), valid.reshape(-1))

    @classmethod
    def along(cls, field: np.ndarray, visible: np.ndarray | None = None) -> Sources:
        """From a flow ``field`` [H, W, 2] read as media.flow.warp reads it: pixel x continues x + field(x)."""
        import numpy as np

        h, w = field.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        return cls.at(xs + field[..., 0], ys + field[..., 1], visible)


def canvas(channels: int, height: int, width: int, generator: Any) -> torch.Tensor:
    """A fresh canvas [1, channels, height, width] of N(0, 1) values."""
    import torch

    return torch.randn((1, channels, height, width), generator=generator)


def carry(previous: torch.Tensor, sources: Sources, generator: Any) -> torch.Tensor:
    """The next frame's canvas: ``previous`` [1, C, H, W] carried along ``sources`` (see the module
    docstring), fresh values from ``generator`` where a pixel has no source."""
    import numpy as np
    import torch

    _, channels, height, width = previous.shape
    fresh = canvas(channels, height, width, generator)
    old = previous.reshape(channels, -1).double().numpy()
    new = fresh.reshape(channels, -1).double().numpy().copy()
    valid = sources.valid
    source = sources.index[valid]
    if source.size:
        readers = np.bincount(source, minlength=height * width)[source].astype(np.float64)
        for c in range(channels):
            draw = new[c, valid]
            # each reader's own draw minus its group's mean: zero-sum within a group, so the group
            # sums to sqrt(m) x the old value while each value stays N(0, 1), all independent
            group_mean = np.bincount(source, weights=draw, minlength=height * width)[source] / readers
            new[c, valid] = old[c, source] / np.sqrt(readers) + (draw - group_mean)
    return torch.from_numpy(new.reshape(1, channels, height, width)).float()


def cells(picture_noise: torch.Tensor, factor: int) -> torch.Tensor:
    """The latent noise of a canvas: each factor x factor cell's sum / factor (unit variance)."""
    import torch

    return torch.nn.functional.avg_pool2d(picture_noise, factor) * factor
