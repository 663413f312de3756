"""Starting noise carried along a motion (media.noise): white Gaussian after any motion, exact on moves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dreamreel.media import noise, treatments
from dreamreel.render.renderer import seeded_generator

H, W = 96, 128


def carried(sources: noise.Sources, frames: int = 1, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    start = noise.canvas(4, H, W, seeded_generator(seed))
    canvas = start
    for k in range(frames):
        canvas = noise.carry(canvas, sources, seeded_generator(noise.refill_seed(seed, k + 1)))
    return start, canvas


def test_a_move_keeps_every_value_and_refills_only_the_uncovered_edge():
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    start, moved = carried(noise.Sources.at(xs - 3, ys))  # the picture moves right by 3 px
    assert moved[..., 3:].equal(start[..., :-3])  # the same values, 3 px on
    assert not moved[..., :3].equal(start[..., :3])  # fresh noise where nothing was before


@pytest.mark.parametrize("zoom", [1.04, 1.3])
def test_zooming_in_keeps_the_canvas_white_gaussian(zoom):
    """A zoom-in reads pixels twice; carried ten times, nearest-pixel warping alone would copy values
    into blocks (a latent cell of them has a far larger variance); the split keeps them independent N(0, 1)."""
    x, y = treatments.motion_coordinates(H, W, zoom=zoom, angle=0.5, tx=1.0, ty=0.0)
    _, canvas = carried(noise.Sources.at(x.numpy(), y.numpy()), frames=10)
    values = canvas.flatten()
    assert abs(float(values.mean())) < 0.02 and abs(float(values.std()) - 1) < 0.02
    # neighbours stay uncorrelated (a copied block would correlate them strongly)
    right = float((canvas[..., :, 1:] * canvas[..., :, :-1]).mean())
    assert abs(right) < 0.03
    cells = noise.cells(canvas, 8)
    assert abs(float(cells.std()) - 1) < 0.1  # 768 cells: the sample's own spread is about 0.03


def test_pixels_read_several_times_sum_to_the_old_value_scaled():
    """The integral is kept: a pixel read by m pixels gives m values summing to sqrt(m) x its value."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    start, split = carried(noise.Sources.at(np.floor(xs / 2), np.floor(ys / 2)))  # 2x magnification
    blocks = split[..., : H // 2 * 2, : W // 2 * 2].unfold(2, 2, 2).unfold(3, 2, 2).sum((-1, -2))
    torch.testing.assert_close(blocks, 2 * start[..., : H // 2, : W // 2], rtol=0, atol=1e-5)


def test_cells_of_a_canvas_have_unit_variance():
    canvas = noise.canvas(4, 256, 256, seeded_generator(1))
    cells = noise.cells(canvas, 8)
    assert cells.shape == (1, 4, 32, 32)
    assert abs(float(cells.std()) - 1) < 0.05
