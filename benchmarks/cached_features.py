"""Feature extraction with cached features vs. recomputing the frozen backbone every epoch.

A linear head on a frozen ``embedded:efficientnet_lite0`` is trained on the PlantVillage tomato
leaves (seeded stratified 70/15/15 split; the head trains on the train part, the test part is
scored, the val part is left unused so both sides keep their last epoch) in two ways:

  (a) the suite's Trainer with strategy ``feature_extraction``: features are computed once (cold:
      empty in-memory cache, fresh temporary ``cache_dir``) and the head trains on them;
  (b) a plain loop that runs the frozen backbone (eval mode, ``no_grad``) on every batch of every
      epoch, with the same head initialisation, optimizer groups, learning rate, warm-up + cosine
      schedule, gradient clipping, batch size and batch order (augment ``none``).

Both train the same head on the same features, so their test accuracies should agree. The runs go
a, b, a (each from a fresh model) so CPU contention from other processes hits both sides; (a)'s
time is the mean of its two runs. Reports wall time, speed-up and test accuracy with 95% CI.

    .venv/bin/python benchmarks/cached_features.py            # 5 min on the 2-core dev machine
    .venv/bin/python benchmarks/cached_features.py --quick    # smoke run: 20 images per class, 2 epochs

Writes benchmarks/results/cached_features.md and .json.
"""

from __future__ import annotations

# _common first: it sets the OpenMP wait policy, which torch reads when it loads
from _common import BACKBONE, TOMATO, ci_cell, per_class, publish, require, set_threads

import argparse
import math
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn


def plain_loop(model, train, cfg) -> None:
    """The Trainer's head training, but the frozen backbone runs on every batch of every epoch."""
    from suite.core.features import input_loader
    from suite.core.freezing import freeze_backbone
    from suite.core.strategies import create_strategy
    from suite.core.trainer import lr_factor, seed_everything

    seed_everything(cfg.seed)
    freeze_backbone(model)
    groups = create_strategy("feature_extraction").param_groups(model, cfg.lr, cfg.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    total = math.ceil(len(train) / cfg.batch_size) * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, int(cfg.warmup * total), cfg.schedule))
    loss_fn = nn.CrossEntropyLoss()
    model.eval()
    for epoch in range(cfg.epochs):
        order = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)  # the Trainer's batch order
        for x, y in input_loader(model, train, cfg.batch_size, shuffle=True, generator=order):
            with torch.no_grad():
                features = model.forward_features(x)
            loss_fn(model.forward_head(features), y).backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=None, help="use only this many images per class")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: --per-class 20 --epochs 2")
    args = parser.parse_args()
    if args.quick:
        args.per_class, args.epochs = 20, 2
    machine = set_threads(args.threads)

    from suite.core import Solution, create_model
    from suite.core.data import from_folder, split_indices
    from suite.core.features import clear_memory_cache
    from suite.core.finetune import evaluate_solution
    from suite.core.trainer import Trainer, TrainConfig, seed_everything

    data = from_folder(require(TOMATO))
    if args.per_class:
        data = data.subset(per_class(data.labels, args.per_class, np.random.default_rng(args.seed)))
    splits = split_indices(data.labels, val=0.15, test=0.15, seed=args.seed)
    train, test = data.subset(splits["train"]), data.subset(splits["test"])
    cfg = TrainConfig(epochs=args.epochs, strategy="feature_extraction", augment="none", progress=False,
                      seed=args.seed)

    def fresh_model():
        seed_everything(cfg.seed)  # same head initialisation on both sides
        return create_model(BACKBONE, num_classes=len(data.classes))

    def cached():
        model = fresh_model()
        clear_memory_cache()
        with tempfile.TemporaryDirectory() as cache_dir:
            start = time.perf_counter()
            trainer = Trainer(model, replace(cfg, cache_dir=cache_dir))
            state = trainer.fit(train)
            seconds = time.perf_counter() - start
        return trainer.model, seconds, seconds - state.history[-1]["seconds"]

    def recomputed():
        model = fresh_model()
        start = time.perf_counter()
        plain_loop(model, train, cfg)
        return model, time.perf_counter() - start

    model_a, a1, a1_setup = cached()
    model_b, b = recomputed()
    _, a2, a2_setup = cached()
    a, a_setup = (a1 + a2) / 2, (a1_setup + a2_setup) / 2

    desc = f"test split of {TOMATO.name} ({len(test)} images)"
    report_a, probs_a = evaluate_solution(Solution(model_a, data.classes), test, data_desc=desc, seed=args.seed)
    report_b, probs_b = evaluate_solution(Solution(model_b, data.classes), test, data_desc=desc, seed=args.seed)
    agree = int((probs_a.argmax(1) == probs_b.argmax(1)).sum())
    max_diff = float(np.abs(probs_a - probs_b).max())

    markdown = "\n".join([
        "## Cached features vs. recomputed frozen backbone",
        "",
        f"Frozen `{BACKBONE}` (224x224) + linear head on PlantVillage tomato ({len(data.classes)} classes), "
        f"seeded stratified split {len(train)} train / {len(splits['val'])} val (unused) / {len(test)} test; "
        f"{cfg.epochs} epochs, batch {cfg.batch_size}, AdamW lr {cfg.lr:g} wd {cfg.weight_decay:g}, "
        f"{cfg.warmup:.0%} warm-up + {cfg.schedule}, grad clip {cfg.max_grad_norm:g}, augment none, last epoch kept. "
        f"Wall time of training only (test scoring excluded), runs interleaved a, b, a from fresh models; "
        f"(a) is the mean of its two runs ({a1:.1f} s, {a2:.1f} s). {machine}.",
        "",
        "| run | wall time (s) | of it before epoch 1 (s) | test accuracy [95% CI] |",
        "|---|---|---|---|",
        f"| (a) suite Trainer, `feature_extraction` (features once, cold cache) | {a:.1f} | {a_setup:.1f} "
        f"| {ci_cell(report_a)} |",
        f"| (b) plain loop, frozen backbone recomputed every epoch | {b:.1f} | - | {ci_cell(report_b)} |",
        "",
        f"Speed-up (b / a): **{b / a:.1f}x** (target >= 5x). Test predictions agree on {agree}/{len(test)} "
        f"images; largest probability difference {max_diff:.2g}. 95% CIs: percentile bootstrap, "
        f"{report_a['bootstrap']['resamples']} resamples of the test images.",
        "",
    ])
    raw = {"config": {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": args.seed,
                      "n_train": len(train), "n_test": len(test), "per_class": args.per_class, "machine": machine},
           "cached_seconds": [a1, a2], "cached_before_first_epoch_seconds": [a1_setup, a2_setup],
           "recomputed_seconds": b, "speedup": b / a,
           "cached": {"metrics": report_a["metrics"], "ci95": report_a["ci95"]},
           "recomputed": {"metrics": report_b["metrics"], "ci95": report_b["ci95"]},
           "predictions_agree": agree, "max_probability_difference": max_diff}
    publish("cached_features", markdown, raw)


if __name__ == "__main__":
    main()
