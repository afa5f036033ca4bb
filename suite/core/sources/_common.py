"""Small pieces the backbone sources share."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import SuiteError


def first_conv(module: nn.Module) -> tuple[nn.Module, str, nn.Module]:
    """The first Conv2d/Conv3d in definition order, with its parent and attribute name."""
    for parent_name, parent in module.named_modules():
        for name, child in parent.named_children():
            if isinstance(child, (nn.Conv2d, nn.Conv3d)):
                return parent, name, child
    raise SuiteError("no convolution found to adapt the input channels of")


def adapt_first_conv(module: nn.Module, in_chans: int | None) -> None:
    """Change the first convolution to ``in_chans`` inputs, keeping pretrained filters.

    For one channel the RGB filters are summed (a gray image replicated to RGB gives the same
    response); for other counts they are repeated and rescaled (timm's ``adapt_input_conv``).
    """
    if not in_chans:
        return
    parent, name, conv = first_conv(module)
    if conv.in_channels == in_chans:
        return
    from timm.models import adapt_input_conv

    new = type(conv)(in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode)
    with torch.no_grad():
        new.weight.copy_(adapt_input_conv(in_chans, conv.weight.detach(), base_chans=conv.in_channels))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    setattr(parent, name, new)


def pop_last_linear(module: nn.Module) -> tuple[int, dict[str, torch.Tensor]]:
    """Replace the last ``nn.Linear`` (the classifier) with identity.

    Returns its input width (the feature size) and its weights (to reuse as a pretrained head).
    """
    last = None
    for parent_name, parent in module.named_modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                last = (parent, name, child)
    if last is None:
        raise SuiteError("no linear classifier found to replace")
    parent, name, linear = last
    setattr(parent, name, nn.Identity())
    return linear.in_features, {k: v.detach().clone() for k, v in linear.state_dict().items()}
