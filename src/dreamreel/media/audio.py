"""The soundtrack as numbers a schedule can follow: loudness ``a`` and onset strength ``beat``, 0..1.

Decoding is PyAV's (every format FFmpeg reads, already a dependency); the analysis is a few lines of
NumPy written here on purpose: librosa's ``onset_strength`` is the same idea (spectral flux: how much
the log spectrum rises from one short window to the next, summed over frequencies) but would bring
numba, llvmlite, scipy and an audio-file stack (~150 MB) for one short function. Our windows are short
(512 samples at 22050 Hz, 128 between windows: 5.8 ms) so an onset is placed within a few ms, well
inside one film frame; librosa's default hop (23 ms) would already be most of a 30 fps frame.

A frame's ``a`` is the mean loudness (RMS, over the file's loudest window) over the frame's span and
``beat`` the strongest onset (over the file's strongest) within half a frame of its time, so a
click peaks in the frame whose time is nearest to it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError

RATE = 22050  # Hz, the analysis rate (mono)
WINDOW = 512
HOP = 128
VERSION = 1  # of the analysis: a cache made by another version is made again


@dataclass(frozen=True)
class Envelopes:
    """Per-hop loudness and onset strength of a whole file, each scaled to 0..1."""

    loudness: list[float]
    onset: list[float]

    def at(self, times: Sequence[Fraction], durations: Sequence[Fraction]) -> dict[str, list[float]]:
        """Each frame's ``a`` and ``beat`` (frames at ``times`` showing for ``durations``, seconds)."""
        count = len(self.onset)
        a, beat = [], []
        for time, duration in zip(times, durations, strict=True):
            first = int(time * RATE / HOP)
            last = max(first + 1, int((time + duration) * RATE / HOP))
            span = self.loudness[min(first, count - 1) : min(last, count)] if count else []
            a.append(round(sum(span) / len(span), 6) if span else 0.0)
            near = int((time - duration / 2) * RATE / HOP), int((time + duration / 2) * RATE / HOP) + 1
            onsets = self.onset[max(near[0], 0) : min(near[1], count)]
            beat.append(round(max(onsets), 6) if onsets else 0.0)
        return {"a": a, "beat": beat}


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise DreamreelError(f"--audio {str(path)!r} cannot be read: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def decode_mono(path: str | Path) -> Any:
    """The first audio stream as mono float32 samples at ``RATE``."""
    import av
    import numpy as np

    chunks = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise DreamreelError(f"--audio {str(path)!r} has no sound")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            for frame in container.decode(container.streams.audio[0]):
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise DreamreelError(f"--audio {str(path)!r} could not be decoded: {exc}") from exc
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def analyse(samples: Any) -> Envelopes:
    """Loudness and onset strength per hop (window centred on hop * HOP / RATE seconds)."""
    import numpy as np

    padded = np.pad(samples, (WINDOW // 2, WINDOW // 2))
    count = max(0, (len(padded) - WINDOW) // HOP + 1)
    if count < 2:
        return Envelopes([0.0] * count, [0.0] * count)
    frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)[::HOP][:count]
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    spectrum = np.log1p(1000 * np.abs(np.fft.rfft(frames * np.hanning(WINDOW), axis=1)))
    flux = np.concatenate([[0.0], np.maximum(spectrum[1:] - spectrum[:-1], 0).sum(axis=1)])

    def unit(values: Any) -> list[float]:
        top = float(values.max())
        return [round(float(v), 6) for v in (values / top if top > 0 else values)]

    return Envelopes(unit(rms), unit(flux))


def envelopes(path: str | Path, sha256: str, cache: Path | None = None) -> Envelopes:
    """The analysis of ``path`` (whose content must still hash to ``sha256``), from ``cache`` when it
    holds this file's analysis; written there when its folder exists."""
    actual = file_sha256(path)
    if actual != sha256:
        raise DreamreelError(
            f"--audio {str(path)!r} is not the file this recipe was made with (sha256 {actual[:12]}..., "
            f"recorded {sha256[:12]}...)"
        )
    if cache is not None and cache.is_file():
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            if data.get("sha256") == sha256 and data.get("version") == VERSION:
                return Envelopes(list(data["loudness"]), list(data["onset"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache is made again
    result = analyse(decode_mono(path))
    if cache is not None and cache.parent.is_dir():
        write_cache(cache, sha256, result)
    return result


def write_cache(cache: Path, sha256: str, result: Envelopes) -> None:
    """The analysis beside the run (atomic: a reader sees the old file or the whole new one)."""
    data = {"version": VERSION, "sha256": sha256, "rate": RATE, "hop": HOP, **result.__dict__}
    partial = cache.with_name(f".{cache.name}.partial")
    try:
        partial.write_text(json.dumps(data), encoding="utf-8")
        os.replace(partial, cache)
    except OSError:
        partial.unlink(missing_ok=True)  # a cache that cannot be written is only a slower resume
