"""Every job runs with ``--model tiny-xl`` from the command line, and an SDXL picture's ``parameters``
re-make it through ``rerender``."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dreamreel.jobs import JOBS
from dreamreel.recipes.serial import recipe_to_toml


# animate: its example uses FreeNoise windows, which diffusers offers for SD 1.x only (SDXL one-window
# clips: tests/test_animate.py)
@pytest.mark.parametrize("name", sorted(n for n in JOBS if n != "animate"))
def test_every_job_runs_with_tiny_xl(name, cli_tiny_xl_model, run_cli, samples, tmp_path):
    job = JOBS[name]
    recipe_file = tmp_path / f"{name}.toml"
    recipe_file.write_text(recipe_to_toml(job.example(samples)), encoding="utf-8")
    output = tmp_path / ("out" if job.stills else f"{name}.mp4")
    code, _, err = run_cli(["run", recipe_file, "--model", "tiny-xl", "--steps", "4", "-o", output, "--quiet"])
    assert code == 0, err
    if job.stills:
        pictures = sorted(output.glob("*.png"))
        assert pictures and "Model: tiny-xl" in Image.open(pictures[0]).text["parameters"]
    else:
        assert output.is_file() and output.stat().st_size > 0


def test_txt2img_seeds_and_rerender_make_the_same_sdxl_picture(cli_tiny_xl_model, run_cli, tmp_path):
    args = ["txt2img", "a cat", "--model", "tiny-xl", "--seeds", "1-2", "--steps", "3", "--quiet"]
    code, _, err = run_cli([*args, "--width", "64", "--height", "64", "-o", tmp_path / "a"])
    assert code == 0, err
    first = tmp_path / "a" / "00000-1.png"
    assert sorted(p.name for p in (tmp_path / "a").glob("*.png")) == ["00000-1.png", "00001-2.png"]
    parameters = Image.open(first).text["parameters"]
    assert "Model: tiny-xl" in parameters and "Size: 64x64" in parameters

    code, _, err = run_cli(["rerender", first, "--quiet", "--out", tmp_path / "again"])
    assert code == 0, err
    again = np.asarray(Image.open(tmp_path / "again" / "00000-1.png"))
    assert (again == np.asarray(Image.open(first))).all()


def test_sdxl_default_size_is_native(cli_tiny_xl_model, run_cli, tmp_path):
    code, _, err = run_cli(["txt2img", "a cat", "--model", "tiny-xl", "--steps", "1", "--seed", "1", "--quiet",
                            "-o", tmp_path])  # fmt: skip
    assert code == 0, err
    assert Image.open(tmp_path / "00000-1.png").size == (128, 128)  # tiny-xl's 1024 (16 latents x 8)
