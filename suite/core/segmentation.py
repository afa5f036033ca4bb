"""Semantic segmentation on any pretrained encoder: multi-scale features, a light decoder, metrics.

    model = create_segmentation_model("embedded:efficientnet_lite0", num_classes=11, input_size=(180, 240))
    logits = model(x)                         # (B, 11, H, W) at the input size
    cm = confusion_matrix(pred, target, 11, ignore_index=11); iou = iou_from_confusion(cm)

The encoder is a hub backbone (``create_model(spec)``) that exposes timm's ``forward_intermediates``
(the embedded EfficientNet-Lite0 and most timm models); the decoder is a small FPN: a 1x1 lateral per
scale, top-down sums, one 3x3 fusion at stride 8 and a 1x1 classifier at stride 4. Features can be
computed once (``encode``) and the decoder trained on them (``decode``), the segmentation counterpart
of cached features. The model honours the Solution contract (``spec``, ``task``, ``num_classes``,
``preprocess``, ``reproducible_keys``, ``extra_config``), so ``Solution`` saves only the decoder and
whatever differs from the pretrained encoder.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .errors import SuiteError

TASK = "segmentation"


def _conv_bn(cin: int, cout: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FPNDecoder(nn.Module):
    """Feature maps at strides 4, 8, 16, 32 (finest first) -> logits at stride 4 ``(B, C, H/4, W/4)``.

    ``embed`` returns the last hidden map ``(B, channels, H/4, W/4)`` (what feature alignment uses).
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, channels: int = 64, dropout: float = 0.1):
        super().__init__()
        self.lateral = nn.ModuleList([_conv_bn(c, channels) for c in in_channels])
        self.fuse = _conv_bn(channels, channels, 3)
        self.refine = _conv_bn(channels, channels)
        self.dropout = nn.Dropout2d(dropout) if dropout else nn.Identity()
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def embed(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        lat = [layer(f.float()) for layer, f in zip(self.lateral, feats)]
        p = lat[-1]
        for skip in reversed(lat[1:-1]):  # down to stride 8
            p = skip + F.interpolate(p, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        p = self.fuse(p)
        p = lat[0] + F.interpolate(p, size=lat[0].shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(p)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(feats)))


class SegmentationModel(nn.Module):
    """A pretrained encoder with a light decoder: images ``(B, 3, H, W)`` -> logits ``(B, C, H, W)``."""

    task = TASK

    def __init__(self, backbone: nn.Module, spec: str, num_classes: int, preprocess, indices: Sequence[int],
                 decoder_channels: int = 64, backbone_pretrained: bool = True, groups: list | None = None,
                 dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.spec, self.num_classes, self.preprocess = spec, int(num_classes), preprocess
        self.indices = list(indices)
        self.decoder_channels, self.dropout = int(decoder_channels), float(dropout)
        self.backbone_pretrained = backbone_pretrained
        self.head_hidden, self.tokenizer = 0, None
        self._backbone_groups = groups or [["backbone." + n for n, _ in backbone.named_parameters()]]
        with torch.no_grad():
            was = backbone.training
            backbone.eval()
            probe = self.encode(torch.zeros(1, preprocess.in_chans, 64, 64))
            backbone.train(was)
        self.encoder_channels = [int(f.shape[1]) for f in probe]
        self.decoder = FPNDecoder(self.encoder_channels, self.num_classes, self.decoder_channels, self.dropout)

    # --- forward ------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder feature maps, finest (stride 4) first."""
        return list(self.backbone.forward_intermediates(x, indices=self.indices, intermediates_only=True,
                                                        stop_early=True))

    def decode(self, feats: Sequence[torch.Tensor], size: tuple[int, int] | None = None) -> torch.Tensor:
        """Logits from encoder features, at stride 4 or upsampled to ``size``."""
        logits = self.decoder(feats)
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x), size=tuple(x.shape[-2:]))

    # --- the Solution contract ----------------------------------------------------------------
    def group_names(self) -> list[list[str]]:
        """Parameter names from input to output; the decoder is the last group."""
        return [*self._backbone_groups, ["decoder." + n for n, _ in self.decoder.named_parameters()]]

    def param_groups(self) -> list[list[nn.Parameter]]:
        params = dict(self.named_parameters())
        return [[params[n] for n in g if n in params] for g in self.group_names()]

    def reproducible_keys(self) -> set[str]:
        """State keys that ``create_segmentation_model(spec, pretrained=True)`` rebuilds bit-exactly."""
        if not self.backbone_pretrained:
            return set()
        return {k for k in self.state_dict() if k.startswith("backbone.")}

    def extra_config(self) -> dict[str, Any]:
        return {"spec": self.spec, "task": TASK, "num_classes": self.num_classes, "indices": self.indices,
                "decoder_channels": self.decoder_channels, "dropout": self.dropout,
                "in_chans": self.preprocess.in_chans, "input_size": list(self.preprocess.input_size[1:]),
                "encoder_channels": self.encoder_channels}


def create_segmentation_model(spec: str = "embedded:efficientnet_lite0", num_classes: int = 11,
                              input_size: tuple[int, int] = (180, 240), pretrained: bool = True,
                              indices: Sequence[int] | None = None, decoder_channels: int = 64,
                              in_chans: int | None = None, dropout: float = 0.1) -> SegmentationModel:
    """A segmentation model on the hub backbone ``spec``; ``input_size`` is ``(H, W)``.

    ``indices`` picks the encoder stages (default: the last four, strides 4 to 32 for CNNs).
    """
    from .hub import create_model

    base = create_model(spec, num_classes=0, in_chans=in_chans, pretrained=pretrained)
    if not hasattr(base.backbone, "forward_intermediates"):
        raise SuiteError(f"{spec}: segmentation needs an encoder with multi-scale features "
                         "(timm's forward_intermediates); try embedded:efficientnet_lite0 or a timm CNN")
    if indices is None:
        n = len(getattr(base.backbone, "feature_info", [None] * 5))
        indices = list(range(max(0, n - 4), n))
    pre = dataclasses.replace(base.preprocess, input_size=(base.preprocess.in_chans, *map(int, input_size)),
                              crop_pct=1.0, interpolation="bilinear")
    groups = [[n for n in g] for g in base._backbone_groups]
    return SegmentationModel(base.backbone, str(spec), num_classes, pre, indices, decoder_channels,
                             base.backbone_pretrained, groups, dropout)


def segmentation_model_from_config(cfg: dict, pretrained: bool = True) -> SegmentationModel:
    """Rebuild a model from ``extra_config()`` (what a Solution stores)."""
    return create_segmentation_model(cfg["spec"], cfg["num_classes"], tuple(cfg["input_size"]), pretrained,
                                     cfg.get("indices"), cfg.get("decoder_channels", 64), cfg.get("in_chans"),
                                     cfg.get("dropout", 0.1))


# --- metrics --------------------------------------------------------------------------------------
def confusion_matrix(pred, target, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """``(num_classes, num_classes)`` pixel counts, rows = true class, columns = predicted.

    Pixels whose target is ``ignore_index`` (or outside ``0..num_classes-1``) are skipped."""
    pred = torch.as_tensor(np.asarray(pred) if not torch.is_tensor(pred) else pred).reshape(-1).long()
    target = torch.as_tensor(np.asarray(target) if not torch.is_tensor(target) else target).reshape(-1).long()
    if pred.shape != target.shape:
        raise ValueError(f"prediction and target differ in size: {pred.numel()} vs {target.numel()}")
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    idx = target[keep] * num_classes + pred[keep].clamp(0, num_classes - 1)
    return torch.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes).numpy()


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU ``TP / (TP + FP + FN)``; NaN for a class absent from both target and prediction."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    denom = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)


def segmentation_metrics(cm: np.ndarray, class_names: Sequence[str] | None = None,
                         classes: Sequence[int] | None = None) -> dict:
    """mIoU (mean over ``classes``, default all, skipping NaN), per-class IoU, pixel accuracy."""
    iou = iou_from_confusion(cm)
    chosen = list(range(len(iou))) if classes is None else list(classes)
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(iou))]
    cm = np.asarray(cm, dtype=np.float64)
    return {"miou": float(np.nanmean(iou[chosen])) if np.isfinite(iou[chosen]).any() else float("nan"),
            "per_class_iou": {names[i]: (None if np.isnan(iou[i]) else float(iou[i])) for i in chosen},
            "pixel_accuracy": float(np.trace(cm) / max(1.0, cm.sum())),
            "pixels": int(cm.sum())}


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None,
                      weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel cross-entropy; ``target`` ``(B, h, w)`` is resized (nearest) to the logits when they differ."""
    if tuple(target.shape[-2:]) != tuple(logits.shape[-2:]):
        target = resize_labels(target, tuple(logits.shape[-2:]))
    return F.cross_entropy(logits.float(), target.long(), weight=weight,
                           ignore_index=-100 if ignore_index is None else ignore_index)


def resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of label maps ``(B, H, W)`` to ``size``."""
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].to(labels.dtype)


# --- inference ------------------------------------------------------------------------------------
@torch.no_grad()
def predict_segmentation(solution, inputs: Any, batch_size: int = 8) -> dict | list[dict]:
    """Masks for one image (a dict) or a list (a list of dicts): ``mask`` ``(H, W)`` class ids at the
    image's own size, ``confidence`` ``(H, W)``, ``shares`` (pixel share by label)."""
    from .features import to_device
    from .io import read_image

    single = not isinstance(inputs, (list, tuple))
    items = [inputs] if single else list(inputs)
    model = solution.model.eval()
    out = []
    for i in range(0, len(items), batch_size):
        images = [read_image(x) for x in items[i:i + batch_size]]
        x = to_device(torch.stack([solution.transform(im) for im in images]), solution.device)
        probs = model(x).float().softmax(1)
        for im, p in zip(images, probs):
            p = F.interpolate(p[None], size=(im.height, im.width), mode="bilinear", align_corners=False)[0]
            conf, mask = p.max(0)
            mask = mask.cpu().numpy().astype(np.uint8)
            counts = np.bincount(mask.ravel(), minlength=len(solution.labels)) / mask.size
            out.append({"mask": mask, "confidence": conf.cpu().numpy(),
                        "shares": {lab: float(c) for lab, c in zip(solution.labels, counts)}})
    return out[0] if single else out
