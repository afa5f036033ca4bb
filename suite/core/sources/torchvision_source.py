"""torchvision classification models: ``tv:<name>`` (``resnet50``, ``efficientnet_b0``, ...)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SuiteError
from ..groups import check_groups, children_groups
from ..hub import ModelInfo, Spec, register_source
from ..model import Backbone
from ..offline import can_download, offline_error
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from ._common import adapt_first_conv, pop_last_linear


def _default_weights(name: str):
    from torchvision import models

    try:
        return models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError):
        valid = models.list_models(module=models)
        raise SuiteError(f"tv:{name}: unknown torchvision model; e.g. {', '.join(valid[:12])}, ...") from None


def tv_weights_cached(weights) -> bool:
    import torch

    return (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)).is_file()


def _examples():
    rows = []
    for name in ("resnet18", "resnet50", "efficientnet_b0", "convnext_tiny"):
        rows.append(ModelInfo(f"tv:{name}", "image", tv_weights_cached(_default_weights(name)), "torchvision ImageNet"))
    return rows


@register_source("tv", "torchvision classification models (weights from download.pytorch.org or TORCH_HOME)",
                 examples=_examples)
def build_torchvision(spec: Spec, pretrained: bool = True, in_chans: int | None = None) -> Backbone:
    from torchvision import models

    weights = _default_weights(spec.name)
    if pretrained and not tv_weights_cached(weights) and not can_download("torch"):
        raise offline_error(str(spec), f"the pretrained weights ({os.path.basename(weights.url)})")
    model = models.get_model(spec.name, weights=weights if pretrained else None)
    num_features, head_state = pop_last_linear(model)
    adapt_first_conv(model, in_chans)
    groups = children_groups(model)
    check_groups(model, groups)
    pre = Preprocess("image", (3, 224, 224), IMAGENET_MEAN, IMAGENET_STD, "bilinear", 0.875)
    if pretrained:
        t = weights.transforms()
        crop = t.crop_size[0]
        resize = t.resize_size[0]
        pre = Preprocess("image", (3, crop, crop), tuple(t.mean), tuple(t.std), t.interpolation.value, crop / resize)
    info = {"params": sum(p.numel() for p in model.parameters()), "source_domain": "ImageNet-1k photos"}
    if pretrained:
        info["head_state"] = head_state
    return Backbone(model, num_features, groups, pre.with_channels(in_chans or 3), pretrained, info=info)
