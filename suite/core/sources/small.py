"""Small convolutional networks for small images (digits, patches, sensor crops), random init.

``small:cnn?width=32&size=32``: three Conv-BN-ReLU blocks (``width``, 2x, 4x channels) with
pooling, global average pooled to ``4*width`` features. No pretrained weights: for domains where an
ImageNet backbone is too slow or too far away, and as the usual backbone of digit adaptation
benchmarks.
"""

from __future__ import annotations

from torch import nn

from ..errors import SuiteError
from ..groups import check_groups, children_groups
from ..hub import ModelInfo, Spec, register_source
from ..model import Backbone
from ..preprocess import Preprocess


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


class SmallCNN(nn.Module):
    """``(B, C, H, W)`` -> ``(B, 4 * width)``."""

    def __init__(self, in_chans: int = 3, width: int = 32):
        super().__init__()
        self.block1 = _block(in_chans, width)
        self.block2 = _block(width, 2 * width)
        self.block3 = _block(2 * width, 4 * width)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.block3(self.block2(self.block1(x)))).flatten(1)


@register_source("small", "small CNNs for small images, random init (cnn?width=32&size=32)",
                 examples=lambda: [ModelInfo("small:cnn", "image", True, "3-block CNN, random init, 32x32")])
def build_small(spec: Spec, pretrained: bool = True, in_chans: int | None = None) -> Backbone:
    if spec.name != "cnn":
        raise SuiteError(f"{spec}: unknown small network; the one is 'small:cnn'")
    if pretrained:
        raise SuiteError(f"{spec}: small networks have no pretrained weights; pass pretrained=False "
                         "(--no-pretrained)")
    width, size, chans = int(spec.options.get("width", 32)), int(spec.options.get("size", 32)), in_chans or 3
    model = SmallCNN(chans, width)
    groups = children_groups(model)
    check_groups(model, groups)
    pre = Preprocess("image", (chans, size, size), (0.5,) * chans, (0.5,) * chans, "bilinear", 1.0)
    return Backbone(model, 4 * width, groups, pre, False, info={"params": sum(p.numel() for p in model.parameters())})
