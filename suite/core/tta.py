"""Test-time augmentation for any image Solution: average predictions over a few views of each input.

Views are applied to the model input after the Solution's own preprocessing, so the preprocessing
the model was trained with is never changed. ``views`` chooses them; flips suit photos whose
orientation carries no meaning (leaves, cells), not X-rays whose left and right sides differ.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .errors import SuiteError

DEFAULT_VIEWS = ("identity", "hflip")
ZOOM = 0.875  # "zoom": the central 87.5% of the input, resized back


def _zoom(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * ZOOM)), max(1, round(w * ZOOM))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top:top + ch, left:left + cw]
    return torch.nn.functional.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)


VIEWS = {
    "identity": lambda x: x,
    "hflip": lambda x: torch.flip(x, dims=[-1]),
    "vflip": lambda x: torch.flip(x, dims=[-2]),
    "rot90": lambda x: torch.rot90(x, 1, dims=[-2, -1]),
    "zoom": _zoom,
}


def check_views(views: Sequence[str]) -> list[str]:
    """The view names, checked; unknown names list the valid ones."""
    views = list(views)
    unknown = [v for v in views if v not in VIEWS]
    if unknown or not views:
        raise SuiteError(f"unknown test-time augmentation view(s) {unknown or views}; choose from {sorted(VIEWS)}")
    return views


@torch.no_grad()
def tta_forward(solution, items: Iterable[Any], views: Sequence[str] = DEFAULT_VIEWS,
                batch_size: int = 32, guard: bool = True) -> tuple[np.ndarray, torch.Tensor]:
    """Probabilities ``(N, K)`` averaged over ``views`` and the features ``(N, D)`` the input guard reads
    (``Solution.guard_features``; ``guard=False``: the backbone's own) of the first view.

    Softmax (multi-label: sigmoid) is averaged, not logits, so a single confident view cannot dominate.
    """
    views = check_views(views)
    if solution.preprocess.modality != "image":
        raise SuiteError(f"test-time augmentation needs an image Solution, {solution.name} takes "
                         f"{solution.preprocess.modality}")
    items = list(items)
    model = solution.model.eval()
    probs, feats = [], []
    for x in solution.encoded_batches(items, batch_size):
        batch = torch.cat([VIEWS[v](x) for v in views])  # (V*B, C, H, W)
        f = model.forward_features(batch)
        logits = model.forward_head(f).float()
        p = logits.sigmoid() if solution.task == "multilabel" else logits.softmax(-1)
        probs.append(p.view(len(views), len(x), -1).mean(0).cpu().numpy())
        feats.append((solution.guard_features(x, f[: len(x)]) if guard else f[: len(x)]).float().cpu())
    if not probs:
        return np.zeros((0, len(solution.labels)), np.float32), torch.zeros(0, model.num_features)
    return np.concatenate(probs), torch.cat(feats)


def tta_predict_proba(solution, items: Iterable[Any], views: Sequence[str] = DEFAULT_VIEWS,
                      batch_size: int = 32) -> np.ndarray:
    """Class probabilities ``(N, K)`` averaged over ``views`` (see :func:`tta_forward`)."""
    return tta_forward(solution, items, views, batch_size, guard=False)[0]


def tta_predict(solution, inputs: Any, views: Sequence[str] = DEFAULT_VIEWS, batch_size: int = 32) -> dict | list[dict]:
    """``Solution.predict`` with test-time augmentation: the same dicts (``ood``/``ood_score`` come from
    the un-augmented view) plus ``tta_views``."""
    return solution.predict(inputs, batch_size=batch_size, tta=check_views(views))
