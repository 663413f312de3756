"""The command line as a user meets it: files written, settings read back, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dreamreel.cli.app import main


def run(args, capsys):
    """Run the CLI in-process; returns (exit status, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err




def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


TINY = ["--model", "tiny", "--steps", "6", "--quiet"]


def test_txt2img_seed_range_is_reproducible(tmp_path, capsys):
    args = ["txt2img", "a funny cat covered in neon cloth", *TINY, "--seeds", "1-3", "--width", "64"]
    assert run([*args, "--out", str(tmp_path / "a")], capsys)[0] == 0
    assert run([*args, "--out", str(tmp_path / "b")], capsys)[0] == 0
    first = sorted((tmp_path / "a").glob("*.png"))
    second = sorted((tmp_path / "b").glob("*.png"))
    assert [p.name for p in first] == ["00000-1.png", "00001-2.png", "00002-3.png"]
    assert [p.name for p in second] == [p.name for p in first]
    for a, b in zip(first, second, strict=True):
        assert (pixels(a) == pixels(b)).all()
    assert not (pixels(first[0]) == pixels(first[1])).all()  # different seeds, different pictures
    assert Image.open(first[0]).size == (64, 128)  # width given, height the model's native size


def test_running_again_numbers_on(tmp_path, capsys):
    args = ["txt2img", "x", *TINY, "--seed", "7", "--width", "64", "--height", "64", "--out", str(tmp_path)]
    run(args, capsys)
    run(args, capsys)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["00000-7.png", "00001-7.png"]


def test_png_carries_both_metadata_chunks(tmp_path, capsys):
    run(["txt2img", "a cat", *TINY, "--seed", "265", "--negative", "dog", "--out", str(tmp_path)], capsys)
    picture = Image.open(tmp_path / "00000-265.png")
    assert picture.text["parameters"].startswith("a cat\nNegative prompt: dog\nSteps: 6, Sampler: PLMS")
    assert '"seeds": [265]' in picture.text["dreamreel"]
    code, out, _ = run(["info", str(tmp_path / "00000-265.png")], capsys)
    assert code == 0 and "Seed: 265" in out and '"prompt": "a cat"' in out


def test_rerender_reproduces_and_overrides_steps(tmp_path, capsys):
    base = ["--model", "tiny", "--quiet", "--seed", "5", "--width", "64", "--height", "64"]
    run(["txt2img", "a wolf", *base, "--steps", "8", "--out", str(tmp_path / "orig")], capsys)
    original = tmp_path / "orig" / "00000-5.png"
    assert run(["rerender", str(original), "--quiet", "--out", str(tmp_path / "same")], capsys)[0] == 0
    assert (pixels(tmp_path / "same" / "00000-5.png") == pixels(original)).all()

    run(["rerender", str(original), "--steps", "4", "--quiet", "--out", str(tmp_path / "four")], capsys)
    run(["txt2img", "a wolf", *base, "--steps", "4", "--out", str(tmp_path / "direct")], capsys)
    rerendered = pixels(tmp_path / "four" / "00000-5.png")
    assert (rerendered == pixels(tmp_path / "direct" / "00000-5.png")).all()
    assert not (rerendered == pixels(original)).all()


def test_img2img_and_its_rerender(tmp_path, capsys, sample_picture):
    args = [
        "img2img",
        "a red square",
        "--image",
        str(sample_picture),
        "--strength",
        "0.5",
        *TINY,
        "--seed",
        "3",
    ]
    code, _, err = run([*args, "--out", str(tmp_path / "a")], capsys)
    assert code == 0
    assert "3 denoising steps run" in err  # int(6 x 0.5)
    made = tmp_path / "a" / "00000-3.png"
    assert Image.open(made).size == (160, 104)  # 96x64's aspect at about 128x128 pixels, multiples of 8
    assert "Denoising strength: 0.5" in Image.open(made).text["parameters"]
    run(["rerender", str(made), "--quiet", "--out", str(tmp_path / "b")], capsys)
    assert (pixels(tmp_path / "b" / "00000-3.png") == pixels(made)).all()


def test_rerender_reads_an_a1111_picture(tmp_path, capsys):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a castle\nSteps: 5, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, "
        "Size: 64x72, Model hash: 45dee52b, Model: v1-5, Version: v1.10.0",
    )
    source = tmp_path / "a1111.png"
    Image.new("RGB", (64, 72)).save(source, pnginfo=info)
    code, _, err = run(
        ["rerender", str(source), "--model", "tiny", "--quiet", "--out", str(tmp_path / "o")], capsys
    )
    assert code == 0, err
    made = Image.open(tmp_path / "o" / "00000-42.png")
    assert made.size == (64, 72)
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in made.text["parameters"]


def test_progress_bars_and_quiet(tmp_path, capsys):
    args = [
        "txt2img",
        "x",
        "--model",
        "tiny",
        "--steps",
        "3",
        "--seeds",
        "1-2",
        "--width",
        "64",
        "--height",
        "64",
    ]
    _, _, err = run([*args, "--out", str(tmp_path / "loud")], capsys)
    assert "steps" in err and "images" in err
    _, out, err = run([*args, "--quiet", "--out", str(tmp_path / "quiet")], capsys)
    assert "step" not in err and out == ""


def test_the_command_on_a_model_folder_is_quiet_and_ends_with_its_work_done(tmp_path, tiny_model):
    """As a process (the console entry, which skips Python's teardown after a render): the status,
    the pictures and their settings are all there, and --quiet means no loading bars of diffusers'."""
    import subprocess
    import sys

    from diffusers import StableDiffusionPipeline

    folder = tmp_path / "model"
    StableDiffusionPipeline(**tiny_model.components, requires_safety_checker=False).save_pretrained(folder)
    args = ["txt2img", "a cat", "--model", str(folder), "--steps", "2", "--seeds", "1-2", "--width", "64",
            "--height", "64", "--quiet", "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "dreamreel", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    made = sorted((tmp_path / "out").glob("*.png"))
    assert len(made) == 2 and all("Seed: " in Image.open(path).text["parameters"] for path in made)
    failed = subprocess.run([sys.executable, "-m", "dreamreel", *args[:-2], "--width", "63"], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["img2img", "x", "--image", "missing.png"], "does not exist"),
        (["img2img", "x", "--image", "{text}"], "not an image"),
        (["img2img", "x", "--image", "{truncated}"], "truncated"),
        (["txt2img", "x", "--width", "500"], "nearest valid sizes: 496 or 504"),
        (["img2img", "x", "--image", "{picture}", "--strength", "1.5"], "must be from 0 to 1"),
        (["img2img", "x", "--image", "{picture}", "--strength", "0.01"], "0 denoising steps"),
        (["txt2img", "x", "--steps", "0"], "must be from 1 to 10000"),
        (["txt2img", "x", "--scheduler", "Euler b"], "unknown scheduler 'Euler b'"),
        (["txt2img", "x", "--seeds", "5-1"], "runs backwards"),
        (["txt2img", "x", "--width", "100000"], "larger than 4096"),
        (["txt2img", "x", "--model", "./no/such/folder"], "not found"),
        (["rerender", "{text}"], "not an image"),
        (["info", "missing.png"], "does not exist"),
    ],
)
def test_bad_input_one_line_exit_2_before_model_loads(
    tmp_path, capsys, sample_picture, no_model_load, args, message
):
    text = tmp_path / "notes.png"
    text.write_text("not a picture at all")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(sample_picture.read_bytes()[:200])
    places = {"{text}": str(text), "{truncated}": str(truncated), "{picture}": str(sample_picture)}
    args = [places.get(a, a) for a in args]
    code, _, err = run(
        [*args, "--model", "tiny"] if "--model" not in args and args[0] != "info" else args, capsys
    )
    assert code == 2
    assert message in err
    assert err.startswith("error: ") and err.count("\n") == 1  # one line, no traceback


def test_usage_errors_are_one_line_naming_the_option(run_cli, tmp_path, no_model_load):
    """A missing required option, an unknown one, a value of the wrong type: one line and exit 2, as every
    other bad input (click's own usage block is several lines)."""
    cases = (
        (["vid2vid", "a cat", "-o", str(tmp_path / "x.mp4")], "--video"),
        (["txt2img", "a cat", "--stepz", "3"], "--stepz"),
        (["txt2img", "a cat", "--width", "wide"], "wide"),
    )
    for args, named in cases:
        code, out, err = run_cli(args)
        assert code == 2 and out == "" and named in err, err
        assert err.startswith("error: ") and err.count("\n") == 1 and f"dreamreel {args[0]} --help" in err, err
