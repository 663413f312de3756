"""A render worker: one Ray actor per GPU (or per CPU share) that loads its model once and renders
work units of any job into 8-bit pixels plus each frame's facts. It never touches a run folder.

This module imports no Ray: the coordinator wraps ``RenderWorker`` with ``ray.remote`` when a
cluster run starts, so the class stays a plain object (and testable without Ray).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from dreamreel.jobs.protocol import Frame
    from dreamreel.jobs.runner import Prepared
    from dreamreel.models.loading import LoadedModel
    from dreamreel.recipes.base import Recipe


@dataclass(frozen=True)
class RenderedFrame:
    """A finished frame as it crosses the wire: the picture as [H, W, 3] uint8 and everything else the
    store writes (``jobs.protocol.Frame`` with the PIL picture made on the writer's side)."""

    index: int
    seed: int
    pixels: np.ndarray
    recipe: Recipe
    parameters: str
    facts: Mapping[str, Any]

    @classmethod
    def of(cls, frame: Frame) -> RenderedFrame:
        import numpy as np

        pixels = np.asarray(frame.image.convert("RGB"), dtype=np.uint8)
        return cls(frame.index, frame.seed, pixels, frame.recipe, frame.parameters, dict(frame.facts))

    def frame(self) -> Frame:
        from PIL import Image

        from dreamreel.jobs.protocol import Frame

        image = Image.fromarray(self.pixels, "RGB")
        return Frame(self.index, self.seed, image, self.recipe, self.parameters, self.facts)


def model_key(recipe: Recipe) -> tuple[Any, ...]:
    """What decides which model a recipe renders with (``models.loading.load_model_for`` reads these)."""
    fields = ("model", "device", "dtype", "vae", "loras", "allow_unsafe_pickle", "compile")
    return tuple(repr(getattr(recipe, name, None)) for name in fields)


def device_class(model: LoadedModel) -> str:
    """The kind of device a frame's bits depend on: "cuda NVIDIA H100 80GB HBM3 float16", or on a CPU
    "cpu float32 2 threads" (oneDNN's sums depend on the thread count)."""
    import torch

    dtype = str(model.dtype).removeprefix("torch.")
    if model.device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(model.device)} {dtype}"
    if model.device.type == "cpu":
        return f"cpu {dtype} {torch.get_num_threads()} threads"
    return f"{model.device.type} {dtype}"


class RenderWorker:
    """Renders work units. ``threads``: torch's CPU threads (the count a local run uses: the bits depend on it)."""

    def __init__(self, cwd: str | None = None, threads: int | None = None) -> None:
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)  # relative paths in recipes mean what they meant where the run started
        if threads:
            import torch

            torch.set_num_threads(threads)
        self._models: dict[tuple[Any, ...], LoadedModel] = {}
        # Open feedback films: "run/film" -> (the next index its generator yields, the generator).
        self._streams: dict[str, tuple[int, Iterator[Frame]]] = {}

    def model(self, recipe: Recipe) -> LoadedModel:
        key = model_key(recipe)
        if key not in self._models:
            from dreamreel.models.loading import load_model_for

            self._models[key] = load_model_for(recipe, quiet=True)
        return self._models[key]

    def describe(self, recipes: Sequence[Recipe]) -> dict[str, Any]:
        """Load each recipe's model (once) and say what this worker is, before it renders anything."""
        from dreamreel.runs.store import software_versions

        models = [self.model(recipe) for recipe in recipes]
        facts: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "model_hashes": [model.model_hash for model in models],
            "device_class": device_class(models[0]) if models else "unknown",
            "compile": any(bool(getattr(recipe, "compile", False)) for recipe in recipes),
            **software_versions(),
        }
        import torch

        facts["cuda"] = torch.version.cuda or "none"
        return facts

    def render(
        self,
        film: str,
        prepared: Prepared,
        wanted: Sequence[int],
        history: Mapping[int, np.ndarray],
        stream: bool,
    ) -> list[RenderedFrame]:
        """The frames ``wanted`` (increasing) of one job. Independent items: the job renders the fixed
        batches holding them, whole, so each picture has the company it has locally. A stream (a
        feedback film) continues its open generator when ``wanted`` starts where it stopped, else
        starts a new one at ``wanted[0]`` fed the ``history`` frames it needs (exact 8-bit pictures)."""
        from dreamreel.jobs.runner import render_frames

        model = self.model(prepared.recipe)
        first = wanted[0]
        generator: Iterator[Frame]
        open_stream = self._streams.pop(film, None) if stream else None
        if open_stream is not None and open_stream[0] == first:
            generator = open_stream[1]
        else:
            pictures = dict(history)
            generator = render_frames(
                prepared,
                model,
                wanted=range(first, prepared.plan.count) if stream else list(wanted),
                history=_history(pictures) if pictures else None,
            )
        keep = set(wanted)
        done: list[RenderedFrame] = []
        for frame in generator:
            if frame.index in keep:
                done.append(RenderedFrame.of(frame))
            if frame.index >= wanted[-1]:
                break
        if stream and wanted[-1] + 1 < prepared.plan.count:
            self._streams[film] = (wanted[-1] + 1, generator)
        return done

    def pid(self) -> int:
        return os.getpid()


def _history(pictures: Mapping[int, np.ndarray]) -> Any:
    """Earlier frames as the job holds them: [1, 3, H, W] in [0, 1], ``byte / 255`` exactly (as
    ``jobs.runner.history_of`` reads them from a run folder)."""
    from PIL import Image

    from dreamreel.media.pictures import to_unit_tensor

    def history(index: int) -> Any:
        return to_unit_tensor([Image.fromarray(pictures[index], "RGB")])

    return history
