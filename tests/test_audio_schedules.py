"""Schedules that follow the music (--audio: ``a`` loudness and ``beat`` onsets, issue 16)."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from dreamreel.errors import DreamreelError
from dreamreel.jobs.runner import prepare, resume, run_job
from dreamreel.jobs.zoom import ZoomRecipe
from dreamreel.media import audio
from dreamreel.recipes.base import AUDIO_CACHE
from dreamreel.runs.store import RunStore

CLICKS = (0.5, 1.0, 1.25, 1.75)  # seconds: frames 6, 12, 15, 21 at 12 fps


def click_track(path, clicks=CLICKS, seconds=2.0, rate=44100):
    """A quiet hum with short loud clicks (5 ms bursts of noise) at ``clicks``, as a WAV file."""
    import av

    t = np.arange(int(seconds * rate)) / rate
    samples = 0.02 * np.sin(2 * np.pi * 220 * t)
    rng = np.random.default_rng(0)
    for click in clicks:
        at = int(click * rate)
        samples[at : at + rate // 200] += 0.8 * rng.standard_normal(rate // 200)
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        for start in range(0, len(pcm), 4096):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 4096], format="s16", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("fps", [12, 24, 30])
def test_beat_peaks_at_the_clicks_within_one_frame(tmp_path, fps):
    track = click_track(tmp_path / "clicks.wav")
    envelopes = audio.analyse(audio.decode_mono(track))
    count = 2 * fps
    values = envelopes.at([Fraction(k, fps) for k in range(count)], [Fraction(1, fps)] * count)
    beat = np.array(values["beat"])
    peaks = [k for k in range(count) if beat[k] > 0.5]
    for click in CLICKS:
        frame = round(click * fps)
        assert any(abs(k - frame) <= 1 for k in peaks), f"no beat near frame {frame} (peaks {peaks})"
    assert len(peaks) <= 2 * len(CLICKS)  # a click is one peak (at most two frames), not a smear
    assert np.median(beat) < 0.2
    loudness = np.array(values["a"])
    assert loudness.min() >= 0 and loudness.max() <= 1


def zoom(tmp_path, **settings):
    base = dict(prompt="a funny cat", model="tiny", steps=4, width=32, height=32, frames=8, fps=4,
                zoom="0:(1.0+0.1*beat)", tx="0:(4*a)", audio=str(click_track(tmp_path / "clicks.wav")),
                output=str(tmp_path / "film.mp4"))  # fmt: skip
    return ZoomRecipe(**{**base, **settings})


def test_a_zoom_that_follows_the_beat_pulses_and_resumes_exactly(tmp_path, tiny_model):
    recipe = zoom(tmp_path)
    prepared = prepare(recipe)
    zooms = [v["zoom"] for v in prepared.plan.values]  # frames at 0, 0.25, 0.5 ... 1.75 s
    assert [k for k, z in enumerate(zooms) if z > 1.05] == [2, 4, 5, 7]  # the clicks' frames
    assert prepared.recipe.audio_sha256 == audio.file_sha256(recipe.audio)
    run_job(recipe, model=tiny_model)  # killed after frame 3 below, resumed from the run folder
    store = RunStore.open(recipe.run_dir)
    cached = json.loads((recipe.run_dir / AUDIO_CACHE).read_text())
    assert cached["sha256"] == prepared.recipe.audio_sha256
    shas = [r.sha256 for r in store.done()]
    store.truncate(3)
    for index in range(3, len(shas)):
        store.frame_path(index).unlink()
    resume(recipe.run_dir, model=tiny_model)
    assert [r.sha256 for r in RunStore.open(recipe.run_dir).done()] == shas


def test_a_changed_soundtrack_is_not_resumed_silently(tmp_path, tiny_model):
    recipe = zoom(tmp_path, frames=2)
    run_job(recipe, model=tiny_model)
    click_track(tmp_path / "clicks.wav", clicks=(0.1,))
    with pytest.raises(DreamreelError, match="not the file this recipe was made with"):
        resume(recipe.run_dir, model=tiny_model)


def test_beat_without_audio_is_one_line_before_the_model_loads(no_model_load):
    recipe = ZoomRecipe(prompt="a cat", model="tiny", zoom="0:(1+0.05*beat)", output="x.mp4")
    with pytest.raises(DreamreelError, match="--zoom uses beat, the soundtrack at each frame: give --audio FILE"):
        prepare(recipe)
