"""PNG encoding and writing on a background thread, so the model never waits on the disk.

PNG compression of a 512x512 picture takes tens of milliseconds and an fsync can take far longer
on a slow disk; on a GPU that is time the UNet could have spent on the next picture. The writer
takes finished pictures from a small bounded queue (memory stays flat when the disk is slower
than the model: ``submit`` then waits), writes each atomically with ``write_atomic``, and reports
the paths it finished. The first error on the worker thread is raised in the main thread by the
next ``submit`` or by ``close``; pictures queued after a failure are not written.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dreamreel.runs.files import png_bytes, write_atomic

AfterWrite = Callable[[Path], None]
_STOP = object()


class BackgroundWriter:
    """One worker thread writing PNGs in submission order. Use as a context manager."""

    def __init__(self, max_pending: int = 4) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, max_pending))
        self._written: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="dreamreel-writer", daemon=True)
        self._thread.start()

    def submit(
        self, path: str | Path, image: Any, pnginfo: Any = None, after: AfterWrite | None = None
    ) -> None:
        """Queue ``image`` (PIL) for ``path``; ``after(path)`` runs on the worker once the file is safe
        (e.g. to append a manifest line). Waits while the queue is full; raises a worker error."""
        if self._closed:
            raise RuntimeError("BackgroundWriter is closed")
        self._raise_error()
        self._queue.put((Path(path), image, pnginfo, after))

    def written(self) -> list[Path]:
        """Paths finished since the last call, in order (for progress messages on the main thread)."""
        paths = []
        while True:
            try:
                paths.append(self._written.get_nowait())
            except queue.Empty:
                return paths

    def close(self) -> None:
        """Wait until everything queued is written; raise the first worker error, if any."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        error = self._error
        if error is not None:
            self._error = None  # raised once
            raise error

    def _work(self) -> None:
        failed = False
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if failed:
                continue  # keep draining so a blocked submit() wakes up and sees the error
            path, image, pnginfo, after = item
            try:
                write_atomic(path, png_bytes(image, pnginfo))
                if after is not None:
                    after(path)
            except BaseException as exc:  # handed to the main thread, never lost
                self._error = exc
                failed = True
                continue
            self._written.put(path)

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
            return
        # The main thread is already failing (or was interrupted): still flush what was finished,
        # but let the original exception propagate rather than a secondary writer error.
        with contextlib.suppress(BaseException):
            self.close()
