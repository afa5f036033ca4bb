"""Finance training recipes: FinBERT's (discriminative LRs + gradual unfreezing + warm-up), LoRA,
and a linear probe, all at FinBERT's maximum sequence length of 64 tokens."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from suite.core.errors import SuiteError
from suite.core.trainer import TrainConfig

DEFAULT_BACKBONE = "embedded:minilm_l6"
MAX_LENGTH = 64

RECIPES: dict[str, dict] = {
    # FinBERT (Araci 2019) used lr 2e-5 for BERT-base; a 6-layer, 384-wide encoder wants a larger one.
    "finbert": dict(strategy="finbert", strategy_options={"lr_decay": 0.85, "groups_per_epoch": 3},
                    lr=1e-4, warmup=0.2, epochs=4, batch_size=32, weight_decay=0.01),
    # Adapters on the attention projections: after merging, only those matrices differ from the base.
    "lora": dict(strategy="lora", strategy_options={"r": 16, "alpha": 32, "dropout": 0.05,
                                                    "target_modules": ("query", "key", "value")},
                 lr=1e-3, warmup=0.1, epochs=5, batch_size=32, weight_decay=0.01),
    # The same adapters on every linear layer of the encoder (attention output and feed-forward too).
    "lora_all": dict(strategy="lora", strategy_options={"r": 16, "alpha": 32, "dropout": 0.05,
                                                        "target_modules": ("query", "key", "value", "dense")},
                     lr=1e-3, warmup=0.1, epochs=5, batch_size=32, weight_decay=0.01),
    "probe": dict(strategy="feature_extraction", lr=3e-3, warmup=0.05, epochs=40, batch_size=64,
                  weight_decay=1e-4),
}


def recipe_config(name: str = "lora", **overrides) -> TrainConfig:
    """The ``TrainConfig`` of a named finance recipe, with ``overrides`` applied."""
    if name not in RECIPES:
        raise SuiteError(f"unknown finance recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return TrainConfig(**{"progress": False, **RECIPES[name], **overrides})


def sentiment_model(backbone: str = DEFAULT_BACKBONE, labels=None, max_length: int = MAX_LENGTH):
    """A text model for ``labels`` (default negative/neutral/positive) truncating at ``max_length``.

    A Hugging Face sequence classifier whose classes match ``labels`` by name keeps its trained
    classifier (see :func:`suite.core.sources.hf_source.text_backbone`).
    """
    from suite.core import create_model

    from .data import SENTIMENTS

    labels = list(labels or SENTIMENTS)
    model = create_model(backbone, num_classes=len(labels))
    from .classifier import align_pretrained_head

    align_pretrained_head(model, labels)
    model.preprocess = dataclasses.replace(model.preprocess, max_length=max_length)
    return model


def train_sentiment(train, val=None, backbone: str = DEFAULT_BACKBONE, recipe: str = "lora",
                    max_length: int = MAX_LENGTH, output_dir: str | os.PathLike | None = None,
                    callbacks=None, name: str = "finance-sentiment", pretrain: dict | None = None, **overrides):
    """Fine-tune ``backbone`` on labelled texts with a finance recipe; returns ``(Solution, TrainerState)``.

    ``pretrain``: first continue the encoder's masked-language-model pretraining on unlabelled
    in-domain texts, ``{"texts": [...], "epochs": ..., "lr": ..., "lora_rank": ...}`` (see
    :func:`suite.core.text_pretrain.continue_pretraining`); without ``texts``, the training texts.
    """
    from suite.core import Solution
    from suite.core.trainer import Trainer, seed_everything

    config = recipe_config(recipe, **overrides)
    seed_everything(config.seed)
    model = sentiment_model(backbone, train.classes, max_length)
    pretrained = None
    if pretrain is not None:
        from suite.core.text_pretrain import continue_pretraining

        options = {"seed": config.seed, **pretrain}
        texts = options.pop("texts", None) or list(train.items)
        pretrained = continue_pretraining(model, texts, **options)
        seed_everything(config.seed)
    trainer = Trainer(model, config, output_dir=output_dir, callbacks=callbacks)
    state = trainer.fit(train, val)
    recipe_info = {"name": recipe, "backbone": backbone, "max_length": max_length,
                   **dataclasses.asdict(config)}
    if pretrained:
        recipe_info["continued_pretraining"] = pretrained
    solution = Solution(trainer.model, train.classes, recipe=recipe_info, name=name,
                        description=f"{backbone} fine-tuned for financial sentiment with the {recipe} recipe "
                                    f"on {train.source}.")
    return solution, state


def save_compact(solution, path: str | os.PathLike, half: bool = True) -> Path:
    """``solution.save(path)`` with the stored tensors (only those differing from the base backbone)
    as float16, halving the size (loading casts them back to float32); after LoRA, each merged
    matrix's change is stored as its two rank-r factors."""
    recipe = solution.recipe or {}
    rank = (recipe.get("strategy_options") or {}).get("r") if recipe.get("strategy") == "lora" else None
    pretrain_rank = (recipe.get("continued_pretraining") or {}).get("lora_rank")
    if pretrain_rank:  # adapters of the masked-language-model pretraining add their rank
        rank = rank + pretrain_rank if rank else None
    return solution.save(path, storage_dtype="float16" if half else "float32", low_rank=rank)
