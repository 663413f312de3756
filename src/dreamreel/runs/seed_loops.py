"""Seed loops of still pictures written into an output folder, resumable.

Every loop leaves a small record in ``OUT/.dreamreel/stills-NNNNN.json`` (the recipe and the numbers
its pictures get) before the first picture renders, and removes it after the last one is safe. ``dreamreel resume OUT`` finishes every incomplete loop there: pictures already on disk are
verified (they decode and carry the expected recipe) and skipped, the rest are rendered under their
original names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError
from dreamreel.runs.files import next_still_index, still_name, write_atomic
from dreamreel.recipes.base import Img2ImgRecipe, Recipe, Txt2ImgRecipe

if TYPE_CHECKING:
    from dreamreel.models.loading import LoadedModel
    from dreamreel.cli.progress import Progress

RECORD_FOLDER = ".dreamreel"


@dataclass
class StillRun:
    """One seed loop: its recipe and the number of its first picture."""

    record: Path
    recipe: Txt2ImgRecipe
    first: int

    @property
    def folder(self) -> Path:
        return self.record.parent.parent

    def picture_path(self, position: int) -> Path:
        return self.folder / still_name(self.first + position, self.recipe.seeds[position])

    def save(self) -> None:
        payload = {"recipe": self.recipe.to_dict(), "first": self.first}
        write_atomic(self.record, json.dumps(payload, indent=1).encode())

    @classmethod
    def start(cls, recipe: Txt2ImgRecipe) -> StillRun:
        folder = Path(recipe.out)
        first = next_still_index(folder)
        run = cls(record=folder / RECORD_FOLDER / f"stills-{first:05d}.json", recipe=recipe, first=first)
        run.save()
        return run

    @classmethod
    def load(cls, record: Path) -> StillRun:
        try:
            payload = json.loads(record.read_text(encoding="utf-8"))
            recipe = Recipe.from_dict(payload["recipe"])
            first = int(payload["first"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DreamreelError(f"the run record {str(record)!r} is damaged: {exc}") from exc
        if not isinstance(recipe, Txt2ImgRecipe):
            raise DreamreelError(f"the run record {str(record)!r} is not a still-picture run")
        return cls(record=record, recipe=recipe, first=first)

    def missing_positions(self) -> list[int]:
        """Positions whose picture is absent, unreadable, or not the one this recipe makes."""
        return [i for i in range(len(self.recipe.seeds)) if not self._picture_ok(i)]

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


def incomplete_runs(folder: Path) -> list[StillRun]:
    return [StillRun.load(record) for record in sorted((folder / RECORD_FOLDER).glob("stills-*.json"))]


def render_stills(
    model: LoadedModel, run: StillRun, positions: list[int], progress: Progress, source: Any = None
) -> None:
    """Render the given positions of a seed loop; a background thread encodes and writes each picture
    atomically while the model renders the next one. The run record goes once every picture is safe."""
    from dreamreel.jobs.img2img import img2img
    from dreamreel.jobs.txt2img import txt2img
    from dreamreel.runs.writer import BackgroundWriter

    recipe = run.recipe  # whole, so each seed is rendered in the batch it had first (fixed_batches)
    if isinstance(recipe, Img2ImgRecipe):
        items = img2img(model, recipe, on_step=progress.on_step, source=source, positions=positions)
    else:
        items = txt2img(model, recipe, on_step=progress.on_step, positions=positions)

    def report(paths: list[Path]) -> None:
        for path in paths:
            progress.item_done()
            progress.write(str(path))

    with BackgroundWriter() as writer:
        for item in items:
            writer.submit(run.picture_path(item.index), item.image, item.png_info())
            report(writer.written())
    report(writer.written())
    run.record.unlink(missing_ok=True)
