"""The zoom / interpolate / run commands: flags to recipes, overrides, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamreel.cli.app import main
from dreamreel.errors import DreamreelError
from dreamreel.jobs.interpolate import InterpolateRecipe
from dreamreel.jobs.runner import prepare
from dreamreel.jobs.zoom import ZoomRecipe
from dreamreel.recipes.overrides import parse_overrides

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = ["--model", "tiny", "--device", "cpu", "--dtype", "fp32", "--width", "32", "--height", "32", "--quiet"]


def run_main(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    return info.value.code, capsys.readouterr()


def test_help_lists_the_commands_without_importing_torch():
    code = (
        "import sys; from dreamreel.cli.app import cli; "
        "assert {'zoom', 'interpolate', 'run'} <= set(cli.commands), cli.commands; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["zoom", "a cat", "--zoom", "0:(1.0), 10:(t.real)", "-o", "x.mp4"], "at character 14"),
        (["zoom", "a cat", "--strength", "1.5", "-o", "x.mp4"], "--strength must be from 0 to 1, got 1.5"),
        (["zoom", "a cat", "--angle", "0:(1) 5:(2)", "-o", "x.mp4"], "missing comma"),
        (["interpolate", "--prompt", "a", "--prompt", "b", "--seed", "1", "--seeds", "2,3", "-o", "x.mp4"], "not both"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_loading(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = run_main([*args, "--model", "tiny"], capsys)
    assert code == 2
    assert out.err.startswith("error: ") and message in out.err
    assert "loading model" not in out.err and out.err.count("\n") == 1
    assert not (tmp_path / "x.run").exists()


def test_zoom_command_renders_a_film(tmp_path, capsys):
    out = tmp_path / "cat.mp4"
    args = ["zoom", "a funny cat", "--frames", "3", "--steps", "4", "--zoom", "0:(1.1), 2:(1+0.01*t)"]
    args += ["--grayscale", "--tint", "brown:0.1", "--seed-mode", "iter", "-o", str(out), *TINY]
    main_ok(args)
    assert out.is_file() and len(list((tmp_path / "cat.run" / "frames").glob("*.png"))) == 3
    recipe = (tmp_path / "cat.run" / "recipe.toml").read_text()
    assert 'zoom = "0:(1.1), 2:(1+0.01*t)"' in recipe and "steps = 4" in recipe
    # The run folder's recipe.toml makes the same film again.
    again = tmp_path / "again.mp4"
    main_ok(["run", str(tmp_path / "cat.run" / "recipe.toml"), "-o", str(again), "--quiet"])
    for i in range(3):
        first, second = (
            Image.open(tmp_path / f"{n}.run" / "frames" / f"{i:06d}.png") for n in ("cat", "again")
        )
        assert np.array_equal(np.asarray(first), np.asarray(second))
    # A frame cannot be re-rendered alone (it needs the frames before it): one clear line.
    with pytest.raises(SystemExit) as info:
        main(["rerender", str(tmp_path / "cat.run" / "frames" / "000002.png"), "--model", "tiny"])
    assert info.value.code == 2


def test_run_an_example_recipe_with_overrides(tmp_path):
    out = tmp_path / "angel.mp4"
    main_ok(
        [
            "run",
            str(EXAMPLES / "dore-angel-calm.toml"),
            "-o",
            str(out),
            "--frames",
            "3",
            "--steps",
            "4",
            *TINY,
        ]
    )
    recipe = (tmp_path / "angel.run" / "recipe.toml").read_text()
    assert "blend_back = 0.9" in recipe and "frames = 3" in recipe and "reverse = true" in recipe


def main_ok(args):
    try:
        main(args)
    except SystemExit as exc:  # main exits only on errors
        raise AssertionError(f"exit {exc.code}") from exc


def test_every_example_is_a_valid_recipe():
    from dreamreel.jobs import recipe_from_toml

    names = sorted(p.name for p in EXAMPLES.glob("*.toml"))
    assert {"neon-cat.toml", "grey-dog.toml", "dore-angel-reversed.toml", "childrens-castle.toml"} <= set(
        names
    )
    for path in EXAMPLES.glob("*.toml"):
        prepare(recipe_from_toml(path).replace(model="tiny"))
    castle = recipe_from_toml(EXAMPLES / "childrens-castle.toml")
    assert isinstance(castle, ZoomRecipe) and castle.seed == 8 and castle.guidance == 8.5
    assert recipe_from_toml(EXAMPLES / "dore-angel-reversed.toml").reverse is True
    assert recipe_from_toml(EXAMPLES / "grey-dog.toml").grayscale is True


def test_parse_overrides():
    zoom = ZoomRecipe(prompt="a cat", model="tiny")
    got = parse_overrides(zoom, ["--steps", "20", "--zoom=0:(1.02), 5:(1)", "--reverse", "--width", "64"])
    assert got == {"steps": 20, "zoom": "0:(1.02), 5:(1)", "reverse": True, "width": 64}
    assert parse_overrides(zoom, ["--no-grayscale", "--tint", "brown:0.2"]) == {
        "grayscale": False,
        "tint": "brown:0.2",
    }
    interp = InterpolateRecipe(prompts=["a", "b"], model="tiny")
    assert parse_overrides(interp, ["--seeds", "1-3", "--prompts", "x|y"]) == {
        "seeds": [1, 2, 3],
        "prompts": ["x", "y"],
    }
    with pytest.raises(DreamreelError, match="no setting --zom"):
        parse_overrides(zoom, ["--zom", "1"])
    with pytest.raises(DreamreelError, match="needs a value"):
        parse_overrides(zoom, ["--steps"])
