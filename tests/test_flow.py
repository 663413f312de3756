"""Optical flow of the source (media/flow.py): accurate on pans of known speed, occlusions masked."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from dreamreel.media import flow as F  # noqa: E402

H, W = 96, 128


def texture(seed: int = 0) -> np.ndarray:
    """A smooth random texture bigger than the views cut from it (flow needs something to follow)."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((220, 320, 3)).astype(np.float32), (0, 0), 3)
    return (big - big.min()) / (big.max() - big.min())


def view(big: np.ndarray, dx: float, dy: float = 0.0) -> np.ndarray:
    """The window of ``big`` whose top-left corner is at (40 + dx, 40 + dy): the camera pans by (dx, dy),
    so the picture's content moves by (-dx, -dy)."""
    shift = np.float32([[1, 0, -dx - 40], [0, 1, -dy - 40]])
    return cv2.warpAffine(big, shift, (W, H), flags=cv2.INTER_LINEAR)


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("speed", [1.5, 4.24, 7.0])
def test_flow_of_a_pan_is_within_half_a_pixel(method, speed):
    big = texture()
    a, b = view(big, 0), view(big, speed, speed / 3)
    pair = F.FramePair.of(a, b, method)
    inner = slice(10, -10)
    for field, sign in ((pair.to_later, -1), (pair.to_earlier, 1)):
        error = np.sqrt(((field[inner, inner] - sign * np.array([speed, speed / 3])) ** 2).sum(-1)).mean()
        assert error < 0.5, f"end-point error {error:.3f} px"
    # nothing is hidden in a pan, away from the edge the camera uncovers
    assert pair.seen_before[inner, inner].mean() > 0.97


def test_warp_along_the_flow_redraws_the_earlier_frame_in_the_later_ones_geometry():
    big = texture(1)
    a, b = view(big, 0), view(big, 3.0)
    pair = F.FramePair.of(a, b)
    moved = F.warp(a, pair.to_earlier)
    assert np.abs(moved - b)[8:-8, 8:-8].mean() < 0.3 * np.abs(a - b)[8:-8, 8:-8].mean()


def disk_frame(big: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame k of a slow pan with a red disk crossing it faster (8 px per frame)."""
    picture = view(big, 2.0 * k)
    ys, xs = np.mgrid[0:H, 0:W]
    disk = (xs - (30 + 8 * k)) ** 2 + (ys - 48) ** 2 < 15**2
    picture[disk] = (1.0, 0.1, 0.1)
    return picture, disk


def test_the_mask_marks_what_an_occluding_disk_uncovers():
    big = texture(2)
    (a, disk_a), (b, disk_b) = disk_frame(big, 0), disk_frame(big, 1)
    pair = F.FramePair.of(a, b)
    uncovered = disk_a & ~disk_b  # seen in b, behind the disk in a
    assert uncovered.sum() > 100
    assert pair.seen_before[uncovered].mean() < 0.4  # most of it (0.04-0.25 on textures tried)
    assert pair.seen_before[10:-10, 80:-10].mean() > 0.97  # the background far from the disk


def test_warping_error_is_zero_for_a_perfectly_moved_video_and_not_for_flicker():
    big = texture(3)
    a, b = view(big, 0), view(big, 2.0)
    pair = F.FramePair.of(a, b)
    steady, share = F.warping_error(a, b, pair)
    flicker, _ = F.warping_error(a, np.clip(b + 0.1 * np.random.default_rng(0).standard_normal(b.shape), 0, 1)
                                 .astype(np.float32), pair)  # fmt: skip
    assert share > 0.9
    assert steady < 1e-3 < flicker


def test_interpolation_halfway_is_the_halfway_view():
    big = texture(4)
    a, b, middle = view(big, 0), view(big, 4.0), view(big, 2.0)
    pair = F.FramePair.of(a, b)
    halfway = F.interpolate(a, b, 0.5, pair)
    blended = 0.5 * (a + b)
    inner = slice(8, -8)
    assert np.abs(halfway - middle)[inner, inner].mean() < 0.3 * np.abs(blended - middle)[inner, inner].mean()


def test_long_term_error_tells_texture_that_follows_the_picture_from_texture_stuck_to_the_screen():
    """A slow pan (3 px a frame) with fine grain: grain fixed to the screen barely changes between
    consecutive frames but is somewhere else on the picture after a few; grain on the picture stays."""
    big = texture(4)
    grain_big = np.random.default_rng(1).normal(0, 0.05, big.shape).astype(np.float32)
    grain_fixed = view(grain_big, 0)
    sources = [view(big, 3 * k) for k in range(8)]
    stuck = [np.clip(s + grain_fixed, 0, 1) for s in sources]
    following = [np.clip(view(big, 3 * k) + view(grain_big, 3 * k), 0, 1) for k in range(8)]
    on_screen, on_picture = F.coherence(stuck, sources), F.coherence(following, sources)
    assert on_screen.long_term_pairs == on_picture.long_term_pairs == 6  # frames 2..7 against frame 0
    assert on_picture.long_term < 0.2 * on_screen.long_term
    assert F.coherence(sources, sources).long_term < 1e-3  # the source against its own motion
