"""Writing files so that a crash never leaves a half-written one under the final name."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from dreamreel.errors import DreamreelError


def fsync_directory(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename over ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DreamreelError(f"could not write {str(path)!r}: {exc.strerror or exc}") from exc
    fsync_directory(path.parent)


def png_bytes(image: Any, pnginfo: Any = None) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=pnginfo)
    return buffer.getvalue()


_STILL_NAME = re.compile(r"^(\d{5,})-")


def next_still_index(folder: Path) -> int:
    """A1111's numbering: one more than the highest ``NNNNN-`` prefix already in the folder."""
    if not folder.is_dir():
        return 0
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _STILL_NAME.match(p.name))]
    return max(numbers, default=-1) + 1


def still_name(index: int, seed: int) -> str:
    return f"{index:05d}-{seed}.png"
