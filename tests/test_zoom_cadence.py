"""Zoom films with a diffusion cadence (issue 16): every Nth frame diffused, the rest warped."""

from __future__ import annotations

import itertools

import pytest
from test_resume_exact import assert_resumes_exactly
from test_resume_video import assert_same_run, render, resume

from dreamreel.jobs.runner import prepare, render_frames
from dreamreel.jobs.zoom import ZoomRecipe
from dreamreel.media import treatments
from dreamreel.media.pictures import quantize, to_unit_tensor


def film(**settings):
    base = dict(prompt="a funny cat", model="tiny", seed=3, steps=4, width=32, height=32, frames=12, cadence=3,
                zoom="0:(1.05), 11:(1.1)", angle=2, tx=1, ty="0:(0), 11:(2)", output="unused.mp4")  # fmt: skip
    return ZoomRecipe(**{**base, **settings})


def motion(v):
    return {k: v[k] for k in ("zoom", "angle", "tx", "ty")}


def test_cadence_3_calls_the_unet_for_4_of_12_frames_and_the_rest_are_the_warp(tiny_model, monkeypatch):
    unet = tiny_model.components["unet"]
    calls = []
    forward = unet.forward
    monkeypatch.setattr(unet, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k))
    list(render_frames(prepare(film(frames=1)), tiny_model))
    per_frame = len(calls)  # UNet calls of one diffused frame (the sampler's, for int(steps x strength))
    calls.clear()
    recipe = film()
    prepared = prepare(recipe)
    frames = list(render_frames(prepared, tiny_model))
    assert len(frames) == 12
    assert per_frame > 0 and len(calls) == 4 * per_frame  # frames 0, 3, 6, 9 only
    assert [f.facts.get("diffused", True) for f in frames] == [k % 3 == 0 for k in range(12)]
    pictures = [to_unit_tensor([f.image]) for f in frames]
    values = prepared.plan.values

    def warp(picture, index):
        return treatments.warp(picture, **motion(values[index]), border=recipe.border)

    def warp_back(picture, index):  # undo frame index's motion
        return treatments.warp(picture, **treatments.inverse_motion(**motion(values[index])), border=recipe.border)

    # after the last diffused frame: frame 9 moved on by each frame's motion, nothing else
    assert pictures[10].equal(quantize(warp(pictures[9], 10)))
    assert pictures[11].equal(quantize(warp(warp(pictures[9], 10), 11)))
    # between diffused frames 3 and 6: the two moved toward each other and cross-faded
    forward4, forward5 = warp(pictures[3], 4), warp(warp(pictures[3], 4), 5)
    back5 = warp_back(pictures[6], 6)
    back4 = warp_back(back5, 5)
    assert pictures[4].equal(quantize(treatments.blend(forward4, back4, 1 / 3)))
    assert pictures[5].equal(quantize(treatments.blend(forward5, back5, 2 / 3)))


@pytest.mark.parametrize(
    "settings",
    [
        dict(cadence=2, blend_back=0.5, color_match="first"),
        dict(cadence="0:(1), 2:(3)", blend_back=0.9, color_match="previous", noise=0.02),
    ],
)
def test_cadence_resumes_bit_for_bit_in_process(settings, tiny_model):
    """Killed after frame 1 or 3 (inside a cadence segment), the rest equals the unbroken run."""
    assert_resumes_exactly(film(frames=6, **settings), tiny_model)


ZOOM = ["zoom", "a funny cat", "--frames", "7", "--steps", "4", "--cadence", "3", "--zoom", "1.05", "--angle", "2",
        "--model", "tiny", "--width", "32", "--height", "32", "--quiet"]  # fmt: skip


@pytest.mark.slow
def test_cadence_killed_mid_segment_resumes_byte_identical(tmp_path):
    """SIGKILL after frame 1 is safe (frame 3 already diffused in memory, frame 2 not written)."""
    reference = tmp_path / "ref" / "film.mp4"
    reference.parent.mkdir()
    assert render("none", 0, [*ZOOM, "-o", "film.mp4"], reference.parent).returncode == 0
    target = tmp_path / "killed" / "film.mp4"
    target.parent.mkdir()
    killed = render("after-frame", 2, [*ZOOM, "-o", "film.mp4"], target.parent)
    assert killed.returncode == -9, killed.stderr
    assert len(list((target.with_suffix(".run") / "frames").glob("*.png"))) == 2
    resume(target.with_suffix(".run"))
    assert_same_run(target, reference)


@pytest.fixture
def start_noises(monkeypatch):
    """The starting noise each Renderer.generate call got (img2img's start_noise or txt2img's noise)."""
    from dreamreel.render.renderer import Renderer

    seen = []
    original = Renderer.generate

    def spy(self, *args, **kwargs):
        seen.append(
            kwargs.get("start_noise") if kwargs.get("start_noise") is not None else kwargs.get("noise")
        )
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Renderer, "generate", spy)
    return seen


def test_flow_noise_moves_with_the_zoom_s_own_motion(tiny_model, start_noises):
    """A shift of 8 px a frame moves the noise one latent cell with the picture; a fixed seed's stays."""
    list(
        render_frames(
            prepare(film(frames=4, cadence=1, zoom=1, angle=0, tx=8, ty=0, flow_noise=True)), tiny_model
        )
    )
    assert len(start_noises) == 4
    for before, after in itertools.pairwise(start_noises):
        assert after[..., 1:].equal(before[..., :-1])  # moved right by one cell, exactly
        assert not after[..., :1].equal(before[..., :1])  # fresh noise where the edge was uncovered
    start_noises.clear()
    list(render_frames(prepare(film(frames=2, cadence=1, zoom=1, angle=0, tx=8, ty=0)), tiny_model))
    assert start_noises == [None, None]  # without it: the seed's own noise, drawn by the renderer


@pytest.mark.parametrize(
    "settings",
    [dict(cadence=1, start="txt2img"), dict(cadence=2, blend_back=0.5), dict(cadence=1, border="wrap")],
)
def test_flow_noise_zoom_resumes_bit_for_bit(settings, tiny_model):
    """The canvas is replayed from frame 0 on resume: the rest equals the unbroken run."""
    assert_resumes_exactly(film(frames=5, flow_noise=True, **settings), tiny_model)


def test_flow_noise_changes_the_zoom_and_stays_unit_gaussian(tiny_model, start_noises):
    plain = [f.image for f in render_frames(prepare(film(frames=3, cadence=1)), tiny_model)]
    moved = [f.image for f in render_frames(prepare(film(frames=3, cadence=1, flow_noise=True)), tiny_model)]
    assert list(plain[1].getdata()) != list(moved[1].getdata())
    for noise in start_noises[3:]:
        assert abs(float(noise.mean())) < 0.25 and 0.75 < float(noise.std()) < 1.25  # 4x4x4 latent values
