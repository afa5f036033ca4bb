"""Sim-to-real adaptation for segmentation on a frozen pretrained encoder, with cached features.

The encoder runs once per image set (``encode``); decoders then train on the cached multi-scale
features in seconds to minutes on a CPU. Each method reuses a piece of ``suite.core.adaptation``:

    source_only    decoder trained on simulator frames
    fda            simulator frames restyled with real frames' low-frequency amplitude (``fda_swap``)
    adabn          encoder and decoder BatchNorm statistics re-estimated on real frames (``adapt_batchnorm``)
    adversarial    output-space alignment: a discriminator on per-pixel class probabilities behind
                   gradient reversal (``DomainAdversarialLoss``, ``DomainDiscriminator``)
    entropy        entropy minimisation on real frames' pixels (``EntropyLoss``)
    self_training  class-balanced confident pseudo-labels on real frames, then training on them
    oracle         decoder trained on real labelled frames (the upper reference)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..core.segmentation import (SegmentationModel, confusion_matrix, segmentation_loss, segmentation_metrics)
from .data import SegmentationData
from .schema import CAMVID_CLASSES, IGNORE

NUM_CLASSES = len(CAMVID_CLASSES)


@dataclass
class FeatureSet:
    """Cached encoder features of an image set: ``feats[k]`` ``(N, C_k, h_k, w_k)`` (float16) and
    labels ``(N, H, W)`` uint8 at the model input size (or ``None``)."""

    feats: list[torch.Tensor]
    labels: torch.Tensor | None
    source: str = ""

    def __len__(self) -> int:
        return len(self.feats[0])

    def batch(self, idx) -> list[torch.Tensor]:
        return [f[idx].float() for f in self.feats]

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        tensors = {f"f{k}": f.contiguous() for k, f in enumerate(self.feats)}
        if self.labels is not None:
            tensors["labels"] = self.labels.contiguous()
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata={"source": self.source})

    @classmethod
    def load(cls, path: Path) -> "FeatureSet":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            keys = set(f.keys())
            feats = [f.get_tensor(f"f{k}") for k in range(sum(k.startswith("f") for k in keys))]
            labels = f.get_tensor("labels") if "labels" in keys else None
            source = (f.metadata() or {}).get("source", "")
        return cls(feats, labels, source)


def resize_pair(rgb: np.ndarray, label: np.ndarray | None, size: tuple[int, int]):
    """Image (bilinear, antialiased) and label map (nearest) resized to ``size`` ``(H, W)``."""
    from PIL import Image

    h, w = size
    if rgb.shape[:2] != (h, w):
        rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
    if label is not None and label.shape != (h, w):
        label = np.asarray(Image.fromarray(label).resize((w, h), Image.NEAREST))
    return rgb, label


def to_tensor(rgbs: Sequence[np.ndarray], preprocess) -> torch.Tensor:
    """RGB uint8 images at the model size -> normalised ``(B, 3, H, W)``."""
    return normalise(torch.from_numpy(np.stack(rgbs)), preprocess)


def normalise(images: torch.Tensor, preprocess) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` or float ``(B, 3, H, W)`` in [0, 1] -> the model's normalised input, on
    the images' device."""
    if images.dtype == torch.uint8:
        images = images.permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor(preprocess.mean, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(preprocess.std, device=images.device).view(1, -1, 1, 1)
    return (images - mean) / std


def _batches(data: SegmentationData, size, batch_size: int, style: Callable | None = None, limit: int | None = None):
    n = len(data) if limit is None else min(limit, len(data))
    for i in range(0, n, batch_size):
        rgbs, labels = [], []
        for j in range(i, min(n, i + batch_size)):
            rgb, lab = data.load(j)
            rgb, lab = resize_pair(rgb, lab, size)
            if style is not None:
                rgb = style(rgb, j)
            rgbs.append(rgb)
            labels.append(lab)
        yield rgbs, labels


class _Encoder(nn.Module):
    """The encoder alone (what AdaBN re-normalises)."""

    def __init__(self, model: SegmentationModel):
        super().__init__()
        self.backbone = model.backbone
        self.encode = model.encode

    def forward(self, x):
        return self.encode(x)


@torch.no_grad()
def encode(model: SegmentationModel, data: SegmentationData, batch_size: int = 16, style: Callable | None = None,
           cache: Path | None = None, progress: bool = False) -> FeatureSet:
    """Encoder features of every image (labels kept at the model input size); ``style(rgb, i)`` restyles
    images first (FDA). ``cache`` (a ``.safetensors`` path) is read when present, written otherwise."""
    if cache is not None and Path(cache).is_file():
        return FeatureSet.load(Path(cache))
    size = tuple(model.preprocess.input_size[1:])
    model.eval()
    feats: list[list[torch.Tensor]] | None = None
    labels = []
    for step, (rgbs, labs) in enumerate(_batches(data, size, batch_size, style)):
        out = model.encode(to_tensor(rgbs, model.preprocess))
        feats = [[] for _ in out] if feats is None else feats
        for k, f in enumerate(out):
            feats[k].append(f.half())
        labels.extend(labs)
        if progress:
            print(f"  encoded {min(len(data), (step + 1) * batch_size)}/{len(data)} {data.source}", flush=True)
    fs = FeatureSet([torch.cat(f) for f in feats],
                    torch.from_numpy(np.stack(labels)) if labels and labels[0] is not None else None, data.source)
    if cache is not None:
        fs.save(Path(cache))
    return fs


def fda_style(targets: SegmentationData, size, beta: float = 0.01, seed: int = 0, pool: int = 64) -> Callable:
    """A ``style(rgb, i)`` that gives an image the low-frequency amplitude of a random target image."""
    from ..core.adaptation import fda_swap

    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(targets))[:pool]
    pool_imgs = [resize_pair(targets.image(int(i)), None, size)[0].astype(np.float64) for i in idx]

    def style(rgb: np.ndarray, i: int) -> np.ndarray:
        trg = pool_imgs[int(np.random.default_rng([seed, i]).integers(len(pool_imgs)))]
        return np.clip(fda_swap(rgb.astype(np.float64), trg, beta), 0, 255).astype(np.uint8)

    return style


def adabn_encoder(model: SegmentationModel, data: SegmentationData, batch_size: int = 16, limit: int = 256) -> SegmentationModel:
    """A copy of ``model`` whose encoder BatchNorm statistics come from ``data`` (AdaBN)."""
    from ..core.adaptation import adapt_batchnorm

    adapted = copy.deepcopy(model)
    size = tuple(model.preprocess.input_size[1:])
    batches = (to_tensor(rgbs, model.preprocess) for rgbs, _ in _batches(data, size, batch_size, limit=limit))
    adapt_batchnorm(_Encoder(adapted), batches)
    return adapted


def adabn_decoder(model: SegmentationModel, target: FeatureSet, batch_size: int = 32) -> None:
    """Re-estimate the decoder's BatchNorm statistics on target features (in place)."""
    from ..core.adaptation import adapt_batchnorm

    batches = (target.batch(slice(i, i + batch_size)) for i in range(0, len(target), batch_size))
    adapt_batchnorm(model.decoder, batches)


def class_weights(labels: torch.Tensor, power: float = 0.5, clip: tuple[float, float] = (0.2, 5.0)) -> torch.Tensor:
    """Median-frequency balancing ``(median f / f_c) ** power``, clipped (SegNet's CamVid recipe, softened)."""
    counts = torch.bincount(labels.reshape(-1).long(), minlength=NUM_CLASSES + 1)[:NUM_CLASSES].double()
    freq = counts / counts.sum().clamp(min=1)
    w = (freq[freq > 0].median() / freq.clamp(min=1e-8)) ** power
    return w.clamp(*clip).float()


@dataclass
class DecoderConfig:
    epochs: int = 6
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    adapt_weight: float = 0.01  # adversarial weight (entropy uses it x10)
    pixels_per_image: int = 512  # pixels sampled per image for the discriminator


def train_decoder(model: SegmentationModel, source: FeatureSet, config: DecoderConfig | None = None,
                  target: FeatureSet | None = None, method: str = "source_only",
                  target_labels: torch.Tensor | None = None, weights: torch.Tensor | None = None,
                  log: Callable[[str], None] | None = None) -> dict:
    """Train ``model.decoder`` in place on cached features; returns training statistics.

    ``method``: ``source_only`` (also FDA/AdaBN, whose difference is in the features), ``adversarial``,
    ``entropy`` (need ``target``), ``self_training`` (needs ``target`` and ``target_labels``: pseudo-labels
    with 11 = ignore). ``weights``: class weights for the cross-entropy.
    """
    from ..core.adaptation import DomainAdversarialLoss, DomainDiscriminator, EntropyLoss
    from ..core.adaptation.grl import WarmStartGradientReverseLayer

    config = config or DecoderConfig()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    dec = model.decoder
    params = list(dec.parameters())
    steps_per_epoch = math.ceil(len(source) / config.batch_size)
    total = steps_per_epoch * config.epochs
    adversary = None
    if method == "adversarial":
        grl = WarmStartGradientReverseLayer(alpha=10.0, max_iters=total)
        adversary = DomainAdversarialLoss(DomainDiscriminator(NUM_CLASSES, 64), grl)
        params += list(adversary.parameters())
    elif method not in ("source_only", "entropy", "self_training"):
        raise ValueError(f"unknown method {method!r}; choose source_only, adversarial, entropy, self_training")
    if method in ("adversarial", "entropy", "self_training") and target is None:
        raise ValueError(f"{method} needs target features")
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total, pct_start=0.1)
    size = tuple(d // 2 for d in source.labels.shape[-2:])  # loss at half the input size (stride 2)
    entropy = EntropyLoss()
    stats = {"steps": total, "loss": [], "domain_accuracy": []}
    dec.train()
    for epoch in range(config.epochs):
        order = rng.permutation(len(source))
        running = 0.0
        for s in range(steps_per_epoch):
            idx = torch.from_numpy(np.sort(order[s * config.batch_size:(s + 1) * config.batch_size]))
            logits = model.decode(source.batch(idx), size=size)
            loss = segmentation_loss(logits, source.labels[idx], IGNORE, weights)
            if target is not None and method != "source_only":
                tidx = torch.from_numpy(np.sort(rng.choice(len(target), len(idx), replace=len(target) < len(idx))))
                t_logits = model.decode(target.batch(tidx))  # stride 4
                if method == "self_training":
                    loss = loss + segmentation_loss(t_logits, target_labels[tidx], IGNORE, weights)
                elif method == "entropy":
                    loss = loss + 10 * config.adapt_weight * entropy(_pixels(t_logits))
                else:
                    s_logits = F.interpolate(logits, size=t_logits.shape[-2:], mode="bilinear", align_corners=False)
                    k = config.pixels_per_image * len(idx)
                    p_s = _sample(_pixels(s_logits).softmax(-1), k, rng)
                    p_t = _sample(_pixels(t_logits).softmax(-1), k, rng)
                    loss = loss + config.adapt_weight * adversary(p_s, p_t)
                    stats["domain_accuracy"].append(adversary.domain_accuracy)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item()
        stats["loss"].append(running / steps_per_epoch)
        if log:
            log(f"  {method} epoch {epoch + 1}/{config.epochs} loss {stats['loss'][-1]:.4f}")
    dec.eval()
    if stats["domain_accuracy"]:
        stats["final_domain_accuracy"] = float(np.mean(stats["domain_accuracy"][-steps_per_epoch:]))
    stats.pop("domain_accuracy")
    return stats


def _pixels(logits: torch.Tensor) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B*h*w, C)``."""
    return logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])


def _sample(x: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    if len(x) <= k:
        return x
    return x[torch.from_numpy(rng.choice(len(x), k, replace=False))]


@torch.no_grad()
def predict_features(model: SegmentationModel, fs: FeatureSet, size: tuple[int, int], batch_size: int = 16):
    """Probabilities at ``size`` for every cached item, yielded in batches ``(B, C, H, W)``."""
    model.eval()
    for i in range(0, len(fs), batch_size):
        yield model.decode(fs.batch(slice(i, i + batch_size)), size=size).softmax(1)


@torch.no_grad()
def pseudo_labels(model: SegmentationModel, target: FeatureSet, size: tuple[int, int], fraction: float = 0.5,
                  cap: float = 0.9) -> tuple[torch.Tensor, dict]:
    """Class-balanced pseudo-labels (CBST, Zou et al. 2018): for each class keep its most confident
    ``fraction`` of predicted pixels (confidence threshold at most ``cap``); the rest is ignored (11)."""
    probs = torch.cat([p.half() for p in predict_features(model, target, size)])
    conf, pred = probs.float().max(1)
    thresholds = torch.full((NUM_CLASSES,), cap)
    for c in range(NUM_CLASSES):
        sel = conf[pred == c]
        if sel.numel():
            q = torch.quantile(sel[torch.randperm(sel.numel())[:200_000]], 1 - fraction)
            thresholds[c] = min(cap, float(q))
    keep = conf >= thresholds[pred]
    labels = torch.where(keep, pred, torch.full_like(pred, IGNORE)).to(torch.uint8)
    return labels, {"kept_share": float(keep.float().mean()),
                    "thresholds": {CAMVID_CLASSES[c]: round(float(t), 3) for c, t in enumerate(thresholds)}}


@torch.no_grad()
def evaluate(model: SegmentationModel, fs: FeatureSet, labels: Sequence[np.ndarray] | torch.Tensor,
             classes: Sequence[int] | None = None) -> dict:
    """mIoU and per-class IoU of cached features against full-resolution labels (11 ignored)."""
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    i = 0
    for probs in predict_features(model, fs, tuple(np.asarray(labels[0]).shape[-2:]), batch_size=8):
        pred = probs.argmax(1)
        target = torch.as_tensor(np.stack([np.asarray(labels[j]) for j in range(i, i + len(pred))]))
        cm += confusion_matrix(pred, target, NUM_CLASSES, ignore_index=IGNORE)
        i += len(pred)
    out = segmentation_metrics(cm, CAMVID_CLASSES, classes)
    out["confusion"] = cm.tolist()
    return out
