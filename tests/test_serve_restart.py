"""A served video survives the server's death: SIGKILL mid-run, restart, the job is listed as
interrupted, resume finishes it through its run folder, and every frame is byte-identical to an
unbroken run of the same recipe. The server is a real ``dreamreel serve`` process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow

FRAMES = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, body: dict | None = None) -> dict | list:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def start(out: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dreamreel", "serve", "--model", "tiny", "--out", out, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, "the server did not start"
        try:
            if call(url + "/api/status")["loaded"]:
                return process, url
        except OSError:
            pass
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def frames_done(run: Path) -> int:
    manifest = run / "manifest.jsonl"
    return len(manifest.read_text().splitlines()) if manifest.is_file() else 0


def test_sigkill_mid_video_then_resume_is_exact(tmp_path, tiny_model):
    from dreamreel.jobs import recipe_from_dict
    from dreamreel.jobs.runner import run_job

    out = tmp_path / "out"
    process, url = start(out)
    try:
        fields = {"prompt": "a tunnel", "frames": str(FRAMES), "steps": "3", "width": "32", "height": "32",
                  "zoom": "0:(1.05), 5:(1.0)", "angle": "0:(0), 5:(3)"}  # fmt: skip
        job = call(url + "/api/jobs", {"job": "zoom", "fields": fields})
        run = Path(job["recipe"]["output"]).with_suffix(".run")
        deadline = time.monotonic() + 120
        while frames_done(run) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at = frames_done(run)
        assert 2 <= killed_at < FRAMES  # it really died mid-run
    finally:
        stop(process)

    process, url = start(out)
    try:
        [listed] = call(url + "/api/jobs")
        assert listed["id"] == job["id"] and listed["state"] == "interrupted"
        call(url + f"/api/jobs/{job['id']}/resume", {})
        deadline = time.monotonic() + 180
        while (state := call(url + f"/api/jobs/{job['id']}"))["state"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert state["state"] == "done", state["error"]
    finally:
        stop(process)

    resumed = {p.name: p.read_bytes() for p in sorted((run / "frames").iterdir())}
    assert len(resumed) == FRAMES
    shutil.rmtree(run)  # the same recipe, unbroken, in the same place
    os.remove(job["recipe"]["output"])
    run_job(recipe_from_dict(job["recipe"]), model=tiny_model)
    unbroken = {p.name: p.read_bytes() for p in sorted((run / "frames").iterdir())}
    assert resumed == unbroken
