"""Interpolation videos: keyframes are plain txt2img exactly; the frames between change smoothly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dreamreel.errors import DreamreelError
from dreamreel.jobs.interpolate import InterpolateRecipe, ease, slerp
from dreamreel.jobs.runner import prepare, render_frames
from dreamreel.jobs.txt2img import Txt2ImgRecipe

SIZE = dict(model="tiny", device="cpu", dtype="fp32", width=32, height=32, steps=4)


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) / 255


@pytest.fixture(scope="module")
def cat_to_dog(tiny_model, tmp_path_factory):
    recipe = InterpolateRecipe(
        prompts=["a funny cat covered in neon cloth", "a funny dog covered in cloth"],
        seeds=[1, 2],
        frames_between=7,
        easing="linear",
        batch=3,
        output=str(tmp_path_factory.mktemp("interp") / "smooth.mp4"),
        **SIZE,
    )
    return recipe, list(render_frames(recipe, tiny_model))


def plain_txt2img(model, prompt: str, seed: int) -> np.ndarray:
    item = next(render_frames(Txt2ImgRecipe(prompt=prompt, seeds=[seed], **SIZE), model))
    return pixels(item.image)


def test_keyframes_equal_plain_txt2img_exactly(cat_to_dog, tiny_model):
    recipe, items = cat_to_dog
    assert len(items) == 9 and [i.index for i in items] == list(range(9))
    assert np.array_equal(pixels(items[0].image), plain_txt2img(tiny_model, recipe.prompts[0], 1))
    assert np.array_equal(pixels(items[8].image), plain_txt2img(tiny_model, recipe.prompts[1], 2))
    assert items[4].facts["values"] == {"keyframe": 0, "t": 0.5, "seed_next": 2}


def test_neighbours_change_smoothly(cat_to_dog, tiny_model):
    recipe, items = cat_to_dog
    frames = [pixels(i.image) for i in items]
    steps = [float(np.abs(b - a).mean()) for a, b in itertools.pairwise(frames)]
    first = plain_txt2img(tiny_model, recipe.prompts[0], 1)
    unrelated = float(np.abs(first - plain_txt2img(tiny_model, recipe.prompts[0], 777)).mean())
    spread = max(steps) - min(steps)
    print(
        f"neighbour changes {[round(s, 4) for s in steps]}, spread {spread:.4f}, "
        f"unrelated seeds {unrelated:.4f}"
    )
    # Every step is a small part of the jump between two unrelated pictures, and the step sizes
    # vary far less than that jump: no sudden changes along the way.
    # Measured here (tiny, 32 px, 4 steps): steps 0.029-0.033, spread 0.005, unrelated 0.218.
    assert max(steps) < 0.3 * unrelated
    assert spread < 0.1 * unrelated


def test_loop_returns_to_the_first_keyframe(tiny_model, tmp_path):
    recipe = InterpolateRecipe(
        prompt="a cat", seeds=[3, 4], frames_between=1, loop=True, output=str(tmp_path / "l.mp4"), **SIZE
    )
    recipe = prepare(recipe).recipe
    assert recipe.total_frames == 4  # 3, mid, 4, mid (then the film starts again at 3)
    assert [recipe.position(i) for i in range(4)] == [(0, 0.0), (0, 0.5), (1, 0.0), (1, 0.5)]
    assert recipe.keyframe(2) == ("a cat", 3)
    items = list(render_frames(recipe, tiny_model, wanted=range(2, recipe.total_frames)))  # resume: frames are independent
    assert [i.index for i in items] == [2, 3] and items[1].facts["values"]["seed_next"] == 3


def test_slerp_and_easing():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 4, 8, 8, generator=gen)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    middle = slerp(a, b, 0.5)
    # The spherical path keeps the noise's length (a straight lerp would shrink it by about 1/sqrt(2)).
    assert float(middle.norm()) == pytest.approx(float(a.norm() + b.norm()) / 2, rel=0.05)
    assert float(((a + b) / 2).norm()) < 0.8 * float(middle.norm())
    assert ease(0.5, "linear") == 0.5 and ease(0.5, "smooth") == 0.5
    assert ease(0.1, "smooth") < 0.1 and ease(0.9, "smooth") > 0.9


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompts": ["a", "b", "c"], "seeds": [1, 2]}, "2 --seed values for 3 keyframes"),
        ({"prompts": ["a"], "seeds": [1]}, "two keyframes"),
        ({"prompts": [], "prompt": ""}, "at least one --prompt"),
        ({"easing": "bouncy"}, "--easing"),
        ({"frames_between": -1}, "--frames-between"),
        ({"batch": 0}, "--batch"),
        ({"seeds": [1, -5]}, "seed -5"),
    ],
)
def test_bad_settings(changes, message, tmp_path):
    settings = {"prompts": ["a", "b"], "seeds": [1, 2], "output": str(tmp_path / "x.mp4"), **SIZE, **changes}
    with pytest.raises(DreamreelError, match=message):
        prepare(InterpolateRecipe(**settings))
