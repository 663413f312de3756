"""The run folder: atomic frames, manifest after the data, what counts as done; the shared video runner."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from dreamreel.errors import DreamreelError
from dreamreel.jobs.protocol import Context, Frame, Job, Plan
from dreamreel.jobs.runner import playback_order, prepare, run_job
from dreamreel.recipes.base import VideoRecipe, parse_fps, run_dir_for
from dreamreel.runs.metadata import read_png_metadata
from dreamreel.runs.store import RunStore


class ShadesRecipe(VideoRecipe):
    """A video recipe for a model-free test job (not registered: the tests hand its Job over)."""

    job = "test-shades"


def _recipe(tmp_path: Path, **changes) -> VideoRecipe:
    return ShadesRecipe(prompt="a test", model="tiny", steps=4, output=str(tmp_path / "film.mp4"), **changes)


def _item(recipe: VideoRecipe, index: int, shade: int | None = None) -> Frame:
    shade = index * 20 if shade is None else shade
    return Frame(
        index=index,
        seed=7,
        image=Image.new("RGB", (32, 24), (shade, 255 - shade, 90)),
        recipe=recipe,
        parameters=f"a test\nSteps: 4, Seed: 7, Frame: {index}",
        facts={"values": {"strength": 0.1 * index}},
    )


def test_frames_and_manifest_are_written_and_read_back(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    store = RunStore.create(recipe.run_dir, recipe)
    for i in range(3):
        store.save(_item(recipe, i))
    assert (recipe.run_dir / "recipe.toml").is_file()
    assert ShadesRecipe.from_dict(store.recipe_data()).to_dict() == recipe.to_dict()
    done = store.done()
    assert [r.index for r in done] == [0, 1, 2]
    lines = (recipe.run_dir / "manifest.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert set(first) == {"index", "seed", "values", "file", "sha256"}
    assert first["file"] == "frames/000000.png"
    assert first["sha256"] == hashlib.sha256((recipe.run_dir / "frames/000000.png").read_bytes()).hexdigest()
    assert first["values"] == {"strength": 0.0}
    parameters, png_recipe = read_png_metadata(recipe.run_dir / "frames/000001.png")
    assert "Frame: 1" in parameters
    assert png_recipe["prompt"] == "a test"
    assert store.read_frame(2).getpixel((0, 0)) == (40, 215, 90)


def test_torn_last_line_and_damaged_frames_are_not_done(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    store = RunStore.create(recipe.run_dir, recipe)
    for i in range(4):
        store.save(_item(recipe, i))
    manifest = recipe.run_dir / "manifest.jsonl"
    data = manifest.read_bytes()
    manifest.write_bytes(data[:-20])  # a crash in the middle of the last line
    assert [r.index for r in store.done()] == [0, 1, 2]
    # the next append starts on a clean line
    store.save(_item(recipe, 3))
    assert [r.index for r in store.done()] == [0, 1, 2, 3]
    # a frame file changed on disk after its line was written: done stops before it
    store.frame_path(2).write_bytes(b"not a png")
    assert [r.index for r in store.done()] == [0, 1]
    store.frame_path(1).unlink()
    assert [r.index for r in store.done()] == [0]


def test_a_new_run_clears_an_old_one_but_never_a_foreign_folder(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    store = RunStore.create(recipe.run_dir, recipe)
    store.save(_item(recipe, 0))
    store = RunStore.create(recipe.run_dir, recipe)
    assert store.done() == []
    assert not list((recipe.run_dir / "frames").glob("*.png"))
    foreign = tmp_path / "holiday.run"
    foreign.mkdir()
    (foreign / "photo.jpg").write_bytes(b"x")
    with pytest.raises(DreamreelError, match="not a dreamreel run folder"):
        RunStore.create(foreign, recipe)
    assert (foreign / "photo.jpg").exists()


def test_playback_order() -> None:
    assert playback_order(4, False, False) == [0, 1, 2, 3]
    assert playback_order(4, True, False) == [3, 2, 1, 0]
    assert playback_order(4, False, True) == [0, 1, 2, 3, 2, 1]
    assert playback_order(4, True, True) == [3, 2, 1, 0, 1, 2]
    assert playback_order(1, False, True) == [0]


def test_video_recipe_checks() -> None:
    assert parse_fps("30000/1001") == Fraction(30000, 1001)
    assert parse_fps(12) == 12
    assert parse_fps("12.5") == Fraction(25, 2)
    for bad in ("0", "-3", "abc", "1/0", "5000"):
        with pytest.raises(DreamreelError, match="--fps"):
            parse_fps(bad)
    assert run_dir_for("out/coyote.mp4") == Path("out/coyote.run")
    with pytest.raises(DreamreelError, match="must end in"):
        VideoRecipe(prompt="x", model="tiny", output="film.avi").check()
    with pytest.raises(DreamreelError, match="has no sound"):
        VideoRecipe(prompt="x", model="tiny", output="film.gif", audio="song.mp3").check()
    with pytest.raises(DreamreelError, match="does not exist"):
        VideoRecipe(prompt="x", model="tiny", output="film.mp4", audio="no-such-song.mp3").check()


# The runner only asks a model for its hash (recorded in run.json so a resume can check it).
SHADES_MODEL = SimpleNamespace(model_hash="shades0000")


def _shades_job(count: int, calls: list[int]) -> Job:
    """A job without a model: frame i is a flat picture of shade 10*i (enough to test the runner)."""

    def plan(recipe: VideoRecipe) -> Plan:
        return Plan(count=count, fps=recipe.frame_rate())

    def frames(context: Context):
        for index in context.wanted:
            calls.append(index)
            if index:  # may read earlier finished frames back (a feedback job would)
                earlier = context.history(index - 1)
                assert round(float(earlier[0, 0, 0, 0]) * 255) == (index - 1) * 10
            yield _item(context.recipe, index, shade=index * 10)

    return Job("shades", ShadesRecipe, plan, frames, summary="test", independent=False)


def test_runner_writes_run_folder_and_checked_video(tmp_path: Path, capsys) -> None:
    from dreamreel.media.video import probe_video

    calls: list[int] = []
    recipe = _recipe(tmp_path, fps="25", pingpong=True)
    [out] = run_job(prepare(recipe, _shades_job(6, calls)), model=SHADES_MODEL)
    assert out == Path(recipe.output)
    assert capsys.readouterr().out == ""  # the library never prints
    info = probe_video(out)
    assert info.rate == 25
    assert info.frames == 10  # 0..5 then 4..1
    assert (info.width, info.height) == (32, 24)
    assert info.recipe()["recipe"]["pingpong"] is True
    assert len(RunStore.open(recipe.run_dir).done()) == 6


def test_runner_resume_starts_at_first_unfinished_frame(tmp_path: Path) -> None:
    calls: list[int] = []
    recipe = _recipe(tmp_path)
    store = RunStore.create(recipe.run_dir, recipe)
    for i in range(3):
        store.save(_item(recipe, i, shade=i * 10))
    store.frame_path(2).unlink()  # lost frame: rendered again
    run_job(prepare(recipe, _shades_job(5, calls)), model=SHADES_MODEL, resume=True)
    assert calls == [2, 3, 4]
    from dreamreel.media.video import probe_video

    assert probe_video(recipe.output).frames == 5
