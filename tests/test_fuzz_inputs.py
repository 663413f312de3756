"""Fuzzing the input checks: whatever bytes a user hands us, only our one-line errors come out."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dreamreel.errors import DreamreelError
from dreamreel.media.pictures import load_image
from dreamreel.recipes.seeds import parse_seeds


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


VALID_PNG = _png_bytes()


@st.composite
def damaged_pictures(draw) -> bytes:
    """Real PNG bytes cut short, with bytes flipped, or with junk appended; or plain random bytes."""
    kind = draw(st.sampled_from(["cut", "flip", "junk", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=256))
    data = bytearray(VALID_PNG)
    if kind == "cut":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data) - 1))
            data[position] = draw(st.integers(0, 255))
        return bytes(data)
    return bytes(data) + draw(st.binary(min_size=1, max_size=64))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=damaged_pictures())
def test_image_check_raises_only_clear_errors(tmp_path, data):
    path = tmp_path / "input.png"
    path.write_bytes(data)
    try:
        picture = load_image(path)
    except DreamreelError as exc:
        assert "\n" not in str(exc)
    else:
        assert picture.mode == "RGB"


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=30))
def test_seed_lists_raise_only_clear_errors(text):
    try:
        seeds = parse_seeds(text)
    except DreamreelError as exc:
        assert "\n" not in str(exc)
    else:
        assert seeds and all(0 <= s < 2**32 for s in seeds)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=512), st.text(max_size=200).map(str.encode)))
def test_video_check_raises_only_clear_errors(tmp_path, data):
    from dreamreel.media.video import probe_video

    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    try:
        probe_video(path)
    except DreamreelError as exc:
        assert "\n" not in str(exc)
