"""The strategies the advisor weighs, their short CPU schedules and learning rates, and their cost model."""

from __future__ import annotations

import math

STRATEGIES = ("feature_extraction", "partial", "lp_ft", "full")
RUN_OVERHEAD_S = 3.0  # building the model and the trainer, measured on the 2-core development machine

# (learning rates, first = default; epochs; strategy options) per input family. Short schedules: the
# head on cached features is cheap, so it gets many epochs; anything that trains the backbone gets few.
RECIPES = {
    "image": {
        "feature_extraction": ((1e-2, 3e-3), 30, {}),
        "partial": ((3e-3, 1e-3), 4, {"n_groups": 2}),
        "lp_ft": ((1e-2, 3e-3), 4, {"probe_epochs": 2, "ft_lr_scale": 0.1}),
        "full": ((1e-3, 3e-4), 4, {}),
    },
    "text": {
        "feature_extraction": ((1e-2, 3e-3), 30, {}),
        "partial": ((1e-3, 3e-4), 4, {"n_groups": 2}),
        "lp_ft": ((1e-2, 3e-3), 4, {"probe_epochs": 2, "ft_lr_scale": 0.03}),
        "full": ((3e-4, 1e-4), 4, {}),
    },
}


def family(modality: str) -> str:
    return "text" if modality == "text" else "image"


def candidate(modality: str, strategy: str, lr: float | None = None) -> dict:
    """One trainable configuration: strategy, lr, epochs, options (``TrainConfig`` fields)."""
    lrs, epochs, options = RECIPES[family(modality)][strategy]
    return {"strategy": strategy, "lr": lr if lr is not None else lrs[0], "epochs": epochs,
            "strategy_options": dict(options)}


def grid(modality: str) -> list[dict]:
    """Every strategy at each of its learning rates."""
    return [candidate(modality, s, lr) for s in STRATEGIES for lr in RECIPES[family(modality)][s][0]]


def estimate_seconds(config: dict, rates: dict | None, n_train: int, n_val: int = 0,
                     features_cached: bool = False) -> float | None:
    """Seconds of one run from measured items/s (``rates``: features, partial, full): a fixed set-up
    cost plus epochs x (training pass + validation pass). Data loading and augmentation come on top."""
    if not rates:
        return None
    return RUN_OVERHEAD_S + _compute_seconds(config, rates, n_train, n_val, features_cached)


def _compute_seconds(config: dict, rates: dict, n_train: int, n_val: int, features_cached: bool) -> float:
    fwd, part, full = rates["features"], rates["partial"], rates["full"]
    epochs, strategy = config["epochs"], config["strategy"]
    val = n_val / fwd
    if strategy == "feature_extraction":
        return (0.0 if features_cached else (n_train + n_val) / fwd) + 0.002 * epochs * math.ceil(n_train / 32)
    if strategy == "partial":
        return epochs * (n_train / part + val)
    if strategy == "full":
        return epochs * (n_train / full + val)
    probe = config["strategy_options"].get("probe_epochs", 2)
    return probe * (n_train / fwd + val) + (epochs - probe) * (n_train / full + val)


def per_epoch_seconds(rates: dict | None, n_train: int) -> dict:
    """Seconds per epoch over ``n_train`` items for each way of training (model compute only)."""
    if not rates:
        return {}
    return {"feature_extraction": {"first": n_train / rates["features"], "later": 0.002 * math.ceil(n_train / 32)},
            "partial": n_train / rates["partial"], "full": n_train / rates["full"],
            "lp_ft": {"probe": n_train / rates["features"], "fine-tune": n_train / rates["full"]}}
