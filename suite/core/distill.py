"""Knowledge distillation targets: train a student on the averaged predictions of trained teachers.

An ensemble of runs is usually more accurate than any one of them but costs its size at every
prediction; a single model trained towards the ensemble's probabilities can keep part of the gain at
the cost of one model.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .errors import SuiteError


def current_targets(data) -> np.ndarray:
    """``data``'s training targets as (N, K) probability rows: its soft labels, or one-hot labels."""
    if data.soft_labels is not None:
        return np.asarray(data.soft_labels, dtype=np.float32)
    if data.labels.ndim != 1:
        raise SuiteError("distillation targets need single-label (multiclass) data")
    return np.eye(len(data.classes), dtype=np.float32)[data.labels]


def teacher_probabilities(data, teachers: Sequence, batch_size: int = 64) -> np.ndarray:
    """Mean class probabilities of ``teachers`` (Solutions with ``data``'s classes, in order) on ``data``."""
    if not teachers:
        raise SuiteError("distillation needs at least one teacher")
    for t in teachers:
        if list(t.labels) != list(data.classes):
            raise SuiteError(f"teacher {t.name!r} predicts {list(t.labels)}, the data has {list(data.classes)}")
    total = np.zeros((len(data), len(data.classes)), dtype=np.float64)
    for start in range(0, len(data), 8 * batch_size):  # load a few batches at a time, not every item
        items = [data.load(i) for i in range(start, min(start + 8 * batch_size, len(data)))]
        for t in teachers:
            total[start:start + len(items)] += t.predict_proba(items, batch_size=batch_size)
    return (total / len(teachers)).astype(np.float32)


def teacher_targets(data, teachers: Sequence, weight: float = 0.5, batch_size: int = 64):
    """``data`` with soft training targets ``(1 - weight) * its targets + weight * the teachers' mean
    probabilities``; ``labels`` (used for splits, sampling and metrics) are unchanged."""
    if not 0.0 < weight <= 1.0:
        raise SuiteError(f"teacher weight must be in (0, 1], got {weight}")
    mixed = (1.0 - weight) * current_targets(data) + weight * teacher_probabilities(data, teachers, batch_size)
    return dataclasses.replace(data, soft_labels=mixed / mixed.sum(axis=1, keepdims=True),
                               source=f"{data.source} (targets mixed {weight:g} with {len(teachers)} teacher(s))")
