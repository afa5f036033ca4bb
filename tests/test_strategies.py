"""Strategies: which groups train at each epoch, with which learning rates, and BatchNorm policy."""

from __future__ import annotations

import pytest
import torch

from suite.core import SuiteError, create_model
from suite.core.freezing import layerwise_lrs, trainable_groups
from suite.core.strategies import create_strategy, list_strategies


def _optimizer(strategy, model, lr=1e-3):
    return torch.optim.AdamW(strategy.param_groups(model, lr, 0.0), lr=lr)


@pytest.mark.parametrize("name,options,epoch,expected", [
    # expected: number of trailing groups trained (None = all)
    ("feature_extraction", {}, 0, 1),
    ("feature_extraction", {}, 5, 1),
    ("partial", {"n_groups": 2}, 0, 3),
    ("partial", {"n_groups": 5}, 3, 6),
    ("full", {}, 0, None),
    ("discriminative", {}, 0, None),
    ("gradual_unfreezing", {}, 0, 1),
    ("gradual_unfreezing", {}, 1, 2),
    ("gradual_unfreezing", {"groups_per_epoch": 2}, 2, 5),
    ("lp_ft", {"probe_epochs": 2}, 1, 1),
    ("lp_ft", {"probe_epochs": 2}, 2, None),
])
def test_trainable_groups_per_epoch(small_model, name, options, epoch, expected):
    strategy = create_strategy(name, **options)
    opt = _optimizer(strategy, small_model)
    for e in range(epoch + 1):
        strategy.on_epoch_start(small_model, e, opt)
    n = len(small_model.param_groups())
    want = list(range(n)) if expected is None else list(range(n - expected, n))
    assert trainable_groups(small_model) == want


def test_discriminative_learning_rates_decay_towards_the_input(small_model):
    strategy = create_strategy("discriminative", lr_decay=0.5)
    groups = strategy.param_groups(small_model, 1e-2, 0.01)
    by_group = {g["group"]: g["lr"] for g in groups}
    n = len(small_model.param_groups())
    assert by_group[n - 1] == pytest.approx(1e-2)
    assert by_group[n - 2] == pytest.approx(5e-3)
    assert by_group[0] == pytest.approx(1e-2 * 0.5 ** (n - 1))
    assert layerwise_lrs(3, 1.0, 0.5) == [0.25, 0.5, 1.0]
    assert all(g["weight_decay"] == 0 for g in groups if all(p.ndim <= 1 for p in g["params"]))


def test_lp_ft_lowers_the_learning_rate_when_fine_tuning_starts(small_model):
    strategy = create_strategy("lp_ft", probe_epochs=1, ft_lr_scale=0.1)
    opt = _optimizer(strategy, small_model, lr=1e-2)
    strategy.on_epoch_start(small_model, 0, opt)
    assert opt.param_groups[-1]["lr"] == pytest.approx(1e-2)
    strategy.on_epoch_start(small_model, 1, opt)
    assert opt.param_groups[-1]["lr"] == pytest.approx(1e-3)


def test_frozen_batchnorm_keeps_its_statistics(small_model):
    strategy = create_strategy("partial", n_groups=1, bn="frozen")
    strategy.on_epoch_start(small_model, 0, None)
    strategy.train_mode(small_model)
    stem_bn = small_model.backbone.bn1
    top_bn = small_model.backbone.bn2  # in the last backbone group: trained
    before = stem_bn.running_mean.clone()
    small_model(torch.randn(4, 3, 64, 64) * 3 + 1)
    assert not stem_bn.training and torch.equal(stem_bn.running_mean, before)
    assert top_bn.training
    create_strategy("partial", n_groups=1, bn="train").train_mode(small_model)
    small_model(torch.randn(4, 3, 64, 64) * 3 + 1)
    assert not torch.equal(stem_bn.running_mean, before)


def test_lora_trains_adapters_only_and_merges_back():
    model = create_model("embedded:minilm_l6", num_classes=2)
    names_before = set(model.state_dict())
    strategy = create_strategy("lora", r=4)
    strategy.prepare(model)
    strategy.on_epoch_start(model, 0, None)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    assert sum(p.numel() for n, p in model.named_parameters() if p.requires_grad) < 0.02 * sum(
        p.numel() for p in model.parameters())
    groups = model.group_names()
    assert sorted(n for g in groups for n in g) == sorted(n for n, _ in model.named_parameters())
    with torch.no_grad():  # pretend training moved the adapters
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.add_(0.01)
    model.eval()  # no adapter dropout
    batch = dict(model.tokenizer(["Profit rose."], return_tensors="pt"))
    with torch.no_grad():
        wrapped = model(batch)
    strategy.finalize(model)
    assert set(model.state_dict()) == names_before
    with torch.no_grad():
        assert torch.allclose(model(batch), wrapped, atol=1e-4)


@pytest.mark.parametrize("name,options,words", [
    ("nope", {}, ["unknown strategy", "feature_extraction", "lora"]),
    ("partial", {"layers": 3}, ["valid options", "n_groups"]),
    ("full", {"bn": "sometimes"}, ["bn must be one of"]),
])
def test_bad_strategies_say_what_is_valid(name, options, words):
    with pytest.raises(SuiteError) as info:
        create_strategy(name, **options)
    for word in words:
        assert word in str(info.value)


def test_lora_refuses_cnns(small_model):
    with pytest.raises(SuiteError, match="transformer"):
        create_strategy("lora").prepare(small_model)


def test_every_strategy_is_listed():
    assert set(list_strategies()) >= {"feature_extraction", "partial", "full", "discriminative",
                                      "gradual_unfreezing", "lp_ft", "lora"}
