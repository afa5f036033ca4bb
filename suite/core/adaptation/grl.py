"""Gradient reversal: identity forward, gradient times ``-coeff`` backward (Ganin & Lempitsky 2015)."""

from __future__ import annotations

import math

import torch
from torch import nn


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coeff: float):
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.coeff * grad, None


class GradientReverseLayer(nn.Module):
    """Reverses (and scales by ``coeff``) the gradient flowing back through it."""

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = coeff

    def forward(self, x):
        return _Reverse.apply(x, self.coeff)


class WarmStartGradientReverseLayer(GradientReverseLayer):
    """Gradient reversal whose strength grows from ``lo`` to ``hi`` over ``max_iters`` calls of ``step``:
    ``coeff = 2 (hi - lo) / (1 + exp(-alpha p)) - (hi - lo) + lo`` with ``p = iter / max_iters``, so the
    adversary cannot derail the classifier while both are still random."""

    def __init__(self, alpha: float = 10.0, lo: float = 0.0, hi: float = 1.0, max_iters: int = 1000):
        super().__init__(lo)
        self.alpha, self.lo, self.hi, self.max_iters = alpha, lo, hi, max(1, max_iters)
        self.register_buffer("iter", torch.zeros((), dtype=torch.long))  # saved with checkpoints

    def step(self) -> None:
        self.iter += 1
        p = min(1.0, self.iter.item() / self.max_iters)
        self.coeff = 2 * (self.hi - self.lo) / (1 + math.exp(-self.alpha * p)) - (self.hi - self.lo) + self.lo
