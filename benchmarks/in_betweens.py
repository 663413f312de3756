"""How near ``--interpolate-to``'s in-between frames come to the true ones, with and without occlusions.

Synthetic two-frame scenes whose true in-between is known (no files, no model): a background, still
or panning 2 px a frame, crossed by an opaque disk moving 8 px a frame, which covers and uncovers
background as it goes; the disk is flat red (nothing inside it for the flow to follow) or textured,
the textures coarse or fine. For each scene, five texture seeds and the weights 0.25 and 0.5, the
figure is the mean absolute error of ``media.flow.interpolate`` against the true in-between over the
disk's pixels in either frame, as a ratio to the plain cross-fade's error (both frames moved part of
the way along the same flow and cross-faded, what ``interpolate`` did before it looked at
occlusions): below 1 is nearer the truth. The same with the true flow (``--true-flow``) shows what is
left to DIS's flow at the disk's edge.

    PYTHONPATH=src python benchmarks/in_betweens.py [--true-flow]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

H, W = 96, 128
SCENES = {  # name: (texture blur in px, disk radius, flat disk, background pan in px a frame)
    "flat disk r15, still background": (3.0, 15, True, 0.0),
    "flat disk r15, panning background": (3.0, 15, True, 2.0),
    "textured disk r15, still background": (3.0, 15, False, 0.0),
    "textured disk r15, panning background": (3.0, 15, False, 2.0),
    "finely textured disk r25, still background": (1.5, 25, False, 0.0),
}
SPEED = 8.0


def texture(seed: int, blur: float) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((220, 320, 3)).astype(np.float32), (0, 0), blur)
    return (big - big.min()) / (big.max() - big.min())


def window(big: np.ndarray, dx: float) -> np.ndarray:
    import cv2

    return cv2.warpAffine(big, np.float32([[1, 0, -dx - 40], [0, 1, -40]]), (W, H), flags=cv2.INTER_LINEAR)


def frame(seed: int, scene: tuple[float, int, bool, float], k: float) -> tuple[np.ndarray, np.ndarray]:
    blur, radius, flat, pan = scene
    picture = window(texture(seed, blur), pan * k)
    ys, xs = np.mgrid[0:H, 0:W]
    disk = (xs - (40 + SPEED * k)) ** 2 + (ys - 48) ** 2 < radius**2
    picture[disk] = (1.0, 0.1, 0.1) if flat else window(texture(seed + 50, blur), -SPEED * k)[disk]
    return picture, disk


def true_pair(scene: tuple[float, int, bool, float], disk_a: np.ndarray, disk_b: np.ndarray):  # type: ignore[no-untyped-def]
    from dreamreel.media import flow as F

    pan = scene[3]
    to_later, to_earlier = np.zeros((H, W, 2), np.float32), np.zeros((H, W, 2), np.float32)
    to_later[..., 0], to_earlier[..., 0] = -pan, pan
    to_later[disk_a, 0], to_earlier[disk_b, 0] = SPEED, -SPEED
    return F.FramePair(to_earlier, to_later, F.visible(to_earlier, to_later), F.visible(to_later, to_earlier))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--true-flow", action="store_true", help="the scenes' true flow instead of DIS's")
    args = parser.parse_args()
    from dreamreel.media import flow as F

    print(f"error of interpolate / error of the cross-fade, {'true flow' if args.true_flow else 'DIS flow'}")
    print("| scene | mean | best | worst |")
    print("|---|---|---|---|")
    for name, scene in SCENES.items():
        ratios = []
        for seed in range(5):
            (a, disk_a), (b, disk_b) = frame(seed, scene, 0), frame(seed, scene, 1)
            pair = true_pair(scene, disk_a, disk_b) if args.true_flow else F.FramePair.of(a, b)
            moving = disk_a | disk_b
            for weight in (0.25, 0.5):
                middle, _ = frame(seed, scene, weight)
                made = F.interpolate(a, b, weight, pair)
                faded = (1 - weight) * F.warp(a, -weight * pair.to_later) + weight * F.warp(
                    b, -(1 - weight) * pair.to_earlier
                )
                error, before = (float(np.abs(x - middle)[moving].mean()) for x in (made, faded))
                ratios.append(error / before)
        print(f"| {name} | **{statistics.mean(ratios):.3f}** | {min(ratios):.3f} | {max(ratios):.3f} |")


if __name__ == "__main__":
    main()
