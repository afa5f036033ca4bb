"""Speed of the built-in driving simulator and a grid of sample frames with their labels.

    .venv/bin/python benchmarks/driving_sim.py [--frames 60] [--height 360 --width 480]

Renders frames in one thread (the simulator is numpy; one core), reports frames per second from
wall time and from process CPU time (the CPU-time figure is what an idle core gives; on a shared
machine wall time is slower), checks determinism, and writes benchmarks/results/driving_sim.{md,json}
and benchmarks/results/driving_sim_samples.jpg (frames with label overlays and the class legend).
"""

from __future__ import annotations

import argparse
import time

import _common  # noqa: F401  (sets thread environment first)
import numpy as np
from _common import RESULTS, publish, set_threads


def sample_grid(sim, n: int = 8, cols: int = 4) -> np.ndarray:
    """``n`` frames, each shown as the image over its label overlay, in a grid with a legend row."""
    from PIL import Image, ImageDraw

    from suite.driving.schema import CAMVID_CLASSES, CAMVID_PALETTE, colorize

    tiles = []
    for i in range(n):
        rgb, label = sim.frame(i)
        overlay = (0.45 * rgb + 0.55 * colorize(label)).astype(np.uint8)
        tiles.append(np.concatenate([rgb, overlay], 0))
    h, w = tiles[0].shape[:2]
    rows = [np.concatenate(tiles[r * cols:(r + 1) * cols], 1) for r in range(n // cols)]
    grid = np.concatenate(rows, 0)
    legend = Image.new("RGB", (grid.shape[1], 28), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    step = grid.shape[1] // len(CAMVID_CLASSES)
    for k, name in enumerate(CAMVID_CLASSES):
        draw.rectangle([k * step + 4, 6, k * step + 20, 22], fill=tuple(int(v) for v in CAMVID_PALETTE[k]))
        draw.text((k * step + 24, 8), name, fill=(0, 0, 0))
    return np.concatenate([grid, np.asarray(legend)], 0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--width", type=int, default=480)
    a = p.parse_args()
    machine = set_threads(1)
    from PIL import Image

    from suite.driving.sim import DrivingSimulator
    from suite.driving.schema import CAMVID_CLASSES

    sim = DrivingSimulator(a.height, a.width, seed=0)
    sim.frame(0)  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    counts = np.zeros(12, np.int64)
    for i in range(a.frames):
        _, label = sim.frame(i)
        counts += np.bincount(label.ravel(), minlength=12)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    again = DrivingSimulator(a.height, a.width, seed=0).frame(a.frames - 1)
    same = all(np.array_equal(x, y) for x, y in zip(again, sim.frame(a.frames - 1)))
    shares = counts[:11] / counts.sum()
    RESULTS.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sample_grid(DrivingSimulator(a.height, a.width, seed=0))).save(RESULTS / "driving_sim_samples.jpg", quality=85)
    md = "\n".join([
        f"# Driving simulator speed ({a.width}x{a.height}, {a.frames} frames, one thread)", "",
        f"Machine: {machine}; shared with other jobs while measuring.", "",
        "| measure | value |", "|---|---|",
        f"| frames/s from wall time | **{a.frames / wall:.1f}** ({1000 * wall / a.frames:.1f} ms/frame) |",
        f"| frames/s from CPU time (an idle core) | **{a.frames / cpu:.1f}** ({1000 * cpu / a.frames:.1f} ms/frame) |",
        f"| same seed and index give identical frames | {same} |", "",
        "Pixel share by class over these frames: "
        + ", ".join(f"{c} {100 * s:.1f}%" for c, s in zip(CAMVID_CLASSES, shares)) + ".", "",
        "Samples: `benchmarks/results/driving_sim_samples.jpg`.", ""])
    publish("driving_sim", md, {"frames": a.frames, "size": [a.height, a.width], "wall_s": wall, "cpu_s": cpu,
                                "fps_wall": a.frames / wall, "fps_cpu": a.frames / cpu, "deterministic": same,
                                "class_share": dict(zip(CAMVID_CLASSES, shares.tolist())), "machine": machine})


if __name__ == "__main__":
    main()
