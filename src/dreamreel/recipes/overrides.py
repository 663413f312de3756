"""``dreamreel run RECIPE.toml --steps 20 --no-reverse ...``: command-line words onto a recipe's fields.

Everything is derived from the recipe: its dataclass fields name the settings, a field's current value
says how text becomes a value (true/false, a list split on ``|``, a number, text), the recipe's
``SCHEDULED`` table says which numbers may be keyframe schedules, and ``Recipe.parse_text`` lets a
job read a setting its own way (a sweep's ``--values``). No click: the CLI only hands the words over.
"""

from __future__ import annotations

from typing import Any

from dreamreel.errors import DreamreelError
from dreamreel.recipes.base import Recipe, flag_name
from dreamreel.recipes.seeds import parse_seeds

TRUE_WORDS = ("true", "yes", "1", "on")
FALSE_WORDS = ("false", "no", "0", "off")


def number_or_schedule(text: str) -> str | float | int:
    """A plain number stays a number (``20`` an int, ``0.5`` a float); anything else is schedule text,
    checked by the recipe."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def parse_overrides(recipe: Recipe, args: list[str]) -> dict[str, Any]:
    """``--name value`` pairs (``--flag`` alone for true/false settings, ``--no-flag`` for false)
    onto the recipe's fields; unknown names are refused with the list of known ones."""
    names = set(recipe.field_names())
    changes: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise DreamreelError(f"unexpected {arg!r}: overrides look like --steps 20")
        name, eq, value = arg[2:].partition("=")
        key = name.replace("-", "_")
        if key.startswith("no_") and key[3:] in names and isinstance(getattr(recipe, key[3:]), bool):
            changes[key[3:]] = False
            i += 1
            continue
        if key not in names:
            known = ", ".join(flag_name(n) for n in recipe.field_names())
            raise DreamreelError(f"{recipe.job} has no setting --{name}; known: {known}")
        if isinstance(getattr(recipe, key), bool) and not eq:
            changes[key] = True
            i += 1
            continue
        if not eq:
            if i + 1 >= len(args):
                raise DreamreelError(f"--{name} needs a value")
            value = args[i + 1]
            i += 1
        changes[key] = text_value(recipe, key, value)
        i += 1
    return changes


def text_value(recipe: Recipe, key: str, text: str) -> Any:
    """The value of setting ``key`` written as ``text`` on a command line."""
    special = recipe.parse_text(key, text)
    if special is not None:
        return special
    if recipe.is_scheduled(key):
        return number_or_schedule(text)
    if key == "seeds":
        return parse_seeds(text)
    current = getattr(recipe, key)
    if isinstance(current, bool):
        if text.lower() in TRUE_WORDS:
            return True
        if text.lower() in FALSE_WORDS:
            return False
        raise DreamreelError(f"{flag_name(key)} takes true or false, got {text!r}")
    if isinstance(current, list):
        return [part.strip() for part in text.split("|")]
    if isinstance(current, str):
        return text
    return number_or_schedule(text)  # a number, or text the recipe's check judges (--fps 30000/1001)
