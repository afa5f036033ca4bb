"""The one model contract every backbone honours: features, head, classifier reset, groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from .preprocess import Preprocess

TASKS = ("multiclass", "binary", "multilabel")


@dataclass
class Backbone:
    """What a backbone source returns: a module mapping inputs to pooled features ``(B, D)``.

    ``groups`` are parameter names of ``module`` ordered from input to output.
    ``pretrained`` says whether ``module`` holds reproducible pretrained weights (so a Solution can
    store only what differs from them). ``tokenizer`` is set for text backbones.
    """

    module: nn.Module
    num_features: int
    groups: list[list[str]]
    preprocess: Preprocess
    pretrained: bool
    tokenizer: Any = None
    info: dict[str, Any] = field(default_factory=dict)


def make_head(num_features: int, num_classes: int, dropout: float = 0.0, hidden: int = 0) -> nn.Module:
    """A linear classifier, optionally after a bottleneck (Linear-BN-ReLU of width ``hidden``) and
    dropout; ``num_classes=0`` gives identity. The layer before the last gives the features that
    domain adaptation aligns."""
    if num_classes <= 0:
        return nn.Identity()
    layers: list[nn.Module] = []
    width = num_features
    if hidden:
        layers += [nn.Linear(num_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
        width = hidden
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


class TransferModel(nn.Module):
    """A pretrained backbone with a new head.

    Shapes: images ``(B, C, H, W)``, volumes ``(B, C, D, H, W)``, text a mapping of token tensors
    ``(B, L)``; ``forward_features`` returns ``(B, num_features)``, ``forward`` returns logits
    ``(B, num_classes)``.
    """

    def __init__(self, backbone: Backbone, num_classes: int, spec: str, task: str = "multiclass",
                 dropout: float = 0.0, head_hidden: int = 0):
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.backbone = backbone.module
        self.num_features = backbone.num_features
        self.num_classes = num_classes
        self.preprocess = backbone.preprocess
        self.tokenizer = backbone.tokenizer
        self.spec = spec
        self.task = task
        self.dropout = dropout
        self.head_hidden = head_hidden
        self.backbone_pretrained = backbone.pretrained
        self.backbone_info = dict(backbone.info)
        self._backbone_groups = [["backbone." + n for n in g] for g in backbone.groups]
        self.head = make_head(self.num_features, num_classes, dropout, head_hidden)
        self.head_pretrained = False

    # --- the contract -------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Pooled backbone features ``(B, num_features)``."""
        if isinstance(x, Mapping):
            return self.backbone(**x)
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` from pooled features."""
        return self.head(features)

    def split_head(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, logits)``: the head's input to its last layer ``(B, H)`` (what adaptation aligns) and logits."""
        if isinstance(self.head, nn.Identity):
            return features, features
        z = self.head[:-1](features)
        return z, self.head[-1](z)

    @property
    def embedding_dim(self) -> int:
        """Width of ``z``, the head's input to its last layer."""
        return self.head_hidden or self.num_features

    def forward(self, x, features: bool = False, with_embedding: bool = False):
        """Logits from inputs, or from pooled features when ``features=True`` (cached features).

        ``with_embedding=True`` returns ``(z, logits)`` (see ``split_head``), what adaptation needs.
        """
        f = x if features else self.forward_features(x)
        return self.split_head(f) if with_embedding else self.forward_head(f)

    def reset_classifier(self, num_classes: int, dropout: float | None = None) -> None:
        """Replace the head with a freshly initialised one for ``num_classes`` outputs."""
        self.num_classes = num_classes
        self.head_pretrained = False
        if dropout is not None:
            self.dropout = dropout
        self.head = make_head(self.num_features, num_classes, self.dropout, self.head_hidden)

    def group_names(self) -> list[list[str]]:
        """Parameter names grouped from input to output; the head is the last group."""
        head = ["head." + n for n, _ in self.head.named_parameters()]
        return [*self._backbone_groups, *([head] if head else [])]

    def refresh_groups(self) -> None:
        """Re-derive backbone groups after wrapping layers (adapters keep their layer's group)."""
        import re

        where = {n: i for i, g in enumerate(self._backbone_groups) for n in g}
        regrouped: list[list[str]] = [[] for _ in self._backbone_groups]
        for name, _ in self.backbone.named_parameters():
            key = "backbone." + name.replace("base_model.model.", "").replace(".base_layer.", ".")
            key = re.sub(r"\.lora_\w+\.\w+\.weight$", ".weight", key)
            regrouped[where.get(key, len(regrouped) - 1)].append("backbone." + name)
        self._backbone_groups = [g for g in regrouped if g]

    def param_groups(self) -> list[list[nn.Parameter]]:
        """Parameters grouped from input to output (what ``freeze_to`` and layer-wise LR use)."""
        params = dict(self.named_parameters())
        return [[params[n] for n in g] for g in self.group_names()]

    def reproducible_keys(self) -> set[str]:
        """State keys that ``create_model(spec, pretrained=True)`` rebuilds bit-exactly."""
        keys = set()
        for name in self.state_dict():
            if (name.startswith("backbone.") and self.backbone_pretrained) or (
                    name.startswith("head.") and self.head_pretrained):
                keys.add(name)
        return keys

    def extra_config(self) -> dict[str, Any]:
        """What a Solution stores to rebuild this model."""
        return {"spec": self.spec, "task": self.task, "num_classes": self.num_classes,
                "num_features": self.num_features, "dropout": self.dropout, "head_hidden": self.head_hidden,
                "in_chans": self.preprocess.in_chans if self.preprocess.modality != "text" else None}
