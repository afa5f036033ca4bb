"""How a leaf model holds up outside the lab: accuracy under field-like corruptions, and where it looks.

- :func:`corruption_accuracy`: accuracy on labelled photos after each corruption of
  :func:`suite.core.data.corruption` (blur, JPEG, shadow, glare, background clutter, colour cast, ...)
  at several severities.
- :func:`leaf_attention`: the share of each Grad-CAM map that falls on the leaf (found by colour
  segmentation on the model's own input), next to the leaf's share of the image: a model that
  looks at the leaf puts more of its attention there than the leaf's area alone would give.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

FIELD_CORRUPTIONS = ("clutter", "shadow", "glare", "blur", "perspective", "jpeg", "colour", "brightness", "noise")
SEVERITIES = (1, 3, 5)


def _accuracy(solution, data, transform, batch_size: int) -> tuple[float, np.ndarray]:
    from suite.core.features import input_loader

    model = solution.model.eval()
    device = solution.device
    preds = []
    with torch.no_grad():
        for x, _ in input_loader(model, data, batch_size, transform=transform):
            preds.append(model(x.to(device)).argmax(-1).cpu().numpy())
    pred = np.concatenate(preds)
    correct = pred == data.labels
    return float(correct.mean()), correct


def corruption_accuracy(solution, data, corruptions: Sequence[str] = FIELD_CORRUPTIONS,
                        severities: Sequence[int] = SEVERITIES, batch_size: int = 50, seed: int = 0) -> list[dict]:
    """Rows ``{"corruption", "severity", "accuracy", "correct"}``: first the clean photos (``"none"``,
    severity 0), then every corruption at every severity; ``correct`` is the per-photo 0/1 array
    (for confidence intervals). Corruptions are deterministic per photo and ``seed``."""
    from suite.core.data import corruption

    base = solution.preprocess.image_transform()
    acc, correct = _accuracy(solution, data, base, batch_size)
    rows = [{"corruption": "none", "severity": 0, "accuracy": acc, "correct": correct}]
    for name in corruptions:
        for severity in severities:
            corrupt = corruption(name, severity, seed=seed)
            acc, correct = _accuracy(solution, data, lambda img, c=corrupt: base(c(img)), batch_size)
            rows.append({"corruption": name, "severity": severity, "accuracy": acc, "correct": correct})
    return rows


def _input_rgb(solution, x: torch.Tensor) -> np.ndarray:
    """A normalised model input ``(C, H, W)`` back to an RGB uint8 image ``(H, W, 3)``."""
    mean = torch.tensor(solution.preprocess.mean)[:, None, None]
    std = torch.tensor(solution.preprocess.std)[:, None, None]
    rgb = (x.cpu() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
    return (rgb * 255).round().astype(np.uint8)


def leaf_attention(solution, data, corrupt=None, max_items: int | None = None) -> dict:
    """Grad-CAM's share on the leaf for labelled leaf photos (maps for each photo's predicted class).

    ``corrupt`` (a PIL -> PIL corruption that keeps the geometry, such as background clutter) is
    applied before the model sees a photo; the leaf is always found on the clean photo, so a
    cluttered backdrop cannot pass for leaf. Returns means over the photos of ``cam_on_leaf`` (sum
    of the map on leaf pixels / sum of the map), ``leaf_area`` (leaf pixels / all pixels) and
    ``ratio`` (their quotient: above 1 means attention is concentrated on the leaf), with the
    per-photo values and how many photos were used. Photos where colour segmentation finds no leaf
    (under 5% of the image) or the map is empty are left out and counted as ``skipped``.
    """
    from suite.core.data.augment import leaf_mask
    from suite.core.explain import gradcam

    if max_items is not None and len(data) > max_items:
        data = data.subset(np.linspace(0, len(data) - 1, max_items).round().astype(int))
    base = solution.preprocess.image_transform()
    on_leaf, area, skipped = [], [], 0
    for i in range(len(data)):
        img = data.load(i).convert("RGB")
        clean = base(img)
        x = base(corrupt(img)) if corrupt is not None else clean
        cam = gradcam(solution.model, x[None])[0]  # one photo per call: each map is normalised on its own
        mask = leaf_mask(_input_rgb(solution, clean))
        if mask.mean() < 0.05 or cam.sum() <= 0:
            skipped += 1
            continue
        on_leaf.append(float((cam * mask).sum() / cam.sum()))
        area.append(float(mask.mean()))
    on_leaf_arr, area_arr = np.array(on_leaf), np.array(area)
    return {"cam_on_leaf": float(on_leaf_arr.mean()) if on_leaf else float("nan"),
            "leaf_area": float(area_arr.mean()) if area else float("nan"),
            "ratio": float((on_leaf_arr / area_arr).mean()) if on_leaf else float("nan"),
            "n": len(on_leaf), "skipped": skipped, "per_item": {"cam_on_leaf": on_leaf, "leaf_area": area}}


def bootstrap_ci(values: np.ndarray, n_bootstrap: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of the mean of ``values`` (0/1 correctness or any per-item score)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_bootstrap, len(values)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))
