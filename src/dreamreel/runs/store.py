"""The run folder every video job writes: ``NAME.run/`` beside ``NAME.mp4``.

    NAME.run/recipe.toml        everything needed to re-run (and to resume)
    NAME.run/frames/000000.png  one PNG per finished frame, written atomically (temp, fsync, rename)
    NAME.run/manifest.jsonl     one JSON line per finished frame, appended and fsynced only after
                                the frame file is safe: index, seed, values, time, file, sha256
    NAME.run/run.json           what a resume must match to be exact: dreamreel/diffusers/torch
                                versions, the recipe file's sha256, the model hash (and any --force)

A run killed at any moment loses at most the frame in flight: a frame counts as done only when its
manifest line is complete and its file is present with the recorded sha256 (see ``done``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dreamreel.errors import DreamreelError
from dreamreel.runs.files import fsync_directory, png_bytes, write_atomic

if TYPE_CHECKING:
    from PIL import Image

    from dreamreel.recipes.base import Recipe


class FinishedFrame(Protocol):
    """What the store needs of a finished frame (``jobs.protocol.Frame`` is one)."""

    @property
    def index(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def image(self) -> Image.Image: ...
    @property
    def recipe(self) -> Recipe: ...
    @property
    def parameters(self) -> str: ...
    @property
    def facts(self) -> Mapping[str, Any]: ...

RECIPE_NAME = "recipe.toml"
MANIFEST_NAME = "manifest.jsonl"
RUN_INFO_NAME = "run.json"
FRAMES_NAME = "frames"


@dataclass(frozen=True)
class FrameRecord:
    """One manifest line: a finished frame."""

    index: int
    seed: int
    file: str  # relative to the run folder
    sha256: str
    values: dict[str, Any] = field(default_factory=dict)  # schedule/sweep values of this frame
    time: Fraction | None = None  # presentation time (vid2vid keeps the source's timestamps)

    def to_json(self) -> str:
        data: dict[str, Any] = {"index": self.index, "seed": self.seed, "values": self.values}
        if self.time is not None:
            data["time"] = str(self.time)
        data.update(file=self.file, sha256=self.sha256)
        return json.dumps(data, ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_json(cls, line: str) -> FrameRecord:
        data = json.loads(line)
        time = data.get("time")
        return cls(
            index=int(data["index"]),
            seed=int(data["seed"]),
            file=str(data["file"]),
            sha256=str(data["sha256"]),
            values=dict(data.get("values") or {}),
            time=Fraction(time) if time is not None else None,
        )


def software_versions() -> dict[str, str]:
    """Versions whose change can alter frames (read from package metadata: no heavy imports)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("dreamreel", "diffusers", "torch"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found


def frame_name(index: int) -> str:
    return f"{FRAMES_NAME}/{index:06d}.png"


class RunStore:
    """A run folder: create it for a new run, or open it to read back / continue an earlier one."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    # -- creating and opening ----------------------------------------------------------------

    @classmethod
    def create(cls, folder: str | Path, recipe: Recipe) -> RunStore:
        """Start a new run: write recipe.toml, empty the frames and manifest of any earlier run there.

        A folder that exists but is not a run folder (no recipe.toml, not empty) is never touched.
        """
        from dreamreel.recipes.serial import recipe_to_toml

        store = cls(folder)
        path = store.folder
        if path.exists() and not path.is_dir():
            raise DreamreelError(f"run folder {str(path)!r} exists and is not a folder")
        if path.is_dir() and any(path.iterdir()) and not (path / RECIPE_NAME).is_file():
            raise DreamreelError(
                f"{str(path)!r} exists and is not a dreamreel run folder; move it away or choose another -o"
            )
        try:
            (path / FRAMES_NAME).mkdir(parents=True, exist_ok=True)
            (path / MANIFEST_NAME).unlink(missing_ok=True)
            for old in (path / FRAMES_NAME).glob("*.png"):
                old.unlink()
        except OSError as exc:
            reason = exc.strerror or exc
            raise DreamreelError(f"could not prepare run folder {str(path)!r}: {reason}") from exc
        recipe_bytes = recipe_to_toml(recipe).encode("utf-8")
        write_atomic(path / RECIPE_NAME, recipe_bytes)
        write_atomic(path / MANIFEST_NAME, b"")
        store.write_info({**software_versions(), "recipe_sha256": hashlib.sha256(recipe_bytes).hexdigest()})
        return store

    @classmethod
    def open(cls, folder: str | Path) -> RunStore:
        """An existing run folder (for resume and info)."""
        store = cls(folder)
        if not store.folder.is_dir():
            raise DreamreelError(f"run folder {str(folder)!r} does not exist")
        if not (store.folder / RECIPE_NAME).is_file():
            raise DreamreelError(f"{str(folder)!r} is not a dreamreel run folder (no {RECIPE_NAME})")
        return store

    # -- what a resume must match ----------------------------------------------------------------

    def read_info(self) -> dict[str, Any]:
        path = self.folder / RUN_INFO_NAME
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError) as exc:
            raise DreamreelError(f"{str(path)!r} is damaged: {exc}") from exc

    def write_info(self, info: dict[str, Any]) -> None:
        write_atomic(self.folder / RUN_INFO_NAME, json.dumps(info, indent=1, sort_keys=True).encode("utf-8"))

    def resume_conflicts(self) -> list[str]:
        """Why continuing this run now would not give the frames an unbroken run gives (before the model loads)."""
        info = self.read_info()
        problems = []
        for name, version in software_versions().items():
            if name in info and info[name] != version:
                problems.append(f"it was started with {name} {info[name]}, this is {name} {version}")
        recipe_sha = hashlib.sha256((self.folder / RECIPE_NAME).read_bytes()).hexdigest()
        if info.get("recipe_sha256", recipe_sha) != recipe_sha:
            problems.append(f"{RECIPE_NAME} was edited after the run started")
        return problems

    def model_conflict(self, model_hash: str) -> str | None:
        """Record the model hash on first use; on a resume, say if the model differs."""
        info = self.read_info()
        known = info.get("model_hash")
        if known is None:
            self.write_info({**info, "model_hash": model_hash})
            return None
        if known != model_hash:
            return f"it was started with model hash {known}, the model loaded now has {model_hash}"
        return None

    def record_forced(self, reasons: list[str]) -> None:
        info = self.read_info()
        info.setdefault("forced_resumes", []).append({"after_frames": len(self.done()), "reasons": reasons})
        self.write_info(info)

    def recipe_data(self) -> dict[str, Any]:
        """The recipe file's data (``jobs.recipe_from_dict`` makes the recipe of it)."""
        from dreamreel.recipes.serial import read_toml

        return read_toml(self.folder / RECIPE_NAME)

    @staticmethod
    def is_run_folder(folder: str | Path) -> bool:
        return (Path(folder) / RECIPE_NAME).is_file()

    # -- writing -------------------------------------------------------------------------------

    def frame_path(self, index: int) -> Path:
        return self.folder / frame_name(index)

    def save(self, item: FinishedFrame, *, time: Fraction | None = None) -> FrameRecord:
        """Write one finished frame atomically, then append (and fsync) its manifest line.

        The PNG carries the still's metadata plus ``facts["frame"]`` (its index); the job puts the
        frame's schedule values in ``item.facts["values"]``.
        """
        values = dict(item.facts.get("values") or {})
        facts = dict(item.facts)
        facts["frame"] = item.index
        facts["values"] = values
        if time is not None:
            facts["time"] = str(time)
        from dreamreel.runs.metadata import png_info

        data = png_bytes(item.image, png_info(item.parameters, item.recipe.to_dict(), facts))
        write_atomic(self.frame_path(item.index), data)
        record = FrameRecord(
            index=item.index,
            seed=item.seed,
            file=frame_name(item.index),
            sha256=hashlib.sha256(data).hexdigest(),
            values=values,
            time=time,
        )
        self._append(record.to_json())
        return record

    def _append(self, line: str) -> None:
        path = self.folder / MANIFEST_NAME
        try:
            self._drop_torn_tail(path)
            with open(path, "ab") as handle:
                handle.write(line.encode("utf-8") + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise DreamreelError(f"could not append to {str(path)!r}: {exc.strerror or exc}") from exc
        fsync_directory(self.folder)

    @staticmethod
    def _drop_torn_tail(path: Path) -> None:
        """A line cut off by a crash has no newline; cut it away so the next line starts clean."""
        if not path.exists() or path.stat().st_size == 0:
            return
        with open(path, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
            handle.seek(0)
            data = handle.read()
            handle.truncate(data.rfind(b"\n") + 1)
            handle.flush()
            os.fsync(handle.fileno())

    def truncate(self, count: int) -> None:
        """Keep only the first ``count`` finished frames in the manifest (a resume continues from there)."""
        kept = [r.to_json() + "\n" for r in self.done()[:count]]
        write_atomic(self.folder / MANIFEST_NAME, "".join(kept).encode("utf-8"))

    # -- reading -------------------------------------------------------------------------------

    def records(self) -> list[FrameRecord]:
        """Every well-formed manifest line, in file order (a torn or damaged line is skipped)."""
        path = self.folder / MANIFEST_NAME
        if not path.is_file():
            return []
        records = []
        for line in path.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                records.append(FrameRecord.from_json(line.decode("utf-8")))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                continue
        return records

    def done(self) -> list[FrameRecord]:
        """The frames safely finished: 0, 1, 2, ... each with its file present and its sha256 matching.

        Stops at the first frame that is missing or damaged, so a resume starts there and every
        earlier frame can be trusted. A later manifest line for an index wins (a re-rendered frame).
        """
        latest: dict[int, FrameRecord] = {}
        for record in self.records():
            latest[record.index] = record
        finished: list[FrameRecord] = []
        while (found := latest.get(len(finished))) is not None and self._intact(found):
            finished.append(found)
        return finished

    def _intact(self, record: FrameRecord) -> bool:
        path = self.folder / record.file
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() == record.sha256
        except OSError:
            return False

    def read_frame(self, index: int) -> Image.Image:
        """A finished frame as an RGB picture (exactly what was rendered: PNG is lossless)."""
        from PIL import Image

        path = self.frame_path(index)
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except OSError as exc:
            raise DreamreelError(f"frame {str(path)!r} cannot be read: {exc}") from exc
