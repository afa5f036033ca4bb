"""Primitives under every strategy: freeze to a group, per-group learning rates, BatchNorm control.

Groups are the model's ``param_groups()``, ordered from input to output with the head last.
"""

from __future__ import annotations

from torch import nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def freeze_to(model, n: int) -> None:
    """Freeze groups ``[:n]`` and train the rest; negative ``n`` trains only the last ``-n`` groups."""
    groups = model.param_groups()
    n = len(groups) + n if n < 0 else n
    for i, group in enumerate(groups):
        for p in group:
            p.requires_grad_(i >= n)


def freeze_backbone(model) -> None:
    """Train the head only."""
    freeze_to(model, -1)


def unfreeze(model) -> None:
    """Train everything."""
    freeze_to(model, 0)


def trainable_groups(model) -> list[int]:
    """Indices of groups with at least one trainable parameter."""
    return [i for i, g in enumerate(model.param_groups()) if any(p.requires_grad for p in g)]


def layerwise_lrs(n_groups: int, lr: float, decay: float = 1.0) -> list[float]:
    """Discriminative learning rates: the head gets ``lr``, each group below ``decay`` times less."""
    return [lr * decay ** (n_groups - 1 - i) for i in range(n_groups)]


def optimizer_groups(model, lr: float, weight_decay: float, decay: float = 1.0) -> list[dict]:
    """Optimizer parameter groups, one per model group, with layer-wise learning rates.

    All groups are included (frozen ones too), so unfreezing later needs no new optimizer; biases and
    normalisation weights get no weight decay.
    """
    groups = model.param_groups()
    lrs = layerwise_lrs(len(groups), lr, decay)
    out = []
    for i, (params, group_lr) in enumerate(zip(groups, lrs)):
        decayed = [p for p in params if p.ndim > 1]
        plain = [p for p in params if p.ndim <= 1]
        for ps, wd in ((decayed, weight_decay), (plain, 0.0)):
            if ps:
                out.append({"params": ps, "lr": group_lr, "initial_lr": group_lr, "weight_decay": wd, "group": i})
    return out


def set_frozen_bn_eval(model) -> int:
    """Put BatchNorm layers whose parameters are all frozen in eval mode (fixed running statistics).

    Call after ``model.train()``. Returns how many layers were set. Small batches on a new domain
    otherwise corrupt pretrained statistics of layers that are not even being trained.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, _BN):
            params = [p for p in module.parameters(recurse=False)]
            if params and not any(p.requires_grad for p in params):
                module.eval()
                count += 1
    return count


def set_all_bn_eval(model) -> int:
    """Put every BatchNorm layer in eval mode (statistics stay those of the pretraining data)."""
    count = 0
    for module in model.modules():
        if isinstance(module, _BN):
            module.eval()
            count += 1
    return count
