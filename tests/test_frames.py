"""Picture operations on synthetic pictures: what a user sees happen to a frame."""

from __future__ import annotations

import pytest
import torch

from dreamreel.errors import DreamreelError
from dreamreel.media import treatments as frames


def square(size=64, side=16, h=None):
    """A white square of ``side`` pixels centred on black."""
    h = h or size
    img = torch.zeros(1, 3, h, size)
    top, left = (h - side) // 2, (size - side) // 2
    img[:, :, top : top + side, left : left + side] = 1.0
    return img


def extent(mask):
    """(rows, cols) covered by pixels brighter than half."""
    on = mask[0, 0] > 0.5
    rows = on.any(dim=1).nonzero()
    cols = on.any(dim=0).nonzero()
    return (int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max()))


def test_zoom_two_doubles_a_centred_square():
    out = frames.warp(square(64, 16), zoom=2.0)
    (r0, r1), (c0, c1) = extent(out)
    assert r1 - r0 + 1 == 32 and c1 - c0 + 1 == 32
    assert (r0, c0) == (16, 16)  # still centred


def test_zoom_on_non_square_frame_stays_centred():
    out = frames.warp(square(96, 16, h=64), zoom=2.0)
    (r0, r1), (c0, c1) = extent(out)
    assert (r1 - r0 + 1, c1 - c0 + 1) == (32, 32) and (r0, c0) == (16, 32)


def arrow_right(size=64):
    """A horizontal bar from the centre to the right edge with a head: it points right."""
    img = torch.zeros(1, 3, size, size)
    c = size // 2
    img[:, :, c - 2 : c + 2, c : size - 6] = 1.0
    img[:, :, c - 6 : c + 6, size - 10 : size - 6] = 1.0
    return img


def test_positive_angle_turns_counter_clockwise():
    # Counter-clockwise on screen like Deforum: an arrow pointing right then points up.
    out = frames.warp(arrow_right(), angle=90)
    (r0, r1), (c0, c1) = extent(out)
    assert r1 <= 34 and r0 <= 8  # reaches the top, not the bottom
    assert c1 - c0 < 14  # vertical now
    out = frames.warp(arrow_right(), angle=-90)
    (r0, r1), _ = extent(out)
    assert r0 >= 29 and r1 >= 55  # clockwise: points down


def test_rotation_of_a_non_square_frame_keeps_shapes():
    img = torch.zeros(1, 3, 64, 128)
    img[:, :, 30:34, 64:88] = 1.0  # bar right of centre, 24 px long
    (r0, r1), (c0, c1) = extent(frames.warp(img, angle=90, border="replicate"))
    assert r1 - r0 + 1 in (24, 25) and c1 - c0 + 1 in (4, 5)  # not stretched by the 2:1 frame


def test_translation_moves_by_the_given_pixels():
    img = square(64, 8)
    out = frames.warp(img, tx=5, ty=-3)
    (r0, _), (c0, _) = extent(out)
    (s0, _), (d0, _) = extent(img)
    assert (r0 - s0, c0 - d0) == (-3, 5)
    assert torch.allclose(out[:, :, 25:33, 33:41], torch.ones(1, 3, 8, 8))


def stripes():
    img = torch.zeros(1, 3, 32, 32)
    img[:, 0, :, :4] = 1.0  # red on the left edge
    img[:, 2, :, -4:] = 1.0  # blue on the right edge
    return img


def test_wrap_border_brings_in_the_other_side():
    out = frames.warp(stripes(), tx=8, border="wrap")
    # shifted right by 8: the uncovered left columns show what left on the right (blue)
    assert out[0, 2, :, 4:8].min() > 0.99 and out[0, 0, :, 4:8].max() < 0.01
    assert out[0, 0, :, 8:12].min() > 0.99  # the red stripe arrived here


def test_replicate_border_repeats_the_edge():
    out = frames.warp(stripes(), tx=8, border="replicate")
    assert out[0, 0, :, :8].min() > 0.99 and out[0, 2, :, :8].max() < 0.01  # red edge repeated


def test_reflect_border_mirrors():
    img = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 3, 16, 32).clone()
    out = frames.warp(img, tx=4, border="reflect")
    # mirrored at the left edge: column 4 is the old column 0, columns 3..0 repeat old columns 1..4
    assert torch.allclose(out[0, 0, 0, :5], img[0, 0, 0, [4, 3, 2, 1, 0]], atol=1e-5)


def test_warp_identity_and_bad_border():
    img = torch.rand(2, 3, 24, 40, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(frames.warp(img), img, atol=1e-5)
    with pytest.raises(DreamreelError, match="border"):
        frames.warp(img, border="mirror")


def test_grayscale_tint_blend_contrast():
    img = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    grey = frames.grayscale(img)
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    brown = frames.tint(torch.zeros(1, 3, 2, 2), "brown", 1.0)
    assert torch.allclose(brown[0, :, 0, 0], torch.tensor([165, 42, 42]) / 255)
    half = frames.tint(torch.ones(1, 3, 2, 2), "#000000", 0.25)
    assert torch.allclose(half, torch.full_like(half, 0.75))
    assert torch.allclose(frames.blend(img, grey, 0.0), img)
    flat = frames.contrast(img, 0.0)
    assert float(flat.std()) < 1e-6
    assert float(frames.contrast(img, 1.5).std()) > float(img.std())
    with pytest.raises(DreamreelError, match="colour"):
        frames.tint(img, "not-a-colour", 0.5)


def test_noise_is_seeded_and_inputs_unchanged():
    img = torch.full((1, 3, 16, 16), 0.5)
    a, b, c = frames.add_noise(img, 0.1, 7), frames.add_noise(img, 0.1, 7), frames.add_noise(img, 0.1, 8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0.07 < float((a - img).std()) < 0.13
    assert torch.equal(img, torch.full((1, 3, 16, 16), 0.5))


def test_hsv_round_trip():
    img = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(frames.hsv_to_rgb(frames.rgb_to_hsv(img)), img, atol=1e-5)


@pytest.mark.parametrize("space", ["lab", "rgb", "hsv"])
def test_color_match_moves_toward_the_reference(space):
    gen = torch.Generator().manual_seed(3)
    reddish = torch.rand(1, 3, 32, 32, generator=gen) * 0.3 + torch.tensor([0.6, 0.1, 0.1]).view(1, 3, 1, 1)
    bluish = torch.rand(1, 3, 32, 32, generator=gen) * 0.3 + torch.tensor([0.1, 0.2, 0.6]).view(1, 3, 1, 1)
    full = frames.color_match(bluish, reddish, strength=1.0, space=space)
    half = frames.color_match(bluish, reddish, strength=0.5, space=space)
    target = reddish.mean(dim=(2, 3))
    before = (bluish.mean(dim=(2, 3)) - target).abs().sum()
    after = (full.mean(dim=(2, 3)) - target).abs().sum()
    middle = (half.mean(dim=(2, 3)) - target).abs().sum()
    assert after < 0.1 * before and after < middle < before
    assert torch.equal(frames.color_match(bluish, reddish, strength=0.0, space=space), bluish)
