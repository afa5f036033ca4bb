"""A short, honest search under a time budget: a few strategies and learning rates on a subset,
scored on a validation split of that subset (never on test data), every candidate reported."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..data import LabeledData
from ._recipes import estimate_seconds


def search_split(data: LabeledData, val: float = 0.3, seed: int = 0) -> tuple[LabeledData, LabeledData]:
    """Train and validation parts of ``data`` (stratified, whole groups when it has groups)."""
    from ..data import split_indices

    parts = split_indices(data.labels, val=val, test=0.0, groups=data.groups, seed=seed)
    return data.subset(parts["train"]), data.subset(parts["val"])


def train_candidate(backbone: str, config: dict, train: LabeledData, image_size: int | None, cache_dir=None,
                    seed: int = 0):
    """Train one candidate (no validation during training: its last epoch is kept); returns
    (model, seconds)."""
    from ..trainer import Trainer, TrainConfig, seed_everything
    from ._probe import build_model

    seed_everything(seed)
    model = build_model(backbone, train, image_size)
    start = time.perf_counter()
    cfg = TrainConfig(**config, seed=seed, progress=False, cache_dir=str(cache_dir) if cache_dir else None)
    trainer = Trainer(model, cfg)
    trainer.fit(train)
    return trainer.model, time.perf_counter() - start


def score(model, data: LabeledData, cache_dir=None) -> dict:
    """Accuracy and balanced accuracy of ``model`` on labelled ``data``."""
    from sklearn.metrics import balanced_accuracy_score

    from ..features import predict_logits

    predicted = predict_logits(model, data).argmax(-1).numpy()
    return {"accuracy": float((predicted == data.labels).mean()),
            "balanced_accuracy": float(balanced_accuracy_score(data.labels, predicted))}


def run_search(backbone: str, data: LabeledData, candidates: list[dict], budget_s: float, rates: dict | None,
               image_size: int | None = None, cache_dir=None, seed: int = 0, val: float = 0.3,
               progress: Callable[[str], None] | None = None) -> dict:
    """Train ``candidates`` in order on a train part of ``data`` while the budget lasts; a candidate
    whose estimated time exceeds what is left is skipped (and reported as such). The winner has the
    best validation accuracy; ties go to the faster candidate."""
    start = time.perf_counter()
    train, valid = search_split(data, val, seed)
    rows = []
    for i, cand in enumerate(candidates):
        left = budget_s - (time.perf_counter() - start)
        est = estimate_seconds(cand, rates, len(train), 0, features_cached=True)
        row = {**cand, "estimated_s": None if est is None else round(est, 1)}
        if est is not None and est > left:
            rows.append({**row, "status": f"skipped: estimated {est:.0f} s > {max(left, 0):.0f} s left"})
            continue
        if progress:
            progress(f"search {i + 1}/{len(candidates)}: {cand['strategy']} lr {cand['lr']:g}")
        model, seconds = train_candidate(backbone, cand, train, image_size, cache_dir, seed)
        rows.append({**row, **score(model, valid), "seconds": round(seconds, 1), "status": "trained"})
    trained = [r for r in rows if r["status"] == "trained"]
    winner = max(trained, key=lambda r: (round(r["accuracy"], 4), -r["seconds"])) if trained else None
    return {"backbone": backbone, "train_items": len(train), "val_items": len(valid),
            "budget_s": round(budget_s, 1), "seconds": round(time.perf_counter() - start, 1),
            "candidates": rows, "winner": winner,
            "how": f"each candidate trained on {len(train)} items and scored on {len(valid)} held-out items of "
                   f"the same subset (accuracy; ties go to the faster); candidates in the order listed; a candidate was "
                   f"skipped when its estimated time exceeded what was left of the budget"}
