"""Peak memory of a 300-frame vs a 30-frame tiny vid2vid: memory must not grow with video length.

Each run happens in its own fresh Python process (so neither sees the other's allocations); the
child reports its peak resident set size (ru_maxrss) and the peak of Python-level allocations
(tracemalloc) while rendering, encoding and checking the video. Prints both runs and the ratios.

    PYTHONPATH=src python benchmarks/memory_vid2vid.py [--frames 30 300] [--size 64x48]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, tracemalloc
from fractions import Fraction
from pathlib import Path

frames, width, height, folder = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])

import av, numpy as np

source = folder / "source.mp4"
with av.open(str(source), "w") as container:  # a 29.97 fps clip with moving content, no sound
    stream = container.add_stream("libx264", rate=Fraction(30000, 1001))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    y, x = np.mgrid[0:height, 0:width]
    for i in range(frames):
        array = np.stack([(x + 3 * i) % 256, (y + i) % 256, np.full_like(x, 90)], -1).astype(np.uint8)
        container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
    container.mux(stream.encode(None))

from dreamreel.jobs.runner import run_video_job
from dreamreel.jobs.vid2vid import JOB
from dreamreel.models.loading import load_model
from dreamreel.recipes.base import Vid2VidRecipe

model = load_model("tiny", device="cpu", dtype="fp32")
recipe = Vid2VidRecipe(
    prompt="a watercolour", video=str(source), output=str(folder / "out.mp4"), model="tiny",
    steps=2, strength=0.5, seed=1, width=width, height=height,
)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
run_video_job(JOB, recipe, quiet=True, model=model, echo=lambda m: None)
_, python_peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = {"frames": frames, "rss_before_kib": before, "rss_peak_kib": after, "python_peak_bytes": python_peak}
print(json.dumps(report))
"""


def measure(frames: int, width: int, height: int) -> dict[str, int]:
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(frames), str(width), str(height), folder],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode:
        raise SystemExit(f"the {frames}-frame run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs=2, default=(30, 300), metavar=("SHORT", "LONG"))
    parser.add_argument("--size", default="64x48")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    short, long = (measure(n, width, height) for n in args.frames)
    for run in (short, long):
        print(
            f"{run['frames']:4d} frames: peak RSS {run['rss_peak_kib'] / 1024:7.1f} MiB "
            f"(model loaded: {run['rss_before_kib'] / 1024:7.1f} MiB), "
            f"peak Python allocations during the run {run['python_peak_bytes'] / 2**20:6.2f} MiB"
        )
    rss_ratio = long["rss_peak_kib"] / short["rss_peak_kib"]
    py_ratio = long["python_peak_bytes"] / max(short["python_peak_bytes"], 1)
    ratio = f"ratio {long['frames']}/{short['frames']} frames"
    print(f"{ratio}: peak RSS x{rss_ratio:.3f}, Python peak x{py_ratio:.3f}")
    print("within 10%: " + ("yes" if rss_ratio <= 1.10 else "NO"))


if __name__ == "__main__":
    main()
