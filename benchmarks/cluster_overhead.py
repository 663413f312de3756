"""The cost of the cluster path: one Ray worker against a local run of the same film.

Both render the same 40-frame sweep with ``tiny`` into the same run folder (removed between runs),
interleaved (local, cluster, local, cluster ...) so machine load hits both. Two figures per run:

- render: from the reporter's ``begin`` to its ``end`` (every frame rendered and committed); the local
  run's model is loaded beforehand, the cluster's worker has loaded it before ``begin``;
- whole: the call, start to end (local: model load + render + encode; cluster: a cold worker's start, its
  model load, render, encode; the Ray instance itself is started once, before, as `ray start` would be).

    python benchmarks/cluster_overhead.py

On a GPU machine, ``--speedup`` also renders the film with 2 workers sharing the GPU against 1 worker
(same sha256 for every frame, and the time ratio), e.g. with the SD 1.5 architecture of ``sd15.py``:

    python benchmarks/cluster_overhead.py --speedup --model /tmp/sd15 --size 512 --steps 20 --frames 16
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray binds 127.0.0.1 only
os.environ.setdefault("RAY_worker_niceness", "0")  # workers as urgent as the local run (Ray's default: 15)


class Clock:
    """A Reporter that notes when rendering begins and ends."""

    def __init__(self) -> None:
        self.began = self.ended = 0.0
        self.rendering = False

    def message(self, text: str) -> None:
        pass

    def begin(self, total: int, unit: str) -> None:
        self.rendering = unit == "frame"  # not the encoding that follows
        if self.rendering:
            self.began = time.perf_counter()

    def step(self, step: int, total: int, latents: object = None) -> None:
        pass

    def item(self, path: object) -> None:
        pass

    def end(self) -> None:
        if self.rendering:
            self.ended = time.perf_counter()
        self.rendering = False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--speedup", action="store_true", help="also: 2 workers against 1 (one GPU shared)")
    args = parser.parse_args()

    import ray
    import torch

    from dreamreel.cluster import release_workers, run_on_cluster
    from dreamreel.jobs.runner import run_job
    from dreamreel.jobs.sweep import SweepRecipe
    from dreamreel.models.loading import load_model_for
    from dreamreel.runs.store import RunStore

    folder = Path(tempfile.mkdtemp(prefix="dreamreel-cluster-bench-"))
    recipe = SweepRecipe(
        prompt="a coyote", param="seed", sweep_from=1, sweep_to=args.frames, frames=args.frames, model=args.model,
        steps=args.steps, width=args.size, height=args.size, output=str(folder / "sweep.mp4"),
    )  # fmt: skip
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)

    def clean() -> None:
        shutil.rmtree(recipe.run_dir, ignore_errors=True)
        Path(recipe.output).unlink(missing_ok=True)

    def local() -> tuple[float, float]:
        clean()
        clock = Clock()
        start = time.perf_counter()
        run_job(recipe, model=load_model_for(recipe, quiet=True), reporter=clock)
        return clock.ended - clock.began, time.perf_counter() - start

    def cluster() -> tuple[float, float]:
        clean()
        release_workers()  # a cold worker each time: its start and model load count in "whole"
        clock = Clock()
        start = time.perf_counter()
        run_on_cluster(recipe, workers=1, reporter=clock)
        return clock.ended - clock.began, time.perf_counter() - start

    local()  # warm-up: the tiny model's hash cache, file system
    pairs = []
    for _ in range(args.runs):
        pairs.append((local(), cluster()))
    if args.speedup:
        import hashlib

        def frames_sha() -> list[str]:
            store = RunStore.open(recipe.run_dir)
            return [hashlib.sha256((store.folder / r.file).read_bytes()).hexdigest() for r in store.done()]

        timings: dict[int, list[float]] = {}
        hashes: dict[int, list[list[str]]] = {}
        for workers in (1, 2, 1, 2):
            clean()
            clock = Clock()
            run_on_cluster(recipe, workers=workers, reporter=clock)
            timings.setdefault(workers, []).append(clock.ended - clock.began)
            hashes.setdefault(workers, []).append(frames_sha())
        same = all(h == hashes[1][0] for runs in hashes.values() for h in runs)
        print(f"2 workers vs 1 (render, best of 2): {min(timings[1]) / min(timings[2]):.2f}x speed-up; "
              f"every frame's sha256 equal: {same}")  # fmt: skip
    ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)

    render = [c[0] / loc[0] for loc, c in pairs]
    whole = [c[1] / loc[1] for loc, c in pairs]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{args.frames} frames, {args.size} px, {args.steps} steps, tiny, 1 worker, {args.runs} pairs")
    for (loc, c), r, w in zip(pairs, render, whole, strict=True):
        print(f"  local render {loc[0]:.2f} s whole {loc[1]:.2f} s | cluster render {c[0]:.2f} s whole {c[1]:.2f} s"
              f" | ratio render {r:.3f} whole {w:.3f}")  # fmt: skip
    print(f"render ratio (cluster / local, median): {statistics.median(render):.3f}")
    print(f"whole-run ratio (cluster / local, median): {statistics.median(whole):.3f}")


if __name__ == "__main__":
    main()
