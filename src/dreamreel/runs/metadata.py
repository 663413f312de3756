"""What made a picture, written into it and read back.

Two PNG text chunks: ``parameters`` in AUTOMATIC1111's infotext format, so PNG Info, civitai and
prompt readers understand our pictures (and we understand theirs), and ``dreamreel``, the full
recipe as JSON, which is what ``rerender`` prefers when present.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel import __version__
from dreamreel.errors import DreamreelError

if TYPE_CHECKING:
    pass

PARAMETERS_KEY = "parameters"
RECIPE_KEY = "dreamreel"

# AUTOMATIC1111's own rule for the key/value line (modules/infotext_utils.py).
A1111_PARAM_RE = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def _quote(value: str) -> str:
    """A1111 quotes a value only when it holds a comma, colon or newline."""
    if "," not in value and "\n" not in value and ":" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def format_parameters(prompt: str, negative: str, params: dict[str, Any]) -> str:
    """The ``parameters`` text exactly as A1111's create_infotext joins it.

    ``params`` is ordered (A1111's key order); None values are left out, and a value equal to
    its key is written bare, as A1111 does.
    """
    line = ", ".join(
        key if key == value else f"{key}: {_quote(str(value))}"
        for key, value in params.items()
        if value is not None
    )
    negative_text = f"\nNegative prompt: {negative}" if negative else ""
    return f"{prompt}{negative_text}\n{line}".strip()


def a1111_params(
    *,
    steps: int,
    sampler: str,
    guidance: float,
    seed: int,
    width: int,
    height: int,
    model_hash: str | None,
    model: str,
    strength: float | None = None,
    extra: dict[str, Any] | None = None,
    schedule_type: str | None = None,
) -> dict[str, Any]:
    """Our settings under A1111's keys, in A1111's order.

    ``sampler`` is a dreamreel scheduler name (``"DPM++ 2M Karras"``); it is written as A1111's
    ``Sampler`` + ``Schedule type`` pair, which A1111 reads back as the same scheduler. A given
    ``schedule_type`` is written as it is (``sampler`` then being A1111's bare sampler label).
    """
    from dreamreel.render.samplers import split_scheduler_name

    if schedule_type is None:
        sampler_name, schedule_type = split_scheduler_name(sampler)
    else:
        sampler_name = sampler
    params: dict[str, Any] = {
        "Steps": steps,
        "Sampler": sampler_name,
        "Schedule type": schedule_type,
        "CFG scale": _number(guidance),
        "Seed": seed,
        "Size": f"{width}x{height}",
        "Model hash": model_hash,
        "Model": model,
        "Denoising strength": _number(strength) if strength is not None else None,
    }
    params.update(extra or {})
    params["Version"] = f"dreamreel {__version__}"
    return params


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def parse_parameters(text: str) -> dict[str, Any]:
    """Read an A1111 infotext back: prompt, negative prompt and the key/value line (A1111's rules)."""
    lines = text.strip().split("\n")
    last = lines[-1]
    matches = A1111_PARAM_RE.findall(last)
    if len(matches) < 3:
        lines.append(last := "")
        matches = []
    else:
        lines = lines[:-1]
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    target = prompt_lines
    for line in lines:
        if line.startswith("Negative prompt:"):
            target = negative_lines
            line = line[len("Negative prompt:") :].strip()
        target.append(line)
    result: dict[str, Any] = {
        "Prompt": "\n".join(prompt_lines).strip(),
        "Negative prompt": "\n".join(negative_lines),
    }
    for key, value in matches:
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            value = json.loads(value)
        result[key.strip()] = value
    if "Size" in result:
        width, _, height = str(result["Size"]).partition("x")
        result["Size-1"], result["Size-2"] = width, height
    if result.get("Sampler"):
        result["Sampler"] = _dreamreel_sampler(str(result["Sampler"]), result.get("Schedule type"))
    return result


def _dreamreel_sampler(sampler: str, schedule_type: Any) -> str:
    """``Sampler`` (+ ``Schedule type``) as one dreamreel scheduler name where it maps (A1111's
    reading: ``Automatic`` is the sampler's default schedule); otherwise the two joined as A1111 wrote
    them before 1.9, so a caller can name what does not map."""
    from dreamreel.render.samplers import scheduler_from_infotext

    try:
        name = scheduler_from_infotext(sampler, schedule_type)
    except DreamreelError:
        name = None
    if name is not None:
        return name
    if schedule_type and schedule_type not in ("Automatic", "Uniform"):
        return f"{sampler} {schedule_type}"
    return sampler


def png_info(parameters: str, recipe: dict[str, Any], facts: dict[str, Any] | None = None) -> Any:
    """PNG text chunks; ``facts`` are what the render found out (model hash, effective steps, ...)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, parameters)  # Pillow falls back to iTXt for non-Latin-1 text
    payload = {"version": __version__, "recipe": recipe, "facts": facts or {}}
    info.add_text(RECIPE_KEY, json.dumps(payload, ensure_ascii=False))
    return info


def read_png_metadata(path: str | Path) -> tuple[str | None, dict[str, Any] | None]:
    """(A1111 parameters text, dreamreel recipe dict) of a picture; either may be None."""
    from dreamreel.media.pictures import open_image_checked

    image = open_image_checked(path)
    text = getattr(image, "text", None) or image.info
    parameters = text.get(PARAMETERS_KEY)
    recipe = None
    if RECIPE_KEY in text:
        try:
            recipe = json.loads(text[RECIPE_KEY])["recipe"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DreamreelError(f"the dreamreel metadata of {str(path)!r} is damaged: {exc}") from exc
    return parameters, recipe
