"""The CLI of issue 16's options: bad input is one line before the model loads; info --coherence."""

from __future__ import annotations

import pytest

pytest.importorskip("cv2")

BAD = [
    (["vid2vid", "a cat", "--video", "", "--flow", "--feedback", "0.5"], "--flow and --flow-noise follow a source video"),
    (["zoom", "a cat", "--flow"], "--flow warps feedback along a source video's motion"),
    (["zoom", "a cat", "--zoom", "0:(1+0.05*beat)"], "--zoom uses beat, the soundtrack at each frame: give --audio FILE"),
    (["zoom", "a cat", "--cadence", "0"], "--cadence must be from 1 to 100000, got 0"),
    (["zoom", "a cat", "--cadence", "0:(3), 5:(0)", "--frames", "8"], "frame 5: --cadence must be from 1"),
    (["zoom", "a cat", "--interpolate-to", "6"], "--interpolate-to 6 must be above the film's 12 fps"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_before_the_model_loads(args, message, run_cli, no_model_load, tmp_path):
    code, _, err = run_cli([*args, "--model", "tiny", "-o", tmp_path / "film.mp4"])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_info_coherence_of_a_vid2vid_film(run_cli, cli_tiny, samples, tmp_path):
    output = tmp_path / "painted.mp4"
    code, _, err = run_cli(["vid2vid", "a cat", "--video", samples.video, "--end", "0.2", "--flow", "--feedback",
                            "0.5", "--steps", "4", "--width", "64", "--height", "48", "--seed", "1",
                            "--model", "tiny", "--quiet", "-o", output])  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(["info", output, "--coherence"])
    assert code == 0, err
    assert "warping error:" in out and f"against the motion of {samples.video}" in out and "visible share:" in out
