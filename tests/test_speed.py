"""The speed work changes no picture: channels_last, batches and the background writer.

Tolerances: 1e-4 on [0, 1] floats, the equivalence contract of tests/test_equivalence.py; 8-bit
pictures may differ by one level where a float lands within that tolerance of a rounding edge.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from dreamreel.errors import DreamreelError
from dreamreel.jobs.runner import prepare, render_frames
from dreamreel.models.loading import LoadedModel, place_model
from dreamreel.render.renderer import Renderer
from dreamreel.runs.writer import BackgroundWriter

TOLERANCE = 1e-4


def _placed(model: LoadedModel, channels_last: bool) -> LoadedModel:
    components = dict(model.components)
    components["unet"] = copy.deepcopy(model.components["unet"])
    components["vae"] = copy.deepcopy(model.components["vae"])
    place_model(components, model.device, model.dtype, channels_last=channels_last)
    return LoadedModel(spec=model.spec, components=components, device=model.device, dtype=model.dtype)


def test_place_model_layout_on_cpu(tiny_model):
    # Measured on CPU: NHWC speeds up the VAE, not the UNet (model.place_model).
    unet_conv = tiny_model.components["unet"].conv_in.weight
    assert not unet_conv.is_contiguous(memory_format=torch.channels_last)
    assert tiny_model.components["vae"].decoder.conv_out.weight.is_contiguous(
        memory_format=torch.channels_last
    )


@pytest.mark.parametrize("img2img", [False, True])
def test_channels_last_gives_the_contiguous_pictures(tiny_model, img2img):
    settings = {"steps": 6, "guidance": 7.5, "width": 64, "height": 48}
    if img2img:
        init = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(3))  # [0, 1] pixels
        settings.update(init_images=init, strength=0.7)
    pictures = []
    for channels_last in (False, True):
        renderer = Renderer(_placed(tiny_model, channels_last), "Euler a")
        out = renderer.generate([renderer.encode("a lighthouse", "fog")], [11], **settings)
        assert out.is_contiguous()  # decode hands back plain NCHW whatever the VAE layout
        pictures.append(out)
    assert (pictures[0] - pictures[1]).abs().max() <= TOLERANCE


def _pixels(items) -> list[np.ndarray]:
    return [np.asarray(item.image).astype(int) for item in items]


def test_txt2img_batches_give_the_single_pictures(tiny_model):
    from dreamreel.jobs.txt2img import Txt2ImgRecipe

    recipe = Txt2ImgRecipe(
        prompt="a red boat", seeds=[1, 2, 3, 4], steps=4, width=64, height=64, model="tiny"
    )
    singles = list(render_frames(recipe, tiny_model))
    batched = list(render_frames(recipe.replace(batch=3), tiny_model))  # a batch of 3, then 1
    assert [(i.index, i.seed) for i in batched] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    for one, many in zip(_pixels(singles), _pixels(batched), strict=True):
        assert np.abs(one - many).max() <= 1
    assert batched[2].parameters == singles[2].parameters  # metadata names the seed of each picture


def test_img2img_batches_give_the_single_pictures(tiny_model, sample_picture):
    from dreamreel.jobs.img2img import Img2ImgRecipe

    recipe = Img2ImgRecipe(
        prompt="a red boat", image=str(sample_picture), seeds=[7, 8], steps=6, strength=0.5, model="tiny"
    )
    singles = _pixels(render_frames(recipe, tiny_model))
    batched = _pixels(render_frames(recipe.replace(batch=2), tiny_model))
    for one, many in zip(singles, batched, strict=True):
        assert np.abs(one - many).max() <= 1


@pytest.mark.parametrize("batch", [0, 65, True])
def test_bad_batch_is_refused(batch):
    from dreamreel.jobs.txt2img import Txt2ImgRecipe

    with pytest.raises(DreamreelError, match="--batch"):
        prepare(Txt2ImgRecipe(prompt="x", seeds=[1], batch=batch, model="tiny"))


def test_compile_and_batch_round_trip_through_the_recipe_dict():
    from dreamreel.jobs.txt2img import Txt2ImgRecipe

    recipe = Txt2ImgRecipe(prompt="x", seeds=[1], batch=4, compile=True, model="tiny")
    from dreamreel.jobs import recipe_from_dict

    again = recipe_from_dict(recipe.to_dict())
    assert (again.batch, again.compile) == (4, True)


def _picture(value: int) -> Image.Image:
    return Image.new("RGB", (8, 8), (value, 0, 0))


def test_background_writer_writes_every_file_in_order(tmp_path):
    from dreamreel.runs.metadata import png_info

    after: list[str] = []
    paths = [tmp_path / "deep" / f"{i:03d}.png" for i in range(12)]
    with BackgroundWriter(max_pending=2) as writer:
        for i, path in enumerate(paths):
            writer.submit(path, _picture(i), png_info(f"picture {i}", {"job": "txt2img"}, {}), after.append)
        reported = writer.written()
    reported += writer.written()
    assert reported == paths
    assert after == paths  # run once each, in order, after the file was written
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            assert image.getpixel((0, 0)) == (i, 0, 0)
            assert image.text["parameters"] == f"picture {i}"
    assert not list(tmp_path.rglob("*.tmp"))  # no temp files left behind


def test_background_writer_raises_a_write_error_in_the_caller(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    writer = BackgroundWriter()
    writer.submit(tmp_path / "ok.png", _picture(1))
    writer.submit(blocker / "x.png", _picture(2))  # its folder cannot be made
    with pytest.raises(DreamreelError, match="could not write"):
        writer.close()
    assert (tmp_path / "ok.png").is_file()


def test_background_writer_error_stops_the_next_submit(tmp_path):
    def broken(path):
        raise RuntimeError("manifest disk full")

    writer = BackgroundWriter(max_pending=1)
    writer.submit(tmp_path / "0.png", _picture(0), after=broken)
    with pytest.raises(RuntimeError, match="manifest disk full"):
        for i in range(1, 50):  # the error surfaces at a later submit, never silently lost
            writer.submit(tmp_path / f"{i}.png", _picture(i))
    writer.close()  # raised once; closing afterwards is quiet


def test_background_writer_flushes_when_the_caller_fails(tmp_path):
    with pytest.raises(KeyError), BackgroundWriter() as writer:
        writer.submit(tmp_path / "kept.png", _picture(5))
        raise KeyError("interrupted")
    assert (tmp_path / "kept.png").is_file()


def test_cli_batch_writes_every_seed(tmp_path):
    from dreamreel.cli.app import main

    main(["txt2img", "a cat", "--model", "tiny", "--seeds", "1-3", "--batch", "2", "--steps", "3",
          "--width", "64", "--height", "64", "--out", str(tmp_path), "--quiet"])  # fmt: skip
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["00000-1.png", "00001-2.png", "00002-3.png"]


def _bits(items) -> dict[int, bytes]:
    return {item.index: item.image.tobytes() for item in items}


def test_resumed_batched_seed_loop_gives_the_first_runs_bits(tiny_model):
    """A batch's pictures equal single renders only within rounding, so a resume renders each missing
    seed in the batch it had: bit-identical to the unbroken run (what `dreamreel resume` relies on)."""
    from dreamreel.jobs.txt2img import Txt2ImgRecipe

    recipe = Txt2ImgRecipe(prompt="a red boat", seeds=[11, 12, 13, 14, 15, 16, 17], steps=4, width=64,
                           height=48, batch=3, model="tiny")  # fmt: skip
    unbroken = _bits(render_frames(recipe, tiny_model))
    resumed = _bits(render_frames(recipe, tiny_model, wanted=[1, 4, 6]))
    assert sorted(resumed) == [1, 4, 6]
    assert all(resumed[i] == unbroken[i] for i in resumed)


def test_resumed_batched_interpolation_gives_the_first_runs_bits(tiny_model):
    from dreamreel.jobs.interpolate import InterpolateRecipe

    recipe = InterpolateRecipe(prompts=["a cat", "a dog"], seeds=[1, 2], frames_between=5, steps=4,
                               width=64, height=48, batch=3, model="tiny")  # fmt: skip
    unbroken = _bits(render_frames(recipe, tiny_model))
    for start in (1, 4):
        resumed = _bits(render_frames(recipe, tiny_model, wanted=range(start, recipe.total_frames)))
        assert sorted(resumed) == [i for i in sorted(unbroken) if i >= start]
        assert all(resumed[i] == unbroken[i] for i in resumed)
