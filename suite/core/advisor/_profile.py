"""What the data set is: size per class, imbalance, input sizes or text lengths, groups."""

from __future__ import annotations

import numpy as np

from ..data import LabeledData

SIZE_SAMPLE = 64  # items whose image size / text length is measured


def _image_sizes(data: LabeledData, idx: np.ndarray) -> dict:
    sides, modes = [], set()
    for i in idx:
        item = data.items[i]
        if isinstance(item, np.ndarray):
            h, w = item.shape[:2]
            modes.add("L" if item.ndim == 2 or item.shape[-1] == 1 else "RGB")
        else:
            img = data.load(int(i))
            w, h = img.size
            modes.add(img.mode)
        sides.append((w, h))
    arr = np.asarray(sides, dtype=float)
    short = arr.min(axis=1)
    return {"median_width": int(np.median(arr[:, 0])), "median_height": int(np.median(arr[:, 1])),
            "min_side": int(short.min()), "max_side": int(arr.max()), "grayscale": modes <= {"L", "1", "I;16"},
            "sampled": len(idx)}


def _text_lengths(data: LabeledData, idx: np.ndarray) -> dict:
    words = np.array([len(str(data.items[i]).split()) for i in idx])
    return {"median_words": float(np.median(words)), "p95_words": float(np.percentile(words, 95)),
            "max_words": int(words.max()), "sampled": len(idx)}


def profile_data(data: LabeledData, seed: int = 0) -> dict:
    """Facts about ``data`` the advice rests on (a JSON-able dict)."""
    labelled = data.labels >= 0 if data.labels.ndim == 1 else (data.labels >= 0).all(axis=1)
    counts = data.class_counts()
    sizes = np.array([n for n in counts.values()], dtype=float) if counts else np.zeros(1)
    present = sizes[sizes > 0]
    profile = {
        "source": data.source, "modality": data.modality, "task": data.task, "items": len(data),
        "labelled": int(labelled.sum()), "classes": len(data.classes), "class_counts": counts,
        "min_per_class": int(present.min()) if len(present) else 0,
        "median_per_class": float(np.median(present)) if len(present) else 0.0,
        "imbalance": float(present.max() / present.min()) if len(present) else float("nan"),
        "empty_classes": [c for c, n in counts.items() if n == 0],
        "groups": None if data.groups is None else {"count": len(set(data.groups)),
                                                     "median_items": float(np.median(np.unique(
                                                         data.groups, return_counts=True)[1]))},
        "warnings": list(data.warnings),
    }
    idx = np.random.default_rng(seed).permutation(len(data))[:SIZE_SAMPLE]
    if data.modality == "image":
        profile["image"] = _image_sizes(data, idx)
    elif data.modality == "text":
        profile["text"] = _text_lengths(data, idx)
    elif data.modality == "volume":
        profile["volume"] = {"shape": list(np.asarray(data.items[0]).shape)}
    return profile


def stratified_subset(data: LabeledData, max_items: int | None, seed: int = 0) -> LabeledData:
    """At most ``max_items`` labelled items, classes in proportion (every class keeps at least 2 when it has them)."""
    labels = data.labels if data.labels.ndim == 1 else np.zeros(len(data), dtype=np.int64)
    keep = np.flatnonzero(labels >= 0)
    if not max_items or len(keep) <= max_items:
        return data.subset(keep) if len(keep) < len(data) else data
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels[keep]):
        members = rng.permutation(keep[labels[keep] == c])
        share = max(min(2, len(members)), int(round(max_items * len(members) / len(keep))))
        picked.append(members[:share])
    part = data.subset(np.sort(np.concatenate(picked)))
    part.source = f"{data.source} (stratified {len(part)} of {len(data)}, seed {seed})"
    return part
