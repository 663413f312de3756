"""Rendering on a Ray cluster, exactly as one process renders, surviving lost workers.

    from dreamreel.cluster import run_on_cluster, resume_on_cluster
    run_on_cluster([recipe_a, recipe_b], workers=2, address="auto")  # or "HEAD_IP:6379"
    resume_on_cluster(["a.run"], address="auto")

Ray is imported only when a run starts (``pip install "dreamreel[cluster]"``). Workers are Ray actors
(cluster/worker.py) that load the model once and return 8-bit pixels; this process is the one writer
(cluster/coordinator.py). See the coordinator's docstring for units, streams, faults and the bound on
rendered-but-uncommitted frames. Where the caller initialised Ray itself, the workers of a finished run
stay warm (model loaded) for the next run in the same process; ``release_workers()`` ends them.
"""

from dreamreel.cluster.coordinator import (
    ClusterResult,
    Commit,
    WorkerInfo,
    release_workers,
    resume_on_cluster,
    run_on_cluster,
)

__all__ = ["ClusterResult", "Commit", "WorkerInfo", "release_workers", "resume_on_cluster", "run_on_cluster"]
