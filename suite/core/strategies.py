"""Fine-tuning strategies, each a small registered piece on top of :mod:`suite.core.freezing`.

A strategy decides which groups train at each epoch, their learning rates, and BatchNorm behaviour:

    feature_extraction   backbone frozen, head trained on cached features
    partial              last ``n_groups`` backbone groups + head trained
    full                 everything trained (``lr_decay`` < 1 gives layer-wise decay)
    discriminative       full fine-tuning with layer-wise learning-rate decay (default 0.7)
    gradual_unfreezing   ULMFiT/FinBERT: head first, one more group each epoch, discriminative LRs
    finbert              FinBERT (Araci 2019): gradual unfreezing + discriminative LRs (0.85); use warmup=0.2
    lp_ft                linear probe for ``probe_epochs``, then full fine-tuning at ``ft_lr_scale`` x LR
    lora                 low-rank adapters on the attention of transformer backbones (peft) + head
"""

from __future__ import annotations

from dataclasses import dataclass
from .errors import SuiteError
from .registry import Registry
from .freezing import freeze_backbone, freeze_to, optimizer_groups, set_all_bn_eval, set_frozen_bn_eval, unfreeze

BN_MODES = ("frozen", "train", "eval")


@dataclass
class Strategy:
    """Base class: trains everything at one learning rate. Override the hooks that differ."""

    name = "full"
    cache_features = False  # True: the backbone never trains, so its features can be computed once
    lr_decay: float = 1.0
    bn: str = "frozen"  # BatchNorm in frozen groups: "frozen" keeps stats, "train" updates, "eval" fixes all

    def __post_init__(self):
        if self.bn not in BN_MODES:
            raise SuiteError(f"bn must be one of {BN_MODES}, got {self.bn!r}")

    def prepare(self, model) -> None:
        """Change the model before training (e.g. wrap it with adapters)."""

    def finalize(self, model) -> None:
        """Undo training-only changes before the model is saved (e.g. merge adapters)."""

    def param_groups(self, model, lr: float, weight_decay: float) -> list[dict]:
        """Optimizer parameter groups with their learning rates."""
        return optimizer_groups(model, lr, weight_decay, self.lr_decay)

    def on_epoch_start(self, model, epoch: int, optimizer) -> None:
        """Set which parameters train in this epoch."""
        unfreeze(model)

    def train_mode(self, model) -> None:
        """``model.train()`` with this strategy's BatchNorm policy."""
        model.train()
        if self.bn == "frozen":
            set_frozen_bn_eval(model)
        elif self.bn == "eval":
            set_all_bn_eval(model)

    def describe(self) -> dict:
        return {"name": self.name, "lr_decay": self.lr_decay, "bn": self.bn}


STRATEGIES = Registry("strategy")
register_strategy = STRATEGIES.register


def create_strategy(name: str, **options) -> Strategy:
    """A strategy by name; unknown names or options list the valid ones."""
    return STRATEGIES.create(name, **options)


def list_strategies() -> list[str]:
    return STRATEGIES.names()


register_strategy(Strategy)


@register_strategy
@dataclass
class FeatureExtraction(Strategy):
    name = "feature_extraction"
    cache_features = True

    def on_epoch_start(self, model, epoch, optimizer):
        freeze_backbone(model)


@register_strategy
@dataclass
class Partial(Strategy):
    name = "partial"
    n_groups: int = 2

    def on_epoch_start(self, model, epoch, optimizer):
        freeze_to(model, -(self.n_groups + 1))

    def describe(self):
        return {**super().describe(), "n_groups": self.n_groups}


@register_strategy
@dataclass
class Discriminative(Strategy):
    name = "discriminative"
    lr_decay: float = 0.7


@register_strategy
@dataclass
class GradualUnfreezing(Strategy):
    """ULMFiT: epoch 0 trains the head, each later epoch unfreezes ``groups_per_epoch`` more."""

    name = "gradual_unfreezing"
    lr_decay: float = 0.85
    groups_per_epoch: int = 1

    def on_epoch_start(self, model, epoch, optimizer):
        freeze_to(model, -(1 + epoch * self.groups_per_epoch))

    def describe(self):
        return {**super().describe(), "groups_per_epoch": self.groups_per_epoch}


@register_strategy
@dataclass
class FinBERTRecipe(GradualUnfreezing):
    """FinBERT's recipe (Araci 2019): discriminative learning rates (each group below the head
    ``lr_decay`` times the LR of the one above), gradual unfreezing from the head down
    (``groups_per_epoch`` more each epoch). Its third part, a linear warm-up, is the trainer's
    ``TrainConfig.warmup`` (the paper used 0.2 of the steps)."""

    name = "finbert"
    lr_decay: float = 0.85
    groups_per_epoch: int = 3


@register_strategy
@dataclass
class LinearProbeFineTune(Strategy):
    """LP-FT (Kumar et al. 2022): a linear probe first keeps features from being distorted."""

    name = "lp_ft"
    probe_epochs: int = 2
    ft_lr_scale: float = 0.1

    def on_epoch_start(self, model, epoch, optimizer):
        if epoch < self.probe_epochs:
            freeze_backbone(model)
            return
        unfreeze(model)
        if epoch == self.probe_epochs:
            for group in optimizer.param_groups:
                group["initial_lr"] *= self.ft_lr_scale
                group["lr"] *= self.ft_lr_scale

    def describe(self):
        return {**super().describe(), "probe_epochs": self.probe_epochs, "ft_lr_scale": self.ft_lr_scale}


@register_strategy
@dataclass
class LoRA(Strategy):
    """Low-rank adapters (peft) on a transformer backbone's attention; the backbone stays frozen."""

    name = "lora"
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("query", "value")

    def prepare(self, model) -> None:
        from peft import LoraConfig, get_peft_model

        if model.preprocess.modality != "text":
            raise SuiteError("lora applies to transformer (text) backbones; use partial or full for CNNs")
        names = {n.rsplit(".", 1)[-1] for n, _ in model.backbone.named_modules()}
        targets = [t for t in self.target_modules if t in names]
        if not targets:
            raise SuiteError(f"lora: none of {self.target_modules} found in {model.spec}; pass target_modules")
        config = LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=targets)
        model.backbone.encoder = get_peft_model(model.backbone.encoder, config)
        model.refresh_groups()

    def on_epoch_start(self, model, epoch, optimizer):
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("head.") or "lora_" in name)

    def finalize(self, model) -> None:
        from peft import PeftModel

        if isinstance(model.backbone.encoder, PeftModel):
            model.backbone.encoder = model.backbone.encoder.merge_and_unload()
            model.refresh_groups()

    def describe(self):
        return {**super().describe(), "r": self.r, "alpha": self.alpha}
