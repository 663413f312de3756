"""--interpolate-to FPS (issue 16): a smoother video from the same rendered frames."""

from __future__ import annotations

import numpy as np
import pytest
from test_resume_video import video_frames

from dreamreel.errors import DreamreelError
from dreamreel.jobs.runner import run_job
from dreamreel.jobs.zoom import ZoomRecipe
from dreamreel.media.video import probe_video
from dreamreel.runs.store import RunStore

pytest.importorskip("cv2")


def zoom(tmp_path, name, **settings):
    return ZoomRecipe(prompt="a funny cat", model="tiny", steps=4, width=32, height=32, frames=6, fps=12,
                      zoom=1.1, tx=2, output=str(tmp_path / name), **settings)  # fmt: skip


def test_interpolate_to_24_doubles_the_frames_keeps_the_duration_and_the_rendered_frames(tmp_path, tiny_model):
    plain = zoom(tmp_path, "plain.mp4")
    smooth = zoom(tmp_path, "smooth.mp4", interpolate_to=24)
    run_job(plain, model=tiny_model)
    run_job(smooth, model=tiny_model)
    before, after = probe_video(plain.output), probe_video(smooth.output)
    assert after.frames == 2 * before.frames == 12
    assert after.rate == 24
    assert after.duration == pytest.approx(before.duration, abs=1e-3) and before.duration == pytest.approx(0.5, abs=1e-3)
    # the frames on disk are the rendered ones, pixel for pixel (their PNG text names the recipe)
    stores = [RunStore.open(recipe.run_dir) for recipe in (plain, smooth)]
    for k in range(6):
        assert stores[0].read_frame(k).tobytes() == stores[1].read_frame(k).tobytes()
    # in the video, every other frame is a rendered one (up to the codec), the others lie between
    rendered, played = video_frames(plain.output), video_frames(smooth.output)
    for k, picture in enumerate(rendered):
        assert np.abs(played[2 * k].astype(int) - picture.astype(int)).mean() < 3
    middle = played[3].astype(int)
    assert np.abs(middle - rendered[1]).mean() > 0 and np.abs(middle - rendered[2]).mean() > 0


def test_interpolate_to_below_the_films_rate_is_refused(tmp_path):
    with pytest.raises(DreamreelError, match="above the film's 12 fps"):
        zoom(tmp_path, "x.mp4", interpolate_to=10).check()
    with pytest.raises(DreamreelError, match="must be a frame rate"):
        zoom(tmp_path, "x.mp4", interpolate_to="fast").check()


def test_interpolate_to_keeps_a_vid2vid_films_length(tmp_path, tiny_model, samples):
    from dreamreel.jobs.vid2vid import Vid2VidRecipe

    recipe = Vid2VidRecipe(prompt="a cat", model="tiny", video=str(samples.video), end=0.2, steps=4, seed=1,
                           width=32, height=32, interpolate_to="60000/1001", mute=True,
                           output=str(tmp_path / "painted.mp4"))  # fmt: skip
    run_job(recipe, model=tiny_model)
    source = probe_video(samples.video)
    made = probe_video(recipe.output)
    count = len(list((recipe.run_dir / "frames").glob("*.png")))
    assert made.frames == 2 * count
    assert made.duration == pytest.approx(count / float(source.rate), abs=2e-3)
