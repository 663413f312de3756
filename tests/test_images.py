"""Input pictures: refused in one clear line when broken, normalised to upright RGB when odd."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dreamreel.errors import DreamreelError
from dreamreel.media.pictures import fit_size, load_image, resize_image


def test_exif_orientation_is_applied(tmp_path):
    wide = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a phone photo taken upright
    path = tmp_path / "phone.jpg"
    wide.save(path, exif=exif)
    assert load_image(path).size == (20, 40)


def test_rgba_composited_on_white(tmp_path):
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(path)
    picture = load_image(path)
    assert picture.mode == "RGB"
    assert picture.getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["CMYK", "P", "L", "1", "LA"])
def test_odd_modes_become_rgb(tmp_path, mode):
    path = tmp_path / f"pic.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.new("RGB", (8, 8), (10, 120, 200)).convert(mode).save(path)
    assert load_image(path).mode == "RGB"


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(path)
    value = load_image(path).getpixel((0, 0))
    assert 120 <= value[0] <= 135  # half of 65535 is mid-grey, not white


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("just some text"), "not an image"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
)
def test_bad_files_refused_clearly(tmp_path, make, message):
    path = tmp_path / "input.png"
    make(path)
    with pytest.raises(DreamreelError, match=message):
        load_image(path)


def test_truncated_png_refused(tmp_path, sample_picture):
    data = sample_picture.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DreamreelError, match="damaged or truncated"):
        load_image(cut)


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's own limit, made small for the test
    with pytest.raises(DreamreelError, match="too large"):
        load_image(path)


def test_resize_policies(sample_picture):
    picture = load_image(sample_picture)  # 96x64 with a red square in the middle
    for mode in ("crop", "fit", "stretch"):
        assert resize_image(picture, 64, 64, mode).size == (64, 64)
    cropped = resize_image(picture, 64, 64, "crop")
    assert cropped.getpixel((32, 32))[0] > 200  # the centre survives the crop
    fitted = np.asarray(resize_image(picture, 64, 64, "fit"))
    assert (fitted[0] == fitted[0, 0]).all()  # a uniform border above the picture


def test_fit_size_keeps_aspect_in_multiples_of_8():
    assert fit_size(4000, 3000, side=512) == (592, 440)
    width, height = fit_size(1080, 1920, side=512)
    assert width % 8 == 0 and height % 8 == 0
    assert abs(width / height - 1080 / 1920) < 0.03
