"""Seed loops of still pictures written into an output folder, resumable.

Every loop leaves a small record in ``OUT/.dreamreel/stills-NNNNN.json`` (the recipe and the numbers
its pictures get) before the first picture renders, and removes it after the last one is safe.
``dreamreel resume OUT`` finishes every incomplete loop there: pictures already on disk are verified
(they decode and carry the expected recipe) and skipped, the rest are rendered under their original
names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError
from dreamreel.recipes.base import Recipe, SeedLoopRecipe
from dreamreel.runs.files import next_still_index, still_name, write_atomic

RECORD_FOLDER = ".dreamreel"
RecipeReader = Callable[[dict[str, Any]], Recipe]


@dataclass(frozen=True)
class SeedLoop:
    """One seed loop: its record file, its recipe and the number of its first picture."""

    record: Path
    recipe: SeedLoopRecipe
    first: int

    @property
    def folder(self) -> Path:
        return self.record.parent.parent

    def picture_path(self, position: int) -> Path:
        return self.folder / still_name(self.first + position, self.recipe.seeds[position])

    @classmethod
    def start(cls, recipe: SeedLoopRecipe) -> SeedLoop:
        """Record a new loop in ``recipe.out`` (before its first picture renders)."""
        folder = Path(recipe.out)
        first = next_still_index(folder)
        loop = cls(record=folder / RECORD_FOLDER / f"stills-{first:05d}.json", recipe=recipe, first=first)
        payload = {"recipe": recipe.to_dict(), "first": first}
        write_atomic(loop.record, json.dumps(payload, indent=1).encode())
        return loop

    @classmethod
    def load(cls, record: Path, read_recipe: RecipeReader) -> SeedLoop:
        try:
            payload = json.loads(record.read_text(encoding="utf-8"))
            recipe = read_recipe(payload["recipe"])
            first = int(payload["first"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DreamreelError(f"the run record {str(record)!r} is damaged: {exc}") from exc
        if not isinstance(recipe, SeedLoopRecipe):
            raise DreamreelError(f"the run record {str(record)!r} is not a still-picture run")
        return cls(record=record, recipe=recipe, first=first)

    def missing_positions(self) -> list[int]:
        """Positions whose picture is absent, unreadable, or not the one this recipe makes."""
        return [i for i in range(len(self.recipe.seeds)) if not self._picture_ok(i)]

    def finished(self) -> None:
        """Every picture is safe: the record goes."""
        self.record.unlink(missing_ok=True)

    def _picture_ok(self, position: int) -> bool:
        from dreamreel.runs.metadata import read_png_metadata

        path = self.picture_path(position)
        if not path.is_file():
            return False
        try:
            _, stored = read_png_metadata(path)
        except DreamreelError:
            return False
        if stored is None:
            return False
        expected = self.recipe.replace(seeds=[self.recipe.seeds[position]]).to_dict()
        # The stored recipe also fixed the size and scheduler the model chose; compare what the user set.
        return all(
            stored.get(k) == v for k, v in expected.items() if k not in ("width", "height", "scheduler")
        )


def incomplete_loops(folder: Path, read_recipe: RecipeReader) -> list[SeedLoop]:
    return [SeedLoop.load(record, read_recipe) for record in sorted((folder / RECORD_FOLDER).glob("stills-*.json"))]
