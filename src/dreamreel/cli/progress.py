"""Progress bars for the CLI: an outer bar over pictures/frames and an inner one over steps."""

from __future__ import annotations

from typing import Any


class Progress:
    """Two tqdm bars on stderr; does nothing at all when quiet."""

    def __init__(self, total: int, unit: str = "image", quiet: bool = False) -> None:
        self.quiet = quiet
        self._items: Any = None
        self._steps: Any = None
        if quiet:
            return
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        if total > 1:
            self._items = tqdm(total=total, unit=unit, desc=f"{unit}s", position=0, dynamic_ncols=True)

    def on_step(self, step: int, total: int) -> None:
        if self.quiet:
            return
        if self._steps is None:
            position = 1 if self._items is not None else 0
            self._steps = self._tqdm(
                total=total, unit="step", desc="steps", position=position, leave=False, dynamic_ncols=True
            )
        if step == 1:
            self._steps.reset(total=total)
        self._steps.update(step - self._steps.n)

    def item_done(self) -> None:
        if self._items is not None:
            self._items.update(1)

    def write(self, message: str) -> None:
        """Print a line without tearing the bars."""
        if self.quiet:
            return
        if self._items is not None or self._steps is not None:
            self._tqdm.write(message)
        else:
            print(message)

    def close(self) -> None:
        for bar in (self._steps, self._items):
            if bar is not None:
                bar.close()
        self._steps = self._items = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
