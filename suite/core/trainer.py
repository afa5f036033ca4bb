"""The trainer: one loop on ``accelerate`` for every strategy, vertical and launcher.

Device placement, mixed precision and gradient accumulation come from ``accelerate``; the same code
runs on one CPU or under ``accelerate launch``/``torchrun`` on several GPUs or nodes. Checkpoints
are written atomically after every epoch, so ``resume=True`` continues an interrupted run and ends
where an uninterrupted run of the same seed ends.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .errors import SuiteError, TrainingError
from .features import extract_features, input_loader, predict_logits, to_device
from .freezing import unfreeze
from .strategies import Strategy, create_strategy

SCHEDULES = ("cosine", "linear", "onecycle", "constant")
CHECKPOINT = "checkpoint.pt"
BEST = "best.safetensors"


@dataclass
class TrainConfig:
    """Hyper-parameters of one run; every field is also a ``suite train`` option."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "cosine"
    warmup: float = 0.1  # fraction of all optimizer steps
    strategy: str = "feature_extraction"
    strategy_options: dict = field(default_factory=dict)
    augment: str | None = None  # preset; None = "light" when the backbone trains, "none" on cached features
    monitor: str = "val_loss"  # or val_accuracy
    patience: int | None = None  # early stopping after this many epochs without improvement
    class_weights: bool = False
    balanced_sampler: bool = False
    label_smoothing: float = 0.0
    grad_accum: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "no"  # "fp16"/"bf16" on GPU
    channels_last: bool = True  # 2D convolutional models train in channels-last memory format (faster)
    seed: int = 0
    num_workers: int = 0
    eval_batch_size: int = 64
    cache_dir: str | None = None
    adapt: str | None = None  # domain adaptation method (needs target data), see suite.core.adaptation
    adapt_options: dict = field(default_factory=dict)
    progress: bool = True

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise SuiteError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.monitor not in ("val_loss", "val_accuracy"):
            raise SuiteError(f"monitor must be val_loss or val_accuracy, got {self.monitor!r}")
        if self.optimizer not in ("adamw", "sgd"):
            raise SuiteError(f"optimizer must be adamw or sgd, got {self.optimizer!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise SuiteError("epochs and batch_size must be >= 1 and lr > 0")


@dataclass
class TrainerState:
    """What callbacks see; a callback stops training by setting ``should_stop``."""

    epoch: int = 0
    step: int = 0
    total_steps: int = 0
    history: list[dict] = field(default_factory=list)
    best_metric: float | None = None
    best_epoch: int = -1
    should_stop: bool = False
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_factor(step: int, total: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the base learning rate at ``step``: linear warm-up, then the schedule."""
    if schedule == "onecycle":
        warmup_steps = max(warmup_steps, int(0.3 * total))
    if step < warmup_steps:
        start = 1 / 25 if schedule == "onecycle" else 0.0
        return start + (1 - start) * (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total - warmup_steps))
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1 + math.cos(math.pi * progress))


def class_weight_vector(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``N / (K * n_c)`` (multi-label: negatives/positives per label)."""
    if labels.ndim == 2:
        pos = (labels == 1).sum(0).astype(np.float64)
        neg = (labels == 0).sum(0).astype(np.float64)
        return torch.tensor(neg / np.maximum(pos, 1), dtype=torch.float32)
    counts = np.bincount(labels[labels >= 0], minlength=num_classes).astype(np.float64)
    return torch.tensor(counts.sum() / (num_classes * np.maximum(counts, 1)), dtype=torch.float32)


def _cycle(loader):
    """Batches of ``loader`` forever (a target set smaller than the source set is reused)."""
    while True:
        yield from loader


def _atomic_torch_save(obj, path: Path) -> None:
    """Write to a temporary file, flush it to disk, then rename: a crash leaves the old file or the new."""
    from .weights import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporaries of writes a killed process never finished (``.checkpoint.pt.*.tmp`` ...)."""
    for name in (CHECKPOINT, BEST):
        for tmp in folder.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


class Trainer:
    """Fine-tunes a :class:`~suite.core.model.TransferModel` on :class:`~suite.core.data.LabeledData`.

    ``fit`` returns the :class:`TrainerState`; afterwards ``model`` holds the best weights (by
    ``config.monitor`` on the validation data, or the last epoch without validation data).
    """

    def __init__(self, model, config: TrainConfig | None = None, output_dir: str | os.PathLike | None = None,
                 callbacks: list[Callable[[str, TrainerState], None]] | None = None):
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        self.config = config or TrainConfig()
        self.model = model
        self.output_dir = Path(output_dir) if output_dir else None
        self.callbacks = list(callbacks or [])
        self.strategy: Strategy = create_strategy(self.config.strategy, **self.config.strategy_options)
        from .adaptation import create_adaptation

        self.adaptation = (create_adaptation(self.config.adapt, **self.config.adapt_options)
                           if self.config.adapt else None)
        self.accelerator = Accelerator(
            cpu=not torch.cuda.is_available(),  # lets torchrun/accelerate launch use gloo on CPU-only machines
            gradient_accumulation_steps=self.config.grad_accum, mixed_precision=self.config.mixed_precision,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        self.state = TrainerState()
        self._wrapped = None  # the model as prepared by accelerate (DDP-wrapped when distributed)

    # --- helpers ------------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def _emit(self, event: str) -> None:
        for cb in self.callbacks:
            cb(event, self.state)

    def _loss_fn(self, train_labels: np.ndarray):
        """Per-sample task loss ``(logits, y) -> (B,)``."""
        cfg, model = self.config, self.model
        weights = class_weight_vector(train_labels, model.num_classes) if cfg.class_weights else None
        if weights is not None:
            weights = weights.to(self.accelerator.device)
        if model.task == "multilabel":
            bce = nn.BCEWithLogitsLoss(pos_weight=weights, reduction="none")
            return lambda logits, y: bce(logits, y).mean(-1)
        return nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg.label_smoothing, reduction="none")

    def _train_transform(self, epoch: int, source: bool = True):
        from .data.augment import augmentation

        pre = self.model.preprocess
        if pre.modality == "volume" and self.config.augment not in (None, "none"):
            from .data.augment import volume_augmentation
            from .features import volume_tensor

            flip_shift = volume_augmentation(self.config.augment, seed=self.config.seed * 7919 + epoch)
            return lambda v: volume_tensor(flip_shift(v), pre.mean, pre.std)
        if pre.modality != "image":
            return None
        aug = augmentation(self.config.augment or "light", size=None, seed=self.config.seed * 7919 + epoch)
        style = self.adaptation.source_transform() if source and self.adaptation else None
        base = pre.image_transform()
        if style is not None:
            return lambda img: base(aug(style(img)))
        return lambda img: base(aug(img))

    def _sampler(self, labels: np.ndarray, epoch: int):
        if not self.config.balanced_sampler:
            return None
        from torch.utils.data import WeightedRandomSampler

        if labels.ndim == 2:
            raise SuiteError("balanced_sampler needs single-label data; use class_weights for multi-label")
        w = class_weight_vector(labels, self.model.num_classes).numpy()[labels]
        gen = torch.Generator().manual_seed(self.config.seed * 1000 + epoch)
        return WeightedRandomSampler(torch.as_tensor(w, dtype=torch.double), len(labels), generator=gen)

    def _epoch_loader(self, data, features, epoch: int, source: bool = True):
        """Batches ``(x, y, sample_weight)`` for one epoch: cached features or transformed inputs, in a
        seeded order. ``source=False`` gives target batches (no source restyling, no weights)."""
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch + (0 if source else 500))
        sampler = self._sampler(data.labels, epoch) if source else None
        weights = self.adaptation.sample_weights() if source and self.adaptation else None
        weights = torch.ones(len(data)) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        if features is not None:
            from torch.utils.data import DataLoader, TensorDataset

            targets = data.labels if data.soft_labels is None else data.soft_labels
            labels = torch.as_tensor(targets, dtype=torch.float32 if targets.ndim == 2 else torch.int64)
            return DataLoader(TensorDataset(features, labels, weights), batch_size=cfg.batch_size,
                              shuffle=sampler is None, sampler=sampler, generator=gen, drop_last=not source)
        return input_loader(self.model, data, cfg.batch_size, transform=self._train_transform(epoch, source),
                            shuffle=True, sampler=sampler, num_workers=cfg.num_workers, generator=gen,
                            sample_weights=weights, drop_last=not source)

    # --- evaluation ---------------------------------------------------------------------------
    def validation_metrics(self, data, features=None) -> dict:
        logits = predict_logits(self.model, data, self.config.eval_batch_size, self.config.num_workers, features)
        labels = torch.as_tensor(data.labels)
        if self.model.task == "multilabel":
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.float()).item()
            acc = ((logits > 0).long() == labels).float().mean().item()
        else:
            loss = nn.functional.cross_entropy(logits, labels.long()).item()
            acc = (logits.argmax(-1) == labels).float().mean().item()
        return {"val_loss": loss, "val_accuracy": acc}

    # --- checkpoints --------------------------------------------------------------------------
    def _save_checkpoint(self, optimizer, scheduler) -> None:
        if self.output_dir is None or not self.is_main:
            return
        model = self.model
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(),
                 "adapt": self.adaptation.module.state_dict() if self.adaptation and self.adaptation.module else {},
                 "trainer": json.dumps(asdict(self.state)), "config": json.dumps(asdict(self.config))}
        _atomic_torch_save(state, self.output_dir / CHECKPOINT)

    def _load_checkpoint(self, optimizer, scheduler) -> bool:
        path = self.output_dir / CHECKPOINT if self.output_dir else None
        if path is None or not path.is_file():
            return False
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved_cfg = json.loads(state["config"])
        for key in ("epochs", "batch_size", "lr", "strategy", "seed", "adapt"):
            if saved_cfg.get(key) != getattr(self.config, key):
                raise SuiteError(f"{path}: cannot resume: {key} was {saved_cfg.get(key)!r}, now "
                                 f"{getattr(self.config, key)!r}; use the same settings or a new output dir")
        self.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if self.adaptation is not None and self.adaptation.module is not None:
            self.adaptation.module.load_state_dict(state["adapt"])
        self.state = TrainerState(**json.loads(state["trainer"]))
        if self.is_main:  # epochs logged after this checkpoint are trained again: drop their lines
            lines = "".join(json.dumps(m) + "\n" for m in self.state.history)
            (self.output_dir / "metrics.jsonl").write_text(lines)
        return True

    def _improved(self, metrics: dict) -> bool:
        value = metrics[self.config.monitor]
        best = self.state.best_metric
        better = best is None or (value < best if self.config.monitor == "val_loss" else value > best)
        if better:
            self.state.best_metric = float(value)
        return better

    # --- the loop -----------------------------------------------------------------------------
    def fit(self, train, val=None, resume: bool = False, target=None) -> TrainerState:
        """Train on ``train`` (LabeledData), validate on ``val`` each epoch, keep the best weights.

        With ``config.adapt``, ``target`` is unlabelled data of the domain to adapt to (its labels,
        if any, are never read).
        """
        from .weights import load_state_dict, save_state_dict

        cfg, acc = self.config, self.accelerator
        if len(train) == 0:
            raise SuiteError("no training data")
        if self.adaptation is not None and (target is None or len(target) == 0):
            raise SuiteError(f"adaptation {cfg.adapt!r} needs unlabelled target data (--target-data)")
        if self.adaptation is not None and acc.num_processes > 1 and cfg.adapt == "dann":
            raise SuiteError("dann trains a discriminator that is not synchronised across processes yet; "
                             "run it in one process")
        if self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if self.is_main:
                _remove_stale_temporaries(self.output_dir)
                if not resume:
                    (self.output_dir / "metrics.jsonl").unlink(missing_ok=True)
        seed_everything(cfg.seed)
        self.strategy.prepare(self.model)
        unfreeze(self.model)
        self.model.to(acc.device)
        channels_last = cfg.channels_last and any(p.dim() == 4 for p in self.model.parameters())
        if channels_last:  # before the optimizer exists, so its state takes the same layout
            self.model.to(memory_format=torch.channels_last)
        has_val = val is not None and len(val) > 0
        train_feats = val_feats = target_feats = None
        if self.strategy.cache_features and cfg.augment not in (None, "none") and \
                self.model.preprocess.modality == "image":
            warnings.warn(f"strategy {cfg.strategy!r} trains on cached features of un-augmented images: "
                          f"augment={cfg.augment!r} is not applied (use partial or full to train with it)",
                          stacklevel=2)
        if self.strategy.cache_features:
            train_feats = extract_features(self.model, train, cfg.eval_batch_size, cfg.cache_dir,
                                           acc.device, cfg.num_workers, progress=cfg.progress and self.is_main)
            if val is not None:
                val_feats = extract_features(self.model, val, cfg.eval_batch_size, cfg.cache_dir,
                                             acc.device, cfg.num_workers)
            if self.adaptation is not None and self.adaptation.uses_target_batches:
                target_feats = extract_features(self.model, target, cfg.eval_batch_size, cfg.cache_dir,
                                                acc.device, cfg.num_workers)
        loss_fn = self._loss_fn(train.labels)
        steps_per_epoch = math.ceil(math.ceil(len(train) / cfg.batch_size / acc.num_processes) / cfg.grad_accum)
        self.state.total_steps = total = steps_per_epoch * cfg.epochs
        groups = self.strategy.param_groups(self.model, cfg.lr, cfg.weight_decay)
        if self.adaptation is not None:
            self.adaptation.setup(self, train, target)
            if self.adaptation.module is not None:
                self.adaptation.module.to(acc.device)
                groups.append({"params": list(self.adaptation.module.parameters()), "lr": cfg.lr,
                               "initial_lr": cfg.lr, "weight_decay": cfg.weight_decay, "group": -1})
        optimizer = (torch.optim.AdamW(groups, lr=cfg.lr) if cfg.optimizer == "adamw"
                     else torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True))
        warmup = int(cfg.warmup * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, total, warmup, cfg.schedule))
        self._wrapped, optimizer = acc.prepare(self.model, optimizer)  # DDP-wrapped when distributed
        start_epoch = 0
        if resume and self._load_checkpoint(optimizer, scheduler):
            start_epoch = self.state.epoch + 1
        best_path = self.output_dir / BEST if self.output_dir else None
        best_state = None
        t0 = time.perf_counter() - self.state.seconds
        for epoch in range(start_epoch, cfg.epochs):
            self.state.epoch = epoch
            seed_everything(cfg.seed + 7919 * (epoch + 1))  # each epoch's randomness depends on (seed, epoch) only
            raw = self.model
            self.strategy.on_epoch_start(raw, epoch, optimizer)
            self.strategy.train_mode(raw)
            loader = acc.prepare_data_loader(self._epoch_loader(train, train_feats, epoch))
            target_loader = None
            if self.adaptation is not None and self.adaptation.uses_target_batches:
                target_loader = self._epoch_loader(target, target_feats, epoch, source=False)
            losses = self._train_epoch(loader, loss_fn, optimizer, scheduler, features=train_feats is not None,
                                       target_loader=target_loader)
            metrics = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                       "lr": optimizer.param_groups[0]["lr"],
                       "trainable_groups": len([g for g in raw.param_groups() if any(p.requires_grad for p in g)])}
            if self.adaptation is not None:
                metrics.update({f"adapt_{k}": v for k, v in self.adaptation.stats().items()})
            if has_val:
                metrics.update(self.validation_metrics(val, val_feats))
            self.state.seconds = time.perf_counter() - t0
            metrics["seconds"] = round(self.state.seconds, 2)
            self.state.history.append(metrics)
            if has_val and self._improved(metrics):  # without validation data the last epoch is kept
                self.state.best_epoch = epoch
                best_state = {k: v.detach().clone() for k, v in raw.state_dict().items()}
                if best_path is not None and self.is_main:
                    save_state_dict(best_state, best_path)
            elif has_val and cfg.patience is not None and epoch - self.state.best_epoch >= cfg.patience:
                self.state.should_stop = True
            self._log(metrics)
            self._save_checkpoint(optimizer, scheduler)
            self._emit("epoch_end")
            if self.state.should_stop:
                break
        acc.wait_for_everyone()
        raw = self.model
        if best_state is None and best_path is not None and best_path.is_file():
            best_state = load_state_dict(best_path)  # resumed after the best epoch was written
        if best_state is not None:
            raw.load_state_dict(best_state)
        if channels_last:
            raw.to(memory_format=torch.contiguous_format)
        self.strategy.finalize(raw)
        self.model = raw.eval()
        if self.adaptation is not None:
            self.adaptation.finalize(self, target)
        self._wrapped = None
        return self.state

    def _adaptation_step(self, x_s, y, w, x_t, loss_fn, features: bool) -> torch.Tensor:
        """Task loss on the source batch plus the adaptation loss on source and target features."""
        x_t = to_device(x_t, self.accelerator.device)
        if isinstance(x_s, dict):  # token batches differ in length: two passes
            z_s, logits_s = self._wrapped(x_s, features=features, with_embedding=True)
            z_t, logits_t = self._wrapped(x_t, features=features, with_embedding=True)
        else:  # one pass over both domains, so BatchNorm sees them together
            z, logits = self._wrapped(torch.cat([x_s, x_t]), features=features, with_embedding=True)
            n = len(x_s)
            z_s, z_t, logits_s, logits_t = z[:n], z[n:], logits[:n], logits[n:]
        loss = (loss_fn(logits_s.float(), y) * w).sum() / w.sum()
        self.adaptation.progress = self.state.step / max(1, self.state.total_steps)
        extra = self.adaptation.loss(z_s, z_t, logits_s, logits_t)
        return loss if extra is None else loss + self.adaptation.weight * extra

    def _train_epoch(self, loader, loss_fn, optimizer, scheduler, features: bool,
                     target_loader=None) -> list[float]:
        cfg, acc = self.config, self.accelerator
        losses = []
        iterator = loader
        if cfg.progress and self.is_main:
            from tqdm.auto import tqdm

            iterator = tqdm(loader, desc=f"epoch {self.state.epoch + 1}/{cfg.epochs}", leave=False)
        targets = _cycle(target_loader) if target_loader is not None else None
        for x, y, w in iterator:
            with acc.accumulate(self._wrapped):
                if targets is None:
                    logits = self._wrapped(x, features=features)
                    loss = (loss_fn(logits.float(), y) * w).sum() / w.sum()
                else:
                    loss = self._adaptation_step(x, y, w, next(targets)[0], loss_fn, features)
                if not torch.isfinite(loss):
                    last = self.output_dir / CHECKPOINT if self.output_dir else None
                    raise TrainingError(f"non-finite loss ({loss.item()}) at epoch {self.state.epoch + 1}, step "
                                     f"{self.state.step}; stopped. Lower the learning rate or check the data. "
                                     + (f"The last good checkpoint is kept at {last}." if last and last.is_file()
                                        else "No checkpoint was written yet."))
                acc.backward(loss)
                if cfg.max_grad_norm and acc.sync_gradients:
                    acc.clip_grad_norm_(self._wrapped.parameters(), cfg.max_grad_norm)
                optimizer.step()
                if acc.sync_gradients:
                    scheduler.step()
                    self.state.step += 1
                optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            self._emit("batch_end")
        return losses

    def _log(self, metrics: dict) -> None:
        if not self.is_main:
            return
        if self.output_dir is not None:
            with open(self.output_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(metrics) + "\n")
        if self.config.progress:
            shown = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
            print(shown, flush=True)
