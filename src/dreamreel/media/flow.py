"""Optical flow between pictures (OpenCV DIS or Farneback), its occlusion mask, and warps along it.

Conventions: pictures are [H, W, 3] float32 arrays in [0, 1] (or [1, 3, H, W] tensors through the
``*_tensor`` helpers); a flow is [H, W, 2] float32 pixels (x, y). ``flow(a, b)`` says, for every
pixel x of ``a``, where it went in ``b``: a(x) ≈ b(x + flow(x)). So ``warp(b, flow(a, b))`` redraws
``b`` in ``a``'s geometry ("backward warping": every output pixel reads one place, nothing is left
empty). Neither flow needs weights, which is why they are used here rather than RAFT or GMFlow.

The occlusion mask is the forward-backward consistency test of Sundaram, Brox and Keutzer (ECCV
2010), as used by Ruder et al. for video style transfer and by Lai et al. (ECCV 2018) for the
warping error: a pixel of ``a`` is visible in ``b`` when following the flow to ``b`` and the
reverse flow back lands where it started, up to a tolerance that grows with the motion; pixels
whose flow leaves the picture are occluded too.

Everything here is deterministic for equal inputs (OpenCV's DIS and remap compute each pixel the
same way whatever the thread count), which keeps a resumed run equal to an unbroken one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL import Image

METHODS = ("dis", "farneback")


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise DreamreelError(
            "optical flow needs OpenCV: pip install 'dreamreel[flow]' (opencv-python-headless)"
        ) from None
    return cv2


def check_available() -> None:
    """Refuse a flow option early (before any model loads) when OpenCV is missing."""
    _cv2()


def _gray(picture: np.ndarray) -> np.ndarray:
    import numpy as np

    cv2 = _cv2()
    array = np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8) if picture.dtype != np.uint8 else picture
    return cv2.cvtColor(array, cv2.COLOR_RGB2GRAY) if array.ndim == 3 else array


def flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """The flow from picture ``a`` to picture ``b`` (see the module docstring), [H, W, 2] float32."""
    cv2 = _cv2()
    first, second = _gray(a), _gray(b)
    if method == "dis":
        # MEDIUM: DIS's own balance of speed and accuracy (sub-pixel on smooth pans, see the tests)
        solver = cv2.DISOpticalFlow_create(cv2.DISOpticalFlow_PRESET_MEDIUM)
        result = solver.calc(first, second, None)
    elif method == "farneback":
        result = cv2.calcOpticalFlowFarneback(first, second, None, 0.5, 4, 15, 5, 5, 1.1, 0)
    else:
        raise DreamreelError(f"unknown flow method {method!r}; choose one of {', '.join(METHODS)}")
    return result.astype("float32")


def _coordinates(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    h, w = field.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs + field[..., 0], ys + field[..., 1]


def warp(picture: np.ndarray, field: np.ndarray, *, nearest: bool = False) -> np.ndarray:
    """``picture`` read at x + field(x) for every x (bilinear, or nearest for noise); edges replicated."""
    cv2 = _cv2()
    map_x, map_y = _coordinates(field)
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.remap(picture, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)


def visible(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """[H, W] float32, 1 where a pixel of ``a`` is seen again in ``b`` and 0 where it is occluded,
    from ``forward = flow(a, b)`` and ``backward = flow(b, a)`` (forward-backward consistency)."""
    import numpy as np

    h, w = forward.shape[:2]
    back = warp(backward, forward)  # the reverse flow where each pixel of a landed
    round_trip = forward + back
    error = (round_trip**2).sum(-1)
    scale = (forward**2).sum(-1) + (back**2).sum(-1)
    consistent = error <= 0.01 * scale + 0.5  # Sundaram et al.'s tolerance
    x, y = _coordinates(forward)
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return (consistent & inside).astype(np.float32)


@dataclass(frozen=True)
class FramePair:
    """The motion between consecutive frames ``a`` (earlier) and ``b`` (later)."""

    to_earlier: np.ndarray  # flow(b, a): where each pixel of b was in a (warps a into b's geometry)
    to_later: np.ndarray  # flow(a, b): where each pixel of a went in b (warps b into a's geometry)
    seen_before: np.ndarray  # [H, W] 1 where a pixel of b was visible in a
    seen_after: np.ndarray  # [H, W] 1 where a pixel of a is still visible in b

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray, method: str = "dis") -> FramePair:
        to_earlier, to_later = flow(b, a, method), flow(a, b, method)
        return cls(to_earlier, to_later, visible(to_earlier, to_later), visible(to_later, to_earlier))


# -- the same on the [1, 3, H, W] tensors the jobs hold ------------------------------------------


def to_array(picture: torch.Tensor) -> np.ndarray:
    return picture[0].permute(1, 2, 0).float().cpu().numpy().copy()


def to_tensor(array: np.ndarray) -> torch.Tensor:
    import torch

    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)


def warp_tensor(picture: torch.Tensor, field: np.ndarray, *, nearest: bool = False) -> torch.Tensor:
    """``warp`` for a [1, C, H, W] tensor (C up to 4; OpenCV's remap takes at most 4 channels)."""
    return to_tensor(warp(to_array(picture), field, nearest=nearest)).to(picture.dtype)


def warping_error(a: np.ndarray, b: np.ndarray, pair: FramePair) -> tuple[float, float]:
    """Lai et al.'s warping error of consecutive output frames ``a``, ``b`` under the motion ``pair``
    (of the source, or of the outputs themselves): the mean squared difference between ``b`` and
    ``a`` warped into ``b``'s geometry, over the pixels of ``b`` visible in ``a``; and that share."""

    mask = pair.seen_before
    share = float(mask.mean())
    if share == 0:
        return 0.0, 0.0
    difference = ((b - warp(a, pair.to_earlier)) ** 2).mean(-1)
    return float((difference * mask).sum() / mask.sum()), share


def _project(motion: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the pixels of a picture land once moved by ``motion`` (part of their flow), splatted
    bilinearly: the coverage of each place ([H, W], saturating at 1 from half a pixel's share) and,
    where pixels ``seen`` in the other frame landed (the ones in front), the mean field that reads
    them back at their source ([H, W, 2], NaN elsewhere).

    Forward splatting is hand-written (numpy's bincount): OpenCV's remap only warps backward, and
    the splatting libraries (softmax splatting) need CUDA."""
    import numpy as np

    h, w = motion.shape[:2]
    x, y = _coordinates(motion)
    left, top = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - left, y - top
    sums = np.zeros((4, h * w))  # all pixels' weight; the seen ones' weight, x back, y back
    corners = ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy))
    for dx, dy, share in corners:
        column, row = left + dx, top + dy
        inside = (column >= 0) & (column < w) & (row >= 0) & (row < h)
        index, share = (row * w + column)[inside], share[inside]
        front = share * seen[inside]
        away = motion[inside]
        for k, weights in enumerate((share, front, -front * away[:, 0], -front * away[:, 1])):
            sums[k] += np.bincount(index, weights, minlength=h * w)
    coverage = np.minimum(2 * sums[0], 1).reshape(h, w).astype(np.float32)
    landed = np.where(sums[1] > 1e-3, sums[1], np.nan)
    back = np.stack([sums[2] / landed, sums[3] / landed], -1).reshape(h, w, 2).astype(np.float32)
    return coverage, back


def _read_along(moved_back: np.ndarray, approximate: np.ndarray) -> np.ndarray:
    """``approximate`` (the flow at x standing for the pixel that lands there) unless the pixels
    that do land there moved otherwise by over half a pixel (at an occlusion edge)."""
    import numpy as np

    apart = ((moved_back - approximate) ** 2).sum(-1) > 0.25  # False where NaN: nothing seen landed
    return np.where(apart[..., None], moved_back, approximate)


def interpolate(a: np.ndarray, b: np.ndarray, weight: float, pair: FramePair) -> np.ndarray:
    """A picture ``weight`` (w) of the way from ``a`` to ``b``: both moved part of the way along the
    flow and blended by how near each is and whether the in-between pixel is seen from it::

        Ca = min(1, 2 x the bilinear shares of a's pixels that land at x once moved by w * to_later),
        Cb likewise for b's pixels moved by (1 - w) * to_earlier
        ta = -w * to_later(x), or where the pixels of a seen in b (seen_after) that land at x moved
             otherwise by over half a pixel, their mean field back; tb = -(1 - w) * to_earlier(x)
             or likewise for b's pixels seen in a (seen_before)
        A = warp(a, ta)      B = warp(b, tb)
        out = ((1 - w) Ca A + w Cb B) / ((1 - w) Ca + w Cb),  or (1 - w) A + w B where Ca = Cb = 0

    So an in-between pixel that no pixel of a reaches (uncovered between a and b) comes from b
    alone, one that b's pixels do not reach (being covered) from a alone, and where a moving thing
    lands it is read along its own motion rather than along the background's. Without occlusions
    (a pan, away from the picture's edges) this is the plain cross-fade (1 - w) A + w B with the flow
    at x standing for the moving pixel's, which ghosts at occlusions and is what frame blending
    degrades to. How much nearer to the true in-between this comes depends on the flow at the
    occlusion edges (benchmarks/RESULTS.md)."""
    import numpy as np

    covered_a, back_to_a = _project(weight * pair.to_later, pair.seen_after)
    covered_b, back_to_b = _project((1 - weight) * pair.to_earlier, pair.seen_before)
    from_a = warp(a, _read_along(back_to_a, -weight * pair.to_later))
    from_b = warp(b, _read_along(back_to_b, -(1 - weight) * pair.to_earlier))
    seen_a, seen_b = (1 - weight) * covered_a, weight * covered_b
    total = seen_a + seen_b
    seen = total > 1e-6
    share_a = np.where(seen, seen_a / np.where(seen, total, 1), 1 - weight)[..., None]
    return (share_a * from_a + (1 - share_a) * from_b).astype(np.float32)


def to_array_of(picture: Image.Image) -> np.ndarray:
    """An 8-bit picture as [H, W, 3] float32 in [0, 1]."""
    import numpy as np

    return np.asarray(picture.convert("RGB"), dtype=np.float32) / 255


def in_between(a: Image.Image, b: Image.Image, weight: float, pair: FramePair | None = None) -> Image.Image:
    """``interpolate`` for 8-bit pictures (``--interpolate-to``): the flow is computed unless given."""
    import numpy as np
    from PIL import Image

    first, second = to_array_of(a), to_array_of(b)
    pair = pair or FramePair.of(first, second)
    middle = interpolate(first, second, weight, pair)
    return Image.fromarray(np.clip(np.rint(middle * 255), 0, 255).astype(np.uint8))


LONG_TERM_SPAN = 10  # frames per window of the long-term error


@dataclass(frozen=True)
class Coherence:
    """How well a video holds together (Lai et al., ECCV 2018), as warping errors over the pixels
    visible in both frames of a pair:

    - ``error`` (short-term): consecutive frames, the mean over ``pairs`` pairs, with ``share`` the
      mean visible share. It sees flicker, but a texture stuck to the screen while the picture moves
      slowly changes little from one frame to the next and scores well.
    - ``long_term``: every frame against the first frame of its window of ``LONG_TERM_SPAN`` frames
      (Lai et al.'s long-term form, in windows so a long film stays measurable), over
      ``long_term_pairs`` pairs. The motion from the window's first frame is the consecutive flows
      chained (each accurate to a fraction of a pixel; one flow across many frames' motion is not),
      visible where every link was. Only a texture that moves with the picture scores well here.
    """

    error: float
    share: float
    pairs: int
    long_term: float = 0.0
    long_term_pairs: int = 0


@dataclass
class _Chain:
    """Where each pixel of the latest frame was in the window's first frame, and whether it was seen
    all the way: consecutive FramePairs composed."""

    first: np.ndarray  # the window's first output
    at: np.ndarray  # [H, W, 2] absolute coordinates in the first frame
    seen: np.ndarray  # [H, W] 1 where visible in every frame since

    @classmethod
    def start(cls, output: np.ndarray) -> _Chain:
        import numpy as np

        h, w = output.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        return cls(output, np.stack([xs, ys], -1), np.ones((h, w), np.float32))

    def extend(self, pair: FramePair) -> None:
        import numpy as np

        self.at = warp(self.at, pair.to_earlier)  # the previous frame's coordinates, read where each pixel was
        self.seen = pair.seen_before * (warp(self.seen, pair.to_earlier) > 0.999).astype(np.float32)

    def error(self, output: np.ndarray) -> float | None:
        cv2 = _cv2()
        mask = self.seen
        if mask.sum() == 0:
            return None
        moved = cv2.remap(self.first, self.at[..., 0], self.at[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return float((((output - moved) ** 2).mean(-1) * mask).sum() / mask.sum())


def coherence(
    outputs: Iterable[np.ndarray],
    sources: Iterable[np.ndarray] | None = None,
    method: str = "dis",
    span: int = LONG_TERM_SPAN,
) -> Coherence:
    """The warping errors of ``outputs`` ([H, W, 3] float pictures in [0, 1], streamed) under the
    motion of ``sources`` (a vid2vid film's source frames at the same size), or of the outputs
    themselves when there is no source (a zoom film: is each frame the last one moved?)."""
    errors, shares, long_errors = [], [], []
    previous: tuple[np.ndarray, np.ndarray] | None = None
    chain: _Chain | None = None
    motion = iter(sources) if sources is not None else None
    for index, output in enumerate(outputs):
        guide = next(motion) if motion is not None else output
        if previous is not None:
            pair = FramePair.of(previous[1], guide, method)
            error, share = warping_error(previous[0], output, pair)
            errors.append(error)
            shares.append(share)
            if chain is not None and index % span:  # a window's first frame starts a new chain instead
                chain.extend(pair)
                long_error = chain.error(output) if index % span > 1 else None  # at 1: the consecutive pair
                if long_error is not None:
                    long_errors.append(long_error)
        if index % span == 0:
            chain = _Chain.start(output)
        previous = (output, guide)
    if not errors:
        return Coherence(0.0, 0.0, 0)
    long_term = sum(long_errors) / len(long_errors) if long_errors else 0.0
    return Coherence(sum(errors) / len(errors), sum(shares) / len(shares), len(errors), long_term, len(long_errors))
