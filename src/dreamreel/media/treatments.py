"""Pure picture operations for feedback animations, on torch tensors [B, 3, H, W] in [0, 1].

torch is the image library here on purpose: the pictures come out of the VAE as tensors and go back
in as tensors, so warp, colour treatment and noise run on the model's device without a PIL/NumPy
round trip per frame, and ``affine_grid``/``grid_sample`` give a sub-pixel bilinear warp. Every
function returns a new tensor and never changes its inputs.

Conventions (the same as Deforum's 2D mode): ``zoom`` > 1 enlarges the picture about its centre;
``angle`` is in degrees and positive turns the picture counter-clockwise as seen on screen; ``tx``
moves the picture right and ``ty`` moves it down, in pixels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from dreamreel.errors import DreamreelError

if TYPE_CHECKING:
    import numpy as np
    import torch

BORDERS = ("replicate", "reflect", "wrap")
COLOR_SPACES = ("lab", "rgb", "hsv")
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights, as PIL's "L" mode


def warp(
    images: torch.Tensor,
    *,
    zoom: float = 1.0,
    angle: float = 0.0,
    tx: float = 0.0,
    ty: float = 0.0,
    border: str = "replicate",
) -> torch.Tensor:
    """Zoom, turn and shift about the centre; the uncovered edges are filled by ``border``."""
    import torch
    import torch.nn.functional as F

    if border not in BORDERS:
        raise DreamreelError(f"unknown border {border!r}; choose one of {', '.join(BORDERS)}")
    if zoom <= 0 or not math.isfinite(zoom):
        raise DreamreelError(f"zoom must be a finite number > 0, got {zoom}")
    b, _, h, w = images.shape
    x_in, y_in = motion_coordinates(h, w, zoom=zoom, angle=angle, tx=tx, ty=ty, device=images.device)
    source = images.float()
    if border == "wrap":
        # Read coordinates modulo the size; one extra wrapped row/column lets bilinear sampling
        # blend across the seam instead of into a padding colour.
        x_in, y_in = torch.remainder(x_in, w), torch.remainder(y_in, h)
        source = F.pad(source, (0, 1, 0, 1), mode="circular")
        span_x, span_y = w, h
        padding = "border"
    else:
        span_x, span_y = w - 1, h - 1
        padding = "border" if border == "replicate" else "reflection"
    grid = torch.stack([2 * x_in / max(span_x, 1) - 1, 2 * y_in / max(span_y, 1) - 1], dim=-1)
    grid = grid.unsqueeze(0).expand(b, h, w, 2)
    out = F.grid_sample(source, grid, mode="bilinear", padding_mode=padding, align_corners=True)
    return out.clamp(0, 1).to(images.dtype)


def motion_coordinates(
    height: int, width: int, *, zoom: float, angle: float, tx: float, ty: float, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where ``warp`` reads the input for every output pixel, [H, W] x and y in input pixels:
    ``p_in = R(-angle) (p_out - t) / zoom`` about the centre (y down). Working in pixels keeps
    rotations round on non-square frames; media.noise carries a zoom film's noise along the same map."""
    import torch

    rad = math.radians(angle)
    cos, sin = math.cos(rad) / zoom, math.sin(rad) / zoom
    ys = torch.arange(height, device=device, dtype=torch.float32) - (height - 1) / 2 - ty
    xs = torch.arange(width, device=device, dtype=torch.float32) - (width - 1) / 2 - tx
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return cos * x - sin * y + (width - 1) / 2, sin * x + cos * y + (height - 1) / 2


def inverse_motion(zoom: float, angle: float, tx: float, ty: float) -> dict[str, float]:
    """The ``warp`` settings that undo ``warp(zoom, angle, tx, ty)``: ``warp`` reads the input at
    ``M (p - t)`` with ``M = R(angle) / zoom``; its inverse reads at ``M^-1 q + t``, which is ``warp``
    with ``1 / zoom``, ``-angle`` and ``t' = -M t`` (zoom cadence carries a later frame back in time)."""
    rad = math.radians(angle)
    cos, sin = math.cos(rad) / zoom, math.sin(rad) / zoom
    return {"zoom": 1 / zoom, "angle": -angle, "tx": -(cos * tx - sin * ty), "ty": -(sin * tx + cos * ty)}


def blend(a: torch.Tensor, b: torch.Tensor, amount: float) -> torch.Tensor:
    """``amount`` of ``b`` over ``a`` (0 gives a, 1 gives b)."""
    return a + (b.to(a) - a) * amount


def luminance(images: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] luma."""
    r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b


def grayscale(images: torch.Tensor, amount: float = 1.0) -> torch.Tensor:
    """Grey pictures (still 3 channels); ``amount`` < 1 keeps some colour."""
    return blend(images, luminance(images).expand_as(images), amount)


def parse_color(name: str) -> tuple[float, float, float]:
    """A colour name (``brown``) or hex (``#8b5a2b``) -> RGB in [0, 1]."""
    from PIL import ImageColor

    try:
        rgb = ImageColor.getrgb(name.strip())
    except (ValueError, AttributeError):
        hint = "use a name like brown or a hex code like #8b5a2b"
        raise DreamreelError(f"unknown colour {name!r}; {hint}") from None
    return rgb[0] / 255, rgb[1] / 255, rgb[2] / 255


def tint(images: torch.Tensor, color: str | tuple[float, float, float], amount: float) -> torch.Tensor:
    """Lay a solid colour over the pictures with opacity ``amount`` (the guide's brown skin)."""
    import torch

    rgb = parse_color(color) if isinstance(color, str) else color
    solid = torch.tensor(rgb, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return blend(images, solid.expand_as(images), amount)


def contrast(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Scale the distance from each picture's mean grey by ``factor`` (1 keeps it), as PIL's ImageEnhance."""
    mean = luminance(images).mean(dim=(1, 2, 3), keepdim=True)
    return (mean + (images - mean) * factor).clamp(0, 1)


def add_noise(images: torch.Tensor, amount: float, seed: int) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``amount``, drawn from a CPU generator seeded by ``seed``
    (the same on every device, so a frame's noise is a pure function of its seed)."""
    import torch

    if amount == 0:
        return images
    # A derived seed: the frame's own seed already drives the latent noise, keep the streams apart.
    generator = torch.Generator("cpu").manual_seed((int(seed) * 7919 + 104_729) % (2**63))
    noise = torch.randn(images.shape, generator=generator, dtype=torch.float32)
    return (images + noise.to(images.device, images.dtype) * amount).clamp(0, 1)


# -- colour spaces --------------------------------------------------------------------------


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> HSV with hue in [0, 1)."""
    import torch

    r, g, b = images[:, 0], images[:, 1], images[:, 2]
    high, _ = images.max(dim=1)
    low, _ = images.min(dim=1)
    delta = high - low
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        high == r, ((g - b) / safe) % 6, torch.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    hue = torch.where(delta > 0, hue / 6, torch.zeros_like(hue)) % 1.0
    sat = torch.where(high > 0, delta / high.clamp(min=1e-12), torch.zeros_like(high))
    return torch.stack([hue, sat, high], dim=1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    import torch

    h, s, v = hsv[:, 0] % 1.0, hsv[:, 1].clamp(0, 1), hsv[:, 2].clamp(0, 1)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], dim=1)
    weight = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * weight


def color_match(
    images: torch.Tensor, reference: torch.Tensor, *, strength: float = 1.0, space: str = "lab"
) -> torch.Tensor:
    """Move each picture's colour statistics (per-channel mean and spread) toward ``reference``'s.

    A statistics transfer (Reinhard et al.) rather than histogram matching: it cannot posterise or
    collapse to flat colour against a low-variety reference (A1111 #1096). ``strength`` 0 keeps the
    picture, 1 applies the full transfer. ``lab`` is the project's one LAB transfer (colour.py, shared
    with vid2vid; it works on 8-bit pictures); ``rgb`` transfers the channels directly; in ``hsv``
    saturation and value are transferred and the hue turned by the circular mean difference.
    """
    import torch

    if space not in COLOR_SPACES:
        raise DreamreelError(f"unknown colour space {space!r}; choose one of {', '.join(COLOR_SPACES)}")
    if strength == 0:
        return images
    ref = reference.to(images.device, torch.float32).expand(images.shape[0], -1, -1, -1)
    x = images.float()
    if space == "lab":
        from dreamreel.media.lab_transfer import color_match as lab_transfer

        matched = [lab_transfer(_to_uint8(p), _to_uint8(r), strength) for p, r in zip(x, ref, strict=True)]
        out = torch.stack([torch.from_numpy(m).permute(2, 0, 1) for m in matched]).float() / 255
        return out.to(images.device, images.dtype)
    if space == "hsv":
        src, dst = rgb_to_hsv(x), rgb_to_hsv(ref)
        turn = _circular_mean(dst[:, 0]) - _circular_mean(src[:, 0])
        hue = (src[:, 0:1] + turn.view(-1, 1, 1, 1)) % 1.0
        out = hsv_to_rgb(torch.cat([hue, _match_stats(src[:, 1:], dst[:, 1:])], dim=1))
    else:
        out = _match_stats(x, ref).clamp(0, 1)
    return blend(x, out, strength).clamp(0, 1).to(images.dtype)


def _to_uint8(picture: torch.Tensor) -> np.ndarray:
    """[3, H, W] in [0, 1] -> [H, W, 3] uint8 (rounded as a PNG would hold it)."""
    return (picture.clamp(0, 1) * 255).round().to(torch_uint8()).permute(1, 2, 0).cpu().numpy()


def torch_uint8() -> torch.dtype:
    import torch

    return torch.uint8


def _match_stats(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    dims = (2, 3)
    s_mean, s_std = src.mean(dims, keepdim=True), src.std(dims, keepdim=True)
    d_mean, d_std = dst.mean(dims, keepdim=True), dst.std(dims, keepdim=True)
    # A flat source channel has no spread to scale: only its mean moves.
    scale = torch_where_positive(s_std, d_std / s_std.clamp(min=1e-6))
    return (src - s_mean) * scale + d_mean


def torch_where_positive(std: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.where(std > 1e-6, scale, torch.ones_like(scale))


def _circular_mean(hue: torch.Tensor) -> torch.Tensor:
    import torch

    angle = hue * 2 * math.pi
    return torch.atan2(angle.sin().mean(dim=(1, 2)), angle.cos().mean(dim=(1, 2))) / (2 * math.pi)
