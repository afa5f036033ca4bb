"""Diagnose one leaf photo: top classes with probabilities, the disease card, and an "unknown" verdict.

A photo is called unknown (not a leaf, or unlike the training photos) when either check fires:
- the leaf-colour check: less than ``MIN_LEAF_SHARE`` of the image is leaf-coloured (colour
  segmentation, :func:`suite.core.data.augment.leaf_mask`);
- the core input guard of the Solution (Mahalanobis distance of backbone features, ``ood``).
A confident-looking probability alone never makes a photo known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import display_name, is_healthy
from .diseases import UNKNOWN, DiseaseCard, card_for

SOLUTIONS = Path(__file__).resolve().parent / "solutions"
TOMATO = SOLUTIONS / "tomato"
TOMATO_ENSEMBLE = SOLUTIONS / "tomato_ensemble"  # three runs of the recipe, probabilities averaged
MIN_LEAF_SHARE = 0.05  # of the image that must be leaf-coloured
LOW_CONFIDENCE = 0.5
TTA_VIEWS = ("identity", "hflip", "vflip", "zoom")


def load_tomato(path=None):
    """The shipped tomato solution (10 classes: 9 diseases and healthy); ``path`` another, such as
    ``TOMATO_ENSEMBLE`` (more accurate, one network pass per member)."""
    from suite.core import Solution

    return Solution.load(path or TOMATO)


def leaf_share(image, size: int = 128) -> float:
    """Share of the image that colour segmentation calls leaf (computed at ``size`` px on the short side)."""
    from PIL import Image

    from suite.core.data.augment import leaf_mask
    from suite.core.io import read_image

    img = read_image(image).convert("RGB")
    scale = size / min(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BILINEAR)
    return float(leaf_mask(np.asarray(img)).mean())


@dataclass
class Diagnosis:
    """One photo's result. ``top`` lists ``(label, probability)`` best first."""

    label: str
    name: str
    score: float
    top: list[tuple[str, float]]
    card: DiseaseCard | None  # None for a class without an information card (a user's own crop)
    healthy: bool
    unknown: bool
    leaf_share: float
    ood_score: float | None = None
    warnings: list[str] = field(default_factory=list)
    tta: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "name": self.name, "score": self.score, "top": self.top,
                "healthy": self.healthy, "unknown": self.unknown, "leaf_share": self.leaf_share,
                "ood_score": self.ood_score, "warnings": self.warnings, "tta": self.tta,
                "card": self.card.name if self.card else None}


def verdict(prediction: dict, share: float) -> tuple[bool, list[str]]:
    """(unknown?, reasons) from a ``Solution.predict`` dict and the photo's leaf share."""
    warnings = []
    if share < MIN_LEAF_SHARE:
        warnings.append(f"Only {share:.0%} of the photo is leaf-coloured: this does not look like a leaf photo.")
    if prediction.get("ood"):
        warnings.append(f"The photo is unlike the training photos (input guard score {prediction['ood_score']:.2f} "
                        "> 1): the prediction cannot be trusted.")
    unknown = bool(warnings)
    if prediction["score"] < LOW_CONFIDENCE:
        warnings.append(f"Low confidence ({prediction['score']:.0%}): the classes below are close; "
                        "take another photo or ask an expert.")
    return unknown, warnings


def diagnose(solution, image, tta: bool = False, top_k: int = 3) -> Diagnosis:
    """Diagnose one leaf photo (path, bytes, PIL image or array) with ``solution``.

    ``tta=True`` averages the prediction over flips and a zoom (:mod:`suite.core.tta`).
    """
    from suite.core.io import read_image

    img = read_image(image)
    if tta:
        from suite.core.tta import tta_predict

        prediction = tta_predict(solution, img, views=TTA_VIEWS)
    else:
        prediction = solution.predict(img)
    share = leaf_share(img)
    unknown, warnings = verdict(prediction, share)
    ranked = sorted(prediction["probs"].items(), key=lambda kv: -kv[1])[:top_k]
    label = prediction["label"]
    card = UNKNOWN if unknown else card_for(label)
    return Diagnosis(label=label, name=display_name(label), score=prediction["score"], top=ranked, card=card,
                     healthy=is_healthy(label) and not unknown, unknown=unknown, leaf_share=share,
                     ood_score=prediction.get("ood_score"), warnings=warnings, tta=tta)
