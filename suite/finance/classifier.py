"""Pretrained sentiment classifiers (FinBERT and other Hugging Face sequence classifiers) as suite models."""

from __future__ import annotations

import torch

from suite.core.errors import SuiteError


def align_pretrained_head(model, labels: list[str]) -> bool:
    """Reorder a pretrained classifier's outputs to ``labels`` when it names the same classes.

    FinBERT's outputs are ``positive, negative, neutral``; finance models use ``negative, neutral,
    positive``. Returns True when the pretrained head is kept (reordered if needed); when the names
    do not match, the head is re-initialised (a fresh classifier for ``labels``).
    """
    head_labels = model.backbone_info.get("head_labels")
    if not model.head_pretrained or not head_labels:
        return False
    wanted = [str(x).lower() for x in labels]
    have = [str(x).lower() for x in head_labels]
    if sorted(wanted) != sorted(have):
        model.reset_classifier(len(labels))
        return False
    order = [have.index(name) for name in wanted]
    if order != list(range(len(order))):
        last = model.head[-1]
        with torch.no_grad():
            last.weight.copy_(last.weight[order].clone())
            last.bias.copy_(last.bias[order].clone())
    return True


def pretrained_solution(spec: str = "hf:ProsusAI/finbert", labels=None, max_length: int = 64):
    """A ready Solution from a sentiment sequence classifier, no training (FinBERT when cached)."""
    import dataclasses

    from suite.core import Solution, create_model

    from .data import SENTIMENTS

    labels = list(labels or SENTIMENTS)
    model = create_model(spec, num_classes=len(labels))
    if not align_pretrained_head(model, labels):
        raise SuiteError(f"{spec}: no pretrained classifier for {labels} "
                         f"(it has {model.backbone_info.get('head_labels') or 'none'}); fine-tune it instead")
    model.preprocess = dataclasses.replace(model.preprocess, max_length=max_length)
    return Solution(model, labels, name=spec.split("/")[-1], description=f"{spec} as published (not fine-tuned here).")
