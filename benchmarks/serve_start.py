"""``dreamreel serve`` start-up: seconds from starting the process to the first page (``GET /`` answered),
against ``python -c pass`` started the same way in the same run (the issue's target: within 3 s).

    python benchmarks/serve_start.py [--runs 5] [--model tiny]

The model loads in the server's worker thread, so the page does not wait for it; the figure is the
imports of FastAPI, uvicorn and dreamreel's job layer plus binding the port.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def first_page(model: str, out: str) -> float:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "dreamreel", "serve", "--model", model, "--out", out, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    response.read()
                return time.monotonic() - started
            except OSError:
                time.sleep(0.01)
    finally:
        process.terminate()
        process.wait()


def python_pass() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="tiny")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        pages, baseline = [], []
        for _ in range(args.runs):
            baseline.append(python_pass())
            pages.append(first_page(args.model, out))
    print(f"python -c pass: median {statistics.median(baseline):.3f} s")
    print(f"dreamreel serve, first page: median {statistics.median(pages):.3f} s, max {max(pages):.3f} s (target < 3 s)")


if __name__ == "__main__":
    main()
