"""The Python API, and the promise that the CLI starts without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import dreamreel


def test_jobs_are_generators_over_the_api(tiny_model):
    recipe = dreamreel.Txt2ImgRecipe(prompt="a cat", model="tiny", seeds=[1, 2], steps=3, width=64, height=64)
    frames = list(dreamreel.render_frames(recipe, tiny_model))
    assert [f.seed for f in frames] == [1, 2]
    assert frames[0].image.size == (64, 64)
    assert frames[0].recipe.seeds == [1]  # each picture's own recipe re-makes it alone
    again = next(dreamreel.render_frames(frames[1].recipe, tiny_model))
    assert list(again.image.getdata()) == list(frames[1].image.getdata())


def test_components_feed_diffusers_pipeline(tiny_model):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**tiny_model.components, requires_safety_checker=False)
    assert pipe.tokenizer.model_max_length == 77
    assert pipe.tokenizer("a photo of an astronaut").input_ids == [49406, 320, 1125, 539, 550, 18376, 49407]


def test_tiny_is_the_same_model_every_time():
    first = dreamreel.load_model("tiny", device="cpu")
    second = dreamreel.load_model("tiny", device="cpu")
    assert first.model_hash == second.model_hash


def test_cli_help_does_not_import_torch():
    code = "import sys, dreamreel.cli.app; print('torch' in sys.modules, 'diffusers' in sys.modules, 'av' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False", "False"]


def test_a_job_given_components_the_caller_built_does_not_check_the_recipe_model(tiny_model, tmp_path):
    """``LoadedModel.wrap`` takes a components dict as it is; a job handed a model renders with it even
    when the recipe names the default model, which is not in this machine's cache."""
    model = dreamreel.LoadedModel.wrap(dict(tiny_model.components), name="my-model")
    recipe = dreamreel.Txt2ImgRecipe(prompt="a cat", seeds=[4], steps=3, width=32, height=32)  # default model
    with pytest.raises(dreamreel.DreamreelError, match="not in the local Hugging Face cache"):
        dreamreel.prepare(recipe)  # without a model: the recipe's model is checked, and it is missing
    ours = next(dreamreel.render_frames(recipe, model))
    reference = next(dreamreel.render_frames(recipe.replace(model="tiny"), tiny_model))
    assert ours.image.tobytes() == reference.image.tobytes()
    assert "Model: my-model" in ours.parameters
    [written] = dreamreel.run_job(recipe.replace(out=str(tmp_path)), model=model)
    assert written.is_file()
