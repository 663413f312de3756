"""dreamreel sweep: frame i is the very still img2img/txt2img makes at that value and seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamreel.cli.app import main
from dreamreel.errors import DreamreelError
from dreamreel.jobs.runner import prepare
from dreamreel.jobs.sweep import SweepRecipe


def _run(args: list[str]) -> None:
    try:
        main(args)
    except SystemExit as exc:
        if exc.code:
            raise


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))




def test_strength_sweep_frames_equal_separate_img2img(tmp_path: Path, sample_picture: Path, cli_tiny) -> None:
    """The issue's acceptance command at test size (5 frames instead of 17 to keep the suite fast; the
    17-frame command is the same code path), each checked against a separate img2img."""
    out = tmp_path / "coyote.mp4"
    size = ["--width", "64", "--height", "48", "--steps", "5", "--seed", "3", "--quiet", "--model", "tiny"]
    sweep = [
        "sweep",
        "photo of a cute friendly animal",
        "--image",
        str(sample_picture),
        "--param",
        "strength",
    ]
    _run([*sweep, "--from", "0.2", "--to", "1.0", "--frames", "5", "-o", str(out), *size])
    from dreamreel.media.video import probe_video
    from dreamreel.runs.store import RunStore

    info = probe_video(out)
    assert info.frames == 5 and info.rate == 12
    assert info.recipe()["recipe"]["param"] == "strength"
    store = RunStore.open(tmp_path / "coyote.run")
    done = store.done()
    assert [r.values["strength"] for r in done] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert {r.seed for r in done} == {3}
    sheet = Image.open(tmp_path / "coyote.sheet.png")
    assert sheet.width > 64 * 3 and sheet.height > 48 * 2  # 3 x 2 thumbnails with captions
    for index, strength in ((1, "0.4"), (4, "1.0")):
        still_dir = tmp_path / f"still{index}"
        still = ["img2img", "photo of a cute friendly animal", "--image", str(sample_picture)]
        _run([*still, "--strength", strength, "--out", str(still_dir), *size])
        (still,) = still_dir.glob("*.png")
        assert np.array_equal(_pixels(still), _pixels(store.frame_path(index))), f"frame {index}"
    # each frame PNG carries its own still recipe: rerender-able alone
    from dreamreel.runs.metadata import read_png_metadata

    parameters, recipe = read_png_metadata(store.frame_path(1))
    assert recipe["job"] == "img2img" and recipe["strength"] == 0.4
    assert "Denoising strength: 0.4" in parameters


def test_seed_sweep_is_txt2img_per_seed_and_caption_only_in_video(tmp_path: Path, cli_tiny) -> None:
    out = tmp_path / "seeds.mp4"
    common = ["--width", "64", "--height", "64", "--steps", "4", "--quiet", "--model", "tiny"]
    _run(["sweep", "a cat", "--param", "seed", "--values", "5,9", "--caption", "-o", str(out), *common])
    _run(["txt2img", "a cat", "--seed", "9", "--out", str(tmp_path / "still"), *common])
    (still,) = (tmp_path / "still").glob("*.png")
    frame = tmp_path / "seeds.run" / "frames" / "000001.png"
    assert np.array_equal(_pixels(still), _pixels(frame))  # the PNG stays clean
    from dreamreel.media.video import read_frames

    shown = list(read_frames(out))
    assert len(shown) == 2
    # the caption band darkens the bottom-left corner of the video frame only
    video_corner = np.asarray(shown[1].image)[-6:, :20].astype(int).mean()
    png_corner = _pixels(frame)[-6:, :20].astype(int).mean()
    assert video_corner < png_corner - 20


def test_sweep_values_and_validation() -> None:
    recipe = SweepRecipe(
        prompt="x", model="tiny", image="", param="guidance", sweep_from=1, sweep_to=2, frames=5, seed=1
    )
    assert recipe.sweep_values() == [1.0, 1.25, 1.5, 1.75, 2.0]
    steps = SweepRecipe(prompt="x", model="tiny", param="steps", sweep_from=4, sweep_to=10, frames=4, seed=1)
    assert steps.sweep_values() == [4, 6, 8, 10]
    assert steps.frame_recipe(steps.sweep_values(), 1).steps == 6
    assert steps.frame_recipe(steps.sweep_values(), 1).seeds == [1]
    with pytest.raises(DreamreelError, match="cannot be swept"):
        prepare(SweepRecipe(prompt="x", model="tiny", param="width", values=[64, 128]))
    with pytest.raises(DreamreelError, match="unknown --param 'colour'"):
        prepare(SweepRecipe(prompt="x", model="tiny", param="colour", values=[1]))
    with pytest.raises(DreamreelError, match="--from and --to go together"):
        prepare(SweepRecipe(prompt="x", model="tiny", param="guidance", sweep_from=1, frames=3))
    with pytest.raises(DreamreelError, match="needs --image"):
        prepare(SweepRecipe(prompt="x", model="tiny", param="strength", values=[0.5]))
    with pytest.raises(DreamreelError, match="not both"):
        prepare(
            SweepRecipe(prompt="x", model="tiny", param="guidance", values=[1], sweep_from=1, sweep_to=2, frames=2)
        )
    with pytest.raises(DreamreelError, match="frame 0: --steps must be from 1 to 10000, got 0"):
        prepare(SweepRecipe(prompt="x", model="tiny", param="steps", values=[0, 5]))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "strength", "--from", "0.2", "--frames", "3"], "--from and --to go together"),
        (["--param", "wobble", "--values", "1,2"], "unknown --param 'wobble'"),
        (["--param", "height", "--values", "64,128"], "cannot be swept"),
        (["--param", "guidance", "--values", "1,x"], "bad --values"),
        (["--param", "strength", "--from", "0", "--to", "1", "--frames", "3"], "0 denoising steps"),
        (["--param", "strength", "--values", "0:(0.2), 16:(1.0)"], "needs --frames"),
        (["--param", "strength", "--values", "0:(0.2), 4:(1)", "--frames", "5", "--from", "0"], "not both"),
        (["--param", "strength", "--values", "0:(0.2), 4:(1", "--frames", "5"], "bad --values schedule"),
        (
            ["--param", "seed", "--values", "1,2,3", "--strength", "0:(0.5), max_f:(0)"],
            "frame 2: --strength 0",
        ),
        (["--param", "seed", "--values", "1,2", "--steps", "0:(5), max_f:(x)"], "unknown name 'x'"),
        (
            ["--param", "strength", "--values", "0.5,1", "--guidance", "0:(1), max_f:(-2)"],
            "frame 1: --guidance",
        ),
    ],
)
def test_bad_sweeps_fail_in_one_line_before_the_model(
    tmp_path: Path, sample_picture: Path, capsys, no_model_load, args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "sweep",
                "x",
                "--image",
                str(sample_picture),
                "--model",
                "tiny",
                "-o",
                str(tmp_path / "a.mp4"),
                *args,
            ]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "a.run").exists()


def test_run_folder_recipe_round_trips(tmp_path: Path, sample_picture: Path) -> None:
    from dreamreel.jobs import recipe_from_toml
    from dreamreel.recipes.serial import recipe_to_toml

    recipe = SweepRecipe(
        prompt="x", model="tiny", param="strength", values=[0.3, 0.6], image=str(sample_picture), seed=4
    )
    recipe = prepare(recipe).recipe
    path = tmp_path / "r.toml"
    path.write_text(recipe_to_toml(recipe))
    again = recipe_from_toml(path)
    assert again == recipe
    assert json.loads(json.dumps(again.to_dict()))["job"] == "sweep"


# -- keyframe schedules -----------------------------------------------------------------------

SMALL = ["--width", "64", "--height", "48", "--steps", "5", "--quiet", "--model", "tiny"]


def _still(tmp_path: Path, name: str, args: list[str]) -> np.ndarray:
    _run([*args, "--out", str(tmp_path / name), *SMALL])
    (picture,) = (tmp_path / name).glob("*.png")
    return _pixels(picture)


def test_seed_sweep_with_a_strength_ramp_frames_are_their_own_stills(
    tmp_path: Path, sample_picture: Path, cli_tiny
) -> None:
    from dreamreel.runs.metadata import read_png_metadata
    from dreamreel.runs.store import RunStore

    out = tmp_path / "ramp.mp4"
    ramp = ["--strength", "0:(0.3), max_f:(0.9)"]
    store_args = ["sweep", "a fox", "--image", str(sample_picture), "--param", "seed", "--values", "5,9,13"]
    _run([*store_args, *ramp, "-o", str(out), *SMALL])
    store = RunStore.open(tmp_path / "ramp.run")
    done = store.done()
    assert [r.values["seed"] for r in done] == [5, 9, 13]
    assert [r.values["strength"] for r in done] == [0.3, 0.6, 0.9]
    parameters, recipe = read_png_metadata(store.frame_path(1))
    assert recipe["job"] == "img2img" and recipe["strength"] == 0.6 and recipe["seeds"] == [9]
    assert "Denoising strength: 0.6" in parameters and "Seed: 9" in parameters
    alone = _still(
        tmp_path,
        "alone",
        ["img2img", "a fox", "--image", str(sample_picture), "--seed", "9", "--strength", "0.6"],
    )
    assert np.array_equal(alone, _pixels(store.frame_path(1)))
    # the frame's own metadata re-makes it
    _run(["rerender", str(store.frame_path(1)), "--out", str(tmp_path / "again"), "--quiet"])
    (again,) = (tmp_path / "again").glob("*.png")
    assert np.array_equal(_pixels(again), _pixels(store.frame_path(1)))


def test_swept_values_from_a_schedule_with_a_guidance_schedule(
    tmp_path: Path, sample_picture: Path, cli_tiny
) -> None:
    from dreamreel.runs.store import RunStore

    out = tmp_path / "sched.mp4"
    sweep = ["sweep", "a fox", "--image", str(sample_picture), "--param", "strength", "--seed", "4"]
    sweep += ["--values", "0:(0.2), max_f:(1.0)", "--frames", "5", "--guidance", "0:(3), max_f:(7)"]
    _run([*sweep, "-o", str(out), *SMALL])
    done = RunStore.open(tmp_path / "sched.run").done()
    assert [r.values["strength"] for r in done] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert [r.values["guidance"] for r in done] == [3.0, 4.0, 5.0, 6.0, 7.0]
    frame = _pixels(RunStore.open(tmp_path / "sched.run").frame_path(3))
    args = ["img2img", "a fox", "--image", str(sample_picture), "--seed", "4", "--strength", "0.8"]
    assert np.array_equal(frame, _still(tmp_path, "alone", [*args, "--guidance", "6"]))
    assert "0:(0.2), max_f:(1.0)" in str(out.with_suffix(".run").joinpath("recipe.toml").read_text())


def test_schedule_recipe_round_trips_and_plain_lists_stay_lists(tmp_path: Path, sample_picture: Path) -> None:
    from dreamreel.jobs import recipe_from_toml
    from dreamreel.jobs.sweep import parse_values_option
    from dreamreel.recipes.serial import recipe_to_toml

    assert parse_values_option("0.2, 0.5") == [0.2, 0.5]
    assert parse_values_option("0:(0.2), 16:(1.0)") == "0:(0.2), 16:(1.0)"
    recipe = SweepRecipe(
        prompt="x", model="tiny", param="seed", values="0:(1), max_f:(1+max_f)", frames=4,
        image=str(sample_picture), strength="0:(0.4), max_f:(0.8)", steps="0:(4), max_f:(8)", seed=2,
    )  # fmt: skip
    recipe = prepare(recipe).recipe
    assert recipe.sweep_values() == [1, 2, 3, 4]
    assert [(s.seeds, s.steps, s.strength) for s in recipe.frame_recipes()] == [
        ([1], 4, 0.4), ([2], 5, 0.5333333333), ([3], 7, 0.6666666667), ([4], 8, 0.8)
    ]  # fmt: skip
    path = tmp_path / "r.toml"
    path.write_text(recipe_to_toml(recipe))
    assert recipe_from_toml(path) == recipe
    # `dreamreel run r.toml --values ... --strength ...` overrides: numbers stay numbers, text is a schedule
    from dreamreel.recipes.overrides import parse_overrides

    changes = parse_overrides(recipe, ["--values", "1,2", "--strength", "0.5", "--steps=0:(4), max_f:(6)"])
    assert changes == {"values": [1.0, 2.0], "strength": 0.5, "steps": "0:(4), max_f:(6)"}


def test_strength_without_an_image_is_refused(tmp_path: Path, capsys, no_model_load) -> None:
    """A txt2img sweep has no strength: saying one must not be silently ignored."""
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "x", "--param", "seed", "--values", "1,2", "--strength", "0.4", "--model", "tiny",
              "-o", str(tmp_path / "a.mp4")])  # fmt: skip
    assert exit_info.value.code == 2
    assert "--strength is an img2img setting" in capsys.readouterr().err
