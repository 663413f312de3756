"""Progress for the CLI: an outer tqdm bar over pictures/frames and an inner one over steps, on
stderr; finished pictures' paths on stdout. A ``jobs.runner.Reporter``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


class ProgressBars:
    """Two tqdm bars; with ``quiet`` only the finished pictures' paths are printed."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._items: Any = None
        self._steps: Any = None

    def message(self, text: str) -> None:
        if not self.quiet:
            self._write(text, err=True)

    def begin(self, total: int, unit: str) -> None:
        if self.quiet:
            return
        from tqdm.auto import tqdm

        if total > 1:
            self._items = tqdm(total=total, unit=unit, desc=f"{unit}s", position=0, dynamic_ncols=True)

    def step(self, step: int, total: int, latents: Any = None) -> None:
        if self.quiet:
            return
        if self._steps is None:
            from tqdm.auto import tqdm

            position = 1 if self._items is not None else 0
            self._steps = tqdm(total=total, unit="step", desc="steps", position=position, leave=False, dynamic_ncols=True)
        if step == 1:
            self._steps.reset(total=total)
        self._steps.update(step - self._steps.n)

    def item(self, path: Path | None) -> None:
        if self._items is not None:
            self._items.update(1)
        if path is not None and not self.quiet:
            self._write(str(path), err=False)

    def end(self) -> None:
        for bar in (self._steps, self._items):
            if bar is not None:
                bar.close()
        self._steps = self._items = None

    def _write(self, text: str, *, err: bool) -> None:
        """A line without tearing the bars."""
        if self._items is not None or self._steps is not None:
            import sys

            from tqdm.auto import tqdm

            tqdm.write(text, file=sys.stderr if err else sys.stdout)
        else:
            click.echo(text, err=err)
