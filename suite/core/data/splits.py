"""Train/val/test splits: stratified by label, group-aware when items share a patient or leaf."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import SuiteError


def _strata(labels: np.ndarray) -> np.ndarray:
    """The stratum of each item: its class, or for multilabel rows the positive class that is most
    frequent overall (-1 when a row has no positive)."""
    if labels.ndim == 1:
        return labels.astype(np.int64)
    positives = labels == 1
    score = np.where(positives, positives.sum(axis=0)[None, :], -1)
    strata = score.argmax(axis=1)
    strata[~positives.any(axis=1)] = -1
    return strata


def _targets(n: int, fractions: np.ndarray) -> np.ndarray:
    """Items wanted per held-out split: rounded, at least one when asked for and ``n`` allows it."""
    targets = np.round(n * fractions).astype(int)
    if n > len(fractions):
        targets[(fractions > 0) & (targets == 0)] = 1
    return targets


def _stratified(strata: np.ndarray, fractions: np.ndarray, rng) -> list[np.ndarray]:
    """Train then held-out index arrays from per-class quotas (largest remainder, so totals match
    the targets), filled at random. A class keeps one training item unless a held-out split would
    otherwise be empty."""
    classes, inverse = np.unique(strata, return_inverse=True)
    sizes = np.bincount(inverse)
    quota = sizes[:, None] * fractions[None, :]
    taken = np.floor(quota).astype(int)
    order = np.argsort(-(quota - taken + 1e-9 * rng.random(quota.shape)), axis=0)
    for s, target in enumerate(_targets(len(strata), fractions)):
        for keep_in_train in (1, 0):
            for c in order[:, s]:
                if taken[:, s].sum() >= target:
                    break
                if sizes[c] - taken[c].sum() > keep_in_train:
                    taken[c, s] += 1
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in range(len(classes)):
        members = rng.permutation(np.flatnonzero(inverse == c))
        bounds = np.cumsum(taken[c])
        for s, chunk in enumerate(np.split(members, bounds)):
            parts[(s + 1) % len(parts)].append(chunk)  # held-out chunks first, train (part 0) last
    return [np.concatenate(p) for p in parts]


def _grouped(strata: np.ndarray, groups: np.ndarray, fractions: np.ndarray, rng) -> list[np.ndarray]:
    """Train then held-out index arrays. Whole groups go, largest first, to the split whose
    per-class counts they bring closest to the targets (StratifiedGroupKFold's greedy idea, but
    for any fractions)."""
    group_ids, group_of = np.unique(groups, return_inverse=True)
    _, cls = np.unique(strata, return_inverse=True)
    counts = np.zeros((len(group_ids), cls.max() + 1))
    np.add.at(counts, (group_of, cls), 1)
    shares = np.concatenate([[1.0 - fractions.sum()], fractions])
    target = shares[:, None] * counts.sum(axis=0)[None, :]
    weight = 1.0 / (counts.sum(axis=0) + 1.0)  # rare classes count as much as common ones
    current = np.zeros_like(target)
    owner = np.zeros(len(group_ids), dtype=int)
    shuffled = rng.permutation(len(group_ids))
    for g in shuffled[np.argsort(-counts[shuffled].sum(axis=1), kind="stable")]:
        cost = ((2 * (current - target) * counts[g] + counts[g] ** 2) * weight).sum(axis=1)
        owner[g] = int(np.argmin(cost))
        current[owner[g]] += counts[g]
    for s in range(1, len(shares)):  # a requested split left empty takes the smallest group of the fullest
        donors = np.bincount(owner, minlength=len(shares))
        if shares[s] > 0 and donors[s] == 0 and donors.max() > 1:
            richest = np.flatnonzero(owner == int(np.argmax(donors)))
            owner[richest[np.argmin(counts[richest].sum(axis=1))]] = s
    split_of_item = owner[group_of]
    return [np.flatnonzero(split_of_item == s) for s in range(len(shares))]


def split_indices(labels, val: float = 0.2, test: float = 0.0, groups=None, seed: int = 0) -> dict[str, np.ndarray]:
    """Disjoint ``train``/``val`` (and ``test`` when ``test > 0``) index arrays covering every item.

    Stratified by label (multilabel: by each row's most frequent positive class); with ``groups``
    no group is in two splits. Deterministic for a given ``seed``; tiny classes never make it fail.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (1, 2) or len(labels) == 0:
        raise SuiteError(f"split_indices: labels must be a non-empty (N,) or (N, K) array, got shape {labels.shape}")
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise SuiteError(f"split_indices: val={val} and test={test} must be fractions in [0, 1) that sum below 1")
    names = ["val", "test"] if test > 0 else ["val"]
    fractions = np.array([val, test][: len(names)], dtype=float)
    rng = np.random.default_rng(seed)
    strata = _strata(labels)
    if groups is None:
        parts = _stratified(strata, fractions, rng)
    else:
        groups = np.asarray([str(g) for g in groups])
        if len(groups) != len(labels):
            raise SuiteError(f"split_indices: {len(groups)} group ids for {len(labels)} labels")
        parts = _grouped(strata, groups, fractions, rng)
    splits = {name: np.sort(part).astype(np.int64) for name, part in zip(["train", *names], parts)}
    empty = [name for name, frac in zip(names, fractions) if frac > 0 and len(splits[name]) == 0]
    if empty:
        warnings.warn(f"split_indices: {empty} split(s) are empty: too few items or groups "
                      f"({len(labels)} items) to hold out", stacklevel=2)
    return splits


def groups_from_pattern(paths, regex: str) -> list[str]:
    """Group ids (e.g. patient ids) from file names: the first capture group of ``regex``
    (the whole match without groups), searched in the file name, then in the full path."""
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise SuiteError(f"group pattern {regex!r} is not a valid regular expression ({exc})") from None
    ids, unmatched = [], []
    for path in paths:
        match = pattern.search(Path(path).name) or pattern.search(Path(path).as_posix())
        if match is None:
            unmatched.append(str(path))
            continue
        ids.append(match.group(1) if pattern.groups else match.group(0))
    if unmatched:
        raise SuiteError(f"{unmatched[0]}: file name does not match the group pattern {regex!r} "
                         f"({len(unmatched)} of {len(ids) + len(unmatched)} files do not match)")
    return ids
