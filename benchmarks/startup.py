"""Start-up time of ``dreamreel --help`` against ``python -c pass`` (median of several runs).

python benchmarks/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    # The installed console script (beside this interpreter) with this checkout's source first on the
    # path; without one, the same two lines through -c.
    script = Path(sys.executable).parent / "dreamreel"
    if script.is_file():
        help_cmd = [sys.executable, str(script), "--help"]
    else:
        help_cmd = [
            sys.executable,
            "-c",
            "import sys; from dreamreel.cli.app import main; sys.exit(main())",
            "--help",
        ]
    bare_cmd = [sys.executable, "-c", "pass"]
    wall(help_cmd, env)  # warm the file cache
    times: dict[str, list[float]] = {"help": [], "bare": []}
    for _ in range(args.runs):  # interleaved
        times["bare"].append(wall(bare_cmd, env))
        times["help"].append(wall(help_cmd, env))
    bare, help_ = statistics.median(times["bare"]), statistics.median(times["help"])
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, python {sys.version.split()[0]}")
    print(f"# python {' '.join(sys.argv)}; measured: {' '.join(help_cmd)}")
    print(f"python -c pass: {bare:.3f} s; dreamreel --help: {help_:.3f} s; ratio {help_ / bare:.2f}")
    print(f"dreamreel --help alone (minus interpreter start): {help_ - bare:.3f} s")


if __name__ == "__main__":
    main()
