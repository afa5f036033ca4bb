"""Ensembles: several fine-tuned runs of one backbone, run side by side, their probabilities averaged.

Runs of the same recipe family make partly different mistakes, so the average of their predicted
probabilities is usually more accurate and better calibrated than any one of them (Lakshminarayanan
et al. 2017), at the cost of one network per member at every prediction. Unlike a weight average
(``suite.core.soup``) it does not need the runs to share one loss basin.

``EnsembleModel`` honours the ``TransferModel`` contract, so a Solution holding one saves, loads,
predicts, fits an input guard, runs test-time augmentation, explains with Grad-CAM and exports to
ONNX like any other: ``forward_features`` is the members' features side by side, ``forward_head``
the log of their mean probability (its softmax is the mean of the members' softmax).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .errors import SuiteError
from .model import TransferModel


class EnsembleModel(nn.Module):
    """``members`` (TransferModels of one spec, task, classes and preprocessing) as one model."""

    def __init__(self, members: Sequence[TransferModel]):
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise SuiteError("an ensemble needs at least two members")
        first = members[0]
        for m in members[1:]:
            for what, a, b in (("backbone", first.spec, m.spec), ("task", first.task, m.task),
                               ("number of classes", first.num_classes, m.num_classes),
                               ("feature width", first.num_features, m.num_features),
                               ("preprocessing", first.preprocess, m.preprocess)):
                if a != b:
                    raise SuiteError(f"ensemble members must share their {what}: {a!r} vs {b!r}")
        self.members = nn.ModuleList(members)
        self.member_features = first.num_features
        self.num_features = first.num_features * len(members)
        self.num_classes, self.spec, self.task = first.num_classes, first.spec, first.task
        self.dropout, self.head_hidden, self.tokenizer = first.dropout, first.head_hidden, first.tokenizer

    @property
    def preprocess(self):
        return self.members[0].preprocess

    @preprocess.setter
    def preprocess(self, value) -> None:
        for m in self.members:
            m.preprocess = value

    def forward_features(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Every member's pooled features side by side ``(B, members * D)``."""
        return torch.cat([m.forward_features(x) for m in self.members], dim=1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits whose softmax (multi-label: sigmoid) is the mean of the members' ``(B, K)``."""
        chunks = features.split(self.member_features, dim=1)
        logits = torch.stack([m.forward_head(f) for m, f in zip(self.members, chunks)])
        if self.task == "multilabel":
            mean = logits.sigmoid().mean(0).clamp(1e-7, 1 - 1e-7)
            return torch.log(mean) - torch.log1p(-mean)
        return torch.logsumexp(logits.log_softmax(-1), dim=0) - math.log(len(self.members))

    def forward(self, x, features: bool = False):
        return self.forward_head(x if features else self.forward_features(x))

    def param_groups(self) -> list[list[nn.Parameter]]:
        """The members' groups, merged position by position (input to output, head last)."""
        per_member = [m.param_groups() for m in self.members]
        return [[p for groups in per_member for p in groups[i]] for i in range(len(per_member[0]))]

    def reproducible_keys(self) -> set[str]:
        """None: every member is fine-tuned, so a Solution stores all of its tensors."""
        return set()

    def extra_config(self) -> dict[str, Any]:
        return {**self.members[0].extra_config(), "num_features": self.member_features,
                "members": len(self.members)}


def ensemble_solutions(solutions: Sequence, name: str | None = None):
    """One Solution whose model averages the probabilities of ``solutions`` (copies of their models).

    The runs must share backbone, task, labels (in order) and preprocessing. Like a soup, the result
    has no input guard, metrics or threshold of its own: fit and measure them on the ensemble.
    """
    from .solution import Solution

    if len(solutions) < 2:
        raise SuiteError("an ensemble needs at least two runs")
    first = solutions[0]
    if first.task == "segmentation":
        raise SuiteError("ensembles of segmentation Solutions are not supported")
    for other in solutions[1:]:
        if other.labels != first.labels:
            raise SuiteError(f"ensemble members must share their labels, in order: {first.labels} vs {other.labels}")
    model = EnsembleModel([copy.deepcopy(s.model).eval() for s in solutions])
    recipe = {"ensemble": [s.recipe for s in solutions]}
    kind = type(first) if isinstance(first, Solution) else Solution  # a vertical's subclass stays one
    return kind(model, first.labels, recipe=recipe, name=name or first.name, description=first.description,
                threshold=0.5)
