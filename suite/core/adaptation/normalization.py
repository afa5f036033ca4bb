"""AdaBN (Li et al. 2016): re-estimate BatchNorm statistics on target data, without labels."""

from __future__ import annotations

import torch
from torch import nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def adapt_batchnorm(model: nn.Module, batches, device=None) -> int:
    """Replace every BatchNorm layer's running mean/variance with the statistics of ``batches``
    (an iterable of model inputs, e.g. target images). Weights are untouched. Returns the number of
    layers updated."""
    layers = [m for m in model.modules() if isinstance(m, _BN)]
    saved = [(m.momentum, m.training) for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    model.eval()
    for m in layers:
        m.train()
    for x in batches:
        if device is not None:
            from ..features import to_device

            x = to_device(x, device)
        model(x)
    for m, (momentum, _) in zip(layers, saved):
        m.momentum = momentum
    model.eval()
    return len(layers)
