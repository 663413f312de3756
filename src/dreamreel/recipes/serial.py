"""Recipes as TOML files (run folders, ``dreamreel run``) and the data read back from them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError
from dreamreel.recipes.base import Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def recipe_to_toml(recipe: Recipe) -> str:
    import tomli_w

    return tomli_w.dumps(recipe.to_dict())


def read_toml(path: str | Path) -> dict[str, Any]:
    """A recipe file's data (its ``job`` key says which recipe class reads it)."""
    path = Path(path)
    if not path.is_file():
        raise DreamreelError(f"recipe {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DreamreelError(f"recipe {str(path)!r} is not valid TOML: {exc}") from exc
