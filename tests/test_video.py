"""video.py: exact rates, timestamps, rotation, audio, metadata, checked output, streaming reads."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import audio_seconds, make_video, vfr_times, video_packets
from PIL import Image

from dreamreel.errors import DreamreelError
from dreamreel.media.video import (
    AudioSource,
    VideoWriter,
    frame_times,
    probe_audio,
    probe_video,
    read_frames,
    verify_video,
)


def _pictures(count: int, width: int = 64, height: int = 48) -> list[Image.Image]:
    return [Image.new("RGB", (width, height), (i * 9 % 256, 100, 200 - i)) for i in range(count)]


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".gif"])
def test_writer_formats_keep_count_rate_and_recipe(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"film{suffix}"
    writer = VideoWriter(path, width=64, height=48, fps=Fraction(12), metadata={"dreamreel": '{"a": 1}'})
    for picture in _pictures(18):
        writer.add(picture)
    assert writer.close() == path
    info = probe_video(path)
    assert info.frames in (18, 0)  # webm's index does not count frames
    assert len(video_packets(path)) == 18
    if suffix == ".gif":  # GIF delays are whole centiseconds: 1/12 s alternates 8 and 9
        assert float(info.rate) == pytest.approx(12, rel=0.1)
    else:
        assert info.rate == 12
    assert info.duration == pytest.approx(1.5, abs=1 / 12)
    if suffix != ".gif":  # GIF has no place for it; the run folder holds the recipe
        assert info.recipe() == {"a": 1}
    assert not list(tmp_path.glob(".*partial*"))


def test_mp4_keeps_a_fractional_rate_exactly_and_pads_odd_sizes(tmp_path: Path) -> None:
    path = tmp_path / "ntsc.mp4"
    writer = VideoWriter(path, width=63, height=47, fps=Fraction(30000, 1001))
    for picture in _pictures(30, 63, 47):
        writer.add(picture)
    writer.close()
    info = probe_video(path)
    assert info.rate == Fraction(30000, 1001)
    assert (info.width, info.height) == (64, 48)  # yuv420p needs even sizes
    assert info.duration == pytest.approx(30 * 1001 / 30000, abs=1001 / 30000)


def test_audio_is_cut_to_the_video_length(tmp_path: Path) -> None:
    song = make_video(tmp_path / "song.mp4", frames=60, rate=Fraction(30), audio=True)  # 3 s of tone
    for suffix, copy in ((".mp4", True), (".mp4", False), (".webm", True)):
        path = tmp_path / f"short{suffix}"
        writer = VideoWriter(
            path, width=64, height=48, fps=Fraction(10), audio=AudioSource(str(song), copy=copy)
        )
        for picture in _pictures(10):  # 1 s of video
            writer.add(picture)
        writer.close()
        assert probe_video(path).audio_codec == ("aac" if suffix == ".mp4" else "opus")
        assert audio_seconds(path) == pytest.approx(1.0, abs=0.1)


def test_variable_timestamps_are_written_as_given(tmp_path: Path) -> None:
    times = vfr_times(12)
    path = tmp_path / "vfr.mp4"
    writer = VideoWriter(path, width=64, height=48, fps=Fraction(30), time_base=Fraction(1, 1000))
    for picture, time in zip(_pictures(12), times, strict=True):
        writer.add(picture, time)
    writer.close(end_time=times[-1] + Fraction(33, 1000))
    assert video_packets(path) == times


def test_written_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "film.mp4"
    writer = VideoWriter(path, width=64, height=48, fps=Fraction(12))
    for picture in _pictures(12):
        writer.add(picture)
    writer.close()
    with pytest.raises(DreamreelError, match="holds 12 frames instead of 13"):
        verify_video(path, frames=13, duration=Fraction(13, 12))
    with pytest.raises(DreamreelError, match="lasts"):
        verify_video(path, frames=12, duration=Fraction(3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # what a full disk leaves behind
    with pytest.raises(DreamreelError):
        verify_video(path, frames=12, duration=Fraction(1))
    empty = VideoWriter(tmp_path / "none.mp4", width=64, height=48, fps=Fraction(12))
    with pytest.raises(DreamreelError, match="no frames"):
        empty.close()
    assert not (tmp_path / "none.mp4").exists()


def test_reader_gives_exact_rate_times_and_every_frame(tmp_path: Path) -> None:
    path = make_video(tmp_path / "ntsc.mp4", frames=30, audio=True)
    info = probe_video(path)
    assert info.rate == Fraction(30000, 1001)
    assert info.frames == 30
    assert info.audio_codec == "aac"
    frames = list(read_frames(path))
    assert [f.index for f in frames] == list(range(30))
    assert [f.time for f in frames] == [Fraction(1001 * i, 30000) for i in range(30)]
    assert frames[0].image.size == (96, 64)
    assert frame_times(path) == [f.time for f in frames]


def test_reader_start_end_every(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", frames=40, rate=Fraction(20))
    picked = list(read_frames(path, start=0.5, end=1.5, every=3))
    assert [f.time for f in picked] == [Fraction(10 + 3 * k, 20) for k in range(7)]
    assert [f.index for f in picked] == list(range(7))
    assert frame_times(path, start=0.5, end=1.5, every=3) == [f.time for f in picked]
    resumed = list(read_frames(path, start=0.5, end=1.5, every=3, skip=4))
    assert [f.time for f in resumed] == [f.time for f in picked[4:]]
    assert np.array_equal(np.asarray(resumed[0].image), np.asarray(picked[4].image))


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_reader_turns_phone_videos_upright(tmp_path: Path, rotation: int) -> None:
    """The coded picture has its white marker top-left; a player turns it by the tag (counter-
    clockwise degrees), and so must we: 90 puts the marker bottom-left, -90 top-right, 180 bottom-right."""
    path = make_video(tmp_path / "phone.mp4", frames=6, width=96, height=64, rotation=rotation)
    info = probe_video(path)
    assert info.rotation == rotation % 360
    frame = next(read_frames(path))
    expected_size = (96, 64) if rotation == 180 else (64, 96)
    assert frame.image.size == expected_size == (info.width, info.height)
    array = np.asarray(frame.image).astype(int)
    h, w = array.shape[:2]
    corners = {
        "top-left": array[:6, :6],
        "top-right": array[:6, w - 6 :],
        "bottom-left": array[h - 6 :, :6],
        "bottom-right": array[h - 6 :, w - 6 :],
    }
    white = {name for name, patch in corners.items() if patch.min() > 200}
    assert white == {{90: "bottom-left", -90: "top-right", 180: "bottom-right"}[rotation]}


def test_vfr_times_are_read_back(tmp_path: Path) -> None:
    times = vfr_times(15)
    path = make_video(tmp_path / "vfr.mp4", frames=15, times=times)
    assert [f.time for f in read_frames(path)] == times


def test_bad_videos_are_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(DreamreelError, match="does not exist"):
        probe_video(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DreamreelError, match="empty file"):
        probe_video(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("this is really a shopping list\n" * 20)
    with pytest.raises(DreamreelError, match="not a video file"):
        probe_video(text)
    song = make_video(tmp_path / "song.mp4", frames=10, audio=True)
    assert probe_audio(song) == "aac"
    # an audio-only file: no video stream
    import av

    with av.open(str(song)) as source, av.open(str(tmp_path / "sound.m4a"), "w") as out:
        stream = out.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux(source.streams.audio[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    with pytest.raises(DreamreelError, match="no video stream"):
        probe_video(tmp_path / "sound.m4a")
    with pytest.raises(DreamreelError, match="no audio stream"):
        probe_audio(make_video(tmp_path / "silent.mp4", frames=4))
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(song.read_bytes()[:300])
    with pytest.raises(DreamreelError):
        probe_video(truncated)


def test_metadata_is_json_text(tmp_path: Path) -> None:
    path = tmp_path / "film.mp4"
    recipe = {"recipe": {"prompt": 'a "quoted", comma: prompt ✓'}}
    writer = VideoWriter(
        path, width=64, height=48, fps=Fraction(12), metadata={"dreamreel": json.dumps(recipe)}
    )
    writer.add(_pictures(1)[0])
    writer.close()
    assert probe_video(path).recipe() == recipe
