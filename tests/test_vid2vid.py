"""dreamreel vid2vid: exact rate and timestamps, untouched audio, upright output, batch = single,
feedback and resume, colour matching, and bad input refused before the model loads."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from media import audio_seconds, make_video, vfr_times, video_packets
from PIL import Image

from dreamreel.cli.app import main
from dreamreel.errors import DreamreelError
from dreamreel.jobs.runner import prepare
from dreamreel.media.video import probe_video
from dreamreel.runs.store import RunStore

TINY = ["--model", "tiny", "--steps", "4", "--strength", "0.5", "--seed", "11", "--quiet"]


def _run(args: list[str]) -> None:
    try:
        main(args)
    except SystemExit as exc:
        if exc.code:
            raise


def _frames(run: Path) -> list[np.ndarray]:
    store = RunStore.open(run)
    return [np.asarray(store.read_frame(r.index)).astype(int) for r in store.done()]


@pytest.fixture(scope="module")
def ntsc_run(tmp_path_factory, tiny_model) -> tuple[Path, Path]:
    """A 29.97 fps clip with an AAC track (sound a second longer than the picture), through vid2vid."""
    folder = tmp_path_factory.mktemp("ntsc")
    source = make_video(folder / "phone.mp4", frames=12, audio=True)
    out = folder / "dream.mp4"
    with pytest.MonkeyPatch.context() as patch:  # reuse the session's tiny model
        patch.setattr("dreamreel.models.loading.load_model", lambda spec, **kw: tiny_model)
        _run(["vid2vid", "a watercolour", "--video", str(source), "-o", str(out), "--width", "64", *TINY])
    return source, out


def _audio_packets(path: Path) -> list[bytes]:
    import av

    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def test_rate_count_duration_and_audio_are_kept(ntsc_run) -> None:
    source, out = ntsc_run
    before, after = probe_video(source), probe_video(out)
    assert after.rate == before.rate == Fraction(30000, 1001)
    assert after.frames == 12
    assert after.duration == pytest.approx(12 * 1001 / 30000, abs=1001 / 30000)
    assert (after.width, after.height) == (64, 40)  # 96x64 fitted to width 64, multiples of 8
    assert video_packets(out) == video_packets(source)
    # the sound is copied packet for packet (no re-encode), and cut to the picture's length
    assert after.audio_codec == "aac"
    copied = _audio_packets(out)
    assert copied == _audio_packets(source)[: len(copied)]
    assert audio_seconds(out) == pytest.approx(12 * 1001 / 30000, abs=0.05)
    assert after.recipe()["recipe"]["job"] == "vid2vid"


def test_info_prints_the_recipe_of_video_and_run_folder(ntsc_run, capsys) -> None:
    _, out = ntsc_run
    _run(["info", str(out)])
    text = capsys.readouterr().out
    assert "64x40, 12 frames" in text and "30000/1001" in text and 'job = "vid2vid"' in text
    assert 'prompt = "a watercolour"' in text
    _run(["info", str(out.with_suffix(".run"))])
    text = capsys.readouterr().out
    assert "12 of 12 frames finished" in text and 'job = "vid2vid"' in text and "seed = 11" in text


def test_rotated_phone_video_comes_out_upright(tmp_path: Path, cli_tiny) -> None:
    source = make_video(tmp_path / "portrait.mp4", frames=5, width=96, height=64, rotation=90)
    out = tmp_path / "upright.mp4"
    _run(["vid2vid", "a cat", "--video", str(source), "-o", str(out), "--width", "48", *TINY])
    info = probe_video(out)
    assert info.rotation == 0  # no tag left for a player to turn it again
    assert (info.width, info.height) == (48, 72)  # portrait, as the phone showed it
    assert info.frames == 5


def test_variable_frame_rate_keeps_every_timestamp(tmp_path: Path, cli_tiny) -> None:
    times = vfr_times(8)
    source = make_video(tmp_path / "vfr.mp4", frames=8, times=times)
    out = tmp_path / "vfr-out.mp4"
    _run(["vid2vid", "a cat", "--video", str(source), "-o", str(out), "--width", "64", *TINY])
    assert video_packets(out) == times
    info = probe_video(out)
    assert info.duration == pytest.approx(float(times[-1]) + float(1 / info.rate), abs=0.1)


def test_batch_equals_one_at_a_time_and_every_start_end(tmp_path: Path, cli_tiny) -> None:
    source = make_video(tmp_path / "clip.mp4", frames=16, rate=Fraction(8))
    cut = ["--start", "0.5", "--end", "1.5", "--every", "2", "--width", "64", "--seed-mode", "iter"]
    one, three = tmp_path / "one.mp4", tmp_path / "three.mp4"
    _run(["vid2vid", "a cat", "--video", str(source), "-o", str(one), *cut, *TINY])
    _run(["vid2vid", "a cat", "--video", str(source), "-o", str(three), "--batch", "3", *cut, *TINY])
    singles, batched = _frames(tmp_path / "one.run"), _frames(tmp_path / "three.run")
    assert len(singles) == len(batched) == 4  # frames 4, 6, 8, 10 of the source
    for a, b in zip(singles, batched, strict=True):
        assert np.abs(a - b).max() <= 1  # float batching may round one 8-bit level differently
    assert video_packets(one) == [Fraction(k, 4) for k in range(4)]  # every 2nd frame of 8 fps
    records = RunStore.open(tmp_path / "one.run").done()
    assert [r.seed for r in records] == [11, 12, 13, 14]  # iter: base seed + frame
    assert [r.values["source_time"] for r in records] == [0.5, 0.75, 1.0, 1.25]


def _lose_frames_and_resume(run: Path, keep: int, model) -> list[np.ndarray]:
    """As a crash would: only frames before ``keep`` survive; then resume the run and return its frames."""
    from dreamreel.jobs.runner import resume

    store = RunStore.open(run)
    total = len(store.done())
    store.truncate(keep)
    for index in range(keep, total):
        store.frame_path(index).unlink()
    resume(run, model=model)
    return _frames(run)


def test_feedback_and_colour_match_resume_exactly(tmp_path: Path, cli_tiny) -> None:
    source = make_video(tmp_path / "clip.mp4", frames=5, rate=Fraction(10))
    out = tmp_path / "fb.mp4"
    aids = ["--feedback", "0.4", "--color-match", "first", "--color-strength", "0.8", "--width", "64"]
    _run(["vid2vid", "a cat", "--video", str(source), "-o", str(out), *aids, *TINY])
    run = tmp_path / "fb.run"
    whole = _frames(run)
    resumed = _lose_frames_and_resume(run, 3, cli_tiny)  # the last two frames lost, continue from frame 3
    assert len(resumed) == 5
    for a, b in zip(whole, resumed, strict=True):
        assert np.array_equal(a, b)
    assert probe_video(out).frames == 5


def test_colour_match_moves_lab_statistics() -> None:
    from skimage.color import rgb2lab

    from dreamreel.media.lab_transfer import color_match

    rng = np.random.default_rng(0)
    picture = rng.integers(0, 120, (32, 40, 3), dtype=np.uint8)  # dark
    reference = rng.integers(100, 255, (24, 24, 3), dtype=np.uint8)  # bright, another size
    assert np.array_equal(color_match(picture, reference, 0.0), picture)
    matched = color_match(picture, reference, 1.0)
    got, want = rgb2lab(matched).reshape(-1, 3), rgb2lab(reference).reshape(-1, 3)
    assert np.allclose(got.mean(axis=0), want.mean(axis=0), atol=1.5)
    assert np.allclose(got.std(axis=0), want.std(axis=0), rtol=0.1, atol=1.0)
    half = rgb2lab(color_match(picture, reference, 0.5))[..., 0].mean()
    assert rgb2lab(picture)[..., 0].mean() < half < got[:, 0].mean()




def _bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    good = make_video(tmp / "good.mp4", frames=4, audio=True)
    empty = tmp / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp / "letter.mp4"
    text.write_text("Dear Sir,\n" * 50)
    corrupt = tmp / "corrupt.mp4"
    corrupt.write_bytes(good.read_bytes()[:200])
    sound = tmp / "sound.m4a"
    import av

    with av.open(str(good)) as source, av.open(str(sound), "w") as out:
        stream = out.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux(source.streams.audio[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    return [
        (["--video", str(tmp / "missing.mp4")], "does not exist"),
        (["--video", str(empty)], "empty file"),
        (["--video", str(text)], "not a video file"),
        (["--video", str(corrupt)], str(corrupt)),
        (["--video", str(sound)], "no video stream"),
        (["--video", str(good), "--every", "0"], "--every must be"),
        (["--video", str(good), "--feedback", "0.3", "--batch", "2"], "--batch needs independent frames"),
        (["--video", str(good), "--strength", "1.5"], "--strength must be from 0 to 1"),
        (["--video", str(good), "--start", "9"], "past the end"),
        (["--video", str(good), "--width", "60"], "nearest valid sizes: 56 or 64"),
        (["--video", str(good), "--fps", "0"], "--fps"),
        # schedules: every frame's values are checked, and the message names the frame
        (["--video", str(good), "--strength", "0:(0.5), max_f:(1.2)"], "frame 3: --strength must be from 0 to 1"),
        (["--video", str(good), "--steps", "5", "--strength", "0:(0.5), 2:(0.1)"], "frame 2: --strength 0.1"),
        (["--video", str(good), "--steps", "0:(4), 1:(0)"], "frame 1: --steps must be from 1"),
        (["--video", str(good), "--guidance", "0:(7), 1:(-1)"], "frame 1: --guidance must be"),
        (["--video", str(good), "--color-strength", "0:(1), max_f:(2)"], "frame 1: --color-strength"),
        (["--video", str(good), "--feedback", "0:(0), 3:(0.6)", "--batch", "2"], "frame 1: --batch needs"),
        (["--video", str(good), "--strength", "0:(0.5), 2:(sin(t)"], "'(' is never closed"),
        (["--video", str(good), "--strength", "0:(0.5), 2:(foo)"], "unknown name 'foo'"),
        (["--video", str(good), "--strength", "0:(0.5), 2:(1/(t-2))"], "fails at frame 2"),
    ]


def test_bad_input_is_one_line_before_the_model(tmp_path: Path, capsys, no_model_load) -> None:
    for args, message in _bad_inputs(tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            main(["vid2vid", "x", "--model", "tiny", "-o", str(tmp_path / "out.mp4"), *args])
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2, (args, err)
        assert err.startswith("error: ") and message in err and "\n" not in err, (args, err)
    assert not (tmp_path / "out.run").exists()
    with pytest.raises(DreamreelError, match="no dreamreel recipe"):
        from dreamreel.cli.runs import print_video_info

        print_video_info(tmp_path / "good.mp4")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")


# -- keyframe schedules -----------------------------------------------------------------------

SCHEDULED = ["--model", "tiny", "--steps", "5", "--seed", "11", "--width", "64", "--quiet"]


def _parameters(run: Path, index: int) -> str:
    from dreamreel.runs.metadata import read_png_metadata

    parameters, _ = read_png_metadata(RunStore.open(run).frame_path(index))
    return parameters


def test_strength_schedule_frame_equals_a_plain_run_at_its_strength(tmp_path: Path, cli_tiny) -> None:
    source = make_video(tmp_path / "clip.mp4", frames=4, rate=Fraction(8))
    ramp = tmp_path / "ramp.mp4"
    ramp_args = ["--strength", "0:(0.2), max_f:(0.8)", *SCHEDULED]
    _run(["vid2vid", "a cat", "--video", str(source), "-o", str(ramp), *ramp_args])
    ramp_run = tmp_path / "ramp.run"
    records = RunStore.open(ramp_run).done()
    strengths = [r.values["strength"] for r in records]
    assert strengths == pytest.approx([0.2, 0.4, 0.6, 0.8])  # max_f = the last frame, 3
    assert [r.values["steps"] for r in records] == [5] * 4
    for index, strength in enumerate(strengths):  # each frame's metadata shows its own values
        text = _parameters(ramp_run, index)
        assert f"Denoising strength: {strength}" in text and "Steps: 5" in text and "CFG scale: 7.5" in text
    # frame 2 is the frame a plain run at that frame's strength makes
    plain = tmp_path / "plain.mp4"
    _run(
        [
            "vid2vid",
            "a cat",
            "--video",
            str(source),
            "-o",
            str(plain),
            "--strength",
            repr(strengths[2]),
            *SCHEDULED,
        ]
    )
    ramped, flat = _frames(ramp_run), _frames(tmp_path / "plain.run")
    assert np.array_equal(ramped[2], flat[2])
    assert not np.array_equal(ramped[0], flat[0])  # the schedule did change the other frames


def test_batch_groups_frames_by_their_values_and_equals_one_at_a_time(
    tmp_path: Path, cli_tiny, monkeypatch
) -> None:
    from dreamreel.render.renderer import Renderer

    source = make_video(tmp_path / "clip.mp4", frames=5, rate=Fraction(8))
    values = ["--strength", "0:(0.6), 2:(0.6), 3:(0.8)", "--guidance", "0:(4), 3:(4), 4:(6)"]
    values += ["--seed-mode", "iter"]
    calls: list[tuple[int, float, float]] = []
    original = Renderer.generate

    def spy(self, conds, seeds, **kw):  # type: ignore[no-untyped-def]
        calls.append((len(seeds), kw["strength"], kw["guidance"]))
        return original(self, conds, seeds, **kw)

    monkeypatch.setattr(Renderer, "generate", spy)
    one, four = tmp_path / "one.mp4", tmp_path / "four.mp4"
    _run(["vid2vid", "a cat", "--video", str(source), "-o", str(one), *values, *SCHEDULED])
    calls.clear()
    _run(["vid2vid", "a cat", "--video", str(source), "-o", str(four), "--batch", "4", *values, *SCHEDULED])
    # frames 0-2 share strength 0.6 and guidance 4; frame 3 has strength 0.8, frame 4 guidance 6
    assert calls == [(3, 0.6, 4.0), (1, 0.8, 4.0), (1, 0.8, 6.0)]
    singles, batched = _frames(tmp_path / "one.run"), _frames(tmp_path / "four.run")
    assert len(singles) == len(batched) == 5
    for a, b in zip(singles, batched, strict=True):
        assert np.abs(a - b).max() <= 1  # float batching may round one 8-bit level differently
    for index, guidance in ((2, 4), (4, 6)):
        assert f"CFG scale: {guidance}," in _parameters(tmp_path / "four.run", index)


def test_feedback_and_colour_schedules_resume_exactly(tmp_path: Path, cli_tiny) -> None:
    source = make_video(tmp_path / "clip.mp4", frames=5, rate=Fraction(10))
    out = tmp_path / "fb.mp4"
    aids = ["--feedback", "0:(0), 2:(0.5), max_f:(0.2)", "--color-match", "source"]
    aids += [
        "--color-strength",
        "0:(1), max_f:(0.3)",
        "--strength",
        "0:(0.4), max_f:(0.7)",
        "--seed-mode",
        "iter",
    ]
    _run(["vid2vid", "a cat", "--video", str(source), "-o", str(out), *aids, *SCHEDULED])
    run = tmp_path / "fb.run"
    whole = _frames(run)
    records = RunStore.open(run).done()
    assert [r.values["feedback"] for r in records] == pytest.approx([0, 0.25, 0.5, 0.35, 0.2])
    resumed = _lose_frames_and_resume(run, 2, cli_tiny)
    assert len(resumed) == 5
    for a, b in zip(whole, resumed, strict=True):
        assert np.array_equal(a, b)


# What the code before schedules wrote to NAME.run/recipe.toml for a plain-number vid2vid run.
OLD_RECIPE = """job = "vid2vid"
prompt = "a cat"
negative = ""
steps = 5
guidance = 7.5
width = 64
model = "tiny"
device = "auto"
dtype = "auto"
loras = []
allow_unsafe_pickle = false
compile = false
output = "{output}"
reverse = false
pingpong = false
audio = ""
video = "{video}"
strength = 0.5
seed = 11
seed_mode = "fixed"
every = 1
color_match = "none"
color_strength = 1.0
feedback = 0.0
batch = 1
mute = false
"""


def test_plain_number_recipe_of_the_old_code_loads_and_runs(tmp_path: Path, cli_tiny, capsys) -> None:
    from dreamreel.jobs import recipe_from_toml
    from dreamreel.jobs.vid2vid import Vid2VidRecipe
    from dreamreel.recipes.serial import recipe_to_toml

    source = make_video(tmp_path / "clip.mp4", frames=3, rate=Fraction(8))
    old = tmp_path / "old.toml"
    old.write_text(OLD_RECIPE.format(output=tmp_path / "old.mp4", video=source))
    recipe = recipe_from_toml(old)
    assert isinstance(recipe, Vid2VidRecipe) and recipe.strength == 0.5 and recipe.steps == 5
    # numbers stay numbers: the same file again (settings added since follow, at their defaults)
    assert recipe_to_toml(recipe).startswith(old.read_text())
    _run(["run", str(old), "--quiet"])
    cli = tmp_path / "cli.mp4"
    _run(["vid2vid", "a cat", "--video", str(source), "-o", str(cli), "--strength", "0.5", *SCHEDULED])
    assert (tmp_path / "cli.run" / "recipe.toml").read_text().count("strength = 0.5") == 1
    for a, b in zip(_frames(tmp_path / "old.run"), _frames(tmp_path / "cli.run"), strict=True):
        assert np.array_equal(a, b)
    capsys.readouterr()
    _run(["info", str(tmp_path / "old.run")])
    text = capsys.readouterr().out
    assert "3 of 3 frames finished" in text and "strength = 0.5\n" in text and "steps = 5\n" in text
    # a run override may turn a number into a schedule, and back
    _run(["run", str(old), "--quiet", "-o", str(tmp_path / "ramp.mp4"), "--strength", "0:(0.3), max_f:(0.6)"])
    assert 'strength = "0:(0.3), max_f:(0.6)"' in (tmp_path / "ramp.run" / "recipe.toml").read_text()


def test_batched_run_resumed_anywhere_gives_the_first_runs_bits(tiny_model, tmp_path):
    """Batches are fixed from frame 0 (here [0,1,2] [3,4,5] [6]: the strength steps down at frame 3), so a
    resume at any frame renders each frame in the batch it had: byte-identical pictures."""
    from dreamreel.jobs.runner import render_frames
    from dreamreel.jobs.vid2vid import Vid2VidRecipe

    source = make_video(tmp_path / "phone.mp4", frames=7, width=64, height=48)
    recipe = Vid2VidRecipe(prompt="a dog", video=str(source), steps=6, strength="0:(0.6), 2:(0.6), 3:(0.5)", seed=3,
                           batch=3, model="tiny", output=str(tmp_path / "out.mp4"))  # fmt: skip
    prepared = prepare(recipe)
    unbroken = {f.index: f.image.tobytes() for f in render_frames(prepared, tiny_model)}
    assert len(unbroken) == 7
    for start in (1, 2, 4, 6):
        frames = render_frames(prepared, tiny_model, wanted=range(start, 7))
        resumed = {f.index: f.image.tobytes() for f in frames}
        assert sorted(resumed) == list(range(start, 7))
        assert all(resumed[i] == unbroken[i] for i in resumed), f"resumed at frame {start}"


def test_the_source_is_opened_and_probed_once_before_rendering(tmp_path, tiny_model, monkeypatch):
    """Planning a vid2vid run opens its source once (probe and frame times together); the only
    other opening is the one that decodes frames for rendering."""
    import dreamreel.media.video as video
    from dreamreel.jobs.runner import run_job
    from dreamreel.jobs.vid2vid import Vid2VidRecipe
    from dreamreel.render.renderer import Renderer

    source = make_video(tmp_path / "phone.mp4", frames=4, width=64, height=48, audio=True)
    opened_before_rendering: list[str] = []
    rendering = []
    real_open, real_generate = video._open_input, Renderer.generate

    def counting_open(path, what="video"):
        if not rendering:
            opened_before_rendering.append(str(path))
        return real_open(path, what)

    def first_render(self, *args, **kwargs):
        rendering.append(True)
        return real_generate(self, *args, **kwargs)

    monkeypatch.setattr(video, "_open_input", counting_open)
    monkeypatch.setattr(Renderer, "generate", first_render)
    recipe = Vid2VidRecipe(prompt="a cat", video=str(source), model="tiny", steps=3, strength=0.6, seed=1,
                           width=32, height=32, output=str(tmp_path / "out.mp4"))  # fmt: skip
    run_job(recipe, model=tiny_model)
    # once to plan, once to start decoding frames (before the first UNet call)
    assert opened_before_rendering == [str(source), str(source)]
