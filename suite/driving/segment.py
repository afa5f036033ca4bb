"""The shipped sim-to-real solutions and what the demo shows with them: masks, overlays, pixel shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import SuiteError
from .schema import CAMVID_CLASSES, CAMVID_PALETTE, colorize

SOLUTIONS = Path(__file__).resolve().parent / "solutions"
SHIPPED = {"source_only": "sim2real_source_only", "adapted": "sim2real_adapted"}


def solution_path(kind: str) -> Path:
    """Folder of a shipped solution: ``kind`` is ``source_only`` or ``adapted``."""
    if kind not in SHIPPED:
        raise SuiteError(f"unknown solution {kind!r}; choose one of {', '.join(SHIPPED)}")
    return SOLUTIONS / SHIPPED[kind]


def load_solution(kind: str = "adapted"):
    """A shipped solution as a core ``Solution`` (task ``segmentation``)."""
    from ..core import Solution

    path = solution_path(kind)
    if not (path / "config.json").is_file():
        run = "python -m suite.driving.dacs --camvid CAMVID_ROOT --method source_only --lr 6e-5 --steps 2000 "
        how = (run + "--ship suite/driving/solutions --ship-source-only" if kind == "source_only" else
               run + "--ship suite/driving/solutions, then self-training rounds (python -m suite.driving.dacs --method "
               "self_train --init ..., the README's driving section)")
        raise SuiteError(f"{path}: solution not found; build it with {how}")
    return Solution.load(path)


def overlay(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The image with the class colours of ``mask`` blended in (``(H, W, 3)`` uint8); ignore (11) stays clear."""
    rgb = np.asarray(rgb)[..., :3].astype(np.float32)
    colours = colorize(mask).astype(np.float32)
    a = np.where(np.asarray(mask)[..., None] < len(CAMVID_CLASSES), alpha, 0.0)
    return (rgb * (1 - a) + colours * a).astype(np.uint8)


def legend() -> list[tuple[str, str]]:
    """``(class name, '#rrggbb')`` for every class."""
    return [(name, "#%02x%02x%02x" % tuple(int(v) for v in CAMVID_PALETTE[i])) for i, name in enumerate(CAMVID_CLASSES)]


def segment(solution, image) -> dict:
    """Mask, confidence and pixel shares of one image (path, bytes, PIL image or array)."""
    return solution.predict(image)


def adabn_solution(solution, images, batch_size: int = 8, max_images: int = 64):
    """A copy of a segmentation ``solution`` whose BatchNorm statistics (encoder and decoder) come from
    ``images`` (unlabelled frames of the new domain: paths, bytes, PIL images or arrays): AdaBN.

    Returns ``(new_solution, layers_adapted)``."""
    import copy

    import torch

    from ..core.adaptation import adapt_batchnorm

    items = list(images)[:max_images]
    if not items:
        raise SuiteError("AdaBN needs at least one unlabelled frame")
    adapted = copy.deepcopy(solution)
    batches = (torch.stack([adapted.transform(x) for x in items[i:i + batch_size]])
               for i in range(0, len(items), batch_size))
    layers = adapt_batchnorm(adapted.model, batches)
    adapted.name = f"{solution.name}_adabn"
    adapted.recipe = {**solution.recipe, "adabn_frames": len(items)}
    adapted.metrics = {"note": f"BatchNorm statistics re-estimated on {len(items)} unlabelled frames; "
                               "not evaluated (no labels)", "before_adabn": solution.metrics}
    adapted.card = (solution.card or "") + (f"\n\n## AdaBN\nBatchNorm statistics re-estimated on {len(items)} "
                                            "unlabelled frames of the user's domain; metrics above are from "
                                            "before this step.\n")
    return adapted, layers
