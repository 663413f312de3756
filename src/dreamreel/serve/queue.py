"""The server's job queue: one worker thread, one loaded model, every job a file on disk.

Each job is ``OUT/.dreamreel/queue/ID.json`` (its resolved recipe, state and order), written
atomically whenever its state changes, so a restarted server finds its queued jobs still queued and
the job that was running listed as interrupted, to be resumed exactly through ``runner.resume`` (its
run folder for a video; the output folder's incomplete seed loops for stills).

Progress goes out as numbered events (``Events``); the page and the A1111 ``/progress`` endpoint
read the same snapshot. Jobs run through ``runner.run_job`` like on the command line, so a picture
made here equals the CLI's.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel.errors import DreamreelError
from dreamreel.jobs import recipe_from_dict
from dreamreel.jobs.runner import prepare, resume, run_job
from dreamreel.recipes.base import Recipe, VideoRecipe
from dreamreel.runs.files import write_atomic
from dreamreel.runs.interrupts import Interrupted
from dreamreel.runs.seed_loops import RECORD_FOLDER

if TYPE_CHECKING:
    import torch

    from dreamreel.models.loading import LoadedModel

log = logging.getLogger("dreamreel.serve")

QUEUE_FOLDER = "queue"
STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
PREVIEW_INTERVAL = 0.25  # s: at most 4 previews a second
# SD 1.x latents to RGB: the linear approximation A1111 and ComfyUI use for cheap previews (a 4x3
# matrix fitted to the VAE decoder's output); no VAE call, so previews cost almost nothing.
SD1_LATENT_RGB = ((0.298, 0.207, 0.208), (0.187, 0.286, 0.173), (-0.158, 0.189, 0.264), (-0.184, -0.271, -0.473))


@dataclass
class Event:
    id: int
    job: str
    kind: str  # state, step, picture, frame, preview, message, done, error, model
    data: dict[str, Any]


class Events:
    """Numbered events, kept in memory for replay (``Last-Event-ID``); ids only grow."""

    def __init__(self, keep: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._events: deque[Event] = deque(maxlen=keep)
        self._next = 1

    def publish(self, job: str, kind: str, data: dict[str, Any]) -> int:
        with self._lock:
            event = Event(self._next, job, kind, data)
            self._next += 1
            self._events.append(event)
            return event.id

    def since(self, last_id: int, job: str | None = None) -> list[Event]:
        with self._lock:
            return [e for e in self._events if e.id > last_id and (job is None or e.job == job)]

    @property
    def last_id(self) -> int:
        with self._lock:
            return self._next - 1


@dataclass
class QueuedJob:
    """One job as it is kept on disk (``progress`` and the preview live in memory only)."""

    id: str
    job: str
    recipe: dict[str, Any]
    state: str = "queued"
    order: float = 0.0
    created: float = 0.0
    resume: bool = False  # run through runner.resume (an interrupted job)
    outputs: list[str] = field(default_factory=list)  # paths relative to the output folder
    error: str = ""
    progress: float = 0.0
    eta: float | None = None
    step: int = 0
    steps: int = 0
    preview: str | None = None  # a data: URL

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("preview")
        return data

    def to_file(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("progress", "eta", "step", "steps", "preview"):
            data.pop(name)
        return data


def latents_preview(latents: torch.Tensor) -> str | None:
    """The first picture of a batch of SD latents as a small PNG data URL, or None when the latents
    are not SD 1.x's 4 channels."""
    import torch
    from PIL import Image

    if latents.ndim != 4 or latents.shape[1] != len(SD1_LATENT_RGB):
        return None
    with torch.no_grad():
        factors = torch.tensor(SD1_LATENT_RGB, dtype=torch.float32)
        rgb = torch.einsum("chw,cr->hwr", latents[0].detach().float().cpu(), factors)
        pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class JobReporter:
    """A ``runner.Reporter`` that turns a run into events (and stops it when cancelled)."""

    def __init__(self, queue: JobQueue, job: QueuedJob, count: int, previews: bool) -> None:
        self.queue, self.job, self.count, self.previews = queue, job, max(count, 1), previews
        self.done = 0
        self.started = time.monotonic()
        self.last_preview = 0.0
        self.encoding = False
        self.unit = "picture"  # the event a finished item sends: picture (stills) or frame (videos)

    def message(self, text: str) -> None:
        self.queue.events.publish(self.job.id, "message", {"text": text})

    def begin(self, total: int, unit: str) -> None:
        self.encoding = unit == "encoded frame"
        self.unit = "frame" if unit == "frame" else "picture"
        if not self.encoding:  # a resume counts what is left: the finished part is done already
            self.done = max(self.done, self.count - total)

    def step(self, step: int, total: int, latents: torch.Tensor | None = None) -> None:
        if self.queue.cancel_requested(self.job.id):
            raise Interrupted("cancelled; finished work is kept")
        batch = int(latents.shape[0]) if latents is not None and latents.ndim == 4 else 1
        self._progress(self.done + batch * step / max(total, 1), step=step, steps=total)
        now = time.monotonic()
        if self.previews and latents is not None and now - self.last_preview >= PREVIEW_INTERVAL:
            self.last_preview = now
            preview = latents_preview(latents)
            if preview is not None:
                self.job.preview = preview
                self.queue.events.publish(self.job.id, "preview", {"image": preview})

    def item(self, path: Path | None) -> None:
        if self.encoding:
            return
        self.done += 1
        data: dict[str, Any] = {}
        if path is not None:
            relative = self.queue.relative(path)
            self.job.outputs.append(relative)
            data["path"] = relative
        self._progress(self.done, kind=self.unit, **data)

    def end(self) -> None:
        pass

    def _progress(self, done: float, kind: str = "step", **data: Any) -> None:
        progress = min(1.0, max(self.job.progress, done / self.count))  # never backwards
        elapsed = time.monotonic() - self.started
        eta = elapsed / progress * (1 - progress) if progress > 0 else None
        self.job.progress, self.job.eta = progress, eta
        if "step" in data:
            self.job.step, self.job.steps = data["step"], data["steps"]
        self.queue.events.publish(self.job.id, kind, {"progress": progress, "eta": eta, **data})


class JobQueue:
    """The queue of one server: jobs on disk in ``out``, run one at a time by a worker thread with
    the model ``load`` returns (called once, in the worker, so the page is up before it loads)."""

    def __init__(self, out: Path, load: Callable[[], LoadedModel], *, model_spec: str, previews: bool = True) -> None:
        self.out = out
        self.folder = out / RECORD_FOLDER / QUEUE_FOLDER
        self.model_spec = model_spec
        self.previews = previews
        self.events = Events()
        self.model: LoadedModel | None = None
        self.model_error = ""
        self._load = load
        self._lock = threading.Condition()
        self._jobs: dict[str, QueuedJob] = {}
        self._cancel: set[str] = set()
        self._finished: dict[str, threading.Event] = {}
        self._stop = False
        self.closing = False  # the server is stopping: event streams end
        self._thread: threading.Thread | None = None
        self.current: str | None = None
        self._read_folder()

    # -- the queue on disk --------------------------------------------------------------------

    def _read_folder(self) -> None:
        """Jobs of an earlier server: queued ones stay queued; a running one was interrupted."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.json")):
            try:
                job = QueuedJob(**json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping damaged queue file %s: %s", path, exc)
                continue
            if job.state == "running":
                job.state = "interrupted"
                self._save(job)
            self._jobs[job.id] = job

    def _save(self, job: QueuedJob) -> None:
        write_atomic(self.folder / f"{job.id}.json", json.dumps(job.to_file(), indent=1).encode())

    def relative(self, path: Path) -> str:
        try:
            return Path(path).resolve().relative_to(self.out.resolve()).as_posix()
        except ValueError:
            return str(path)

    # -- what the web side asks ---------------------------------------------------------------

    def submit(self, recipe: Recipe, *, resume: bool = False) -> QueuedJob:
        """Check and plan (one-line DreamreelError on bad input), then queue; nothing renders here
        (``resume``: the job continues its run folder)."""
        if self.model_error:
            raise DreamreelError(f"the server's model did not load: {self.model_error}")
        prepared = prepare(recipe, model_given=True)
        with self._lock:
            order = max((j.order for j in self._jobs.values()), default=0.0) + 1
            job = QueuedJob(
                id=f"{int(time.time() * 1000):x}{secrets.token_hex(2)}",
                job=prepared.recipe.job,
                recipe=prepared.recipe.to_dict(),
                order=order,
                created=time.time(),
                resume=resume,
            )
            self._jobs[job.id] = job
            self._finished[job.id] = threading.Event()
            self._save(job)
            self._lock.notify_all()
        self._announce(job)
        return job

    def jobs(self) -> list[QueuedJob]:
        with self._lock:
            rank = {"running": 0, "queued": 1}  # then finished ones, newest first
            return sorted(self._jobs.values(),
                          key=lambda j: (rank.get(j.state, 2), j.order if j.state == "queued" else -j.created))  # fmt: skip

    def get(self, job_id: str) -> QueuedJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise DreamreelError(f"no job {job_id!r}")
        return job

    def cancel(self, job_id: str) -> QueuedJob:
        job = self.get(job_id)
        with self._lock:
            if job.state == "queued":
                job.state = "cancelled"
                self._save(job)
                self._finish(job)
            elif job.state == "running":
                self._cancel.add(job_id)
            else:
                raise DreamreelError(f"job {job_id} is {job.state}; only queued or running jobs can be cancelled")
        self._announce(job)
        return job

    def interrupt(self) -> None:
        """Stop the running job (A1111's /interrupt)."""
        with self._lock:
            if self.current is not None:
                self._cancel.add(self.current)

    def move(self, job_id: str, before: str | None) -> QueuedJob:
        """Put a queued job before another queued job (``before`` None: last)."""
        job = self.get(job_id)
        with self._lock:
            if job.state != "queued":
                raise DreamreelError(f"job {job_id} is {job.state}; only queued jobs move")
            orders = sorted(j.order for j in self._jobs.values() if j.state == "queued" and j.id != job_id)
            if before is None:
                job.order = (orders[-1] if orders else 0) + 1
            else:
                target = self._jobs.get(before)
                if target is None or target.state != "queued":
                    raise DreamreelError(f"no queued job {before!r} to move before")
                earlier = [o for o in orders if o < target.order]
                job.order = ((earlier[-1] if earlier else target.order - 1) + target.order) / 2
            self._save(job)
        self._announce(job)
        return job

    def resume_job(self, job_id: str) -> QueuedJob:
        """Queue an interrupted job again: it continues where it stopped (runner.resume)."""
        job = self.get(job_id)
        with self._lock:
            if job.state != "interrupted":
                raise DreamreelError(f"job {job_id} is {job.state}; only interrupted jobs resume")
            job.state, job.resume, job.error = "queued", True, ""
            job.order = max((j.order for j in self._jobs.values()), default=0.0) + 1
            self._finished[job.id] = threading.Event()
            self._save(job)
            self._lock.notify_all()
        self._announce(job)
        return job

    def resume_run(self, folder: Path) -> QueuedJob:
        """Queue the resume of a run folder that no queued job owns (a CLI run killed midway)."""
        from dreamreel.jobs.runner import recipe_of_run

        recipe = recipe_of_run(folder)
        with self._lock:
            for job in self._jobs.values():
                if job.recipe.get("output") == recipe.to_dict().get("output") and job.state in ("queued", "running"):
                    return job
        job = self.submit(recipe, resume=True)
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> QueuedJob:
        with self._lock:
            finished = self._finished.setdefault(job_id, threading.Event())
        finished.wait(timeout)
        return self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._cancel

    # -- the worker ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="dreamreel-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        with self._lock:
            self._stop = True
            if self.current is not None:
                self._cancel.add(self.current)
            self._lock.notify_all()
        if self._thread is not None and self.model is not None:  # a model still loading is not waited for
            self._thread.join(timeout)

    def _next(self) -> QueuedJob | None:
        with self._lock:
            while not self._stop:
                queued = [j for j in self._jobs.values() if j.state == "queued"]
                if queued:
                    job = min(queued, key=lambda j: j.order)
                    job.state, job.progress, job.outputs = "running", 0.0, []
                    self.current = job.id
                    self._save(job)
                    return job
                self._lock.wait()
            return None

    def _work(self) -> None:
        try:
            self.model = self._load()
        except Exception as exc:
            self.model_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.error("the model did not load: %s", self.model_error)
            with self._lock:  # nothing can run: say so on every waiting job
                for waiting in self._jobs.values():
                    if waiting.state == "queued":
                        waiting.state = "failed"
                        waiting.error = f"the server's model did not load: {self.model_error}"
                        self._save(waiting)
                        self._finish(waiting)
                        self.events.publish(waiting.id, "error", {"message": waiting.error})
            return
        self.events.publish("", "model", {"loaded": True})
        while (job := self._next()) is not None:
            self._announce(job)
            self._run(job)
            with self._lock:
                self.current = None
                self._cancel.discard(job.id)
                self._save(job)
                self._finish(job)
            self._announce(job)

    def _run(self, job: QueuedJob) -> None:
        assert self.model is not None
        try:
            recipe = recipe_from_dict(job.recipe)
            prepared = prepare(recipe, model_given=True)
            reporter = JobReporter(self, job, prepared.plan.count, self.previews)
            if job.resume:
                target = recipe.run_dir if isinstance(recipe, VideoRecipe) else Path(getattr(recipe, "out", self.out))
                written = resume(target, model=self.model, reporter=reporter)
            else:
                written = run_job(prepared, model=self.model, reporter=reporter)
            if not prepared.job.stills:
                job.outputs = [self.relative(p) for p in written]
            job.state, job.progress = "done", 1.0
            self.events.publish(job.id, "done", {"outputs": job.outputs})
        except Interrupted as exc:
            # a video keeps its run folder (resumable); a server shutdown leaves any job resumable
            video = isinstance(recipe_from_dict(job.recipe), VideoRecipe)
            job.state = "interrupted" if video or self._stop else "cancelled"
            job.error = str(exc)
            self.events.publish(job.id, "error", {"message": job.error})
        except DreamreelError as exc:
            job.state, job.error = "failed", str(exc)
            self.events.publish(job.id, "error", {"message": job.error})
        except Exception as exc:  # a bug: the server lives on, the job says what happened in one line
            log.exception("job %s failed", job.id)
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
            self.events.publish(job.id, "error", {"message": job.error})

    def _finish(self, job: QueuedJob) -> None:
        self._finished.setdefault(job.id, threading.Event()).set()

    def _announce(self, job: QueuedJob) -> None:
        self.events.publish(job.id, "state", job.public())
