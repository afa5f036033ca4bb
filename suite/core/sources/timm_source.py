"""timm image models: ``timm:<name>`` (any name ``timm.list_models()`` knows)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SuiteError
from ..groups import check_groups
from ..hub import ModelInfo, Spec, register_source
from ..model import Backbone
from ..offline import can_download, offline_error
from ..preprocess import Preprocess


def timm_weights_cached(name: str) -> bool:
    """Whether timm's pretrained weights for ``name`` are already in a local cache."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    try:
        cfg = timm.models.get_pretrained_cfg(name.split(".")[0] if "." not in name else name)
    except Exception:
        cfg = None
    if cfg is None:
        return False
    if cfg.hf_hub_id:
        for fname in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
            if isinstance(try_to_load_from_cache(cfg.hf_hub_id, fname), str):
                return True
    if cfg.url:
        import torch

        return (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)).is_file()
    return False


def _examples():
    names = [("resnet50.a1_in1k", "ResNet-50"), ("convnext_tiny.fb_in22k_ft_in1k", "ConvNeXt-T"),
             ("vit_small_patch16_224.augreg_in21k_ft_in1k", "ViT-S/16"), ("efficientnet_b0.ra_in1k", "EfficientNet-B0")]
    return [ModelInfo(f"timm:{n}", "image", timm_weights_cached(n), note) for n, note in names]


@register_source("timm", "timm image models (weights from the Hugging Face hub or its cache)", examples=_examples)
def build_timm(spec: Spec, pretrained: bool = True, in_chans: int | None = None) -> Backbone:
    import timm
    from timm.models import group_parameters

    if not timm.is_model(spec.name.split(".")[0]):
        close = timm.list_models(f"*{spec.name.split('.')[0][:6]}*")[:8]
        raise SuiteError(f"{spec}: timm has no model {spec.name!r}" + (f"; similar: {', '.join(close)}" if close else ""))
    if pretrained and not timm_weights_cached(spec.name) and not can_download("hf"):
        raise offline_error(str(spec), "the pretrained weights")
    kwargs = {k: v for k, v in spec.options.items() if k in ("drop_path_rate", "drop_rate")}
    kwargs = {k: float(v) for k, v in kwargs.items()}
    model = timm.create_model(spec.name, pretrained=pretrained, in_chans=in_chans or 3, **kwargs)
    head_state = None
    classifier = model.get_classifier()
    if pretrained and hasattr(classifier, "weight") and getattr(classifier, "weight", None) is not None \
            and classifier.weight.ndim == 2:
        head_state = {k: v.detach().clone() for k, v in classifier.state_dict().items()}
    model.reset_classifier(0)
    grouped = group_parameters(model, model.group_matcher(coarse=False))
    groups = [grouped[k] for k in sorted(grouped)]
    check_groups(model, groups)
    cfg = model.pretrained_cfg
    pre = Preprocess("image", tuple(cfg.get("input_size", (3, 224, 224))), tuple(cfg.get("mean")),
                     tuple(cfg.get("std")), cfg.get("interpolation", "bicubic"), float(cfg.get("crop_pct", 0.875)))
    pre = Preprocess("image", (3, *pre.input_size[1:]), pre.mean, pre.std, pre.interpolation, pre.crop_pct)
    info = {"params": sum(p.numel() for p in model.parameters()), "source_domain": cfg.get("tag", "ImageNet")}
    if head_state is not None:
        info["head_state"] = head_state
    return Backbone(model, model.num_features, groups, pre.with_channels(in_chans or 3), pretrained, info=info)
