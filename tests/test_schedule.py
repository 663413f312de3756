"""Keyframe schedules: Deforum's documented semantics, our extensions, and a table of refused inputs."""

from __future__ import annotations

import math

import pytest

from dreamreel.errors import DreamreelError
from dreamreel.keyframes import ScheduleError, parse_prompts, parse_schedule


def values(text, count, seed=0):
    return parse_schedule(text, "zoom").values(count, seed)


# -- Deforum's documented examples (REFERENCE.md, sd-webui-deforum's wiki) --------------------


def test_numbers_interpolate_linearly():
    got = values("0:(1.0), 9:(2.0)", 10)
    assert got == pytest.approx([1.0 + i / 9 for i in range(10)])
    assert round(got[1], 3) == 1.111


def test_expression_reevaluated_every_frame():
    # Deforum's default zoom: 1.0025, 1.0028, 1.0030, ...
    got = values("0: (1.0025+0.002*sin(1.25*3.14*t/30))", 4)
    assert [round(v, 4) for v in got] == [1.0025, 1.0028, 1.003, 1.0033]


def test_number_then_expression_runs_to_the_expressions_value_at_its_key():
    got = values("0:(1.0), 5:(t*0.1)", 10)
    assert got == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.6, 0.7, 0.8, 0.9])


def test_values_hold_before_first_and_after_last_key():
    got = values("3:(2), 5:(4)", 8)
    assert got == pytest.approx([2, 2, 2, 2, 3, 4, 4, 4])


def test_frame_keys_may_be_expressions_of_max_f():
    # max_f is the last frame (count - 1): 20 frames -> max_f 19, max_f/2 -> 9 (whole frames)
    got = values("0:(0), max_f/2:(9), max_f:(0)", 20)
    assert got[9] == pytest.approx(9) and got[19] == pytest.approx(0) and got[4] == pytest.approx(4)


def test_seed_variable_and_per_frame_seed_function():
    assert values("0:(s/10)", 2, seed=30) == pytest.approx([3, 3])
    sched = parse_schedule("0:(s)", "noise")
    assert sched.values(3, seed=lambda frame: 100 + frame) == pytest.approx([100, 101, 102])


# -- our extensions -------------------------------------------------------------------------


def test_plain_number_and_bare_expression_are_schedules():
    assert values("1.02", 3) == pytest.approx([1.02] * 3)
    assert values(0.5, 2) == pytest.approx([0.5, 0.5])
    assert values("t*2", 3) == pytest.approx([0, 2, 4])


def test_commas_inside_expressions():
    got = values("0:(where(t < 2, 1, max(t, 3))), 5:(min(1, 2, 0.5))", 7)
    assert got == pytest.approx([1, 1, 3, 3, 4, 0.5, 0.5])


def test_no_frame_zero_needed_and_first_value_holds():
    assert values("10:(1.5)", 3) == pytest.approx([1.5] * 3)


def test_trailing_comma_and_whitespace_are_fine():
    assert values(" 0 : 1 ,\n 2 : 3 , ", 3) == pytest.approx([1, 2, 3])


def test_all_functions_and_constants():
    text = "sin(pi/2) + cos(0) + tan(0) + abs(-1) + sqrt(4) + exp(0) + log(1) + floor(1.5) + ceil(0.5)"
    assert values(text, 1) == pytest.approx([1 + 1 + 0 + 1 + 2 + 1 + 0 + 1 + 1])
    assert values("(t % 3) ** 2 + (t >= 4) - -1", 6) == pytest.approx([1, 2, 5, 1, 3, 6])
    assert values("log(8, 2)", 1) == pytest.approx([3])


# -- refused inputs -------------------------------------------------------------------------

REFUSED = [
    ("__import__('os').system('touch pwned')", "is not allowed", 1),
    ("().__class__", "attribute access", 1),
    ("0:(t**t**t**t)", "nested powers", 4),
    ("1e400", "number too large", 1),
    ("0:(9" + "9" * 400 + ")", "number too large", 4),
    ("0:(2**1000)", "exponent larger than 100", 4),
    ("0:(1.0", "'(' is never closed", 3),
    ("0:(1.0)), 5:(2)", "unbalanced ')'", 8),
    ("30:(1.0), 10:(2.0)", "keyframes must increase", 11),
    ("5:(1), 5:(2)", "keyframes must increase", 8),
    ("0:(1.0) 30:(2.0)", "missing comma", 11),
    ("0:(1),,5:(2)", "empty keyframe", 7),
    ("0:(x + 1)", "unknown name 'x'", 4),
    ("0:(open(t))", "'open' is not allowed", 4),
    ("0:(lambda: 1)", "lambda", 4),
    ("0:([t for t in s])", "comprehensions", 4),
    ("0:('a')", "only numbers", 4),
    ("0:(t[0])", "subscripts", 4),
    ("0:(t if t else 1)", "use where()", 4),
    ("0:(t and 1)", "use where()", 4),
    ("0:(1j)", "only numbers", 4),
    ("0:(True)", "only numbers", 4),
    ("0:(where(t, 1))", "where() takes 3 argument(s), got 2", 4),
    ("0:(sin(x=1))", "plain arguments only", 4),
    ("0:(1 +)", "syntax error", 7),
    ("t:(1)", "unknown name 't'", 1),
    ("0:(1), -5:(2)", "not a frame >= 0", 8),
    ("0:(1), : 2", "missing frame number", 7),
    ("0:(1é)", "character 'é' is not allowed", 5),
]


@pytest.mark.parametrize(("text", "message", "position"), REFUSED)
def test_refused_at_parse_time_with_position(text, message, position, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScheduleError) as info:
        parse_schedule(text, "zoom").values(3)  # refused by parse_schedule already, never evaluated
    msg = str(info.value)
    assert isinstance(info.value, DreamreelError)
    assert message in msg
    assert f"at character {position}" in msg
    assert "bad zoom schedule" in msg
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "text", ["0:(t**t**t**t)", "__import__('os')", "30:(1.0), 10:(2.0)", "1e400", "0:(1.0"]
)
def test_refusal_happens_in_parse_not_at_first_frame(text):
    with pytest.raises(ScheduleError):
        parse_schedule(text, "zoom")


@pytest.mark.parametrize(
    ("text", "frame", "message"),
    [
        ("0:(1/(t-3))", 3, "division by zero"),
        ("0:(log(t-5))", 0, "math domain error"),
        ("0:(exp(t*100))", 8, "overflows"),
        ("0:((t-2)**0.5)", 0, "not a real number"),
        ("0:(1), max_f/2:(2), 3:(4)", None, "keyframes must increase"),
    ],
)
def test_bad_values_name_the_frame(text, frame, message):
    sched = parse_schedule(text, "zoom")
    with pytest.raises(ScheduleError) as info:
        sched.values(20)
    assert message in str(info.value).lower() or message in str(info.value)
    if frame is not None:
        assert f"at frame {frame}" in str(info.value)


def test_huge_text_refused():
    with pytest.raises(ScheduleError, match="more than"):
        parse_schedule("0:(1)," * 5000)


def test_non_finite_number_refused():
    with pytest.raises(ScheduleError):
        parse_schedule(math.inf)


# -- prompts --------------------------------------------------------------------------------


def test_prompts_hold_between_keys_and_blend_weights():
    prompts = parse_prompts("0:a cat, in a hat, max_f/2:a dog")
    assert prompts.prompts == ["a cat, in a hat", "a dog"]
    assert prompts.at(0, 10) == ("a cat, in a hat", "a cat, in a hat", 0.0)
    first, second, weight = prompts.at(3, 10)  # keys 0 and 5
    assert (first, second) == ("a cat, in a hat", "a dog") and weight == pytest.approx(0.6)
    assert prompts.at(9, 10) == ("a dog", "a dog", 0.0)


def test_plain_prompt_with_colons_and_weights_stays_one_prompt():
    assert parse_prompts("a cat, 16:9, (neon:1.2)").prompts == ["a cat, 16:9, (neon:1.2)"]
    assert parse_prompts({"0": "a cat", "30": "a dog"}).prompts == ["a cat", "a dog"]


def test_prompt_keys_out_of_order_refused():
    with pytest.raises(ScheduleError, match="must increase"):
        parse_prompts("30:a cat, 0:a dog")


# -- fuzzing: whatever the text, the only failure is a ScheduleError ---------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PIECES = st.sampled_from(
    ["0", "1", "10", "max_f", "t", "s", "pi", ":", ",", "(", ")", "+", "-", "*", "/", "%", "**", "<", "==",
     "sin(", "where(", "log(", "exp(", "1e308", ".", " ", "__class__", "[", "]", "'a'", "lambda", "9" * 30]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(PIECES, max_size=14).map("".join)))
def test_any_text_parses_or_is_refused_cleanly(text):
    try:
        schedule = parse_schedule(text, "fuzz")
    except ScheduleError:
        return
    try:
        got = schedule.values(4, seed=3)
    except ScheduleError:
        return
    assert all(isinstance(v, float) and math.isfinite(v) for v in got)


# -- constant expressions and the documented differences from Deforum (README, "Schedules") ----------


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("0:((0.5)), 60:(1)", 0.5, 1.0),
        ("0:(-(0.5)), 60:(1)", -0.5, 1.0),
        ("0:(2*pi), 60:(1)", 2 * math.pi, 1.0),
        ("0:(1/4 + 1/4), 60:(1)", 0.5, 1.0),
    ],
)
def test_a_value_without_t_max_f_or_s_is_a_number_and_interpolates(text, first, last):
    values = parse_schedule(text).values(61)
    assert values[0] == pytest.approx(first) and values[60] == pytest.approx(last)
    assert values[30] == pytest.approx((first + last) / 2)  # halfway, not held until frame 59


@pytest.mark.parametrize("value", ["1e-3", "(1e-3)", "1.", "(1.)", "( 0.001 )", "(  1e-3  )"])
def test_numbers_deforum_reads_as_expressions_are_numbers_here(value):
    values = parse_schedule(f"0:{value}, 10:(1)").values(11)
    start = 0.001 if "e" in value or "0.001" in value else 1.0
    assert values[0] == pytest.approx(start)
    assert values[5] == pytest.approx(start + (1 - start) / 2)


def test_a_keyframe_past_the_last_frame_is_interpolated_toward_so_shorter_runs_are_prefixes():
    schedule = parse_schedule("0:(1.0), 100:(2.0)")
    short, long = schedule.values(11), schedule.values(101)
    assert short == long[:11]
    assert short[10] == pytest.approx(1.1)  # Deforum drops key 100 and holds 1.0


def test_commas_inside_expressions_do_not_split_keyframes():
    values = parse_schedule("0:(max(0.5, min(t/10, 1))), 20:(where(t > 25, 2, 3))").values(30)
    assert values[:3] == [0.5, 0.5, 0.5] and values[10] == 1.0
    assert values[20] == 3.0 and values[29] == 2.0


def test_frame_zero_is_optional_and_the_first_value_holds_until_its_key():
    assert parse_schedule("10:(2.0), 20:(4.0)").values(21)[:11] == [2.0] * 11
    assert parse_schedule("10:(2.0), 20:(4.0)").values(21)[15] == 3.0


def test_a_failing_constant_value_is_refused_at_parse_time_with_its_position():
    with pytest.raises(ScheduleError, match="fails: float division by zero at character 11"):
        parse_schedule("0:(1), 10:(1/0)")
