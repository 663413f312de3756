"""The zoom film: a tiny 24-frame run with every treatment on, determinism, reversal, checks."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from dreamreel.errors import DreamreelError
from dreamreel.jobs import recipe_from_dict
from dreamreel.jobs.runner import history_of, prepare, render_frames, run_job
from dreamreel.jobs.zoom import ZoomRecipe
from dreamreel.recipes.seeds import frame_seed

FRAMES = 24


def everything_on(target: Path, **changes) -> ZoomRecipe:
    settings = dict(
        prompts="0:a funny cat covered in neon cloth and neon light, 12:a funny dog covered in cloth",
        prompt_blend=True,
        model="tiny",
        device="cpu",
        dtype="fp32",
        width=32,
        height=32,
        steps="0:(4), 12:(6)",
        guidance="0:(8.5), max_f:(6)",
        strength="0:(0.5), 6:(0.5+0.1*sin(t/3))",
        frames=FRAMES,
        zoom="0:(1.05), 12:(1.0+0.02*sin(t/2))",
        angle="0:(2), 12:(-2)",
        tx=1,
        ty="0:(-1)",
        border="wrap",
        blend_back=0.9,
        grayscale=True,
        tint="brown:0.1",
        color_match="first",
        color_strength=0.5,
        contrast=1.05,
        noise="0:(0.02), max_f:(0)",
        seed_mode="iter",
        output=str(target),
    )
    settings.update(changes)
    return ZoomRecipe(**settings)


@pytest.fixture(scope="module")
def zoom_run(tiny_model, tmp_path_factory):
    from dreamreel.runs.store import RunStore

    folder = tmp_path_factory.mktemp("zoom")
    recipe = everything_on(folder / "film.mp4")
    [video] = run_job(recipe, model=tiny_model)
    return recipe, RunStore.open(recipe.run_dir), video


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_every_treatment_runs_and_records_its_values(zoom_run):
    _recipe, store, video = zoom_run
    records = store.done()
    assert len(records) == FRAMES and Path(video).is_file()
    assert [r.seed for r in records] == list(range(1, FRAMES + 1))  # seed mode iter from seed 1
    assert records[0].values["zoom"] == pytest.approx(1.05)
    assert records[12].values["steps"] == 6 and records[0].values["steps"] == 4
    assert records[FRAMES - 1].values["guidance"] == pytest.approx(6)
    # Frames differ from each other (the loop moves) and are not blank.
    frames = [pixels(store.read_frame(i)) for i in range(FRAMES)]
    assert all(np.abs(a - b).mean() > 0.5 for a, b in itertools.pairwise(frames))
    assert all(f.std() > 1 for f in frames)


def test_frame_k_equals_the_frame_rendered_alone_from_the_run(zoom_run, tiny_model):
    """A frame is a pure function of the recipe on disk and the earlier frames' PNGs (exact resume)."""
    _, store, _ = zoom_run
    recipe = recipe_from_dict(store.recipe_data())  # read back from recipe.toml, as a resume would
    assert isinstance(recipe, ZoomRecipe)
    for k in (1, 13):
        alone = next(render_frames(recipe, tiny_model, wanted=range(k, FRAMES), history=history_of(store)))
        record = store.done()[k]
        assert alone.seed == record.seed
        assert alone.facts["values"] == record.values
        assert np.array_equal(pixels(alone.image), pixels(store.read_frame(k)))


def test_reverse_plays_exactly_the_reversed_frames(zoom_run, tmp_path):
    from dreamreel.jobs.runner import encode_run
    from dreamreel.media.video import read_frames

    recipe, store, video = zoom_run
    plan = prepare(recipe).plan
    backwards = encode_run(store, recipe.replace(reverse=True, output=str(tmp_path / "back.mp4")), plan)
    forward = [pixels(f.image) for f in read_frames(video)]
    reverse = [pixels(f.image) for f in read_frames(backwards)]
    assert len(forward) == len(reverse) == FRAMES
    for i, picture in enumerate(reverse):
        distances = [np.abs(picture - other).mean() for other in forward]
        # H.264 is lossy, so match by nearest picture: frame i of the reversed film is frame N-1-i.
        assert int(np.argmin(distances)) == FRAMES - 1 - i


def test_seed_modes():
    assert [frame_seed(5, n, "fixed") for n in range(4)] == [5, 5, 5, 5]
    assert [frame_seed(5, n, "iter") for n in range(4)] == [5, 6, 7, 8]
    assert [frame_seed(5, n, "ladder") for n in range(6)] == [5, 7, 6, 8, 7, 9]
    assert [frame_seed(5, n, "alternate") for n in range(4)] == [5, 6, 5, 6]
    randoms = [frame_seed(5, n, "random") for n in range(50)]
    assert randoms == [frame_seed(5, n, "random") for n in range(50)] and len(set(randoms)) == 50
    assert frame_seed(2**32 - 1, 1, "iter") == 0  # wraps into the 32-bit seed range


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"zoom": "0:(1.0), 10:(__import__('os'))"}, "bad --zoom schedule"),
        ({"strength": "where(t == 10, 0, 0.5)"}, "frame 10: --strength 0 with --steps"),
        ({"strength": "0.1", "steps": 5}, "0 denoising steps"),
        ({"tint": "brown"}, "COLOR:AMOUNT"),
        ({"tint": "mauvish:0.2"}, "unknown colour"),
        ({"border": "mirror"}, "--border"),
        ({"seed_mode": "sometimes"}, "--seed-mode"),
        ({"frames": 0}, "--frames"),
        ({"prompts": "", "prompt": ""}, "needs a PROMPT"),
        ({"prompts": "10:a cat, 5:a dog"}, "must increase"),
        ({"start": "missing.png"}, "missing.png"),
        ({"output": "film.avi"}, "must end in"),
        ({"steps": "where(t == 5, 0, 4)"}, "frame 5: --steps must be from 1 to 10000, got 0"),
        ({"zoom": "where(t == 5, -1, 1)"}, "frame 5: --zoom must be > 0, got -1"),
    ],
)
def test_bad_settings_refused_before_any_model_loads(changes, message, tmp_path):
    recipe = everything_on(tmp_path / "x.mp4", **changes)
    with pytest.raises(DreamreelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare(recipe)


def test_plain_numbers_everywhere_and_guide_defaults(tmp_path):
    recipe = ZoomRecipe(prompt="a cat", model="tiny", output=str(tmp_path / "a.mp4"))
    prepare(recipe)
    v = recipe.values_at(0, recipe.frames - 1)
    assert (recipe.seed, v["guidance"], v["strength"], v["steps"]) == (1, 8.5, 0.5, 50)
    assert recipe.frame_rate() == 12


def test_prompts_from_a_file_are_written_into_the_recipe(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# the film's story\n0: a cat, in neon\n10: a dog\n", encoding="utf-8")
    recipe = ZoomRecipe(prompts=str(prompts), model="tiny", frames=20, output=str(tmp_path / "p.mp4"))
    recipe = prepare(recipe).recipe
    assert recipe.prompts == "0: a cat, in neon, 10: a dog"
    assert recipe.prompt_schedule().prompts == ["a cat, in neon", "a dog"]
    with pytest.raises(DreamreelError, match="must be a number or a schedule"):
        prepare(ZoomRecipe(prompt="a", model="tiny", zoom=[1, 2], output=str(tmp_path / "q.mp4")))


def test_start_from_txt2img_or_an_image(tiny_model, sample_picture, tmp_path):
    from dreamreel.jobs.txt2img import Txt2ImgRecipe

    size = dict(model="tiny", device="cpu", dtype="fp32", steps=4, guidance=7.5)
    recipe = ZoomRecipe(prompt="a cat", start="txt2img", frames=2, width=32, height=32, seed=9, **size)
    first = next(render_frames(recipe.replace(output=str(tmp_path / "a.mp4")), tiny_model))
    plain = next(render_frames(Txt2ImgRecipe(prompt="a cat", seeds=[9], width=32, height=32, **size), tiny_model))
    assert np.array_equal(pixels(first.image), pixels(plain.image))
    assert first.facts["effective_steps"] == 4
    from_image = ZoomRecipe(prompt="a cat", start=str(sample_picture), frames=2, width=32, **size)
    frames = list(render_frames(from_image.replace(output=str(tmp_path / "b.mp4")), tiny_model))
    assert frames[1].image.size == (32, 24)  # the 96x64 picture's aspect, in multiples of 8
