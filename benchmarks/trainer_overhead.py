"""Training throughput of the suite's Trainer vs. a plain hand-written PyTorch loop.

Both train the same model (``embedded:efficientnet_lite0``, ImageNet weights, strategy ``full``:
every layer trains) on the same PlantVillage tomato images, pre-loaded in memory and pre-resized to a
reduced input size (128 px by default, to keep the run short), through the same DataLoader
(``input_loader`` with the model's preprocessing, augment ``none``), with the same batch size,
batch order and number of optimizer steps. The plain loop is AdamW + cross-entropy and nothing
else; the Trainer runs as a user calls it (``Trainer(model, config).fit(train)``, defaults
including its warm-up + cosine schedule and gradient clipping at 1.0), with no validation data
and ``progress=False``. Wall time covers construction of the optimizer/Trainer and the whole
loop; each run starts from a fresh copy of the same model.

One warm-up run per side is discarded, then ``--repeats`` rounds run in A B C, C B A, ... order, so
CPU contention from other processes and slow drift hit every side alike. Reports the median
images/s per side (wall clock, and per CPU second of the process), the ratio of the medians and
the median of the per-pair ratios (target: suite >= 0.95x plain). A third side, the Trainer with
``channels_last=False``, keeps the plain loop's memory layout: suite / plain compares the loops alone
and suite / that side is what the channels-last layout (the Trainer's default for 2D conv nets) adds.

    .venv/bin/python benchmarks/trainer_overhead.py            # 6 min on the 2-core dev machine
    .venv/bin/python benchmarks/trainer_overhead.py --quick    # smoke run

Writes benchmarks/results/trainer_overhead.md and .json.
"""

from __future__ import annotations

# _common first: it sets the OpenMP wait policy, which torch reads when it loads
from _common import BACKBONE, TOMATO, per_class, publish, require, set_threads

import argparse
import copy
import dataclasses
import statistics
import time

import numpy as np
import torch
from torch import nn


def preloaded_tomato(n_per_class: int, size: int, seed: int):
    """``n_per_class`` tomato images per class as in-memory ``size`` x ``size`` uint8 arrays."""
    from PIL import Image

    from suite.core.data import from_folder

    data = from_folder(require(TOMATO))
    data = data.subset(per_class(data.labels, n_per_class, np.random.default_rng(seed)))
    items = [np.asarray(data.load(i).resize((size, size), Image.Resampling.BICUBIC)) for i in range(len(data))]
    return dataclasses.replace(data, items=items)


def plain_loop(model, train, cfg) -> None:
    """AdamW + cross-entropy over the same DataLoader and batch order as the Trainer's."""
    from suite.core.features import input_loader

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(cfg.epochs):
        order = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        for x, y in input_loader(model, train, cfg.batch_size, shuffle=True, generator=order):
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="input size in pixels")
    parser.add_argument("--per-class", type=int, default=32, help="images per class (10 classes)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=6, help="timed rounds (one run per side) after the warm-up")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, 8 per class, 1 epoch, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.size, args.per_class, args.epochs, args.repeats = 64, 8, 1, 2
    machine = set_threads(args.threads)

    from suite.core import create_model
    from suite.core.trainer import Trainer, TrainConfig, seed_everything

    train = preloaded_tomato(args.per_class, args.size, args.seed)
    seed_everything(args.seed)
    template = create_model(BACKBONE, num_classes=len(train.classes))
    template.preprocess = dataclasses.replace(template.preprocess, input_size=(3, args.size, args.size))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, strategy="full", augment="none",
                      progress=False, seed=args.seed)
    images = len(train) * cfg.epochs

    def timed(train_fn) -> tuple[float, float]:
        """Images per wall-clock second and per CPU second of this process, for one run from a fresh model."""
        model = copy.deepcopy(template)
        wall, cpu = time.perf_counter(), time.process_time()
        train_fn(model)
        return images / (time.perf_counter() - wall), images / (time.process_time() - cpu)

    nchw = dataclasses.replace(cfg, channels_last=False)
    sides = {"suite": lambda model: Trainer(model, cfg).fit(train),
             "suite_nchw": lambda model: Trainer(model, nchw).fit(train),
             "plain": lambda model: plain_loop(model, train, cfg)}
    for train_fn in sides.values():
        timed(train_fn)  # warm-up, not counted
    runs = {side: [] for side in sides}
    for i in range(args.repeats):
        for side in list(sides) if i % 2 == 0 else list(sides)[::-1]:  # A B C C B A: linear drift cancels
            runs[side].append(timed(sides[side]))
    wall = {side: [w for w, _ in v] for side, v in runs.items()}
    cpu = {side: [c for _, c in v] for side, v in runs.items()}
    med = {side: statistics.median(v) for side, v in wall.items()}
    med_cpu = {side: statistics.median(v) for side, v in cpu.items()}
    ratio = med["suite_nchw"] / med["plain"]
    pair_ratio = statistics.median(s / p for s, p in zip(wall["suite_nchw"], wall["plain"]))
    cpu_ratio = med_cpu["suite_nchw"] / med_cpu["plain"]
    layout = med["suite"] / med["suite_nchw"]

    def row(name: str, side: str) -> str:
        return (f"| {name} | {med[side]:.1f} | {med_cpu[side]:.1f} | "
                f"{', '.join(f'{v:.1f}' for v in wall[side])} |")

    steps = -(-len(train) // cfg.batch_size) * cfg.epochs
    markdown = "\n".join([
        "## Trainer overhead: suite Trainer vs. plain PyTorch loop",
        "",
        f"`{BACKBONE}` (ImageNet weights), strategy `full`, {len(train)} tomato images pre-loaded at "
        f"{args.size}x{args.size}, batch {cfg.batch_size}, {cfg.epochs} epoch(s) = {steps} optimizer steps per run, "
        f"same DataLoader/transforms/batch order on both sides; Trainer with defaults (AdamW, warm-up + cosine, "
        f"grad clip {cfg.max_grad_norm:g}), no validation data, progress off. One warm-up run per side, then "
        f"{args.repeats} rounds in A B C, C B A, ... order; images/s = images seen / time of the whole call "
        f"(wall clock; CPU time of this process in the third column, less sensitive to other jobs). {machine}.",
        "",
        "| side | median images/s (wall) | median images per CPU-second | wall images/s per round, in order |",
        "|---|---|---|---|",
        row("suite `Trainer.fit` (defaults: channels-last layout)", "suite"),
        row("suite `Trainer.fit`, `channels_last=False`", "suite_nchw"),
        row("plain loop (AdamW + cross-entropy)", "plain"),
        "",
        f"Suite / plain, same memory layout: **{ratio:.3f}x** (ratio of wall medians); median of per-pair wall "
        f"ratios {pair_ratio:.3f}x; CPU-time ratio {cpu_ratio:.3f}x (target >= 0.95x). The channels-last "
        f"default: **{layout:.2f}x** the images/s of the standard layout (ratio of wall medians).",
        "",
    ])
    raw = {"config": {**vars(args), "images_per_run": images, "steps_per_run": steps, "machine": machine},
           "images_per_wall_second": wall, "images_per_cpu_second": cpu, "median_wall": med, "median_cpu": med_cpu,
           "ratio_of_wall_medians": ratio, "median_pair_wall_ratio": pair_ratio, "ratio_of_cpu_medians": cpu_ratio,
           "channels_last_speedup": layout}
    publish("trainer_overhead", markdown, raw)


if __name__ == "__main__":
    main()
