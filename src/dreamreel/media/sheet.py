"""Captions and contact sheets: a sweep's frames side by side, each labelled with its value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow's own scalable font (needs FreeType)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def format_value(value: float | int) -> str:
    """A value as a person writes it: 0.25, 7.5, 30 (never 0.25000000000000006)."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"


def caption_picture(image: Image.Image, text: str) -> Image.Image:
    """A copy of ``image`` with ``text`` burned into its bottom-left corner on a dark band."""
    from PIL import ImageDraw

    picture = image.convert("RGB").copy()
    size = max(8, picture.height // 14)
    font = _font(size)
    draw = ImageDraw.Draw(picture, "RGBA")
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(2, size // 4)
    box = (0, picture.height - (bottom - top) - 2 * pad, right - left + 2 * pad, picture.height)
    draw.rectangle(box, fill=(0, 0, 0, 160))
    draw.text((pad - left, box[1] + pad - top), text, font=font, fill=(255, 255, 255, 255))
    return picture


def contact_sheet(
    pictures: Sequence[Image.Image], captions: Sequence[str], *, thumb_width: int = 192
) -> Image.Image:
    """A grid of thumbnails (about square overall), each with its caption underneath."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    count = len(pictures)
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    first = pictures[0]
    width = min(thumb_width, first.width)
    height = max(1, round(first.height * width / first.width))
    font = _font(max(10, width // 14))
    probe = ImageDraw.Draw(PILImage.new("RGB", (1, 1)))
    text_height = round(max(probe.textbbox((0, 0), c or "0", font=font)[3] for c in captions)) + 6
    gap = 4
    sheet = PILImage.new(
        "RGB",
        (columns * (width + gap) + gap, rows * (height + text_height + gap) + gap),
        (24, 24, 24),
    )
    draw = ImageDraw.Draw(sheet)
    for i, (picture, caption) in enumerate(zip(pictures, captions, strict=True)):
        x = gap + (i % columns) * (width + gap)
        y = gap + (i // columns) * (height + text_height + gap)
        sheet.paste(picture.convert("RGB").resize((width, height), PILImage.Resampling.LANCZOS), (x, y))
        draw.text((x + 2, y + height + 3), caption, font=font, fill=(235, 235, 235))
    return sheet
