"""The writer: the one process that owns the run folders, hands work units to Ray workers as they ask
for them, and commits finished frames strictly in index order through the existing stores.

Work units are the fixed batches a local run uses (``render.renderer.fixed_batches`` of the recipe's
``--batch``), so every item is rendered in the same company as locally and gives the same bits. A
film whose frames read earlier frames (``job.needs``: zoom, vid2vid with feedback or colour match
"first") is one stream on one worker, asked for a few frames at a time; when that worker dies the
stream continues on another one at its first missing frame, fed the frames it needs from the run
folder (exact 8-bit pictures), never from frame 0.

A unit is ``UNIT_FRAMES`` (4) items rounded up to whole batches. Pull-based: each worker holds at
most ``IN_FLIGHT`` units (one rendering, one queued so it never waits on the writer), and gets the
next unit when one comes back, so a fast GPU does more. A unit whose worker dies goes back to the
queue (a replacement worker starts when much work remains); the same unit failing ``MAX_ATTEMPTS``
times stops the run. Rendered-but-uncommitted frames are bounded: a unit is handed out only while
the frames held back for order plus those in flight stay within ``2 * workers * unit`` frames (the
unit holding a film's next frame always goes, so at most one unit more), so a writer crash loses at
most that much rendering; everything committed stays.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamreel.cluster.worker import RenderedFrame, RenderWorker, model_key
from dreamreel.errors import DreamreelError
from dreamreel.jobs.runner import (
    Prepared,
    Reporter,
    Silent,
    check_resumable,
    commit_frame,
    finish_video,
    prepare,
    recipe_of_run,
    resume_folder,
)
from dreamreel.recipes.base import Recipe, SeedLoopRecipe, VideoRecipe
from dreamreel.runs.interrupts import resumable
from dreamreel.runs.seed_loops import SeedLoop, incomplete_loops
from dreamreel.runs.store import RunStore

if TYPE_CHECKING:
    import numpy as np

    from dreamreel.runs.writer import BackgroundWriter

# Workers of finished runs, kept warm (model loaded) for the next run of this process: by actor options.
_IDLE: dict[tuple[Any, ...], list[Any]] = {}

IN_FLIGHT = 2  # units per worker: one rendering, one waiting behind it
MAX_ATTEMPTS = 3  # a unit failing this often stops the run
STREAM_CHUNK = 2  # frames of a feedback film per call (committed as they come back)
UNIT_FRAMES = 4  # independent items per call, whole fixed batches (fewer calls; vid2vid seeks its source once)
LOOKAHEAD_PER_WORKER = 2  # units: rendered-but-uncommitted frames stay within this * workers * unit
REPLACE_ABOVE = 2  # a lost worker is replaced while more than this many lookaheads of frames remain


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker reported about itself (``RenderWorker.describe``) and its number in this run."""

    number: int
    facts: dict[str, Any]

    @property
    def pid(self) -> int:
        return int(self.facts["pid"])


@dataclass(frozen=True)
class Commit:
    """One frame made safe: which film (position in the recipes given), which frame, which worker."""

    film: int
    index: int
    worker: WorkerInfo


@dataclass
class ClusterResult:
    """What a cluster run wrote and how it went."""

    outputs: list[list[Path]]  # per film: [video] or its pictures
    rendered: dict[int, int] = field(default_factory=dict)  # film -> frames that came back from workers
    restarts: dict[int, list[int]] = field(default_factory=dict)  # film -> frames a stream was (re)opened at
    workers_lost: int = 0
    forced: list[str] = field(default_factory=list)  # workers accepted with --force, and why


@dataclass
class _Unit:
    film: int
    positions: list[int]
    attempts: int = 0
    opening: bool = False  # a stream's first unit on a worker: it carries the history


@dataclass
class _Film:
    number: int
    prepared: Prepared
    wanted: list[int]  # positions to render, increasing
    stream: bool
    store: RunStore | None = None
    loop: SeedLoop | None = None
    writer: BackgroundWriter | None = None
    ref: Any = None  # the Prepared, put once into Ray's object store
    committed: int = 0  # how many of ``wanted`` are safe
    held: dict[int, RenderedFrame] = field(default_factory=dict)  # back early, waiting for their turn
    owner: _Worker | None = None  # a stream's worker
    next_to_send: int = 0  # a stream's next position to ask for
    expected_hash: str | None = None
    written: list[Path] = field(default_factory=list)
    failures: dict[int, int] = field(default_factory=dict)  # a stream: failed tries per frame it reopens at

    @property
    def done(self) -> bool:
        return self.committed >= len(self.wanted)

    @property
    def next_position(self) -> int | None:
        return self.wanted[self.committed] if not self.done else None

    @property
    def label(self) -> str:
        folder = self.store.folder if self.store is not None else self.loop.folder if self.loop else "?"
        return str(folder)


@dataclass
class _Worker:
    number: int
    handle: Any
    info: WorkerInfo | None = None
    hello: Any = None  # the describe() call until it answers
    inflight: list[tuple[Any, _Unit]] = field(default_factory=list)
    alive: bool = True


def run_on_cluster(
    recipes: Recipe | Prepared | Sequence[Recipe | Prepared],
    *,
    workers: int | None = None,
    address: str | None = "auto",
    force: bool = False,
    reporter: Reporter | None = None,
    on_commit: Callable[[Commit], None] | None = None,
) -> ClusterResult:
    """Render one or many recipes on a Ray cluster, exactly as a local run renders them.

    ``address``: "auto" starts a local Ray instance (or joins ``RAY_ADDRESS``); any other value is a
    running cluster's address (``ray start --head`` prints it). Inside a process where Ray is already
    initialised, that instance is used. ``workers``: how many render workers (default: one per GPU of
    the cluster, else one per CPU). ``force``: accept workers whose model or device class differs from
    the run's (recorded in run.json). ``on_commit`` is called after each frame is safe.
    """
    given = [recipes] if isinstance(recipes, Recipe | Prepared) else recipes
    films = [_new_film(n, r if isinstance(r, Prepared) else prepare(r)) for n, r in enumerate(given)]
    return _Coordinator(films, workers, address, force, reporter or Silent(), on_commit).run()


def resume_on_cluster(
    targets: str | Path | Sequence[str | Path],
    *,
    workers: int | None = None,
    address: str | None = "auto",
    force: bool = False,
    reporter: Reporter | None = None,
    on_commit: Callable[[Commit], None] | None = None,
) -> ClusterResult:
    """Finish interrupted work on a cluster (as ``jobs.runner.resume`` does locally): video run
    folders (``NAME.run`` or ``NAME.mp4``) and output folders with incomplete seed loops."""
    report = reporter or Silent()
    films: list[_Film] = []
    for target in [targets] if isinstance(targets, str | Path) else targets:
        folder = resume_folder(target)
        if RunStore.is_run_folder(folder):
            films.append(_resumed_film(len(films), folder, force, report))
            continue
        from dreamreel.jobs import recipe_from_dict

        loops = incomplete_loops(folder, recipe_from_dict)
        if not loops:
            report.message(f"nothing to resume in {folder}")
        for loop in loops:
            wanted = loop.missing_positions()
            report.message(f"resuming {loop.record.name}: {len(wanted)} of {len(loop.recipe.seeds)} pictures to render")
            film = _new_film(len(films), prepare(loop.recipe), loop=loop)
            film.wanted = wanted
            films.append(film)
    return _Coordinator(films, workers, address, force, report, on_commit).run()


def _new_film(number: int, prepared: Prepared, loop: SeedLoop | None = None) -> _Film:
    recipe = prepared.recipe
    count = prepared.plan.count
    stream = any(prepared.job.needs(recipe, k) for k in range(count))
    return _Film(number, prepared, list(range(count)), stream, loop=loop)


def _resumed_film(number: int, folder: Path, force: bool, report: Reporter) -> _Film:
    prepared = prepare(recipe_of_run(folder))
    store = RunStore.open(folder)
    check_resumable(store.resume_conflicts(), store, force, report)
    start = len(store.done())
    store.truncate(start)
    film = _new_film(number, prepared)
    film.store = store
    film.wanted = list(range(start, prepared.plan.count))
    return film


class _Coordinator:
    def __init__(
        self,
        films: list[_Film],
        workers: int | None,
        address: str | None,
        force: bool,
        report: Reporter,
        on_commit: Callable[[Commit], None] | None,
    ) -> None:
        self.films = films
        self.requested = workers
        self.address = address
        self.force = force
        self.report = report
        self.on_commit = on_commit
        self.workers: list[_Worker] = []
        self.refusals: list[str] = []
        self.queue: deque[_Unit] = deque()
        self.result = ClusterResult(outputs=[[] for _ in films])
        self.ray: Any = None
        self.actor_class: Any = None
        self.spares = 0  # replacements a run may start for lost workers
        self.limit = 1
        self.resume_command = "dreamreel resume " + " ".join(shlex.quote(f.label) for f in films)
        self.run_id = uuid.uuid4().hex
        self.pool_key: tuple[Any, ...] = ()

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> ClusterResult:
        for film in self.films:
            self._open_output(film)
        self.resume_command = "dreamreel resume " + " ".join(shlex.quote(f.label) for f in self.films)
        todo = [f for f in self.films if not f.done]
        started = finished = False
        try:
            if todo:  # workers start and introduce themselves (refusals) before anything renders
                started = self._connect()
                self._start_workers(todo)
            with resumable(self.resume_command):
                if todo:
                    self._render(todo)
                self._finish()
            finished = True
        finally:
            for film in self.films:
                if film.writer is not None:
                    film.writer.close()
            self._stop_workers(keep=finished and not started)
            if started:
                _IDLE.clear()
                self.ray.shutdown()
        return self.result

    def _open_output(self, film: _Film) -> None:
        recipe = film.prepared.recipe
        if film.prepared.job.stills:
            assert isinstance(recipe, SeedLoopRecipe)
            from dreamreel.runs.writer import BackgroundWriter

            film.loop = film.loop or SeedLoop.start(recipe)
            film.writer = BackgroundWriter()
        elif film.store is None:
            assert isinstance(recipe, VideoRecipe)
            film.store = RunStore.create(recipe.run_dir, recipe)

    def _connect(self) -> bool:
        """Join or start Ray; True when this run started it (and so stops it)."""
        local = self.address in (None, "", "auto") and not os.environ.get("RAY_ADDRESS")
        if local:  # a machine-local instance: Ray's switch that binds every server to 127.0.0.1 only,
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            os.environ.setdefault("RAY_worker_niceness", "0")  # and workers as urgent as a local run (Ray: 15)
        try:
            import ray
        except ImportError:
            raise DreamreelError('--cluster needs Ray: pip install "dreamreel[cluster]"') from None
        self.ray = ray
        if ray.is_initialized():
            return False
        address = self.address
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if local:
            import torch

            gpus = torch.cuda.device_count()
            cpus = os.cpu_count() or 1
            options.update(num_cpus=max(cpus, self.requested or 1), num_gpus=gpus)
            address = None
        try:
            ray.init(address=address, **options)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise DreamreelError(f"could not reach the Ray cluster at {self.address}: {exc}") from None
        return True

    def _start_workers(self, todo: list[_Film]) -> None:
        ray = self.ray
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        count = self.requested or gpus or cpus
        if count < 1:
            raise DreamreelError(f"--workers must be at least 1, got {count}")
        if gpus:  # one per GPU; more workers than GPUs share them
            options: dict[str, Any] = {"num_gpus": min(1.0, gpus / count), "num_cpus": 0}
            threads = None
        else:
            import torch

            options = {"num_cpus": 1}
            # On a CPU the bits depend on torch's thread count (oneDNN splits sums by thread), and Ray
            # starts actors with one thread: workers use this process's count, as a local run does.
            threads = torch.get_num_threads()
        self.actor_class = ray.remote(**options)(RenderWorker)
        self.spawn_args = (os.getcwd(), threads)
        self.spares = count
        unit = max(max(_unit_size(f.prepared.recipe) for f in todo), STREAM_CHUNK)
        self.limit = LOOKAHEAD_PER_WORKER * count * unit
        self.recipes = [f.prepared.recipe for f in todo]
        for film in todo:
            film.ref = ray.put(film.prepared)
            film.next_to_send = film.wanted[film.committed]
            if not film.stream:
                self._queue_units(film)
        self.pool_key = (repr(sorted(options.items())), self.spawn_args, ray.get_runtime_context().gcs_address)
        idle = _IDLE.pop(self.pool_key, [])
        _IDLE[self.pool_key] = idle[count:]
        for handle in idle[:count]:
            self._spawn(handle)
        for _ in range(count - len(idle[:count])):
            self._spawn()
        self.report.message(f"cluster: {count} workers starting (each loads the model once)")
        # Every worker introduces itself (model loaded) before any renders: refusals come first.
        for _ in range(2):  # a warm worker found dead is replaced once
            while any(w.alive and w.info is None for w in self.workers):
                self._await_hellos()
            for _ in range(count - sum(w.alive for w in self.workers) - len(self.refusals)):
                self._spawn()
        if not any(w.alive for w in self.workers):
            why = self.refusals[-1] if self.refusals else "every worker died while loading the model"
            raise DreamreelError(f"{why}; --force accepts such workers (recorded in run.json)")

    def _spawn(self, warm: Any = None) -> None:
        """Start a worker (or take a warm one from an earlier run); it first describes itself."""
        handle = warm if warm is not None else self.actor_class.remote(*self.spawn_args)
        worker = _Worker(len(self.workers) + 1, handle)
        worker.hello = handle.describe.remote(self.recipes)
        self.workers.append(worker)

    def _await_hellos(self) -> None:
        pending = {w.hello: w for w in self.workers if w.alive and w.info is None}
        ready, _ = self.ray.wait(list(pending), num_returns=1)
        for ref in ready:
            self._hello(pending[ref], ref)

    def _hello(self, worker: _Worker, ref: Any) -> None:
        try:
            facts = self.ray.get(ref)
        except self.ray.exceptions.RayActorError:
            worker.alive = False
            self.report.message(f"worker {worker.number} died before it rendered")
            return
        except self.ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None
        info = WorkerInfo(worker.number, facts)
        problems = self._conflicts(info)
        if problems and not self.force:
            worker.alive = False
            self.ray.kill(worker.handle)
            self.refusals.append(f"worker {worker.number} ({facts['host']}) refused: {'; '.join(problems)}")
            self.report.message(self.refusals[-1])
            return
        if problems:
            note = f"worker {worker.number} ({facts['host']}): {'; '.join(problems)}"
            self.report.message(f"accepting anyway (--force): {note}")
            self.result.forced.append(note)
            for film in self.films:
                if film.store is not None:
                    film.store.record_forced([note])
        worker.info = info
        worker.hello = None

    def _conflicts(self, info: WorkerInfo) -> list[str]:
        """Why this worker's frames would differ from the run's: another model or device class."""
        problems = []
        hashes = dict(zip([model_key(r) for r in self.recipes], info.facts["model_hashes"], strict=True))
        device = info.facts["device_class"]
        for film in self.films:
            if film.done:
                continue
            model_hash = hashes[model_key(film.prepared.recipe)]
            if film.expected_hash is None and film.store is not None:
                film.expected_hash = film.store.read_info().get("model_hash")
            if film.expected_hash is None:
                film.expected_hash = model_hash
                if film.store is not None:
                    film.store.model_conflict(model_hash)
            elif film.expected_hash != model_hash:
                problems.append(f"it has model hash {model_hash}, {film.label} has {film.expected_hash}")
            if film.store is not None:
                known = film.store.read_info().get("device_class")
                if known is None:
                    film.store.write_info({**film.store.read_info(), "device_class": device})
                elif known != device:
                    problems.append(f"its device class is {device}, {film.label} was rendered on {known}")
        return sorted(set(problems))

    def _queue_units(self, film: _Film) -> None:
        from dreamreel.render.renderer import fixed_batches

        remaining = film.wanted[film.committed :]
        keep = set(remaining)
        for chunk in fixed_batches(remaining, film.prepared.plan.count, _unit_size(film.prepared.recipe)):
            self.queue.append(_Unit(film.number, [i for i in chunk if i in keep]))

    def _render(self, todo: list[_Film]) -> None:
        self.report.begin(sum(len(f.wanted) - f.committed for f in todo), "frame")
        try:
            while not all(f.done for f in self.films):
                self._dispatch()
                inflight = {ref: w for w in self.workers if w.alive for ref, _ in w.inflight}
                hellos = {w.hello: w for w in self.workers if w.alive and w.hello is not None}
                if not inflight and not hellos:
                    if self.spares > 0 and not any(w.alive for w in self.workers):
                        self.report.message("every worker was lost: starting new ones")
                        self.spares -= 1
                        self._spawn()
                        continue
                    raise DreamreelError("no worker is left to render (every worker was lost or refused)")
                ready, _ = self.ray.wait([*inflight, *hellos], num_returns=1)
                for ref in ready:
                    if ref in hellos:
                        self._hello(hellos[ref], ref)
                    elif inflight[ref].alive:
                        self._collect(inflight[ref], ref)
        finally:
            self.report.end()

    def _dispatch(self) -> None:
        """Pull-based: every live worker with a free slot gets the next unit it can take."""
        for worker in self.workers:
            while worker.alive and worker.info is not None and len(worker.inflight) < IN_FLIGHT:
                unit, stream = self._next_unit(worker)
                if unit is None:
                    break
                film = self.films[unit.film]
                history = self._history(film, unit.positions[0]) if unit.opening else {}
                key = f"{self.run_id}/{film.number}"
                ref = worker.handle.render.remote(key, film.ref, unit.positions, history, stream)
                worker.inflight.append((ref, unit))

    def _next_unit(self, worker: _Worker) -> tuple[_Unit | None, bool]:
        # A feedback film this worker owns continues here; then a film nobody renders yet.
        for film in sorted(self.films, key=lambda f: f.owner is not worker):
            if not film.stream or film.done or film.next_to_send >= film.prepared.plan.count:
                continue
            if film.owner is not None and film.owner is not worker:
                continue
            if film.owner is None and any(f.owner is worker for f in self.films if f.stream and not f.done):
                continue  # one film per worker while other workers may take the next one
            opening = film.owner is None
            if opening:
                film.owner = worker
                self.result.restarts.setdefault(film.number, []).append(film.next_to_send)
                if film.next_to_send > film.wanted[0]:
                    self.report.message(f"{film.label}: continues at frame {film.next_to_send} on worker {worker.number}")
            end = min(film.next_to_send + STREAM_CHUNK, film.prepared.plan.count)
            unit = _Unit(film.number, list(range(film.next_to_send, end)), film.failures.get(film.next_to_send, 0), opening)
            film.next_to_send = end
            return unit, True
        pending = sum(len(f.held) for f in self.films) + sum(
            len(u.positions) for w in self.workers if w.alive for _, u in w.inflight
        )
        for unit in self.queue:
            # The bound on rendered-but-uncommitted frames; the unit a film waits for always goes.
            if self.films[unit.film].next_position in unit.positions or pending + len(unit.positions) <= self.limit:
                self.queue.remove(unit)
                return unit, False
        return None, False

    def _history(self, film: _Film, start: int) -> dict[int, np.ndarray]:
        """The finished frames a stream opened at ``start`` reads, as exact 8-bit pictures."""
        import numpy as np

        assert film.store is not None
        needed = film.prepared.job.needs(film.prepared.recipe, start)
        return {i: np.asarray(film.store.read_frame(i), dtype=np.uint8) for i in needed}

    def _collect(self, worker: _Worker, ref: Any) -> None:
        unit = next(u for r, u in worker.inflight if r == ref)
        head = worker.inflight[0][0] == ref
        worker.inflight = [(r, u) for r, u in worker.inflight if r != ref]
        try:
            frames = self.ray.get(ref)
        except self.ray.exceptions.RayActorError:
            if head:
                unit.attempts += 1
            self._lost(worker, [unit])
            return
        except self.ray.exceptions.RayTaskError as exc:
            cause = _cause(exc)
            if isinstance(cause, DreamreelError):
                raise cause from None  # the job refused its input: as a local run would
            unit.attempts += 1
            if unit.attempts >= MAX_ATTEMPTS:
                raise _failed(self.films[unit.film], unit, cause) from None
            self.report.message(f"worker {worker.number}: {type(cause).__name__}: {cause}; trying again")
            self._give_back(unit, worker)
            return
        film = self.films[unit.film]
        self.result.rendered[film.number] = self.result.rendered.get(film.number, 0) + len(frames)
        for frame in frames:
            film.held[frame.index] = frame
        self._commit(film, worker)

    def _lost(self, worker: _Worker, units: list[_Unit]) -> None:
        worker.alive = False
        units = units + [u for _, u in worker.inflight]
        worker.inflight = []
        self.result.workers_lost += 1
        alive = sum(w.alive for w in self.workers)
        pid = worker.info.pid if worker.info else "?"
        self.report.message(f"worker {worker.number} (pid {pid}) lost; its work goes back to the queue; {alive} alive")
        for unit in units:
            if unit.attempts >= MAX_ATTEMPTS:
                raise _failed(self.films[unit.film], unit, "its worker died each time")
            self._give_back(unit, worker)
        remaining = sum(len(f.wanted) - f.committed for f in self.films)
        # A replacement loads the model first: worth it for a long run, or when nobody is left.
        if self.spares > 0 and (alive == 0 or remaining > REPLACE_ABOVE * self.limit):
            self.spares -= 1
            self._spawn()

    def _give_back(self, unit: _Unit, worker: _Worker) -> None:
        film = self.films[unit.film]
        if film.stream:
            # The stream reopens at its first missing frame (on whichever worker takes it next).
            if film.owner is worker:
                film.owner = None
                film.next_to_send = film.wanted[film.committed]
                film.failures[film.next_to_send] = max(unit.attempts, film.failures.get(film.next_to_send, 0))
                for _, other in worker.inflight:
                    if other.film == film.number:
                        other.positions = []
                worker.inflight = [(r, u) for r, u in worker.inflight if u.positions]
            return
        self.queue.appendleft(unit)

    def _commit(self, film: _Film, worker: _Worker) -> None:
        """Every held frame whose turn has come, in index order."""
        assert worker.info is not None
        while (position := film.next_position) is not None and position in film.held:
            rendered = film.held.pop(position)
            frame = rendered.frame()
            if film.store is not None:
                commit_frame(film.store, film.prepared.plan, frame)
            else:
                assert film.writer is not None and film.loop is not None
                path = film.loop.picture_path(position)
                film.writer.submit(path, frame.image, frame.png_info())
                film.written.append(path)
            film.committed += 1
            self.report.item(None)
            if self.on_commit is not None:
                self.on_commit(Commit(film.number, position, worker.info))
        if film.done and film.stream:
            film.owner = None

    def _finish(self) -> None:
        for film in self.films:
            if film.store is not None:
                self.result.outputs[film.number] = [finish_video(film.prepared, film.store, self.report)]
            else:
                assert film.writer is not None and film.loop is not None
                film.writer.close()
                film.loop.finished()
                self.result.outputs[film.number] = film.written

    def _stop_workers(self, keep: bool) -> None:
        """Idle workers of a finished run stay warm for the next run in this process (when Ray was
        started by the caller, not by this run); the others end."""
        for worker in self.workers:
            if keep and worker.alive and worker.info is not None and not worker.inflight:
                _IDLE.setdefault(self.pool_key, []).append(worker.handle)
            elif worker.alive:
                with contextlib.suppress(Exception):  # already gone: nothing to stop
                    self.ray.kill(worker.handle)


def release_workers() -> None:
    """End the warm workers that finished runs left in this process (they hold a GPU each)."""
    import ray

    for handles in _IDLE.values():
        for handle in handles:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(handle)
    _IDLE.clear()


def _unit_size(recipe: Recipe) -> int:
    """Items per work unit: whole fixed batches of the recipe's ``--batch`` (a multiple of it, so each
    unit is a union of the batches a local run renders), at least ``UNIT_FRAMES``."""
    batch = max(1, getattr(recipe, "batch", 1) or 1)
    return batch * -(-UNIT_FRAMES // batch)


def _cause(exc: Any) -> BaseException:
    """The exception a worker raised (Ray wraps it)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def _failed(film: _Film, unit: _Unit, cause: object) -> DreamreelError:
    first, last = unit.positions[0], unit.positions[-1]
    what = f"frame {first}" if first == last else f"frames {first}-{last}"
    exit_code = 3 if type(cause).__name__ == "OutOfMemoryError" else 1
    return DreamreelError(f"{film.label}: {what} failed {MAX_ATTEMPTS} times ({cause})", exit_code=exit_code)
