"""Adaptation losses, each a small ``nn.Module``: ``loss(f_s, f_t) -> scalar`` on features ``(B, D)``
(or on logits for the entropy and pseudo-label losses)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .grl import GradientReverseLayer, WarmStartGradientReverseLayer


class DomainDiscriminator(nn.Sequential):
    """An MLP that tells source (1) from target (0): ``(B, D)`` -> logits ``(B,)``."""

    def __init__(self, in_features: int, hidden: int = 256):
        super().__init__(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return super().forward(x).squeeze(-1)


class DomainAdversarialLoss(nn.Module):
    """DANN: the discriminator learns the domain; reversed gradients make features domain-invariant.

    ``domain_accuracy`` holds the discriminator's accuracy on the last batch (0.5 = domains confused).
    """

    def __init__(self, discriminator: nn.Module, grl: GradientReverseLayer | None = None):
        super().__init__()
        self.discriminator = discriminator
        self.grl = grl or WarmStartGradientReverseLayer()
        self.domain_accuracy = float("nan")

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        logits = self.discriminator(self.grl(torch.cat([f_s, f_t])))
        labels = torch.cat([torch.ones(len(f_s)), torch.zeros(len(f_t))]).to(logits.device)
        self.domain_accuracy = ((logits > 0).float() == labels).float().mean().item()
        if isinstance(self.grl, WarmStartGradientReverseLayer) and self.training:
            self.grl.step()
        return F.binary_cross_entropy_with_logits(logits, labels)


class CorrelationAlignmentLoss(nn.Module):
    """Deep CORAL (Sun & Saenko 2016): match feature means and covariances."""

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        mean_s, mean_t = f_s.mean(0, keepdim=True), f_t.mean(0, keepdim=True)
        cov_s = (f_s - mean_s).T @ (f_s - mean_s) / max(1, len(f_s) - 1)
        cov_t = (f_t - mean_t).T @ (f_t - mean_t) / max(1, len(f_t) - 1)
        return (mean_s - mean_t).pow(2).mean() + (cov_s - cov_t).pow(2).mean()


class MultipleKernelMMD(nn.Module):
    """MK-MMD (Long et al. 2015): squared MMD under a sum of Gaussian kernels whose bandwidths are
    ``multipliers`` times the mean pairwise squared distance of the batch."""

    def __init__(self, multipliers: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)):
        super().__init__()
        self.multipliers = multipliers

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        x = torch.cat([f_s, f_t])
        d2 = torch.cdist(x, x).pow(2)
        scale = d2.detach().mean().clamp(min=1e-8)
        k = sum(torch.exp(-d2 / (scale * m)) for m in self.multipliers)
        n = len(f_s)
        return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


class EntropyLoss(nn.Module):
    """Mean prediction entropy on target logits (entropy minimisation): pushes decisions away from
    dense target regions."""

    def forward(self, logits_t: torch.Tensor) -> torch.Tensor:
        p = logits_t.softmax(-1)
        return -(p * torch.log(p.clamp(min=1e-8))).sum(-1).mean()


class PseudoLabelLoss(nn.Module):
    """Self-training: cross-entropy on target samples whose confidence is at least ``threshold``,
    with their own argmax as label. ``kept`` is the share of the last batch that passed."""

    def __init__(self, threshold: float = 0.9):
        super().__init__()
        self.threshold = threshold
        self.kept = 0.0

    def forward(self, logits_t: torch.Tensor) -> torch.Tensor:
        conf, labels = logits_t.detach().softmax(-1).max(-1)
        mask = conf >= self.threshold
        self.kept = mask.float().mean().item()
        if not mask.any():
            return logits_t.sum() * 0.0
        return F.cross_entropy(logits_t[mask], labels[mask])
