"""Video in and out on PyAV (FFmpeg in its wheels; no system ffmpeg needed).

Out: ``VideoWriter`` streams frames into H.264 yuv420p ``.mp4`` (even sizes), VP9 ``.webm`` or
``.gif``, at an exact fractional rate or with per-frame timestamps (variable frame rate), with the
recipe in the container metadata and optional audio (copied packet for packet, or re-encoded) cut to
the video's length. It writes to a temp name, reopens and checks the file (frame count, duration),
and only then renames it into place: a short or broken file is an error, never a silent success.

In: ``probe_video`` checks a file before any model loads; ``read_frames`` streams decoded frames
(never the whole video in memory), turned upright by the rotation side data phone videos carry,
each with its exact timestamp as a Fraction of a second.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError

if TYPE_CHECKING:
    from PIL import Image

# suffix -> (container format, video codec, pixel format)
FORMATS: dict[str, tuple[str, str, str]] = {
    ".mp4": ("mp4", "libx264", "yuv420p"),
    ".webm": ("webm", "libvpx-vp9", "yuv420p"),
    ".gif": ("gif", "gif", "pal8"),
}
# audio codecs each container takes as they are (copied untouched); anything else is re-encoded
AUDIO_COPY_OK: dict[str, set[str]] = {
    ".mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus"},
    ".webm": {"opus", "vorbis"},
}
AUDIO_ENCODER = {".mp4": "aac", ".webm": "libopus"}
METADATA_KEY = "dreamreel"


def _av() -> Any:
    import av

    av.logging.set_level(av.logging.ERROR)  # FFmpeg's chatter is not for our users
    return av


def _open_input(path: str | Path, what: str = "video") -> Any:
    """Open a media file for reading, or a one-line error saying what is wrong with it."""
    av = _av()
    path = Path(path)
    if not path.exists():
        raise DreamreelError(f"{what} {str(path)!r} does not exist")
    if path.is_dir():
        raise DreamreelError(f"{what} {str(path)!r} is a directory")
    if path.stat().st_size == 0:
        raise DreamreelError(f"{what} {str(path)!r} is an empty file (0 bytes)")
    try:
        return av.open(str(path), "r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise DreamreelError(f"{str(path)!r} is not a {what} file FFmpeg can read ({exc})") from exc


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read without decoding more than its first frame."""

    path: str
    width: int  # upright (rotation applied)
    height: int
    rotation: int  # counter-clockwise degrees the picture is turned for display
    rate: Fraction  # exact average frame rate
    time_base: Fraction
    frames: int  # from the container's index; 0 when it does not say
    duration: float | None  # seconds
    audio_codec: str | None
    metadata: dict[str, str] = field(default_factory=dict)

    def recipe(self) -> dict[str, Any] | None:
        """The dreamreel recipe in the metadata, if this video was made here."""
        # Matroska (webm) upper-cases tag names
        text = next((v for k, v in self.metadata.items() if k.lower() == METADATA_KEY), None)
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None


@dataclass
class SourceFrame:
    """One decoded frame: its position in the source, its time (s, exact) and the upright picture."""

    index: int
    time: Fraction
    image: Image.Image


def probe_video(path: str | Path) -> VideoInfo:
    """Check a video before any model loads: readable, has a video stream, a frame rate and a frame."""
    container = _open_input(path)
    try:
        return _probe(container, path)
    finally:
        container.close()


def survey_video(
    path: str | Path, *, start: float | None = None, end: float | None = None, every: int = 1
) -> tuple[VideoInfo, list[Fraction]]:
    """``probe_video`` and ``frame_times`` in one opening of the file: what a job plans from."""
    container = _open_input(path)
    try:
        info = _probe(container, path)
        times = [time for _, time, _ in _select(container, path, start, end, every, rewind=True)]
        return info, times
    finally:
        container.close()


def _probe(container: Any, path: str | Path) -> VideoInfo:
    av = _av()
    if not container.streams.video:
        raise DreamreelError(f"{str(path)!r} has no video stream")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise DreamreelError(f"{str(path)!r} has no frame rate")
    try:
        first = next(container.decode(stream), None)
    except av.error.FFmpegError as exc:
        raise DreamreelError(f"{str(path)!r} is damaged: {exc}") from exc
    if first is None:
        raise DreamreelError(f"{str(path)!r} has no frames")
    rotation = _rotation(first)
    width, height = first.width, first.height
    if rotation in (90, 270):
        width, height = height, width
    duration = None
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000
    audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
    return VideoInfo(
        path=str(path),
        width=width,
        height=height,
        rotation=rotation,
        rate=Fraction(rate),
        time_base=Fraction(stream.time_base),
        frames=int(stream.frames or 0),
        duration=duration,
        audio_codec=audio,
        metadata=dict(container.metadata),
    )


def probe_audio(path: str | Path) -> str:
    """Check an audio (or video) file has a sound track; returns its codec name."""
    container = _open_input(path, what="audio")
    try:
        if not container.streams.audio:
            raise DreamreelError(f"{str(path)!r} has no audio stream")
        return str(container.streams.audio[0].codec_context.name)
    finally:
        container.close()


def _rotation(frame: Any) -> int:
    """The display rotation in {0, 90, 180, 270} (counter-clockwise), from the frame's display matrix."""
    try:
        degrees = round(frame.rotation)
    except (AttributeError, TypeError, ValueError):
        return 0
    return (round(degrees / 90) * 90) % 360


def upright(image: Image.Image, rotation: int) -> Image.Image:
    """Turn a decoded picture the way a player shows it (rotation is counter-clockwise degrees)."""
    from PIL import Image as PILImage

    turns = {
        90: PILImage.Transpose.ROTATE_90,
        180: PILImage.Transpose.ROTATE_180,
        270: PILImage.Transpose.ROTATE_270,
    }
    return image.transpose(turns[rotation]) if rotation in turns else image


def read_frames(
    path: str | Path,
    *,
    start: float | None = None,
    end: float | None = None,
    every: int = 1,
    skip: int = 0,
) -> Iterator[SourceFrame]:
    """Stream upright RGB frames with exact times (s from the stream's start).

    ``start``/``end`` select by time (end exclusive), ``every`` keeps every Nth frame of those, and
    ``skip`` drops that many of the selected frames without converting them (a resume's done frames).
    """
    for index, time, frame in _selected_frames(path, start, end, every):
        if index >= skip:
            yield SourceFrame(index=index, time=time, image=upright(frame.to_image(), _rotation(frame)))


def frame_times(
    path: str | Path, *, start: float | None = None, end: float | None = None, every: int = 1
) -> list[Fraction]:
    """The times of the frames ``read_frames`` would yield (decodes, but converts no pictures)."""
    return [time for _, time, _ in _selected_frames(path, start, end, every)]


def _selected_frames(
    path: str | Path, start: float | None, end: float | None, every: int
) -> Iterator[tuple[int, Fraction, Any]]:
    container = _open_input(path)
    try:
        yield from _select(container, path, start, end, every)
    finally:
        container.close()


def _select(
    container: Any, path: str | Path, start: float | None, end: float | None, every: int, rewind: bool = False
) -> Iterator[tuple[int, Fraction, Any]]:
    """(index among the kept frames, exact time, decoded frame) for the frames ``start``/``end``/``every``
    select; the one place that decides which frames a job sees and when they show."""
    av = _av()
    try:
        stream = container.streams.video[0]
        # (no frame threading: closing a frame-threaded decoder mid-stream can hang)
        base = Fraction(stream.time_base)
        origin = stream.start_time or 0
        rate = Fraction(stream.average_rate or stream.guessed_rate or 1)
        if start or rewind:  # to just before ``start`` (or back to the beginning after a probe)
            container.seek(int((start or 0) / base) + origin, stream=stream, backward=True, any_frame=False)
        selected = 0
        for position, frame in enumerate(container.decode(stream)):
            time = (frame.pts - origin) * base if frame.pts is not None else position / rate
            if start is not None and time < Fraction(start):
                continue
            if end is not None and time >= Fraction(end):
                break
            selected += 1
            if (selected - 1) % every == 0:
                yield (selected - 1) // every, Fraction(time), frame
    except av.error.FFmpegError as exc:
        raise DreamreelError(f"{str(path)!r} could not be decoded: {exc}") from exc


# -- writing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioSource:
    """Sound to lay under a video: from ``path``, starting ``start`` s in, copied or re-encoded."""

    path: str
    start: Fraction = Fraction(0)
    copy: bool = False  # True: the packets as they are (vid2vid keeps the source's sound untouched)


def even(value: int) -> int:
    return value + (value % 2)


class VideoWriter:
    """Streams frames into a video file; ``close()`` checks the result and moves it into place.

    Frames go in one at a time (memory flat in their number). Without timestamps, frame i plays at
    i / fps; with them (``add(image, time=...)``), each at its own time, on the ``time_base`` grid.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: Fraction,
        time_base: Fraction | None = None,
        metadata: dict[str, str] | None = None,
        audio: AudioSource | None = None,
    ) -> None:
        av = _av()
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FORMATS:
            raise DreamreelError(f"cannot write {str(path)!r}: use .mp4, .webm or .gif")
        fmt, codec, pix_fmt = FORMATS[suffix]
        self.suffix = suffix
        self.fps = Fraction(fps)
        self.time_base = Fraction(time_base) if time_base else 1 / self.fps
        self.width, self.height = (even(width), even(height)) if pix_fmt == "yuv420p" else (width, height)
        self.count = 0
        self._frame_pts: list[int] = []  # every submitted frame's pts, increasing
        self._held: list[Any] = []  # encoded packets waiting to learn how long they show
        self.last_time = Fraction(-1)
        self.end_time = Fraction(0)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        options = {"movflags": "use_metadata_tags"} if fmt == "mp4" else {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.container = av.open(str(self.tmp), "w", format=fmt, options=options)
        except (av.error.FFmpegError, OSError) as exc:
            raise DreamreelError(f"cannot write {str(path)!r}: {exc}") from exc
        if metadata and fmt != "gif":
            self.container.metadata.update(metadata)
        self.stream = self.container.add_stream(codec, rate=self.fps)
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, pix_fmt
        self.stream.codec_context.time_base = self.time_base
        if codec == "libx264":
            self.stream.options = {"crf": "18", "preset": "medium"}
            if time_base:
                # Timestamps of our own (a source's, maybe variable): no B-frames, so decode order is
                # display order and MP4's per-sample durations are exactly the gaps we were given.
                self.stream.options["bf"] = "0"
        elif codec == "libvpx-vp9":
            self.stream.options = {"crf": "30", "b": "0", "row-mt": "1"}
        self._audio: _AudioPump | None = None
        if audio is not None:
            if suffix not in AUDIO_ENCODER:
                self.abort()
                raise DreamreelError(f"{str(path)!r}: a {suffix} file cannot carry sound")
            self._audio = _AudioPump(self.container, audio, suffix)

    def add(self, image: Image.Image, time: Fraction | None = None) -> None:
        """Append one picture; ``time`` (s) for variable frame rate, else the next slot at ``fps``."""
        import numpy as np

        av = _av()
        array = np.asarray(image.convert("RGB"))
        pad_h, pad_w = self.height - array.shape[0], self.width - array.shape[1]
        if pad_h or pad_w:  # odd sizes: repeat the last row/column (yuv420p needs even sizes)
            array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        time = Fraction(self.count) / self.fps if time is None else Fraction(time)
        if time <= self.last_time:
            raise DreamreelError(f"frame {self.count} at {float(time):.4f}s does not follow the one before")
        if self.suffix == ".gif":
            frame = av.VideoFrame.from_ndarray(_palette_picture(array), format="pal8")
        else:
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        frame.pts = round(time / self.time_base)
        frame.time_base = self.time_base
        self._frame_pts.append(frame.pts)
        self._held.extend(self.stream.encode(frame))
        self._release()
        self.count += 1
        self.last_time = time
        self.end_time = time + 1 / self.fps
        if self._audio is not None:
            self._audio.pump(until=time)

    def _release(self, end_pts: int | None = None) -> None:
        """Mux held packets in order, each with its real duration (time until the next frame, or
        until ``end_pts`` for the last): variable-rate frames and the last frame show as long as they
        should, and the file's duration comes out exact."""
        import bisect

        while self._held:
            packet = self._held[0]
            if packet.pts is not None:
                at = bisect.bisect_right(self._frame_pts, packet.pts)
                if at < len(self._frame_pts):
                    packet.duration = self._frame_pts[at] - packet.pts
                elif end_pts is not None:
                    packet.duration = max(1, end_pts - packet.pts)
                else:
                    return  # the next frame has not come yet
            self._mux(self._held.pop(0))

    def _mux(self, packets: Any) -> None:
        av = _av()
        try:
            self.container.mux(packets)
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise DreamreelError(f"writing {str(self.path)!r} failed: {exc}") from exc

    def close(self, end_time: Fraction | None = None) -> Path:
        """Flush, lay the rest of the audio (up to the video's end), check the file, move it into place.

        ``end_time`` is when the last frame stops showing (default: its time plus 1/fps).
        """
        av = _av()
        if self.count == 0:
            self.abort()
            raise DreamreelError(f"no frames to write into {str(self.path)!r}")
        if end_time is not None:
            self.end_time = Fraction(end_time)
        try:
            self._held.extend(self.stream.encode(None))
            self._release(end_pts=round(self.end_time / self.time_base))
            if self._audio is not None:
                self._audio.pump(until=self.end_time, final=True)
            self.container.close()
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise DreamreelError(f"writing {str(self.path)!r} failed: {exc}") from exc
        finally:
            if self._audio is not None:
                self._audio.close()
        try:
            verify_video(self.tmp, frames=self.count, duration=self.end_time, shown_as=self.path)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        return self.path

    def abort(self) -> None:
        """Drop the partial file (on error or interruption)."""
        with contextlib.suppress(Exception):
            self.container.close()
        if self._audio is not None:
            self._audio.close()
        self.tmp.unlink(missing_ok=True)


def _palette_picture(array: Any) -> tuple[Any, Any]:
    """An RGB array as (indices, 256x4 ARGB palette): FFmpeg's gif encoder takes palette pictures,
    and Pillow's adaptive palette per frame looks far better than a fixed 3-3-2 one."""
    import numpy as np
    from PIL import Image as PILImage

    quantized = PILImage.fromarray(array).quantize(colors=256, method=PILImage.Quantize.MEDIANCUT)
    rgb = np.zeros((256, 3), np.uint8)
    used = np.frombuffer(bytes(quantized.getpalette() or []), np.uint8).reshape(-1, 3)[:256]
    rgb[: len(used)] = used
    palette = np.concatenate([np.full((256, 1), 255, np.uint8), rgb], axis=1)
    return np.asarray(quantized, dtype=np.uint8), palette


class _AudioPump:
    """Feeds an audio track into the output as the video advances (so packets interleave)."""

    def __init__(self, output: Any, source: AudioSource, suffix: str) -> None:
        self.source = source
        self.output = output
        self.input = _open_input(source.path, what="audio")
        if not self.input.streams.audio:
            self.input.close()
            raise DreamreelError(f"{source.path!r} has no audio stream")
        self.in_stream = self.input.streams.audio[0]
        name = self.in_stream.codec_context.name
        self.copy = source.copy and name in AUDIO_COPY_OK.get(suffix, set())
        if self.copy:
            self.out_stream = output.add_stream_from_template(self.in_stream)
        else:
            rate = self.in_stream.codec_context.sample_rate or 48000
            if suffix == ".webm" and rate not in (8000, 12000, 16000, 24000, 48000):
                rate = 48000  # opus takes only these
            layout = self.in_stream.codec_context.layout.name if self.in_stream.codec_context.layout else None
            self.out_stream = output.add_stream(AUDIO_ENCODER[suffix], rate=rate)
            if layout in ("mono", "stereo"):
                self.out_stream.layout = layout
            self.resampler = None
        self.start = source.start
        self.base = Fraction(self.in_stream.time_base)
        origin = self.in_stream.start_time
        self.origin = origin if origin is not None and origin > 0 else 0
        if self.start:
            self.input.seek(int(self.start / self.base) + self.origin, stream=self.in_stream, backward=True)
        self.packets = self.input.demux(self.in_stream)
        self.items: Iterator[Any] = self._next_packets() if self.copy else self._decoded()
        self.held: Any = None
        self.done = False

    def _next_packets(self) -> Iterator[Any]:
        """(output-time-ordered) audio packets for the output, shifted so the cut starts at 0."""
        for packet in self.packets:
            if packet.pts is None or packet.size == 0:
                continue
            time = (packet.pts - self.origin) * self.base - self.start
            if self.start and time + (packet.duration or 0) * self.base <= 0:
                continue  # wholly before the cut (from the start, even the encoder's priming packet stays)
            yield packet, time

    def pump(self, until: Fraction, final: bool = False) -> None:
        """Mux the audio that starts before ``until`` (s); ``final``: then stop for good (the cut)."""
        if self.done:
            return
        while True:
            if self.held is None:
                self.held = next(self.items, None)
                if self.held is None:
                    break
            item, time = self.held
            if time >= until:
                if not final:
                    return
                break
            if self.copy:
                shift = round(self.start / self.base) + self.origin
                item.stream = self.out_stream
                item.pts -= shift
                if item.dts is not None:
                    item.dts -= shift
                self.output.mux(item)
            else:
                self.output.mux(self.out_stream.encode(item))
            self.held = None
        self.done = True
        if not self.copy:
            self.output.mux(self.out_stream.encode(None))

    def _decoded(self) -> Iterator[Any]:
        """Source audio decoded, resampled for the encoder, retimed from the cut's start."""
        av = _av()
        resampler = av.AudioResampler(
            format=self.out_stream.codec_context.format.name,
            layout=self.out_stream.codec_context.layout.name,
            rate=self.out_stream.codec_context.sample_rate,
        )
        rate = self.out_stream.codec_context.sample_rate
        samples = 0
        for packet in self.packets:
            for frame in packet.decode():
                if frame.pts is not None:
                    time = (frame.pts - self.origin) * Fraction(frame.time_base) - self.start
                    if time + Fraction(frame.samples, frame.sample_rate) <= 0:
                        continue
                for out in resampler.resample(frame):
                    out.pts = samples
                    out.time_base = Fraction(1, rate)
                    samples += out.samples
                    yield out, Fraction(out.pts, rate)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.input.close()


def verify_video(
    path: str | Path, *, frames: int, duration: Fraction, shown_as: str | Path | None = None
) -> None:
    """Reopen a written video: it must hold ``frames`` frames and last ``duration`` s (one frame's slack)."""
    av = _av()
    name = str(shown_as or path)
    try:
        container = av.open(str(path), "r")
    except (av.error.FFmpegError, OSError) as exc:
        raise DreamreelError(f"the written video {name!r} cannot be read back: {exc}") from exc
    try:
        if not container.streams.video:
            raise DreamreelError(f"the written video {name!r} has no video stream")
        stream = container.streams.video[0]
        count = 0
        last_end = Fraction(0)
        first = None
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            count += 1
            time = packet.pts * Fraction(stream.time_base)
            first = time if first is None else min(first, time)
            last_end = max(last_end, time + (packet.duration or 0) * Fraction(stream.time_base))
    except av.error.FFmpegError as exc:
        raise DreamreelError(f"the written video {name!r} is damaged: {exc}") from exc
    finally:
        container.close()
    if count != frames:
        raise DreamreelError(
            f"the written video {name!r} holds {count} frames instead of {frames}; is the disk full?"
        )
    length = last_end - (first or 0)
    slack = duration / max(frames, 1)
    if abs(length - duration) > slack + Fraction(1, 100):
        raise DreamreelError(
            f"the written video {name!r} lasts {float(length):.3f}s instead of {float(duration):.3f}s"
        )
