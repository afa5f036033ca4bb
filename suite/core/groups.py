"""Parameter groups from input to output: what freezing and layer-wise learning rates need."""

from __future__ import annotations

import re
from typing import Callable

from torch import nn


def _param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def children_groups(module: nn.Module, prefix: str = "") -> list[list[str]]:
    """Groups from a module's children in definition order, expanding the child that holds most
    parameters when it is a container (``features`` in VGG/DenseNet, ``layers`` in MONAI nets).

    Children without parameters are skipped. Returns lists of parameter names.
    """
    total = _param_count(module) or 1
    groups: list[list[str]] = []
    for name, child in module.named_children():
        full = f"{prefix}{name}."
        n = _param_count(child)
        if n == 0:
            continue
        is_container = isinstance(child, (nn.Sequential, nn.ModuleList, nn.ModuleDict))
        if is_container and n > 0.5 * total and len(list(child.children())) > 1:
            groups.extend(children_groups(child, full))
        else:
            groups.append([full + p for p, _ in child.named_parameters()])
    own = [prefix + p for p, _ in module.named_parameters(recurse=False)]
    if own:
        groups.insert(0, own)
    return groups


def regex_groups(module: nn.Module, layer_pattern: str, prefix: str = "") -> list[list[str]]:
    """Groups for transformer encoders: everything before the first layer, one group per layer
    index matched by ``layer_pattern`` (one capture group), then everything after."""
    before, after, layers = [], [], {}
    seen_layer = False
    pat = re.compile(layer_pattern)
    for name, _ in module.named_parameters():
        m = pat.search(name)
        if m:
            seen_layer = True
            layers.setdefault(int(m.group(1)), []).append(prefix + name)
        elif seen_layer:
            after.append(prefix + name)
        else:
            before.append(prefix + name)
    return [g for g in [before, *(layers[i] for i in sorted(layers)), after] if g]


def check_groups(module: nn.Module, groups: list[list[str]], prefix: str = "") -> None:
    """Every trainable parameter must sit in exactly one group."""
    names = [prefix + n for n, _ in module.named_parameters()]
    flat = [n for g in groups for n in g]
    if sorted(flat) != sorted(names):
        missing = set(names) - set(flat)
        raise AssertionError(f"parameter groups do not cover the model: missing {sorted(missing)[:3]}")


GroupFn = Callable[[nn.Module], list[list[str]]]
