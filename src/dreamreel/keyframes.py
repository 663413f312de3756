"""Keyframe schedules: Deforum's syntax ``"0:(1.02), 30:(1.0), 60:(1.0+0.01*sin(t/5))"`` -> per-frame values.

Pure Python, no torch. Semantics follow Deforum (see REFERENCE.md): literal numbers interpolate
linearly between keyframes and hold before the first / after the last one; an expression keyframe is
re-evaluated at every frame until the next keyframe, and a number followed by an expression runs
linearly to the expression's value at its own keyframe. With ``--audio``, ``a`` (loudness) and
``beat`` (onset strength) are the soundtrack at the frame's time, 0..1 (media/audio.py). A value
that uses none of ``t``, ``max_f``, ``s``, ``a`` and ``beat`` is a number, however it is written (``(0.5)``, ``((0.5))``, ``-(0.5)``, ``1e-3``, ``1.``,
``( 1.0 )``, ``2*pi``). Better than Deforum:

- commas inside expressions work (keyframes are split by a tokenizer that respects brackets);
- frame 0 may be omitted (the first value holds), and a plain number or bare expression is a schedule;
- a keyframe past the last frame of a run is interpolated toward (Deforum drops it), so a shorter
  render is exactly the first frames of the longer film;
- frame keys may be expressions of ``max_f`` (``max_f/2``); keyframes out of order are an error;
- expressions go through a whitelist evaluator built on ``ast``: numbers, ``t`` ``max_f`` ``s`` ``a`` ``beat`` ``pi``,
  ``sin cos tan abs sqrt exp log min max floor ceil where``, arithmetic and comparisons. Everything
  else is refused at parse time with its character position; nothing is ever passed to ``eval``.
  All arithmetic is in floats, so no expression can build a giant integer.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dreamreel.errors import DreamreelError

MAX_TEXT = 10_000  # characters in one schedule
MAX_NODES = 400  # syntax-tree nodes in one expression
MAX_DEPTH = 100  # nesting depth of one expression (a+b+c+... nests to the left)
MAX_CONST_EXPONENT = 100.0  # x ** 1000 is never meant; a non-constant exponent is checked per frame

VARIABLES = ("t", "max_f", "s", "a", "beat")
SOUND = ("a", "beat")  # the soundtrack at the frame's time (--audio): loudness and onset strength, 0..1
CONSTANTS = {"pi": math.pi}


def _where(cond: float, a: float, b: float) -> float:
    return a if cond else b


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _power(a: float, b: float) -> float:
    result = a**b
    if isinstance(result, complex):  # Python gives (-8) ** 0.5 as a complex number
        raise ValueError(f"{a:g} ** {b:g} is not a real number")
    return result


# name -> (function, fewest arguments, most arguments)
FUNCTIONS: dict[str, tuple[Callable[..., float], int, int]] = {
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "abs": (abs, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
    "exp": (math.exp, 1, 1),
    "log": (_log, 1, 2),
    "min": (min, 2, 32),
    "max": (max, 2, 32),
    "floor": (lambda x: float(math.floor(x)), 1, 1),
    "ceil": (lambda x: float(math.ceil(x)), 1, 1),
    "where": (_where, 3, 3),
}

_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: _power(a, b),
}
_COMPARE = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}

Env = Mapping[str, float]
Compiled = Callable[[Env], float]


class ScheduleError(DreamreelError):
    """A malformed schedule; the message names the option and the character position."""


def _fail(name: str, text: str, pos: int, message: str) -> ScheduleError:
    pos = max(0, min(pos, len(text)))
    near = text[pos : pos + 20]
    where = f" near {near!r}" if near.strip() else " at the end"
    return ScheduleError(f"bad {name} schedule {text!r}: {message} at character {pos + 1}{where}")


# -- expressions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    """A parsed, whitelisted expression; ``evaluate`` runs it on floats."""

    source: str
    names: frozenset[str]
    run: Compiled

    def evaluate(self, **env: float) -> float:
        return self.run(env)


def parse_expression(
    source: str,
    *,
    name: str = "value",
    text: str | None = None,
    offset: int = 0,
    allowed: tuple[str, ...] = VARIABLES,
) -> Expression:
    """Parse ``source`` with the whitelist; ``text``/``offset`` place it inside a schedule for errors."""
    whole = source if text is None else text
    source = re.sub(r"[\t\r\n]", " ", source)  # one line for ast, same length so positions hold
    for i, ch in enumerate(source):
        if not ch.isascii() or not ch.isprintable():
            raise _fail(name, whole, offset + i, f"character {ch!r} is not allowed")
    stripped = source.strip()
    lead = len(source) - len(source.lstrip())
    if not stripped:
        raise _fail(name, whole, offset, "empty value")
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        col = (exc.offset or 1) - 1 if exc.lineno in (None, 1) else len(stripped)
        raise _fail(name, whole, offset + lead + col, f"syntax error ({exc.msg})") from None
    except (RecursionError, MemoryError, ValueError):
        raise _fail(name, whole, offset + lead, "expression too deeply nested") from None
    names: set[str] = set()
    counter = [0]

    def fail(node: ast.AST, message: str) -> ScheduleError:
        return _fail(name, whole, offset + lead + getattr(node, "col_offset", 0), message)

    def build(node: ast.AST, depth: int) -> Compiled:
        counter[0] += 1
        if counter[0] > MAX_NODES or depth > MAX_DEPTH:
            raise fail(node, "expression too long or too deeply nested")
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise fail(node, f"only numbers are allowed, not {type(value).__name__} {value!r}")
            try:
                number = float(value)
            except OverflowError:
                raise fail(node, "number too large") from None
            if not math.isfinite(number):
                raise fail(node, "number too large")
            return lambda env: number
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                constant = CONSTANTS[node.id]
                return lambda env: constant
            if node.id not in allowed:
                known = ", ".join((*allowed, *CONSTANTS))
                raise fail(node, f"unknown name {node.id!r} (known: {known})")
            names.add(node.id)
            key = node.id
            return lambda env: float(env[key])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            inner = build(node.operand, depth + 1)
            if isinstance(node.op, ast.USub):
                return lambda env: -inner(env)
            return inner
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            if isinstance(node.op, ast.Pow):
                _check_power(node, fail)
            op = _BINARY[type(node.op)]
            left, right = build(node.left, depth + 1), build(node.right, depth + 1)
            return lambda env: op(left(env), right(env))
        if isinstance(node, ast.Compare):
            ops = []
            for op_node in node.ops:
                if type(op_node) not in _COMPARE:
                    raise fail(node, f"comparison {type(op_node).__name__} is not allowed")
                ops.append(_COMPARE[type(op_node)])
            first = build(node.left, depth + 1)
            rest = [build(c, depth + 1) for c in node.comparators]

            def compare(env: Env) -> float:
                a = first(env)
                for op, nxt in zip(ops, rest, strict=True):
                    b = nxt(env)
                    if not op(a, b):
                        return 0.0
                    a = b
                return 1.0

            return compare
        if isinstance(node, ast.Call):
            func = node.func
            if not isinstance(func, ast.Name) or func.id not in FUNCTIONS:
                what = func.id if isinstance(func, ast.Name) else ast.unparse(func)
                raise fail(node, f"function {what!r} is not allowed (known: {', '.join(FUNCTIONS)})")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise fail(node, f"{func.id}() takes plain arguments only")
            impl, low, high = FUNCTIONS[func.id]
            if not low <= len(node.args) <= high:
                count = str(low) if low == high else f"{low} to {high}"
                raise fail(node, f"{func.id}() takes {count} argument(s), got {len(node.args)}")
            args = [build(a, depth + 1) for a in node.args]
            return lambda env: float(impl(*(a(env) for a in args)))
        what = type(node).__name__
        hint = {
            "Attribute": "attribute access (x.y)",
            "Subscript": "subscripts",
            "Lambda": "lambda",
            "BoolOp": "and/or (use where())",
            "IfExp": "if/else (use where())",
            "Tuple": "a tuple (missing comma or bracket?)",
        }.get(what, what)
        if what in ("ListComp", "SetComp", "DictComp", "GeneratorExp"):
            hint = "comprehensions"
        raise fail(node, f"{hint}: not allowed")

    run = build(tree.body, 0)
    return Expression(source=stripped, names=frozenset(names), run=run)


def _check_power(node: ast.BinOp, fail: Callable[[ast.AST, str], ScheduleError]) -> None:
    """Refuse towers like ``t**t**t**t`` and constant exponents no schedule needs."""
    for part in (node.left, node.right):
        for sub in ast.walk(part):
            if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Pow):
                raise fail(node, "nested powers (x**y**z) are not allowed")
    exponent = node.right
    sign = 1.0
    while isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, (ast.UAdd, ast.USub)):
        sign = -sign if isinstance(exponent.op, ast.USub) else sign
        exponent = exponent.operand
    if isinstance(exponent, ast.Constant) and isinstance(exponent.value, (int, float)):
        try:
            too_big = abs(float(exponent.value)) > MAX_CONST_EXPONENT
        except OverflowError:
            too_big = True
        if too_big:
            raise fail(node, f"exponent larger than {MAX_CONST_EXPONENT:g} is not allowed")


# -- splitting a schedule into keyframes --------------------------------------------------------


def split_top_level(text: str, name: str, sep: str = ",") -> list[tuple[int, str]]:
    """Split on ``sep`` outside brackets; returns (start position, piece). Unbalanced brackets are errors."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[tuple[str, int]] = []
    pieces: list[tuple[int, str]] = []
    start = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            stack.append((ch, i))
        elif ch in pairs:
            if not stack or stack[-1][0] != pairs[ch]:
                raise _fail(name, text, i, f"unbalanced {ch!r}")
            stack.pop()
        elif ch == sep and not stack:
            pieces.append((start, text[start:i]))
            start = i + 1
    if stack:
        raise _fail(name, text, stack[-1][1], f"{stack[-1][0]!r} is never closed")
    pieces.append((start, text[start:]))
    return pieces


@dataclass(frozen=True)
class Keyframe:
    frame: Expression  # may use max_f
    value: Expression
    number: float | None  # a literal number interpolates; None: an expression, evaluated per frame
    position: int  # character position of the key in the schedule text



SeedOf = int | Callable[[int], int]
Signals = Mapping[str, "list[float]"]  # per-frame values of the sound variables, by name


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule. ``at(frame, max_f=..., seed=...)`` gives one frame's value."""

    name: str
    text: str
    keyframes: tuple[Keyframe, ...]

    @property
    def names(self) -> frozenset[str]:
        """The variables the schedule's values use."""
        return frozenset().union(*(k.value.names for k in self.keyframes))

    @property
    def is_constant(self) -> bool:
        return len(self.keyframes) == 1 and self.keyframes[0].number is not None

    def frames(self, max_f: int) -> list[int]:
        """The keyframes' frame numbers for a run whose last frame is ``max_f``; checks their order."""
        result: list[int] = []
        for key in self.keyframes:
            try:
                value = key.frame.evaluate(max_f=float(max_f))
            except (ArithmeticError, ValueError) as exc:
                raise _fail(self.name, self.text, key.position, f"frame key fails: {exc}") from None
            if not math.isfinite(value) or value < 0:
                raise _fail(self.name, self.text, key.position, f"frame key is {value:g}, not a frame >= 0")
            frame = int(value)
            if result and frame <= result[-1]:
                raise _fail(
                    self.name,
                    self.text,
                    key.position,
                    f"keyframe {frame} comes after keyframe {result[-1]}; keyframes must increase",
                )
            result.append(frame)
        return result

    def at(self, frame: int, *, max_f: int, seed: SeedOf = 0, signals: Signals | None = None) -> float:
        """The value at ``frame``; ``seed`` is the seed number or a function frame -> seed (for ``s``);
        ``signals`` the sound variables' per-frame values (``a``, ``beat``; see SOUND)."""
        frames = self.frames(max_f)
        keys = self.keyframes

        def value_of(i: int, at_frame: int) -> float:
            key = keys[i]
            if key.number is not None:
                return key.number
            s = seed(at_frame) if callable(seed) else seed
            sound = {}
            for variable in SOUND:
                if variable in key.value.names:
                    if signals is None or variable not in signals:
                        raise ScheduleError(f"{self.name} schedule {self.text!r} uses {variable}: give --audio FILE")
                    track = signals[variable]
                    sound[variable] = float(track[min(at_frame, len(track) - 1)])
            try:
                value = key.value.evaluate(t=float(at_frame), max_f=float(max_f), s=float(s), **sound)
            except (ArithmeticError, ValueError) as exc:
                why = "the value overflows" if isinstance(exc, OverflowError) else str(exc)
                raise ScheduleError(
                    f"{self.name} schedule {self.text!r} fails at frame {at_frame}: {why}"
                ) from None
            if not math.isfinite(value):
                raise ScheduleError(f"{self.name} schedule {self.text!r} is {value} at frame {at_frame}")
            return value

        if frame < frames[0]:  # before the first keyframe its value holds
            return value_of(0, frames[0])
        i = max(j for j, f in enumerate(frames) if f <= frame)
        a = keys[i].number
        if a is None or i + 1 == len(keys):
            return value_of(i, frame if a is None else frames[i])
        b = value_of(i + 1, frames[i + 1])
        w = (frame - frames[i]) / (frames[i + 1] - frames[i])
        return a + (b - a) * w

    def values(self, count: int, seed: SeedOf = 0) -> list[float]:
        """All values of a ``count``-frame run (checks every frame: NaN/inf are errors naming the frame)."""
        return [self.at(f, max_f=count - 1, seed=seed) for f in range(count)]


def parse_schedule(value: str | float | int, name: str = "value") -> Schedule:
    """A schedule from its text, or from a plain number. Errors are ScheduleError with the position."""
    if isinstance(value, bool):
        raise ScheduleError(f"bad {name} schedule {value!r}: expected a number or keyframes")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ScheduleError(f"bad {name} value {value!r}: must be finite")
        text = repr(float(value))
    elif isinstance(value, str):
        text = value
    else:
        raise ScheduleError(f"bad {name} schedule {value!r}: expected a number or keyframes text")
    if len(text) > MAX_TEXT:
        raise ScheduleError(f"bad {name} schedule: {len(text)} characters is more than {MAX_TEXT}")
    pieces = split_top_level(text, name)
    if len(pieces) > 1 and not pieces[-1][1].strip():
        pieces = pieces[:-1]  # a trailing comma is harmless
    keyframes: list[Keyframe] = []
    for start, piece in pieces:
        if not piece.strip():
            raise _fail(name, text, start, "empty keyframe (two commas in a row?)")
        parts = split_top_level(piece, name, sep=":")
        if len(parts) == 1:
            if len(pieces) > 1:
                raise _fail(name, text, start + len(piece) - len(piece.lstrip()), "expected FRAME:VALUE")
            key_text, key_pos, value_text, value_pos = "0", start, piece, start
        elif len(parts) == 2:
            (k_off, key_text), (v_off, value_text) = parts
            key_pos, value_pos = start + k_off, start + v_off
        else:
            raise _fail(name, text, start + parts[2][0] - 1, "a second ':' in one keyframe (missing comma?)")
        if not key_text.strip():
            raise _fail(name, text, key_pos, "missing frame number before ':'")
        frame = parse_expression(key_text, name=name, text=text, offset=key_pos, allowed=("max_f",))
        expr = parse_expression(value_text, name=name, text=text, offset=value_pos)
        number = _constant(expr, name, text, value_pos) if not expr.names else None
        keyframes.append(Keyframe(frame, expr, number, key_pos + len(key_text) - len(key_text.lstrip())))
    schedule = Schedule(name=name, text=text, keyframes=tuple(keyframes))
    if all(not k.frame.names for k in keyframes):
        schedule.frames(0)  # constant keys: their order is checked now, not at the first frame
    return schedule


def _constant(expr: Expression, name: str, text: str, position: int) -> float:
    """The value of an expression that uses none of ``t``, ``max_f``, ``s``: a number like any other,
    so ``(0.5)``, ``((0.5))``, ``-(0.5)``, ``1e-3`` and ``2*pi`` all interpolate."""
    try:
        value = expr.evaluate()
    except (ArithmeticError, ValueError) as exc:
        why = "the value overflows" if isinstance(exc, OverflowError) else str(exc)
        raise _fail(name, text, position, f"the value fails: {why}") from None
    if not math.isfinite(value):
        raise _fail(name, text, position, f"the value is {value}")
    return value


def check_schedule(schedule: Schedule, count: int, seed: SeedOf = 0) -> list[float]:
    """Every frame's value of a ``count``-frame run; any NaN/inf/domain error is a ScheduleError."""
    return schedule.values(count, seed)


# -- prompt schedules ---------------------------------------------------------------------------

_PROMPT_KEY = re.compile(r"(?:^|,)\s*([0-9a-z_+\-*/(). ]+?)\s*:")


@dataclass(frozen=True)
class PromptSchedule:
    """Keyframed prompts, held between keys; ``at`` also gives the next prompt and the blend weight."""

    keys: tuple[tuple[Expression, str], ...]
    text: str

    def frames(self, max_f: int) -> list[int]:
        result: list[int] = []
        for key, _ in self.keys:
            try:
                value = key.evaluate(max_f=float(max_f))
            except (ArithmeticError, ValueError) as exc:
                raise ScheduleError(f"bad prompt schedule {self.text!r}: frame key fails: {exc}") from None
            if not math.isfinite(value):
                raise ScheduleError(f"bad prompt schedule {self.text!r}: frame key is {value}")
            frame = int(value)
            if frame < 0 or (result and frame <= result[-1]):
                raise ScheduleError(f"bad prompt schedule {self.text!r}: prompt keyframes must increase")
            result.append(frame)
        return result

    def at(self, frame: int, max_f: int) -> tuple[str, str, float]:
        """(prompt, next prompt, weight of the next one for --prompt-blend: 0 at a key, rising linearly)."""
        frames = self.frames(max_f)
        prompts = [p for _, p in self.keys]
        if frame <= frames[0]:
            return prompts[0], prompts[0], 0.0
        i = max(j for j, f in enumerate(frames) if f <= frame)
        if i + 1 == len(frames):
            return prompts[i], prompts[i], 0.0
        return prompts[i], prompts[i + 1], (frame - frames[i]) / (frames[i + 1] - frames[i])

    @property
    def prompts(self) -> list[str]:
        return [p for _, p in self.keys]


def parse_prompts(value: str | Mapping[str, str]) -> PromptSchedule:
    """``"0:a cat, 60:a dog"``, a mapping ``{"0": "a cat", "60": "a dog"}``, or one plain prompt.

    In the text form a keyframe starts at the beginning or after a comma with ``FRAME:`` where FRAME is
    a number or an expression of ``max_f``; other commas and colons stay part of the prompt.
    """
    if isinstance(value, Mapping):
        items = [(str(k), str(v), 0) for k, v in value.items()]
        text = repr(dict(value))
    else:
        text = value
        matches = [m for m in _PROMPT_KEY.finditer(text) if _is_frame_key(m.group(1))]
        if not matches or matches[0].start() != 0:
            return PromptSchedule(keys=((parse_expression("0", allowed=()), text.strip()),), text=text)
        items = []
        for m, nxt in zip(matches, [*matches[1:], None], strict=True):
            end = nxt.start() if nxt is not None else len(text)
            items.append((m.group(1), text[m.end() : end].strip(), m.start(1)))
    keys = []
    for key_text, prompt, pos in items:
        key = parse_expression(key_text, name="prompt", text=text, offset=pos, allowed=("max_f",))
        if not prompt:
            raise _fail("prompt", text, pos, f"keyframe {key_text.strip()} has an empty prompt")
        keys.append((key, prompt))
    schedule = PromptSchedule(keys=tuple(keys), text=text)
    if all(not k.names for k, _ in keys):
        schedule.frames(0)
    return schedule


def _is_frame_key(candidate: str) -> bool:
    try:
        parse_expression(candidate, allowed=("max_f",))
    except ScheduleError:
        return False
    return True
