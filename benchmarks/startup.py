"""Start-up: a whole ``dreamreel zoom`` process against a guide-style plain diffusers script, and where
dreamreel's start-up goes.

    python benchmarks/startup.py [--runs 3] [--frames 2] [--size 256] [--steps 8] [--model DIR]
    python benchmarks/startup.py --profile        # dreamreel's start-up, phase by phase
    python benchmarks/startup.py --help-only      # `dreamreel --help` against `python -c pass`

Both sides render the same film, each as a fresh process, alternated (plain, ours, plain, ours, ...):
the real SD 1.5 architecture with random weights (``sd15.py``; built once and saved as a diffusers
folder, default ``$TMPDIR/dreamreel-bench/sd15``), ``--frames`` frames at ``--size`` px, ``--steps``
steps at strength 0.5, guidance 8.5, frame 0 from a noise picture, each next frame the previous one
zoomed 1.04x. The plain script is what the guide did: ``StableDiffusionImg2ImgPipeline.from_pretrained``,
then a loop of ``pipe(...)``, PIL zoom and ``save``. Figures: time to the first saved frame (the parent
polls for the file) and the whole process. The model hash is in dreamreel's cache after the first run
(a warm-up run of each side precedes the timed ones, as a user's second run of a model would be).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
PROMPT = "a funny cat covered in neon cloth and neon light"

PLAIN_SCRIPT = '''
import sys, time
import numpy as np, torch
from PIL import Image
from diffusers import StableDiffusionImg2ImgPipeline

model, out, frames, size, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
pipe = StableDiffusionImg2ImgPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
pipe.set_progress_bar_config(disable=True)
rng = np.random.default_rng(1)
image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
for n in range(frames):
    if n > 0:  # zoom 1.04 about the centre
        w = size / 1.04
        box = ((size - w) / 2, (size - w) / 2, (size + w) / 2, (size + w) / 2)
        image = image.resize((size, size), Image.LANCZOS, box=box)
    image = pipe(PROMPT, image=image, strength=0.5, num_inference_steps=steps, guidance_scale=8.5,
                 generator=torch.Generator("cpu").manual_seed(1 + n)).images[0]
    image.save(f"{out}/{n:05d}.png")
'''.replace("PROMPT", repr(PROMPT))

# dreamreel's start-up, phase by phase: the CLI run in this process with timers around each phase.
PROFILE_SCRIPT = '''
import sys, time
T0 = time.perf_counter()
marks = []
def mark(name, start):
    marks.append((name, time.perf_counter() - start))
import dreamreel.cli.app as app  # what `dreamreel` imports before parsing the command line
mark("import dreamreel CLI", T0)
t = time.perf_counter()
import torch, diffusers, transformers  # noqa: F401  (imported on the way to the first frame anyway)
import dreamreel.jobs.zoom, dreamreel.models.loading, dreamreel.render.renderer  # noqa: F401
mark("import torch, diffusers, jobs", t)
from dreamreel.models import loading
from dreamreel.runs.store import RunStore
from dreamreel.jobs import runner

def timed(owner, name, label):
    real = getattr(owner, name)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            mark(label, t)
    setattr(owner, name, wrapper)

timed(loading, "_load_diffusers", "load weights (from_pretrained)")
timed(loading, "place_model", "place + prepack")
prop = loading.LoadedModel.model_hash
def model_hash(self):
    t = time.perf_counter()
    try:
        return prop.fget(self)
    finally:
        mark("model hash", t)
loading.LoadedModel.model_hash = property(model_hash)
saves = []
real_save = RunStore.save
def save(self, *a, **k):
    out = real_save(self, *a, **k)
    saves.append(time.perf_counter() - T0)
    return out
RunStore.save = save
timed(runner, "encode_run", "encode video")
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel
spent = {}
def accumulate(owner, name, label):
    real = getattr(owner, name)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            calls, seconds = spent.get(label, (0, 0.0))
            spent[label] = (calls + 1, seconds + time.perf_counter() - t)
    setattr(owner, name, wrapper)
accumulate(UNet2DConditionModel, "forward", "UNet calls")
accumulate(AutoencoderKL, "encode", "VAE encode")
accumulate(AutoencoderKL, "decode", "VAE decode")
accumulate(CLIPTextModel, "forward", "text encoder")
sys.argv = ["dreamreel", *sys.argv[1:]]
try:
    app.main()
except SystemExit:
    pass
total = time.perf_counter() - T0
for name, seconds in marks:
    print(f"{name:34s} {seconds:7.2f} s")
for i, at in enumerate(saves):
    print(f"frame {i} saved at {at:7.2f} s" + (f" (+{at - saves[i - 1]:.2f} s)" if i else ""))
for label, (calls, seconds) in spent.items():
    print(f"{label:34s} {seconds:7.2f} s in {calls} calls")
print(f"{'whole run (in-process)':34s} {total:7.2f} s")
'''


def ensure_model(folder: Path) -> Path:
    if (folder / "model_index.json").is_file():
        return folder
    sys.path.insert(0, str(HERE))
    from diffusers import StableDiffusionPipeline
    from sd15 import build_sd15

    model = build_sd15()
    folder.parent.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline(**model.components, requires_safety_checker=False).save_pretrained(folder)
    return folder


def run_timed(command: list[str], env: dict[str, str], first_file: Path) -> tuple[float, float, float]:
    """(seconds to the first saved frame, seconds for the whole process, the process's CPU seconds).
    On a CPU shared with other work the CPU seconds are the steadier figure."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = None
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if first is None and first_file.exists():
            first = time.perf_counter() - start
        time.sleep(0.01)
    whole = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:3]} failed: {process.stderr.read() if process.stderr else ''}")
    return (first if first is not None else whole), whole, usage.ru_utime + usage.ru_stime


def zoom_command(model: Path, out: Path, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, "-m", "dreamreel", "zoom", PROMPT, "--model", str(model), "--frames", str(args.frames),
        "--width", str(args.size), "--height", str(args.size), "--steps", str(args.steps), "--zoom", "1.04",
        "--device", "cpu", "--quiet", "-o", str(out / "ours.mp4"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--model", type=Path, default=Path(tempfile.gettempdir()) / "dreamreel-bench" / "sd15")
    parser.add_argument("--profile", action="store_true", help="dreamreel's start-up phase by phase")
    parser.add_argument("--help-only", action="store_true", help="`dreamreel --help` against `python -c pass`")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               TRANSFORMERS_VERBOSITY="error", DIFFUSERS_VERBOSITY="error", HF_HUB_OFFLINE="1")  # fmt: skip
    print(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; python benchmarks/startup.py {' '.join(sys.argv[1:])}")  # fmt: skip
    if args.help_only:
        help_only(env, args.runs)
        return
    model = ensure_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.profile:
            script = work / "dreamreel_phases.py"  # not profile.py: that name shadows the stdlib module
            script.write_text(PROFILE_SCRIPT)
            for run in range(args.runs):
                out = work / f"p{run}"
                out.mkdir()
                command = [sys.executable, str(script), *zoom_command(model, out, args)[3:]]
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"profile run failed: {done.stderr[-3000:]}")
                print(f"-- dreamreel zoom, phases ({'first run: hash not cached' if run == 0 else 'second run'})")
                print(textwrap.indent(done.stdout.strip(), "   "))
            return
        plain = work / "plain.py"
        plain.write_text(PLAIN_SCRIPT)
        times: dict[str, list[tuple[float, float, float]]] = {"plain": [], "ours": []}
        for run in range(args.runs + 1):  # run 0 warms the file cache and dreamreel's hash cache
            for side in ("plain", "ours"):
                out = work / f"{side}{run}"
                out.mkdir()
                if side == "plain":
                    command = [sys.executable, str(plain), str(model), str(out), str(args.frames), str(args.size),
                               str(args.steps)]  # fmt: skip
                    first_file = out / "00000.png"
                else:
                    command = zoom_command(model, out, args)
                    first_file = out / "ours.run" / "frames" / "000000.png"
                first, whole, cpu = run_timed(command, env, first_file)
                if run > 0:
                    times[side].append((first, whole, cpu))
                print(f"   run {run}{' (warm-up)' if run == 0 else ''} {side:5s}: first frame {first:6.2f} s, "
                      f"whole {whole:6.2f} s, CPU {cpu:6.1f} s, {load()}", flush=True)  # fmt: skip
    plain_first = statistics.median(t[0] for t in times["plain"])
    plain_whole = statistics.median(t[1] for t in times["plain"])
    ours_first = statistics.median(t[0] for t in times["ours"])
    ours_whole = statistics.median(t[1] for t in times["ours"])
    plain_cpu = statistics.median(t[2] for t in times["plain"])
    ours_cpu = statistics.median(t[2] for t in times["ours"])
    print(f"zoom {args.frames} frames {args.size}px {args.steps} steps, medians of {args.runs}:")
    print(f"  first saved frame: plain {plain_first:.2f} s, dreamreel {ours_first:.2f} s, "
          f"ratio {ours_first / plain_first:.3f}")  # fmt: skip
    print(f"  whole process:     plain {plain_whole:.2f} s, dreamreel {ours_whole:.2f} s, "
          f"ratio {ours_whole / plain_whole:.3f}")  # fmt: skip
    print(f"  CPU seconds:       plain {plain_cpu:.1f} s, dreamreel {ours_cpu:.1f} s, "
          f"ratio {ours_cpu / plain_cpu:.3f}")  # fmt: skip


def load() -> str:
    try:
        return f"load {os.getloadavg()[0]:.1f}"
    except OSError:
        return "load n/a"


def help_only(env: dict[str, str], runs: int) -> None:
    help_cmd = [sys.executable, "-c", "import sys; from dreamreel.cli.app import main; sys.exit(main())", "--help"]
    bare_cmd = [sys.executable, "-c", "pass"]

    def wall(command: list[str]) -> float:
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start

    wall(help_cmd)  # warm the file cache
    bare, help_ = [], []
    for _ in range(runs):
        bare.append(wall(bare_cmd))
        help_.append(wall(help_cmd))
    b, h = statistics.median(bare), statistics.median(help_)
    print(f"python -c pass: {b:.3f} s; dreamreel --help: {h:.3f} s; ratio {h / b:.2f}")


if __name__ == "__main__":
    main()
