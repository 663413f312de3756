"""What ``--cadence N`` saves on a zoom film: wall time and UNet calls against ``--cadence 1``.

Renders the same 12-frame zoom with the built-in tiny model (no files written: runner.render_frames)
at a size where the UNet is most of a frame's time, once per cadence, the cadences alternated within
each round so that load on a shared machine falls on all of them alike, several rounds. Prints, per
cadence, the UNet calls (counted by wrapping the UNet's forward, as tests/test_zoom_cadence.py does),
the share of the time spent inside it, the best and median wall time, and their ratios to cadence 1
measured in the same process (on a loaded machine the best is the steadier figure).
Expect the time ratio above 1/N: the warped in-between frames, the VAE and the text encoder still cost.

    PYTHONPATH=src python benchmarks/cadence.py                     # 128 px, 8 steps, 3 rounds
    PYTHONPATH=src python benchmarks/cadence.py --size 192 --steps 10 --rounds 5 --cadences 1,2,3,4
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cadences", default="1,3,4")
    args = parser.parse_args()
    cadences = [int(c) for c in args.cadences.split(",")]
    if cadences[0] != 1:
        cadences.insert(0, 1)  # the baseline

    import torch

    from dreamreel.jobs.runner import prepare, render_frames
    from dreamreel.jobs.zoom import ZoomRecipe
    from dreamreel.models.loading import load_model

    model = load_model("tiny", device="cpu", dtype="fp32")
    unet = model.components["unet"]
    calls, inside = [0], [0.0]
    forward = unet.forward

    def counted(*positional, **named):  # type: ignore[no-untyped-def]
        calls[0] += 1
        start = time.perf_counter()
        try:
            return forward(*positional, **named)
        finally:
            inside[0] += time.perf_counter() - start

    unet.forward = counted

    def render(cadence: int) -> tuple[float, int]:
        recipe = ZoomRecipe(prompt="a funny cat in a neon city", model="tiny", seed=3, steps=args.steps,
                            width=args.size, height=args.size, frames=args.frames, cadence=cadence,
                            zoom=1.04, angle=1, tx=1, output="unused.mp4")  # fmt: skip
        prepared = prepare(recipe)
        calls[0], inside[0] = 0, 0.0
        start = time.perf_counter()
        count = sum(1 for _ in render_frames(prepared, model))
        elapsed = time.perf_counter() - start
        assert count == args.frames
        return elapsed, calls[0], inside[0] / elapsed

    print(f"zoom, tiny model, {args.frames} frames, {args.size}x{args.size}, {args.steps} steps, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.rounds} rounds")  # fmt: skip
    render(1)  # warm-up: first-call allocations and oneDNN kernel choice, not timed
    times: dict[int, list[float]] = {c: [] for c in cadences}
    unet_calls: dict[int, int] = {}
    unet_share: dict[int, list[float]] = {c: [] for c in cadences}
    for round_ in range(args.rounds):
        order = cadences if round_ % 2 == 0 else cadences[::-1]
        for cadence in order:
            elapsed, count, share = render(cadence)
            times[cadence].append(elapsed)
            unet_calls[cadence] = count
            unet_share[cadence].append(share)
    baseline = statistics.median(times[1])
    columns = ("cadence", "UNet calls", "call ratio", "time in the UNet", "best s", "median s", "ratio of medians",
               "of bests")  # fmt: skip
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for cadence in cadences:
        median = statistics.median(times[cadence])
        print(f"| {cadence} | {unet_calls[cadence]} | {unet_calls[cadence] / unet_calls[1]:.3f} | "
              f"{statistics.median(unet_share[cadence]):.0%} | {min(times[cadence]):.2f} | {median:.2f} | "
              f"**{median / baseline:.3f}** | {min(times[cadence]) / min(times[1]):.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
