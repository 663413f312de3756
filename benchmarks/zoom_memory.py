"""Memory of a zoom run stays flat in the number of frames (issue 5: a benchmark, not a test).

Runs the zoom job with the tiny model through the real run folder and video writer and prints the
process's resident memory after frames 10, 20, ... as a ratio to the memory after frame 10 (the
baseline measured in the same run). A leak (frames kept in memory, a growing cache) shows as a ratio
climbing with the frame count.

    PYTHONPATH=src python benchmarks/zoom_memory.py [FRAMES] [SIZE]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no /proc/self/status (Linux only)")


def main() -> None:
    from dreamreel.jobs.zoom import ZoomRecipe, zoom
    from dreamreel.models.loading import load_model
    from dreamreel.runs.store import RunStore

    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 80
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    model = load_model("tiny", device="cpu", dtype="fp32")
    with tempfile.TemporaryDirectory() as tmp:
        recipe = ZoomRecipe(
            prompt="a funny cat covered in neon cloth and neon light",
            model="tiny",
            width=size,
            height=size,
            steps=4,
            frames=frames,
            blend_back=0.9,
            tint="brown:0.1",
            color_match="first",
            noise=0.02,
            seed_mode="iter",
            output=str(Path(tmp) / "bench.mp4"),
        )
        recipe.validate()
        store = RunStore.create(recipe.run_dir, recipe)
        baseline = None
        for item in zoom(model, recipe):
            store.save(item)
            n = item.index + 1
            if n % 10 == 0:
                now = rss_mib()
                baseline = baseline or now
                print(f"frame {n:5d}: RSS {now:8.1f} MiB  ratio to frame 10: {now / baseline:.3f}")


if __name__ == "__main__":
    main()
