"""Seeds: lists typed by users, fresh random seeds, and each frame's seed in a film (all seed modes)."""

from __future__ import annotations

import hashlib
import secrets

from dreamreel.errors import DreamreelError

MAX_SEED = 2**32 - 1  # A1111 and diffusers users share 32-bit seeds
SEED_MODES = ("fixed", "iter", "random", "ladder", "alternate")


def check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise DreamreelError(f"seed {seed!r} must be a whole number from 0 to {MAX_SEED}")


def check_seed_mode(mode: str) -> None:
    if mode not in SEED_MODES:
        raise DreamreelError(f"unknown --seed-mode {mode!r}; choose one of {', '.join(SEED_MODES)}")


def random_seeds(count: int) -> list[int]:
    """Fresh random seeds (the guide's endless loop), recorded so every picture stays reproducible."""
    return [secrets.randbelow(MAX_SEED + 1) for _ in range(count)]


def parse_seeds(text: str) -> list[int]:
    """``5``, ``1,5,9``, ``1-20`` or a mix like ``1-3,10``."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, dash, high = part.partition("-")
        try:
            if dash and low:
                start, stop = int(low), int(high)
                if stop < start:
                    raise DreamreelError(f"seed range {part!r} runs backwards")
                if stop - start >= 100_000:
                    raise DreamreelError(f"seed range {part!r} is over 100000 seeds")
                seeds.extend(range(start, stop + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise DreamreelError(f"bad seed list {text!r}: use N, N,M,... or N-M") from None
    if not seeds:
        raise DreamreelError(f"bad seed list {text!r}: no seeds in it")
    for seed in seeds:
        check_seed(seed)
    return seeds


def frame_seed(base: int, index: int, mode: str) -> int:
    """A frame's seed, a pure function of (base seed, frame index, mode).

    fixed: always the base. iter: base + n. random: a fresh seed per frame drawn from a hash of
    (base, n), so it is reproducible. ladder (Deforum's): +2, -1, +2, -1 ... i.e. base, base+2, base+1,
    base+3, base+2, ...: slowly climbing, every seed used twice, two frames apart. alternate: base,
    base+1, base, base+1, ...: two looks taking turns, a flicker between two dreams.
    """
    if mode == "fixed":
        seed = base
    elif mode == "iter":
        seed = base + index
    elif mode == "random":
        digest = hashlib.sha256(f"dreamreel-seed:{base}:{index}".encode()).digest()
        seed = int.from_bytes(digest[:8], "big")
    elif mode == "ladder":
        seed = base + (index // 2 if index % 2 == 0 else (index + 3) // 2)
    elif mode == "alternate":
        seed = base + index % 2
    else:
        check_seed_mode(mode)
    return seed % (MAX_SEED + 1)
