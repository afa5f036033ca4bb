"""Sim-to-real training of the whole network: simulator source-only + AdaBN, and cross-domain mixing
self-training (DACS, Tranheden et al. 2021).

Unlike ``suite.driving.adapt`` (frozen encoder, cached features), every layer trains here: minutes on
a GPU, about 20 minutes per 2,000 steps on one CPU core at 180x240. Each step:

    source      simulator frames with labels: class-weighted cross-entropy
    mixed       (``dacs`` only) ClassMix: half of the classes of a simulator frame pasted onto a real
                frame; labels are the simulator's inside the mask and the teacher's pseudo-labels outside,
                the pseudo-labelled pixels weighted by the share of the teacher's confident pixels (above
                ``threshold``); colour jitter and blur on the mixed image
    teacher     (``dacs`` only) an exponential moving average of the student makes the pseudo-labels

``method="source_only"`` drops the mixed term; ``method="oracle"`` trains on real frames with their
labels; ``method="self_train"`` (with ``--init``, a model trained before) labels the real frames once with
that model, keeping the most confident share of each class's pixels (class-balanced pseudo-labels, CBST,
Zou et al. 2018), and uses those fixed labels in the mixed term: no teacher that drifts. After training,
``main`` also re-estimates every BatchNorm statistic on the unlabelled real frames (AdaBN, ``adabn``),
scores both models and, with ``--ship DIR``, writes ``DIR/sim2real_adapted``: the AdaBN model after
source-only training, the trained model itself after training on real frames (``_shipped``); with
``--ship-source-only``, a source-only run writes its model before AdaBN as ``DIR/sim2real_source_only``
instead (the baseline the demo shows beside the adapted model). Optional ImageNet feature distance
(``feature_distance``, DAFormer) keeps the deepest source features near the frozen pretrained encoder's
on thing classes.

    python -m suite.driving.dacs --camvid CAMVID_ROOT --method source_only --lr 6e-5 --steps 2000 \
        --threads 1 --out runs/sim2real_whole     # the first run of what ships (the README: the whole chain)

Measured (``benchmarks/results/driving_dacs.md``): with simulator version 3, source-only 35.5 and 34.7
mIoU on CamVid val in two seeds, + AdaBN 43.5 and 41.8, then two ``self_train`` rounds 48.7 and 48.0
(what ships; the oracle on CamVid train labels: 60.6). With version 1: source-only + AdaBN 37.0-37.5 in
four runs (source-only alone 31.2-33.1). DACS gains +4.5 at about 500 steps (35.7 vs 31.2), then
collapses by about 2,000 steps at both learning rates tried (the building class is lost to confident
wrong pseudo-labels; 25.0 and 25.5). Its default length, 500 steps, was set after seeing those CamVid
val scores: when training longer or on other data, watch per-class IoU on a few labelled real frames
(``--evaluate-every``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..core.segmentation import (SegmentationModel, confusion_matrix, create_segmentation_model,
                                 segmentation_metrics)
from .adapt import class_weights, normalise, resize_pair
from .data import SegmentationData
from .schema import CAMVID_CLASSES, IGNORE
from .sim import SIM_VERSION

NUM_CLASSES = len(CAMVID_CLASSES)
CALIBRATION_STEPS = (20, 70)  # steps between which the speed is measured
METHODS = ("source_only", "dacs", "oracle", "self_train")


@dataclass
class DacsConfig:
    steps: int = 500  # longer runs collapsed on CamVid (see the module's docstring)
    batch_size: int = 8
    lr: float = 2e-4  # encoder; the decoder trains at ``decoder_lr_mult`` times this
    decoder_lr_mult: float = 10.0
    weight_decay: float = 0.01
    warmup: int = 200
    ema: float = 0.99
    threshold: float = 0.968
    feature_distance: float = 0.0
    pseudo_share: float = 0.5  # ``self_train``: the most confident share of each class's pixels kept
    pseudo_cap: float = 0.9  # ``self_train``: pixels at least this confident are kept whatever their class
    amp: bool = True  # bfloat16 autocast on a GPU
    seed: int = 0


def _load_pair(job):
    data, i, size = job
    rgb, lab = data.load(i)
    return resize_pair(rgb, lab, size)


def load_arrays(data: SegmentationData, size: tuple[int, int], workers: int = 0):
    """Every item at ``size`` ``(H, W)``: uint8 images ``(N, H, W, 3)`` and labels ``(N, H, W)`` (or ``None``)."""
    jobs = [(data, i, tuple(size)) for i in range(len(data))]
    if workers > 1:
        from multiprocessing import get_context

        with get_context("spawn" if torch.cuda.is_initialized() else "fork").Pool(workers) as pool:
            pairs = pool.map(_load_pair, jobs, chunksize=8)
    else:
        pairs = [_load_pair(j) for j in jobs]
    images = torch.from_numpy(np.stack([p[0] for p in pairs]))
    labels = None if pairs[0][1] is None else torch.from_numpy(np.stack([p[1] for p in pairs]))
    return images, labels


def class_mix_masks(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """ClassMix masks ``(B, H, W)`` bool: per frame, a random half of the classes it shows."""
    masks = torch.zeros_like(labels, dtype=torch.bool)
    for b in range(len(labels)):
        present = torch.unique(labels[b])
        present = present[present != IGNORE]
        if len(present) == 0:
            continue
        order = torch.randperm(len(present), generator=generator)[: (len(present) + 1) // 2]
        masks[b] = torch.isin(labels[b], present[order.to(present.device)])
    return masks


def colour_jitter(x: torch.Tensor, generator: torch.Generator, strength: float = 0.2) -> torch.Tensor:
    """Random brightness, contrast and saturation per image on ``(B, 3, H, W)`` in [0, 1]."""
    b = len(x)

    def draw():
        return (1 + strength * (2 * torch.rand(b, 1, 1, 1, generator=generator) - 1)).to(x.device)

    x = x * draw()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * draw() + mean
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * draw() + grey
    return x.clamp(0, 1)


def blur(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """A 5x5 Gaussian blur (sigma 0.1 to 2) on about a share ``p`` of the images."""
    out = x.clone()
    for b in range(len(x)):
        if float(torch.rand(1, generator=generator)) >= p:
            continue
        sigma = 0.1 + 1.9 * float(torch.rand(1, generator=generator))
        t = torch.arange(5, device=x.device, dtype=x.dtype) - 2
        k = torch.exp(-t ** 2 / (2 * sigma ** 2))
        k = k / k.sum()
        kernel = (k[:, None] * k[None, :]).expand(3, 1, 5, 5)
        out[b] = F.conv2d(x[b:b + 1], kernel, padding=2, groups=3)[0]
    return out


@torch.no_grad()
def _ema_update(teacher: torch.nn.Module, student: torch.nn.Module, alpha: float) -> None:
    for t, s in zip(teacher.state_dict().values(), student.state_dict().values()):
        if t.dtype.is_floating_point:
            t.mul_(alpha).add_(s.detach(), alpha=1 - alpha)
        else:
            t.copy_(s)


def _flip(images: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator):
    """Random horizontal flips of ``(B, H, W, 3)`` images and their ``(B, H, W)`` labels."""
    flip = torch.rand(len(images), generator=generator) < 0.5
    images = torch.where(flip.view(-1, 1, 1, 1).to(images.device), images.flip(2), images)
    if labels is not None:
        labels = torch.where(flip.view(-1, 1, 1).to(labels.device), labels.flip(2), labels)
    return images, labels


@torch.no_grad()
def pseudo_labels(teacher: SegmentationModel, images: torch.Tensor, share: float = 0.5, cap: float = 0.9,
                  batch_size: int = 16) -> tuple[torch.Tensor, dict]:
    """Class-balanced pseudo-labels (CBST, Zou et al. 2018) of uint8 ``(N, h, w, 3)`` frames, ``(N, h, w)``
    uint8 with ``IGNORE`` where unsure, and the per-class confidence thresholds used.

    The teacher's probabilities are averaged with those of the mirrored frame; a pixel keeps its class
    when its confidence is among the top ``share`` of the pixels predicted as that class, or at least
    ``cap``: rare classes keep pseudo-labels at a lower confidence than the dominant ones."""
    device = next(teacher.parameters()).device
    was = teacher.training
    teacher.eval()
    confs, preds = [], []
    for i in range(0, len(images), batch_size):
        x = normalise(images[i:i + batch_size].to(device), teacher.preprocess)
        probs = teacher(x).float().softmax(1) + teacher(x.flip(-1)).float().softmax(1).flip(-1)
        conf, pred = (probs / 2).max(1)
        confs.append(conf.half().cpu())
        preds.append(pred.to(torch.uint8).cpu())
    teacher.train(was)
    conf, pred = torch.cat(confs), torch.cat(preds)
    labels = torch.full_like(pred, IGNORE)
    thresholds = {}
    for c in range(NUM_CLASSES):
        mine = pred == c
        if not mine.any():
            continue
        values = conf[mine].float()
        step = max(1, values.numel() // 1_000_000)  # a sample is enough for a quantile
        thr = min(cap, float(values[::step].quantile(1 - share)))
        labels[mine & (conf >= thr)] = c
        thresholds[CAMVID_CLASSES[c]] = round(thr, 4)
    return labels, thresholds


def train(model: SegmentationModel, source: tuple[torch.Tensor, torch.Tensor], target: torch.Tensor | None,
          config: DacsConfig | None = None, method: str = "dacs", device: str | torch.device = "cpu",
          log=None, evaluate_every: int = 0, evaluate_fn=None, max_seconds: float = 0) -> dict:
    """Train ``model`` in place (``method`` in ``METHODS``; ``oracle`` passes real labelled frames as
    ``source``); returns the teacher (``dacs``) or the model, and training statistics.

    ``self_train`` labels the ``target`` frames once with ``model`` as it comes in (``pseudo_labels``,
    e.g. a source-only model after AdaBN), then mixes them with simulator frames as ``dacs`` does, but
    against those fixed labels: no teacher that drifts with the student.

    ``max_seconds`` (0: no limit) shortens the schedule once, at ``CALIBRATION_STEPS[1]``, to the
    number of steps that fits the time from their speed (the learning-rate decay follows the new end)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    cfg = config or DacsConfig()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    device = torch.device(device)
    src_images, src_labels = source[0].to(device), source[1].to(device)
    mixing = method in ("dacs", "self_train")
    tgt_images = target.to(device) if target is not None and mixing else None
    model.to(device)
    tgt_pseudo, thresholds = None, None
    if method == "self_train":
        if tgt_images is None:
            raise ValueError("self_train needs unlabelled target frames")
        tgt_pseudo, thresholds = pseudo_labels(model, tgt_images, cfg.pseudo_share, cfg.pseudo_cap)
        tgt_pseudo = tgt_pseudo.to(device)
        if log:
            kept = float((tgt_pseudo != IGNORE).float().mean())
            log(json.dumps({"pseudo_labelled_share": round(kept, 3), "thresholds": thresholds}))
    model.train()
    teacher = copy.deepcopy(model).eval() if method == "dacs" else None
    imagenet = None
    if cfg.feature_distance > 0:
        # train mode, like the student's encoder: both normalise with batch statistics
        imagenet = copy.deepcopy(model.backbone).train().requires_grad_(False)
    weights = class_weights(src_labels.cpu()).to(device)
    decoder_params = list(model.decoder.parameters())
    ids = {id(p) for p in decoder_params}
    encoder_params = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.AdamW([{"params": encoder_params, "lr": cfg.lr},
                             {"params": decoder_params, "lr": cfg.lr * cfg.decoder_lr_mult}],
                            weight_decay=cfg.weight_decay)
    base = [g["lr"] for g in opt.param_groups]
    amp = cfg.amp and device.type == "cuda"
    history, started, last = [], time.perf_counter(), {}
    steps, planned = cfg.steps, cfg.steps
    step = 0
    while step < steps:
        if max_seconds and step == CALIBRATION_STEPS[0]:
            calibration_start = time.perf_counter()
        if max_seconds and step == CALIBRATION_STEPS[1]:  # the speed after start-up, with the time already spent
            now = time.perf_counter()
            per_step = (now - calibration_start) / (CALIBRATION_STEPS[1] - CALIBRATION_STEPS[0])
            steps = max(step + 1, min(steps, step + int((0.9 * max_seconds - (now - started)) / per_step)))
        factor = min(1.0, (step + 1) / max(1, cfg.warmup)) * (1 - step / steps) ** 0.9
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * factor
        idx = torch.randint(len(src_images), (cfg.batch_size,), generator=gen).to(device)
        xs_raw, ys = _flip(src_images[idx], src_labels[idx].long(), gen)
        xs = normalise(xs_raw, model.preprocess)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            feats = model.encode(xs)
            logits = model.decode(feats, size=tuple(ys.shape[-2:]))
            loss_src = F.cross_entropy(logits.float(), ys, weight=weights, ignore_index=IGNORE)
            loss = loss_src
            if imagenet is not None:
                with torch.no_grad():
                    ref = imagenet.forward_intermediates(xs, indices=model.indices[-1:], intermediates_only=True,
                                                         stop_early=True)[-1]
                fd = ((feats[-1].float() - ref.float()).pow(2).sum(1) + 1e-6).sqrt()
                fd = fd[_thing_mask(ys, fd.shape[-2:])]
                if fd.numel():
                    loss = loss + cfg.feature_distance * fd.mean()
                    last["feature_distance"] = float(fd.detach().mean())
        if tgt_images is not None:
            tidx = torch.randint(len(tgt_images), (cfg.batch_size,), generator=gen).to(device)
            if tgt_pseudo is not None:  # self_train: fixed class-balanced labels, every kept pixel counts
                xt_raw, pseudo = _flip(tgt_images[tidx], tgt_pseudo[tidx].long(), gen)
                confident = torch.ones(len(pseudo), device=device)
            else:
                xt_raw, _ = _flip(tgt_images[tidx], None, gen)
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    probs = teacher(normalise(xt_raw, model.preprocess)).float().softmax(1)
                conf, pseudo = probs.max(1)
                confident = (conf >= cfg.threshold).float().mean(dim=(1, 2))  # per image
            masks = class_mix_masks(ys, gen)
            m3 = masks[:, None].float()
            mixed = m3 * (xs_raw.permute(0, 3, 1, 2).float() / 255) + (1 - m3) * (xt_raw.permute(0, 3, 1, 2).float() / 255)
            mixed = blur(colour_jitter(mixed, gen), gen)
            y_mix = torch.where(masks, ys, pseudo)
            w_mix = torch.where(masks, 1.0, confident.view(-1, 1, 1).expand(masks.shape))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits_mix = model(normalise(mixed, model.preprocess))
            ce = F.cross_entropy(logits_mix.float(), y_mix, reduction="none", ignore_index=IGNORE)
            loss_mix = (ce * w_mix).mean()
            loss = loss + loss_mix
            last.update(loss_mix=float(loss_mix.detach()), confident=float(confident.mean()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if teacher is not None:
            _ema_update(teacher, model, min(1 - 1 / (step + 1), cfg.ema))
        last["loss_source"] = float(loss_src.detach())
        step += 1
        if evaluate_every and evaluate_fn is not None and (step % evaluate_every == 0 or step == steps):
            entry = {"step": step, "seconds": round(time.perf_counter() - started, 1), **last,
                     "miou": evaluate_fn(teacher if teacher is not None else model)}
            if teacher is not None:
                entry["miou_student"] = evaluate_fn(model)
                teacher.eval()
            model.train()
            history.append(entry)
            if log:
                log(json.dumps(entry))
    final = teacher if teacher is not None else model
    return {"model": final.eval(), "student": model.eval(), "history": history, "steps": steps,
            "planned_steps": planned, "seconds": round(time.perf_counter() - started, 1),
            "config": asdict(cfg), "method": method, "pseudo_thresholds": thresholds}


THINGS = tuple(CAMVID_CLASSES.index(c) for c in ("pole", "sign", "car", "pedestrian", "bicyclist", "tree"))


def _thing_mask(labels: torch.Tensor, size) -> torch.Tensor:
    """Feature-map cells whose down-sampled label is a thing class (DAFormer's feature distance mask)."""
    small = F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest")[:, 0].long()
    return torch.isin(small, torch.tensor(THINGS, device=labels.device))


@torch.no_grad()
def evaluate(model: SegmentationModel, images: torch.Tensor, labels: list[np.ndarray] | torch.Tensor,
             batch_size: int = 16) -> dict:
    """mIoU and per-class IoU: ``images`` uint8 ``(N, h, w, 3)`` at the model size, ``labels`` at full size."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for i in range(0, len(images), batch_size):
        target = torch.as_tensor(np.stack([np.asarray(labels[j]) for j in range(i, min(len(images), i + batch_size))]))
        logits = model(normalise(images[i:i + batch_size].to(device), model.preprocess)).float()
        logits = F.interpolate(logits, size=tuple(target.shape[-2:]), mode="bilinear", align_corners=False)
        cm += confusion_matrix(logits.argmax(1).cpu(), target, NUM_CLASSES, ignore_index=IGNORE)
    model.train(was)
    out = segmentation_metrics(cm, CAMVID_CLASSES)
    out["confusion"] = cm.tolist()
    return out


@torch.no_grad()
def adabn(model: SegmentationModel, images: torch.Tensor, batch_size: int = 16, limit: int = 256) -> SegmentationModel:
    """A copy of ``model`` whose BatchNorm statistics (encoder and decoder) come from ``images``, uint8
    ``(N, h, w, 3)`` real frames at the model size, unlabelled (AdaBN, Li et al. 2016)."""
    from ..core.adaptation import adapt_batchnorm

    adapted = copy.deepcopy(model)
    device = next(adapted.parameters()).device
    images = images[:limit]
    adapt_batchnorm(adapted, (normalise(images[i:i + batch_size].to(device), adapted.preprocess)
                              for i in range(0, len(images), batch_size)))
    return adapted


def _simulator_frames(n: int, seed: int, size, workers: int, cache: Path | None):
    """``n`` simulator frames at ``size`` as tensors, through an optional ``.npz`` cache (rendered again
    when it holds another seed, simulator version, size or fewer frames)."""
    from . import data as D

    if cache is not None and cache.is_file():
        with np.load(cache) as z:
            key = {k: int(z[k]) for k in ("seed", "version") if k in z}
            if (key == {"seed": seed, "version": SIM_VERSION} and len(z["images"]) >= n
                    and z["images"].shape[1:3] == tuple(size)):
                return torch.from_numpy(z["images"][:n]), torch.from_numpy(z["labels"][:n])
    images, labels = load_arrays(D.simulated(n, seed=seed), size, workers)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, images=images.numpy(), labels=labels.numpy(), seed=np.int64(seed),
                 version=np.int64(SIM_VERSION))
    return images, labels


def _load_init(model: SegmentationModel, path: Path) -> None:
    """Weights to start from: a segmentation Solution folder, or a weights file holding every tensor of
    ``model`` (``model.safetensors`` / ``model_adabn.safetensors`` of a run)."""
    from ..core import Solution
    from ..core.solution import is_solution_dir
    from ..core.weights import load_state_dict

    state = Solution.load(path).model.state_dict() if is_solution_dir(path) else load_state_dict(path)
    model.load_state_dict({k: v.float() if v.dtype.is_floating_point else v for k, v in state.items()})


def main(argv=None) -> int:
    from . import data as D

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--camvid", type=Path, required=True, help="CamVid root (val/, valannot/, train*/, trainannot*/)")
    p.add_argument("--method", choices=METHODS, default="dacs")
    p.add_argument("--out", type=Path, default=Path("runs/dacs"))
    p.add_argument("--sim-frames", type=int, default=2000)
    p.add_argument("--size", type=int, nargs=2, default=(180, 240), metavar=("H", "W"))
    p.add_argument("--workers", type=int, default=4, help="processes that render and load frames")
    p.add_argument("--evaluate-every", type=int, default=500)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--real-limit", type=int, default=None, help="first N real frames only (smoke runs)")
    p.add_argument("--max-seconds", type=float, default=0, help="fit the schedule into this training time")
    p.add_argument("--sim-cache", type=Path, default=None,
                   help="an .npz of the rendered simulator frames: read when it exists, else written")
    p.add_argument("--init", type=Path, default=None,
                   help="start from a trained model instead of ImageNet: a Solution folder of this architecture and size "
                        "(e.g. suite/driving/solutions/sim2real_adapted) or a run's model*.safetensors; "
                        "self_train pseudo-labels the real frames with it")
    p.add_argument("--ship", type=Path, default=None,
                   help="write the trained model with its BatchNorm statistics re-estimated on the real frames "
                        "(AdaBN) as the Solution DIR/sim2real_adapted")
    p.add_argument("--ship-source-only", action="store_true",
                   help="with --method source_only and --ship: write the model before AdaBN, trained on simulator "
                        "frames alone, as DIR/sim2real_source_only instead")
    for key, value in asdict(DacsConfig()).items():
        p.add_argument("--" + key.replace("_", "-"), type=type(value) if not isinstance(value, bool) else int,
                       default=value)
    a = p.parse_args(argv)
    if a.ship_source_only and (a.method != "source_only" or a.init is not None or a.ship is None):
        p.error("--ship-source-only needs --method source_only from ImageNet (no --init) and --ship DIR")
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = DacsConfig(**{k: (bool(getattr(a, k)) if isinstance(v, bool) else getattr(a, k))
                        for k, v in asdict(DacsConfig()).items()})
    size = tuple(a.size)
    a.out.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    real = D.camvid(a.camvid, "train")
    val = D.camvid(a.camvid, "val")
    if a.real_limit:
        real, val = real.subset(range(min(a.real_limit, len(real)))), val.subset(range(min(a.real_limit, len(val))))
    t0 = time.perf_counter()
    if a.method == "oracle":
        source = load_arrays(real, size, a.workers)
        target = None
    else:
        source = _simulator_frames(a.sim_frames, a.seed + 1, size, a.workers, a.sim_cache)
        target = load_arrays(real.unlabelled(), size, a.workers)[0]
    val_images, _ = load_arrays(val.unlabelled(), size, a.workers)
    val_labels = [val.label(i) for i in range(len(val))]
    log(f"data ready in {time.perf_counter() - t0:.0f} s: source {tuple(source[0].shape)}")
    torch.manual_seed(cfg.seed)  # the decoder's initialisation
    model = create_segmentation_model("embedded:efficientnet_lite0", NUM_CLASSES, size, pretrained=a.init is None)
    start, init_commands, init_source_only = None, [], None
    if a.init is not None:
        _load_init(model, a.init)
        init_commands, init_source_only = _init_provenance(a.init)  # now: a run may replace that folder later
        start = evaluate(model, val_images, val_labels)
        log(f"initial model {a.init}: mIoU {100 * start['miou']:.1f}")
    result = train(model, source, target, cfg, a.method, a.device, log, a.evaluate_every,
                   lambda m: evaluate(m, val_images, val_labels)["miou"], a.max_seconds)
    final = evaluate(result["model"], val_images, val_labels)
    from safetensors.torch import save_file

    def save(model, name):
        save_file({k: v.detach().half().contiguous().cpu() if v.dtype.is_floating_point else v.contiguous().cpu()
                   for k, v in model.state_dict().items()}, str(a.out / name))

    save(result["model"], "model.safetensors")
    summary = {"method": a.method, "config": result["config"], "sim_frames": a.sim_frames, "sim_version": SIM_VERSION,
               "size": list(size),
               "steps": result["steps"], "planned_steps": result["planned_steps"],
               "seconds": result["seconds"], "history": result["history"], "miou": final["miou"],
               "per_class_iou": final["per_class_iou"], "pixel_accuracy": final["pixel_accuracy"],
               "device": str(a.device), "evaluation": f"{val.source}: {len(val)} frames",
               "init": None if a.init is None else {"path": str(a.init), "miou": start["miou"],
                                                    "per_class_iou": start["per_class_iou"]},
               "pseudo_thresholds": result["pseudo_thresholds"],
               "target": f"{real.source}: {len(real)} frames, labels unused",
               "command": "python -m suite.driving.dacs " + " ".join(argv if argv is not None else sys.argv[1:])}
    summary["commands"] = init_commands + [summary["command"]]
    # the simulator-only model this chain of runs started from (this run's own model when it is one)
    summary["source_only_miou"] = final["miou"] if a.method == "source_only" and a.init is None else init_source_only
    log(f"{a.method}: mIoU {100 * final['miou']:.1f}")
    if target is not None:
        adapted = adabn(result["model"], target)
        after = evaluate(adapted, val_images, val_labels)
        save(adapted, "model_adabn.safetensors")
        summary["adabn"] = {"miou": after["miou"], "per_class_iou": after["per_class_iou"],
                            "pixel_accuracy": after["pixel_accuracy"], "frames": min(256, len(target))}
        log(f"{a.method} + AdaBN: mIoU {100 * after['miou']:.1f}")
    if a.ship is not None and target is not None:
        folder = a.ship / ("sim2real_source_only" if a.ship_source_only else "sim2real_adapted")
        variant = "simulator" if a.ship_source_only else _shipped(summary)[0]
        ship((adapted if variant == "AdaBN" else result["model"]).cpu(), summary, folder, variant)
        log(f"solution written to {folder}")
    (a.out / "results.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return 0


def _shipped(summary: dict, variant: str | None = None) -> tuple[str, dict, str, dict | None]:
    """What a run ships, its scores, and the model it is compared with on the card: after simulator-only
    training the AdaBN model (against the model before AdaBN), or with ``variant="simulator"`` the model
    before AdaBN (against the AdaBN model); after training on real frames too (``dacs``, ``self_train``)
    the trained model itself, whose statistics already saw real frames (measured: AdaBN after one
    self-training round lost 3.5 mIoU), against the model it started from."""
    own = {k: summary[k] for k in ("miou", "per_class_iou", "pixel_accuracy")}
    if variant == "simulator":
        return "simulator", own, "model after AdaBN", summary["adabn"]
    if summary["method"] == "source_only":
        return "AdaBN", summary["adabn"], "before AdaBN", {"miou": summary["miou"], "per_class_iou": summary["per_class_iou"]}
    return "trained", own, "initial model", summary.get("init")


def _init_provenance(path: Path) -> tuple[list[str], float | None]:
    """How an ``--init`` model was made: the commands of its chain of runs and the source-only mIoU the
    chain started from. Read from a run's ``results.json`` beside its weights, or from a Solution's
    config (recipe ``commands``, metrics) and, for older solutions, its card's Reproduce block."""
    path = Path(path)
    results = path.with_name("results.json") if path.is_file() else path / "results.json"
    if results.is_file():
        info = json.loads(results.read_text())
        return info.get("commands") or [info["command"]], info.get("source_only_miou")
    config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    commands = list(config.get("recipe", {}).get("commands") or [])
    card = path / "README.md"
    if not commands and card.is_file() and "## Reproduce" in card.read_text():
        block = card.read_text().split("## Reproduce", 1)[1].split("```")
        if len(block) > 2:
            commands = [line for line in block[1].splitlines()[1:] if line.strip()]
    return commands, config.get("metrics", {}).get("source_only_miou")


def ship(model: SegmentationModel, summary: dict, folder: Path, variant: str | None = None) -> None:
    """Write the model a run ships (``_shipped``; ``summary`` from ``main``) as a Solution with its model card."""
    from ..core import Solution

    variant, r, _, _ = _shipped(summary, variant)
    metrics = {"data": summary["evaluation"], "miou": r["miou"], "per_class_iou": r["per_class_iou"],
               "pixel_accuracy": r["pixel_accuracy"], "source_only_miou": summary.get("source_only_miou")}
    if summary.get("init"):
        metrics["initial_miou"] = summary["init"]["miou"]
    if variant == "simulator":
        metrics["adabn_miou"] = summary["adabn"]["miou"]
    method = f"whole network, {summary['method']}" + (" + AdaBN" if variant == "AdaBN" else "")
    recipe = {"method": method, **summary["config"], "sim_frames": summary["sim_frames"],
              "input_size": summary["size"], "steps": summary["steps"], "commands": summary["commands"]}
    what = {"AdaBN": "BatchNorm statistics re-estimated on unlabelled real frames (AdaBN)",
            "simulator": "no adaptation to real frames"}.get(variant, "then trained on unlabelled real frames with "
                                                                       "pseudo-labels")
    sol = Solution(model, list(CAMVID_CLASSES), metrics=metrics, name=folder.name, recipe=recipe,
                   description=f"Street-scene segmentation (CamVid 11 classes) trained on simulator frames, every "
                               f"layer; {what}.")
    sol.card = model_card(folder.name, summary, variant)
    sol.save(folder, storage_dtype="float16")


def _adabn_losses(before: dict, after: dict) -> list[str]:
    """A card line naming the classes AdaBN made worse by more than 2 IoU points."""
    worse = [f"{c} ({_pct(before[c])} -> {_pct(after[c])})" for c in after
             if after[c] is not None and before.get(c) is not None and after[c] < before[c] - 0.02]
    return ["", "AdaBN made these classes worse: " + ", ".join(worse) + "."] if worse else []


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _how_adapted(summary: dict, rounds: int) -> str:
    """The card's sentence on how the shipped model met real frames."""
    if summary["method"] == "source_only":
        return (f"the BatchNorm statistics of every layer were re-estimated on {summary['adabn']['frames']} unlabelled "
                "CamVid train frames (AdaBN).")
    if summary["method"] == "self_train":
        share = summary["config"]["pseudo_share"]
        kept = "half" if share == 0.5 else f"{100 * share:.0f}%"
        return ("after AdaBN, the model labelled the unlabelled CamVid train frames itself, keeping the most "
                f"confident {kept} of each class's pixels (class-balanced pseudo-labels), and was trained on them mixed "
                f"into simulator frames (ClassMix); {rounds} such round{'s' if rounds > 1 else ''}, each starting "
                "from the previous model.")
    return "it was trained on simulator classes pasted onto real frames with pseudo-labels from a moving-average teacher (DACS)."


def model_card(name: str, summary: dict, variant: str | None = None) -> str:
    variant, r, versus, before = _shipped(summary, variant)
    cfg, commands = summary["config"], summary["commands"]
    rounds = sum("--method self_train" in c for c in commands)
    before_iou = (before or {}).get("per_class_iou", {})
    headline = f"- mIoU: **{100 * r['miou']:.1f}**" + (f"; the {versus} {100 * before['miou']:.1f}" if before else "")
    if variant == "trained" and summary.get("adabn"):
        headline += f"; with AdaBN afterwards {100 * summary['adabn']['miou']:.1f} (not shipped)"
    start = summary.get("source_only_miou")
    if start is not None and variant == "trained":
        headline += (f"\n- the simulator-only model this chain started from (the same network, before AdaBN): "
                     f"{100 * start:.1f}, so adaptation gained {100 * (r['miou'] - start):+.1f}")
    losses = _adabn_losses(before_iou, r["per_class_iou"]) if variant == "AdaBN" else []
    history = ("The same recipe on a GPU, two other runs (691 and 6,919 steps): 31.2 -> 37.5 and 31.4 -> 37.0 mIoU "
               "(`benchmarks/results/driving_dacs.md`)." if variant == "AdaBN" else
               "Runs and rounds: `benchmarks/results/driving_dacs.md`.")
    classes = ("Semantic segmentation of forward-camera street scenes into the CamVid 11 classes (sky, building, pole, "
               "road, pavement, tree, sign, fence, car, pedestrian, bicyclist), trained on frames of the suite's "
               "built-in driving simulator with their labels")
    if variant == "simulator":
        about = (classes + " and nothing else: it has seen no real frame. It is the baseline for adaptation: "
                 "`sim2real_adapted` comes from the same training run (its Reproduce block starts with it), whose "
                 "model then re-estimated its statistics on unlabelled real frames (AdaBN) and was self-trained on them.")
        fit = (f"Re-estimating the statistics on frames from your own camera (the app's Adapt tab) is the cheapest "
               f"way to fit it to them: on CamVid it lifted this model from {100 * r['miou']:.1f} to "
               f"{100 * before['miou']:.1f} mIoU.")
    else:
        about = classes + ", then adapted to real frames without their labels: " + _how_adapted(summary, rounds)
        fit = ("Re-estimating the statistics on frames from your own camera (the app's Adapt tab) is "
               "the cheapest way to fit it to them." if variant == "AdaBN" else
               "Re-estimating the statistics on your own frames (the app's Adapt tab) is cheap but cost "
               "this model " + (f"{100 * (r['miou'] - summary['adabn']['miou']):.1f} mIoU on CamVid"
                                if summary.get("adabn") else "accuracy on CamVid")
               + "; another self-training round on your frames is the stronger fit.")
    return "\n".join([
        f"# {name}", "", about,
        "", "## Model",
        "- encoder: `embedded:efficientnet_lite0` (ImageNet), every layer trained; stored whole, in float16",
        "- decoder: light FPN (1x1 laterals, 3x3 fusion at stride 8, 1x1 classifier at stride 4), 64 channels",
        f"- input: RGB resized to {summary['size'][1]}x{summary['size'][0]}",
        f"- last training run: {summary['method']}, {summary['steps']} steps of batch {cfg['batch_size']}, AdamW "
        f"(encoder lr {cfg['lr']:g}, decoder x{cfg['decoder_lr_mult']:g}, weight decay {cfg['weight_decay']:g}), "
        f"warm-up {cfg['warmup']}, poly decay, class-weighted cross-entropy, random flips; {summary['seconds']:.0f} s "
        f"on {summary['device']}",
        "", "## Data",
        f"- labelled source: {summary['sim_frames']} frames of the built-in simulator (version "
        f"{summary.get('sim_version', 1)}) in the last run (seed {cfg['seed'] + 1}; "
        "generated, no license restriction)" + ("; each earlier run of the chain names its own in Reproduce"
                                               if len(commands) > 1 else ""),
        (f"- unlabelled target: {summary['target']} (CamVid, CC BY-NC 4.0; not shipped)" if variant != "simulator"
         else f"- real frames: none in training; the AdaBN column re-estimated statistics on {summary['target']} "
              "(CamVid, CC BY-NC 4.0; not shipped)"),
        f"- evaluation: {summary['evaluation']} at 480x360, 11 classes, unlabelled pixels ignored",
        "", "## Metrics (CamVid val; a single run, no confidence interval)",
        headline,
        "", f"| class | IoU | {versus} |", "|---|---|---|",
        *[f"| {c} | {_pct(v)} | {_pct(before_iou.get(c))} |" for c, v in r["per_class_iou"].items()],
        *losses, "", history,
        "", "## Reproduce", "```bash", *commands, "```",
        "", "## Limits",
        "Research and demonstration use only: not for driving or any safety-critical decision. Trained at low "
        "resolution (240x180): thin street furniture (poles, signs, fences) and people are weak, and the "
        "simulator draws them simply. CamVid frames come from Cambridge, UK (daylight, bare winter trees): other "
        "cities, seasons, night and weather are untested. " + fit, ""])


if __name__ == "__main__":
    raise SystemExit(main())
