"""The job contract: every registered job passes these (a new job inherits them by registering,
with its ``example`` recipe). Like diffusers' PipelineTesterMixin, one set of promises for all.

- planning needs no model, and bad input is refused before the model loads, nothing written;
- a resume at frame k equals an unbroken run bit for bit (in-process from the history, and from
  the run folder on disk through ``dreamreel resume``'s code path);
- a batch equals singles (within one 8-bit level: a batch may pick other float kernels);
- each frame's recipe survives the round trip through its PNG and re-makes it alone (stills).
"""

from __future__ import annotations

import hashlib

import pytest
from media import png_roundtrip

from dreamreel.errors import DreamreelError
from dreamreel.jobs import JOBS, recipe_from_dict
from dreamreel.jobs.runner import prepare, render_frames, resume, run_job
from dreamreel.media.pictures import to_unit_tensor

NAMES = sorted(JOBS)



def bits(frames) -> dict[int, bytes]:
    return {f.index: f.image.tobytes() for f in frames}


@pytest.fixture(scope="module")
def unbroken(tiny_model, samples):
    """Every job's example rendered once, unbroken (job name -> (prepared, frames))."""
    runs = {}
    for name in NAMES:
        prepared = prepare(JOBS[name].example(samples))
        runs[name] = prepared, list(render_frames(prepared, tiny_model))
    return runs


@pytest.mark.parametrize("name", NAMES)
def test_every_job_declares_an_example_and_plans_without_a_model(name, samples, no_model_load):
    job = JOBS[name]
    assert job.example is not None, f"{name}: a registered job gives an example recipe"
    prepared = prepare(job.example(samples))
    assert prepared.plan.count >= 2
    assert prepared.job is job and type(prepared.recipe) is job.recipe


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("change", "message"),
    [({"steps": 0}, "--steps must be from 1"), ({"prompt": "a\x00b"}, "NUL"), ({"model": "./no/such"}, "not found")],
)
def test_bad_input_is_refused_before_the_model_loads(name, change, message, samples, no_model_load):
    recipe = JOBS[name].example(samples).replace(**change)
    with pytest.raises(DreamreelError, match=message):
        run_job(recipe)
    assert not any(samples.folder.glob(f"{name}*.run/frames/*.png"))


@pytest.mark.parametrize("name", NAMES)
def test_resume_at_any_frame_equals_the_unbroken_run(name, tiny_model, unbroken):
    prepared, frames = unbroken[name]
    count = prepared.plan.count
    assert [f.index for f in frames] == list(range(count))
    expected = bits(frames)
    kept = {f.index: png_roundtrip(f.image) for f in frames}

    def history(index):
        return to_unit_tensor([kept[index]])

    for k in sorted({1, count // 2, count - 1}):
        again = bits(render_frames(prepared, tiny_model, wanted=range(k, count), history=history))
        assert sorted(again) == list(range(k, count))
        assert all(again[i] == expected[i] for i in again), f"{name} resumed at frame {k}"


@pytest.mark.parametrize("name", [n for n in NAMES if not JOBS[n].stills])
def test_resume_from_the_run_folder_is_byte_identical(name, tiny_model, samples, tmp_path):
    from dreamreel.runs.store import RunStore

    recipe = JOBS[name].example(samples).replace(output=str(tmp_path / f"{name}.mp4"))
    run_job(recipe, model=tiny_model)
    store = RunStore.open(recipe.run_dir)
    shas = [r.sha256 for r in store.done()]
    k = len(shas) // 2
    store.truncate(k)  # as a SIGKILL after k committed frames leaves it
    for index in range(k, len(shas)):
        store.frame_path(index).unlink()
    resume(recipe.run_dir, model=tiny_model)
    assert [r.sha256 for r in RunStore.open(recipe.run_dir).done()] == shas


@pytest.mark.parametrize("name", [n for n in NAMES if "batch" in JOBS[n].recipe.field_names()])
def test_a_batch_equals_singles(name, tiny_model, samples):
    import numpy as np

    recipe = JOBS[name].example(samples)
    if getattr(recipe, "feedback", 0):
        recipe = recipe.replace(feedback=0.0, color_match="none")  # batches need independent frames
    singles = list(render_frames(recipe.replace(batch=1), tiny_model))
    batched = list(render_frames(recipe.replace(batch=3), tiny_model))
    assert len(singles) == len(batched)
    for a, b in zip(singles, batched, strict=True):
        diff = np.abs(np.asarray(a.image, dtype=int) - np.asarray(b.image, dtype=int)).max()
        assert diff <= 1, f"{name} frame {a.index}"


@pytest.mark.parametrize("name", NAMES)
def test_frame_recipes_round_trip_and_stills_remake_themselves(name, tiny_model, unbroken, tmp_path):
    from dreamreel.jobs.from_pictures import recipe_from_picture

    _, frames = unbroken[name]
    for frame in frames[:2]:
        assert recipe_from_dict(frame.recipe.to_dict()) == frame.recipe
        path = tmp_path / f"{name}-{frame.index}.png"
        frame.image.save(path, pnginfo=frame.png_info())
        if frame.recipe.job in ("txt2img", "img2img"):
            again = recipe_from_picture(path)
            assert again == frame.recipe
            alone = next(render_frames(again, tiny_model))
            assert hashlib.sha256(alone.image.tobytes()).digest() == hashlib.sha256(frame.image.tobytes()).digest()
        else:
            with pytest.raises(DreamreelError, match="frame of a"):
                recipe_from_picture(path)
