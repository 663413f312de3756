"""Small source videos made with PyAV inside the tests (a few dozen frames, 64-128 px)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def frame_picture(index: int, width: int, height: int) -> np.ndarray:
    """A picture that tells frames apart and shows which way is up: a bright marker in the top-left
    corner, a bar whose position moves with the frame index, a gradient background."""
    y, x = np.mgrid[0:height, 0:width]
    array = np.stack([x * 200 // width, y * 200 // height, np.full_like(x, 60)], axis=-1).astype(np.uint8)
    array[: height // 4, : width // 4] = (255, 255, 255)
    column = (index * 5) % max(1, width - 8)
    array[height // 2 :, column : column + 8] = (230, 30, 30)
    return array


def make_video(
    path: Path,
    *,
    frames: int = 24,
    rate: Fraction = Fraction(30000, 1001),
    width: int = 96,
    height: int = 64,
    audio: bool = False,
    rotation: int = 0,
    times: list[Fraction] | None = None,
) -> Path:
    """An H.264 mp4: ``rate`` fps, optional AAC tone as long as the video plus a second (so cutting
    shows), optional display rotation (counter-clockwise degrees, as phones tag portrait clips), or
    explicit per-frame ``times`` in seconds (variable frame rate, on a 1/1000 s grid)."""
    import av

    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    time_base = Fraction(1, 1000) if times is not None else 1 / rate
    stream.codec_context.time_base = time_base
    if rotation:
        stream.set_display_rotation(rotation)
    sound = container.add_stream("aac", rate=44100) if audio else None
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(frame_picture(index, width, height), format="rgb24")
        frame.pts = round(times[index] / time_base) if times is not None else index
        frame.time_base = time_base
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    if sound is not None:
        length = frames / rate if times is None else times[-1]
        total = int((float(length) + 1.0) * 44100)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(total) / 44100)).astype(np.float32)
        for start in range(0, total, 1024):
            chunk = tone[start : start + 1024][None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    container.close()
    return path


def vfr_times(frames: int) -> list[Fraction]:
    """Irregular gaps on a millisecond grid: 33 ms twice, then 100 ms, repeated."""
    times, now = [], Fraction(0)
    for index in range(frames):
        times.append(now)
        now += Fraction(33, 1000) if index % 3 else Fraction(1, 10)
    return times


def audio_seconds(path: Path) -> float:
    """Length of the first audio stream (s), from its packets."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        end = 0
        for packet in container.demux(stream):
            if packet.pts is not None and packet.size:
                end = max(end, packet.pts + (packet.duration or 0))
        return float(end * stream.time_base)


def video_packets(path: Path) -> list[Fraction]:
    """Presentation times (s) of the video stream's packets, sorted."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = Fraction(stream.time_base)
        origin = stream.start_time or 0
        return sorted(
            (p.pts - origin) * base for p in container.demux(stream) if p.size and p.pts is not None
        )


def png_roundtrip(image):
    """A picture as a run folder keeps it and reads it back (lossless PNG, converted to RGB)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
