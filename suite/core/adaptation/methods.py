"""Adaptation methods the trainer combines with the task loss, each a small registered piece.

    dann           domain-adversarial training (gradient reversal with warm start)
    coral          Deep CORAL feature alignment
    mmd            multi-kernel MMD feature alignment
    reweight       importance weights on the source loss from a domain classifier
    adabn          BatchNorm statistics re-estimated on target data after training
    fda            Fourier domain adaptation: source images restyled with target amplitudes
    self_training  confident pseudo-labels on target data (after a warm-up)
    entropy        entropy minimisation on target predictions

A method sees ``setup`` (before training), ``loss`` (each step: source/target features ``z`` and
logits), ``finalize`` (after training); everything else is the ordinary trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import SuiteError
from ..registry import Registry
from .losses import (CorrelationAlignmentLoss, DomainAdversarialLoss, DomainDiscriminator, EntropyLoss,
                     MultipleKernelMMD, PseudoLabelLoss)
from .grl import WarmStartGradientReverseLayer

ADAPTATIONS = Registry("adaptation method")
register_adaptation = ADAPTATIONS.register


def list_adaptations() -> list[str]:
    return ADAPTATIONS.names()


def create_adaptation(name: str, **options) -> "Adaptation":
    """An adaptation method by name; unknown names or options list the valid ones."""
    return ADAPTATIONS.create(name, **options)


@dataclass
class Adaptation:
    """Base: no adaptation (source only). ``weight`` scales the adaptation loss."""

    name = "source_only"
    uses_target_batches = False
    weight: float = 1.0

    def __post_init__(self):
        self.module: nn.Module | None = None  # trainable parts (a discriminator), optimised with the model
        self.progress = 0.0  # share of training done, set by the trainer

    def setup(self, trainer, source, target) -> None:
        """Prepare before the first step (may look at source and target data)."""

    def loss(self, z_s, z_t, logits_s, logits_t) -> torch.Tensor | None:
        return None

    def sample_weights(self) -> np.ndarray | None:
        """Per-source-sample loss weights ``(N_s,)`` or None."""
        return None

    def source_transform(self) -> Callable | None:
        """A PIL -> PIL transform applied to source images before augmentation."""
        return None

    def finalize(self, trainer, target) -> None:
        """Change the trained model using target data (e.g. normalisation statistics)."""

    def stats(self) -> dict:
        return {}


@register_adaptation
@dataclass
class DANN(Adaptation):
    name = "dann"
    uses_target_batches = True
    hidden: int = 256
    alpha: float = 10.0

    def setup(self, trainer, source, target):
        grl = WarmStartGradientReverseLayer(alpha=self.alpha, max_iters=trainer.state.total_steps)
        self.module = DomainAdversarialLoss(DomainDiscriminator(trainer.model.embedding_dim, self.hidden), grl)

    def loss(self, z_s, z_t, logits_s, logits_t):
        return self.module(z_s, z_t)

    def stats(self):
        return {"discriminator_batch_accuracy": self.module.domain_accuracy if self.module else None}


@register_adaptation
@dataclass
class CORAL(Adaptation):
    name = "coral"
    uses_target_batches = True
    weight: float = 10.0

    def loss(self, z_s, z_t, logits_s, logits_t):
        return CorrelationAlignmentLoss()(z_s.float(), z_t.float())


@register_adaptation
@dataclass
class MMD(Adaptation):
    name = "mmd"
    uses_target_batches = True

    def loss(self, z_s, z_t, logits_s, logits_t):
        return MultipleKernelMMD()(z_s.float(), z_t.float())


@register_adaptation
@dataclass
class Entropy(Adaptation):
    name = "entropy"
    uses_target_batches = True
    weight: float = 0.1

    def loss(self, z_s, z_t, logits_s, logits_t):
        return EntropyLoss()(logits_t.float())


@register_adaptation
@dataclass
class SelfTraining(Adaptation):
    """Pseudo-labels from the model itself once it has warmed up on the source."""

    name = "self_training"
    uses_target_batches = True
    threshold: float = 0.9
    start: float = 0.3  # share of training before pseudo-labels are used

    def __post_init__(self):
        super().__post_init__()
        self._loss = PseudoLabelLoss(self.threshold)

    def loss(self, z_s, z_t, logits_s, logits_t):
        if self.progress < self.start:
            return None
        return self._loss(logits_t.float())

    def stats(self):
        return {"pseudo_label_share_last_batch": self._loss.kept}


@register_adaptation
@dataclass
class Reweight(Adaptation):
    """Importance weighting: source samples that look like target data count more."""

    name = "reweight"
    clip_low: float = 0.1
    clip_high: float = 10.0

    def setup(self, trainer, source, target):
        from ..features import extract_features
        from .reweighting import importance_weights

        cfg = trainer.config
        f_s = extract_features(trainer.model, source, cfg.eval_batch_size, cfg.cache_dir).numpy()
        f_t = extract_features(trainer.model, target, cfg.eval_batch_size, cfg.cache_dir).numpy()
        self._weights, self._stats = importance_weights(f_s, f_t, (self.clip_low, self.clip_high), cfg.seed)

    def sample_weights(self):
        return self._weights

    def stats(self):
        return dict(self._stats)


@register_adaptation
@dataclass
class AdaBN(Adaptation):
    name = "adabn"

    def finalize(self, trainer, target):
        from ..features import input_loader
        from .normalization import adapt_batchnorm

        model = trainer.model
        batches = (x for x, _ in input_loader(model, target, trainer.config.eval_batch_size))
        self._layers = adapt_batchnorm(model, batches, trainer.accelerator.device)
        if self._layers == 0:
            raise SuiteError(f"adabn: {model.spec} has no BatchNorm layers to adapt")

    def stats(self):
        return {"batchnorm_layers_adapted": getattr(self, "_layers", 0)}


@register_adaptation
@dataclass
class FDA(Adaptation):
    name = "fda"
    beta: float = 0.01
    p: float = 0.5
    pool: int = 500  # target images kept in memory as style sources

    def setup(self, trainer, source, target):
        if trainer.model.preprocess.modality != "image":
            raise SuiteError("fda works on images")
        rng = np.random.default_rng(trainer.config.seed)
        idx = rng.permutation(len(target))[: self.pool]
        self._transform_targets = [target.load(int(i)) for i in idx]

    def source_transform(self):
        from .style import FDATransform

        return FDATransform(self._transform_targets, self.beta, self.p)
