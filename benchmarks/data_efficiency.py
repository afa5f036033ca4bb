"""Data efficiency: pretrained vs. from-scratch ``embedded:efficientnet_lite0`` at a few labels per class.

Tomato leaves (default): a fixed, seeded stratified test set of 20 images per class (200) is held
out first; from the remaining 100 per class, nested seeded subsets of 10, 30 and all 100 labelled
images per class are drawn. PneumoniaMNIST (``--dataset pneumonia``): subsets of the official
train split (10, 30, 100 per class by default), scored on the official test split (624), with AUROC.

Pretrained recipe (picked for little data on a CPU): ImageNet weights, strategy ``partial`` (last
2 backbone groups + head train), 3 epochs, batch 32, AdamW lr 3e-3, warm-up + cosine, augment
``light``, 224 px as the model's preprocessing says. Scratch: the same architecture with random
weights, strategy ``full``, otherwise the same config (the rule of ``finetune(baseline="scratch")``:
same epochs, so the same number of optimizer steps). No validation data: both keep their last epoch.
Each cell reports test accuracy (and AUROC) with 95% bootstrap CIs and its training wall time.

    .venv/bin/python benchmarks/data_efficiency.py                        # 11-13 min on the 2-core dev machine
    .venv/bin/python benchmarks/data_efficiency.py --dataset pneumonia    # 3.5 min
    .venv/bin/python benchmarks/data_efficiency.py --quick                # smoke run: 2 and 5 per class, 1 epoch
    .venv/bin/python benchmarks/data_efficiency.py --recipe agriculture   # the shipped tomato recipe, same test set
    .venv/bin/python benchmarks/data_efficiency.py --recipe agriculture --sizes all --keep --jobs 2 --threads 1
        # adds the "all" row to the cells already in the results file, both sides trained at once

``--recipe agriculture`` trains the pretrained side with ``suite.agriculture.train.Recipe`` (its backbone,
every layer, its augmentation preset, label smoothing and input size) and the scratch side with the same
config, strategy ``full``; results go to data_efficiency_agriculture.md/.json.

Writes benchmarks/results/data_efficiency[_pneumonia].md and .json.
"""

from __future__ import annotations

# _common first: it sets the OpenMP wait policy, which torch reads when it loads
from _common import BACKBONE, PNEUMONIA, RESULTS, TOMATO, ci_cell, per_class, publish, require, set_threads

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np

SIDES = ("pretrained", "scratch")
RECIPE = dict(strategy="partial", epochs=3, batch_size=32, lr=3e-3, augment="light")


def load(dataset: str, seed: int):
    """(pool to draw training subsets from, test set, metrics to report, description of the test set)."""
    from suite.core.data import from_folder, from_npz

    if dataset == "pneumonia":
        path = require(PNEUMONIA)
        return (from_npz(path, split="train"), from_npz(path, split="test"), ["accuracy", "auroc"],
                "official PneumoniaMNIST test split")
    data = from_folder(require(TOMATO))
    test = per_class(data.labels, 20, np.random.default_rng(seed))
    pool = np.setdiff1d(np.arange(len(data)), test)
    return data.subset(pool), data.subset(test), ["accuracy"], "20 held-out images per class"


def train_and_score(train, test, config, pretrained: bool, desc: str, image_size: int | None = None,
                    backbone: str = BACKBONE):
    """Train one cell (at ``image_size`` px when given); returns (evaluation report, training seconds)."""
    import dataclasses

    from suite.core import Solution, create_model
    from suite.core.finetune import evaluate_solution, infer_in_chans
    from suite.core.trainer import Trainer, seed_everything

    seed_everything(config.seed)
    model = create_model(backbone, num_classes=len(train.classes), in_chans=infer_in_chans(train),
                         pretrained=pretrained, task=train.task)
    if image_size:
        model.preprocess = dataclasses.replace(model.preprocess, input_size=(model.preprocess.in_chans, image_size,
                                                                             image_size))
    start = time.perf_counter()
    trainer = Trainer(model, config)
    trainer.fit(train)
    seconds = time.perf_counter() - start
    report, _ = evaluate_solution(Solution(trainer.model, train.classes), test, data_desc=desc, seed=config.seed)
    return report, seconds


def _train_cell(job: tuple):
    """One (size, side) cell in a worker process: ``job`` is (threads, arguments of train_and_score)."""
    threads, arguments = job
    set_threads(threads)
    return train_and_score(*arguments)


def kept_cells(path, raw: dict, sizes: list) -> list:
    """Cells of other sizes from an earlier results file of the same dataset, backbone, recipe and seed."""
    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    if any(old.get(k) != raw[k] for k in ("dataset", "backbone", "recipe", "seed", "test")):
        raise SystemExit(f"{path}: made with another dataset, backbone, recipe, seed or test set; "
                         "run without --keep to replace it")
    return [cell for cell in old["cells"] if cell["per_class"] not in sizes]


def _size_key(cell: dict) -> float:
    return float("inf") if cell["per_class"] == "all" else int(cell["per_class"])


def _timing(cells: list) -> str:
    """How the cells shared the machine while their times were measured."""
    together = [c["per_class"] for c in cells if c.get("jobs", 1) > 1]
    if not together:
        return "cells run one after another (pretrained, scratch per size)."
    return (f"cells run one after another, except {', '.join(together)} per class, whose cells trained "
            f"{max(c.get('jobs', 1) for c in cells)} at once, one process each, on the same CPUs.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="tomato", choices=["tomato", "pneumonia"])
    parser.add_argument("--sizes", nargs="+", default=None,
                        help="labelled images per class; 'all' = the whole pool (default: tomato 10 30 all, "
                             "pneumonia 10 30 100)")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--threads", type=int, default=2, help="torch threads per training")
    parser.add_argument("--jobs", type=int, default=1, help="cells trained at once, each in its own process")
    parser.add_argument("--keep", action="store_true",
                        help="keep the results file's cells of sizes not run now (same recipe and seed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: sizes 2 5, 1 epoch")
    parser.add_argument("--recipe", default="default", choices=["default", "agriculture"],
                        help="agriculture: the shipped tomato recipe (suite.agriculture.train.Recipe)")
    args = parser.parse_args()
    sizes = args.sizes or (["10", "30", "all"] if args.dataset == "tomato" else ["10", "30", "100"])
    if args.quick:
        sizes, args.epochs = ["2", "5"], 1
    machine = set_threads(args.threads)

    from suite.core.trainer import TrainConfig

    pool, test, metrics, test_desc = load(args.dataset, args.seed)
    pretrained_cfg = TrainConfig(**{**RECIPE, "epochs": args.epochs}, progress=False, seed=args.seed)
    scratch_cfg = TrainConfig(**{**RECIPE, "epochs": args.epochs, "strategy": "full"}, progress=False,
                              seed=args.seed)
    backbone, image_size, recipe_desc = BACKBONE, None, (
        f"strategy `partial` (last 2 backbone groups + head), {args.epochs} epoch(s), batch {RECIPE['batch_size']}, "
        f"AdamW lr {RECIPE['lr']:g} wd {pretrained_cfg.weight_decay:g}, {pretrained_cfg.warmup:.0%} warm-up + "
        f"cosine, augment `{RECIPE['augment']}`, 224 px")
    if args.recipe == "agriculture":
        from dataclasses import replace

        from suite.agriculture.train import Recipe

        recipe = Recipe(seed=args.seed, **({"epochs": 1} if args.quick else {}))
        pretrained_cfg = recipe.train_config(progress=False)
        scratch_cfg = replace(pretrained_cfg, strategy="full", strategy_options={})
        backbone, image_size, recipe_desc = recipe.backbone, recipe.image_size, (
            f"the agriculture recipe: strategy `partial` (last {recipe.n_groups} backbone groups + head), "
            f"{recipe.epochs} epoch(s), batch {recipe.batch_size}, AdamW lr {recipe.lr:g}, label smoothing "
            f"{recipe.label_smoothing:g}, {pretrained_cfg.warmup:.0%} warm-up + cosine, augment `{recipe.augment}`, "
            f"{recipe.image_size} px")
    desc = f"{test_desc} ({len(test)} items)"
    name = "data_efficiency" + ("_pneumonia" if args.dataset == "pneumonia" else "") + (
        "_agriculture" if args.recipe == "agriculture" else "")
    recipe_raw = {**RECIPE, "epochs": args.epochs} if args.recipe == "default" else {
        "strategy": pretrained_cfg.strategy, **pretrained_cfg.strategy_options, "epochs": pretrained_cfg.epochs,
        "lr": pretrained_cfg.lr, "batch_size": pretrained_cfg.batch_size, "augment": pretrained_cfg.augment,
        "label_smoothing": pretrained_cfg.label_smoothing, "image_size": image_size}
    raw = {"dataset": args.dataset, "backbone": backbone, "recipe": recipe_raw, "seed": args.seed,
           "machine": machine, "test": desc}
    kept = kept_cells(RESULTS / f"{name}.json", raw, sizes) if args.keep else []  # checked before training
    cells, jobs = [], []
    for size in sizes:
        n = None if size == "all" else int(size)
        # the same generator seed for every size, so the subsets are nested (10 of them are in the 30)
        train = pool.subset(per_class(pool.labels, n, np.random.default_rng(args.seed + 1)))
        counts = np.bincount(train.labels, minlength=len(train.classes))
        cells.append({"per_class": size, "n_train": len(train), "class_counts": counts.tolist(), "jobs": args.jobs})
        jobs += [(cells[-1], side, (args.threads, (train, test, cfg, pretrained, desc, image_size, backbone)))
                 for side, cfg, pretrained in (("pretrained", pretrained_cfg, True), ("scratch", scratch_cfg, False))]
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) if args.jobs > 1 else \
            nullcontext(SimpleNamespace(map=map)) as pool_:
        for (cell, side, _), (report, seconds) in zip(jobs, pool_.map(_train_cell, [job for *_, job in jobs])):
            one_class = sum(any(column) for column in zip(*report["confusion_matrix"])) == 1
            cell[side] = {"metrics": report["metrics"], "ci95": report["ci95"], "seconds": seconds,
                          "predicts_one_class": one_class,
                          "cells": [ci_cell(report, m) + (" *" if one_class and m == "accuracy" else "")
                                    for m in metrics]}
            # the log keeps each cell's result, should the table not be written
            print(f"done: {cell['per_class']} per class, {side}: {json.dumps(cell[side])}", flush=True)
    cells = sorted(kept + cells, key=_size_key)

    header = ["labelled per class", "train images"]
    for side in SIDES:
        header += [f"{side} {m} [95% CI]" for m in metrics] + [f"{side} time (s)"]
    rows = []
    for cell in cells:
        all_ = " (all)" if cell["per_class"] == "all" else ""
        row = [f"{min(cell['class_counts'])}{all_}", str(cell["n_train"])]
        for side in SIDES:
            row += cell[side]["cells"] + [f"{cell[side]['seconds']:.1f}"]
        rows.append("| " + " | ".join(row) + " |")
    one_class = any(cell[side]["predicts_one_class"] for cell in cells for side in SIDES)
    note = "\\* predicts the same class for every test item: its accuracy is that class's share.\n" if one_class else ""
    title = "PneumoniaMNIST" if args.dataset == "pneumonia" else "PlantVillage tomato (10 classes)"
    markdown = "\n".join([
        f"## Data efficiency: pretrained vs. scratch `{backbone}`, {title}",
        "",
        f"Test set: {desc}. Pretrained: ImageNet weights, {recipe_desc}. "
        f"Scratch: random weights, strategy `full`, same epochs/steps and "
        f"config. No validation (last epoch kept); nested seeded subsets (seed {args.seed}). Time = training "
        f"wall time (test scoring excluded), {_timing(cells)} "
        f"95% CIs: percentile bootstrap over the test items. {machine}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *rows,
        "",
        note,
    ])
    publish(name, markdown, {**raw, "cells": cells})


if __name__ == "__main__":
    main()
