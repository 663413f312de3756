"""Input pictures made safe and uniform, and conversions between PIL pictures and tensors.

Every input picture goes through ``load_image``: it must be a real, complete image file (zero-byte,
truncated and non-image files are refused in one line), within Pillow's decompression-bomb limit,
turned upright by its EXIF orientation, and converted to 8-bit RGB (alpha composited on white).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dreamreel.errors import DreamreelError

if TYPE_CHECKING:
    import torch
    from PIL import Image

ResizeMode = Literal["crop", "fit", "stretch"]
RESIZE_MODES: tuple[str, ...] = ("crop", "fit", "stretch")
SIZE_MULTIPLE = 8
MAX_SIDE = 4096


def nearest_valid_sizes(value: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    below = max(multiple, value // multiple * multiple)
    return below, below + multiple


def check_size(name: str, value: int) -> None:
    """Sizes must be positive multiples of 8 (the VAE's factor) and at most MAX_SIDE."""
    if value < SIZE_MULTIPLE:
        raise DreamreelError(f"--{name} {value} is too small; the smallest size is {SIZE_MULTIPLE}")
    if value > MAX_SIDE:
        raise DreamreelError(
            f"--{name} {value} is larger than {MAX_SIDE} pixels, far beyond what SD can render"
        )
    if value % SIZE_MULTIPLE:
        low, high = nearest_valid_sizes(value)
        raise DreamreelError(
            f"--{name} {value} is not a multiple of {SIZE_MULTIPLE}; nearest valid sizes: {low} or {high}"
        )


def fit_size(width: int, height: int, side: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """A size with the picture's aspect ratio and about ``side * side`` pixels, in multiples of 8."""
    scale = (side * side / (width * height)) ** 0.5
    fitted_w = max(multiple, round(width * scale / multiple) * multiple)
    fitted_h = max(multiple, round(height * scale / multiple) * multiple)
    return min(fitted_w, MAX_SIDE), min(fitted_h, MAX_SIDE)


def open_image_checked(path: str | Path) -> Image.Image:
    """Open and fully decode an image file, or raise a one-line DreamreelError saying what is wrong."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise DreamreelError(f"image {str(path)!r} does not exist")
    if path.is_dir():
        raise DreamreelError(f"image {str(path)!r} is a directory, not an image file")
    if path.stat().st_size == 0:
        raise DreamreelError(f"image {str(path)!r} is an empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DreamreelError(
            f"image {str(path)!r} is too large to decode safely ({exc.__class__.__name__}: over "
            f"{Image.MAX_IMAGE_PIXELS} pixels); shrink it first"
        ) from exc
    except UnidentifiedImageError as exc:
        raise DreamreelError(f"{str(path)!r} is not an image file Pillow can read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DreamreelError(f"image {str(path)!r} is damaged or truncated: {exc}") from exc
    return image


def normalise_image(image: Image.Image) -> Image.Image:
    """EXIF orientation applied; any mode (RGBA, LA, P, CMYK, I;16, L, 1) to 8-bit RGB on white."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping everything above 255 to white.
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "RGB" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def resize_image(image: Image.Image, width: int, height: int, mode: ResizeMode = "crop") -> Image.Image:
    """Bring a picture to exactly width x height.

    crop: scale to cover, centre-crop the excess (no distortion, no borders; the default).
    fit: scale to fit inside, pad with the edge-mean colour (the whole picture, with borders).
    stretch: scale each axis independently (distorts).
    """
    from PIL import Image, ImageOps

    if image.size == (width, height):
        return image
    resample = Image.Resampling.LANCZOS
    if mode == "stretch":
        return image.resize((width, height), resample)
    if mode == "crop":
        return ImageOps.fit(image, (width, height), method=resample)
    if mode == "fit":
        contained = ImageOps.contain(image, (width, height), method=resample)
        border = _edge_colour(contained)
        canvas = Image.new("RGB", (width, height), border)
        canvas.paste(contained, ((width - contained.width) // 2, (height - contained.height) // 2))
        return canvas
    raise DreamreelError(f"unknown resize mode {mode!r}; choose one of {', '.join(RESIZE_MODES)}")


def _edge_colour(image: Image.Image) -> tuple[int, int, int]:
    import numpy as np

    array = np.asarray(image)
    edges = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    r, g, b = (int(v) for v in edges.mean(axis=0).round())
    return r, g, b


def load_image(path: str | Path) -> Image.Image:
    """A checked, upright, RGB picture from a file (not resized)."""
    return normalise_image(open_image_checked(path))


def to_unit_tensor(images: list[Image.Image]) -> torch.Tensor:
    """RGB pictures -> [B, 3, H, W] float in [0, 1]: exactly ``byte / 255``, the one conversion every
    job uses, so a picture read back from its PNG is the very tensor the job held in memory."""
    import numpy as np
    import torch

    array = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] pictures to the 8-bit grid: the same floats ``to_unit_tensor`` gives for the PNG
    of the picture (``round(x * 255) / 255`` is ``byte / 255`` in float32, both correctly rounded)."""
    return (images * 255).round() / 255


def tensor_to_pil(images: torch.Tensor) -> list[Image.Image]:
    """[B, 3, H, W] float in [0, 1] -> 8-bit RGB pictures (rounding as diffusers' numpy_to_pil)."""
    from PIL import Image

    array = (images.detach().float().cpu().permute(0, 2, 3, 1).numpy() * 255).round().astype("uint8")
    return [Image.fromarray(a) for a in array]
