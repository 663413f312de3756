"""Remembered sha256 digests of model files, so a 4 GB checkpoint is hashed once, not on every run.

Entries are keyed by the file's resolved path, size and modification time in nanoseconds (A1111
keys its ``cache.json`` by path and mtime); a file that changes in any of these is hashed afresh.
The cache is a small JSON file, ``hashes.json`` in ``$DREAMREEL_CACHE_DIR``, else
``$XDG_CACHE_HOME/dreamreel``, else ``~/.cache/dreamreel``. It is written atomically (a temporary
file in the same folder, then a rename), so a crash never leaves half a file; a damaged or unreadable
cache is ignored and written anew, and a cache that cannot be written only costs the next run a hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("dreamreel")

CACHE_FILE = "hashes.json"
VERSION = 1
MAX_ENTRIES = 500  # oldest dropped first; a few KB


def cache_dir() -> Path:
    """Where dreamreel keeps small caches: ``$DREAMREEL_CACHE_DIR``, ``$XDG_CACHE_HOME/dreamreel``,
    or ``~/.cache/dreamreel``."""
    override = os.environ.get("DREAMREEL_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "dreamreel"


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def sha256_file(path: Path) -> str:
    """The file's full sha256 as hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _key(path: Path) -> tuple[str, dict[str, int]]:
    resolved = path.resolve()
    stat = resolved.stat()
    return str(resolved), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _load() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.debug("hash cache %s unreadable (%s); starting a new one", cache_path(), exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def _save(files: dict[str, Any]) -> None:
    target = cache_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".hashes-", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"version": VERSION, "files": files}, out, indent=0, sort_keys=True)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    except OSError as exc:  # a read-only home must not stop a render
        log.debug("hash cache %s not written: %s", target, exc)


def cached_digest(path: str | Path, compute: Callable[[], str], *, kind: str = "sha256") -> str:
    """A digest of what ``path`` holds: from the cache when an entry of this ``kind`` has the file's
    resolved path, size and mtime, otherwise ``compute()`` (remembered for next time)."""
    name, stamp = _key(Path(path))
    key = name if kind == "sha256" else f"{kind}:{name}"
    files = _load()
    entry = files.get(key)
    if isinstance(entry, dict) and entry.get("size") == stamp["size"] and entry.get("mtime_ns") == stamp["mtime_ns"]:
        digest = entry.get("digest")
        if isinstance(digest, str) and digest:
            return digest
    digest = compute()
    files.pop(key, None)
    files[key] = {**stamp, "digest": digest}
    while len(files) > MAX_ENTRIES:
        files.pop(next(iter(files)))
    _save(files)
    return digest


def cached_sha256(path: str | Path) -> str:
    """The full sha256 of a file, hashed once per (path, size, mtime)."""
    path = Path(path)
    return cached_digest(path, lambda: sha256_file(path))
