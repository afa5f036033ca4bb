"""The trainer: it learns, caches frozen features, resumes exactly, stops early, refuses NaN."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from suite.core import SuiteError
from suite.core.features import clear_memory_cache, extract_features
from suite.core.trainer import CHECKPOINT, Trainer, TrainConfig, class_weight_vector, lr_factor


def _config(**kw):
    base = dict(epochs=3, batch_size=8, lr=1e-2, progress=False, augment="none", seed=0)
    return TrainConfig(**{**base, **kw})


def _count_backbone_calls(model):
    calls = {"n": 0}
    model.backbone.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    return calls


def test_feature_extraction_learns_a_separable_task(small_model, photo_data):
    trainer = Trainer(small_model, _config(epochs=8, strategy="feature_extraction"))
    state = trainer.fit(photo_data, photo_data)
    losses = [h["train_loss"] for h in state.history]
    assert losses[-1] < 0.5 * losses[0]
    assert state.history[-1]["val_accuracy"] >= 0.9


def test_frozen_features_are_computed_once_and_cached_on_disk(small_model, photo_data, tmp_path):
    clear_memory_cache()
    calls = _count_backbone_calls(small_model)
    Trainer(small_model, _config(epochs=4, strategy="feature_extraction", cache_dir=str(tmp_path),
                                 eval_batch_size=10)).fit(photo_data)
    assert calls["n"] == 3  # one pass over 30 items in batches of 10, not one per epoch
    assert len(list(tmp_path.glob("features-*/*.safetensors"))) == 1
    clear_memory_cache()
    feats = extract_features(small_model, photo_data, cache_dir=tmp_path)
    assert calls["n"] == 3 and feats.shape == (30, small_model.num_features)  # read from disk
    shuffled = photo_data.subset([29, 3, 17, 8])  # another split of the same items: cached per item
    assert torch.equal(extract_features(small_model, shuffled, cache_dir=tmp_path), feats[[29, 3, 17, 8]])
    assert calls["n"] == 3
    small_model.backbone.conv_stem.weight.data.mul_(1.01)  # other weights: the cache must not be reused
    extract_features(small_model, photo_data, batch_size=30, cache_dir=tmp_path)
    assert calls["n"] == 4


def test_resume_ends_where_an_uninterrupted_run_ends(small_model, photo_data, tmp_path):
    import copy

    cfg = _config(epochs=4, strategy="partial", augment="light", lr=3e-3)
    full = copy.deepcopy(small_model)
    Trainer(full, cfg, output_dir=tmp_path / "a").fit(photo_data, photo_data)

    def crash_after_epoch_2(event, state):
        if event == "epoch_end" and state.epoch == 1:
            raise KeyboardInterrupt

    first = copy.deepcopy(small_model)
    with pytest.raises(KeyboardInterrupt):
        Trainer(first, cfg, output_dir=tmp_path / "b", callbacks=[crash_after_epoch_2]).fit(photo_data, photo_data)
    resumed = Trainer(copy.deepcopy(small_model), cfg, output_dir=tmp_path / "b")
    state = resumed.fit(photo_data, photo_data, resume=True)
    assert [h["epoch"] for h in state.history] == [0, 1, 2, 3]
    a, b = full.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    assert not list((tmp_path / "b").glob("*.tmp"))  # atomic writes leave no temporaries


def test_resume_refuses_changed_settings(small_model, photo_data, tmp_path):
    Trainer(small_model, _config(epochs=1), output_dir=tmp_path).fit(photo_data)
    with pytest.raises(SuiteError, match="cannot resume: epochs"):
        Trainer(small_model, _config(epochs=5), output_dir=tmp_path).fit(photo_data, resume=True)


def test_early_stopping_and_best_checkpoint(small_model, photo_data, tmp_path):
    cfg = _config(epochs=10, lr=1e-12, patience=2, monitor="val_accuracy", strategy="feature_extraction")
    state = Trainer(small_model, cfg, output_dir=tmp_path).fit(photo_data, photo_data)
    assert len(state.history) == 3 and state.should_stop  # no improvement after epoch 0
    assert state.best_epoch == 0
    assert (tmp_path / "best.safetensors").is_file()
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in logged] == [0, 1, 2]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(small_model, photo_data, tmp_path):
    trainer = Trainer(small_model, _config(epochs=3, strategy="feature_extraction"), output_dir=tmp_path)
    real = trainer._loss_fn

    def poisoned(labels):
        loss = real(labels)

        class Poison(torch.nn.Module):
            def forward(self, logits, y):
                value = loss(logits, y)
                return value * float("nan") if trainer.state.epoch >= 1 else value

        return Poison()

    trainer._loss_fn = poisoned
    with pytest.raises(SuiteError, match="non-finite loss.*epoch 2.*checkpoint is kept"):
        trainer.fit(photo_data)
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert json.loads(saved["trainer"])["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())


def test_class_weights_and_balanced_sampler(small_model, photo_data):
    w = class_weight_vector(np.array([0] * 10 + [1] * 30), 2)
    assert torch.allclose(w, torch.tensor([2.0, 2 / 3]))
    imbalanced = photo_data.subset(list(range(10)) + list(range(10, 12)) + list(range(20, 22)))
    trainer = Trainer(small_model, _config(balanced_sampler=True, batch_size=1000))
    drawn = []
    for epoch in range(20):
        _, y, _ = next(iter(trainer._epoch_loader(imbalanced, torch.zeros(len(imbalanced), 4), epoch)))
        drawn.extend(y.tolist())
    share = np.bincount(drawn, minlength=3) / len(drawn)
    assert np.all(np.abs(share - 1 / 3) < 0.08)  # balanced although class 0 has 5x the items


@pytest.mark.parametrize("strategy", ["feature_extraction", "full"])
def test_soft_labels_are_the_training_targets(small_model, photo_data, strategy):
    """With soft labels that name the next class, the model learns them, not the hard labels."""
    from suite.core.data import TorchDataset

    shifted = (photo_data.labels + 1) % 3
    data = photo_data.subset(np.arange(len(photo_data)))
    data.soft_labels = np.eye(3, dtype=np.float32)[shifted] * 0.9 + 0.1 / 3
    assert torch.allclose(TorchDataset(data, lambda x: 0)[4][1], torch.as_tensor(data.soft_labels[4]))
    trainer = Trainer(small_model, _config(epochs=8 if strategy == "feature_extraction" else 4,
                                           strategy=strategy, lr=1e-2 if strategy == "feature_extraction" else 1e-3))
    trainer.fit(data)
    from suite.core.features import predict_logits

    predicted = predict_logits(trainer.model, photo_data).argmax(-1).numpy()
    assert (predicted == shifted).mean() >= 0.9


@pytest.mark.parametrize("schedule,step,total,warmup,expected", [
    ("cosine", 0, 100, 10, 0.1),
    ("cosine", 9, 100, 10, 1.0),
    ("cosine", 55, 100, 10, 0.5),
    ("cosine", 100, 100, 10, 0.0),
    ("linear", 9, 100, 10, 1.0),
    ("linear", 55, 100, 10, 0.5),
    ("linear", 100, 100, 10, 0.0),
    ("constant", 80, 100, 10, 1.0),
    ("onecycle", 0, 100, 0, 1 / 25 + (1 - 1 / 25) / 30),
])
def test_learning_rate_schedules(schedule, step, total, warmup, expected):
    assert lr_factor(step, total, warmup, schedule) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kw,words", [
    ({"schedule": "step"}, "schedule must be one of"),
    ({"monitor": "f1"}, "monitor must be"),
    ({"epochs": 0}, "epochs"),
])
def test_bad_config_is_refused(kw, words):
    with pytest.raises(SuiteError, match=words):
        TrainConfig(**kw)


def test_without_validation_data_the_last_epoch_is_kept(small_model, photo_data, tmp_path):
    cfg = _config(epochs=2, strategy="partial")
    trainer = Trainer(small_model, cfg, output_dir=tmp_path)
    state = trainer.fit(photo_data)
    assert state.best_epoch == -1 and not (tmp_path / "best.safetensors").exists()
    last = torch.load(tmp_path / CHECKPOINT, weights_only=True)["model"]
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, last[k]), k


def test_cached_features_say_that_augmentation_is_not_applied(small_model, photo_data):
    with pytest.warns(UserWarning, match="augment='light' is not applied"):
        Trainer(small_model, _config(epochs=1, augment="light", strategy="feature_extraction")).fit(photo_data)


def test_channels_last_trains_the_same_model_and_hands_back_the_standard_layout(small_model, photo_data):
    import copy

    cfg = _config(epochs=2, strategy="partial", lr=3e-3)
    layouts = []
    seen = lambda event, state: layouts.append(  # noqa: E731
        trainer.model.backbone.conv_stem.weight.is_contiguous(memory_format=torch.channels_last))
    trainer = Trainer(copy.deepcopy(small_model), cfg, callbacks=[seen])
    fast = trainer.fit(photo_data, photo_data)
    plain_trainer = Trainer(copy.deepcopy(small_model), dataclasses.replace(cfg, channels_last=False))
    plain = plain_trainer.fit(photo_data, photo_data)
    assert layouts and all(layouts)  # trained in channels-last layout
    weights = dict(trainer.model.named_parameters())
    assert all(p.is_contiguous() for p in weights.values())  # handed back in the standard layout
    start = dict(small_model.named_parameters())
    moved = differ = 0.0
    for name, p in plain_trainer.model.named_parameters():
        moved += float((p - start[name]).detach().pow(2).sum())
        differ += float((p - weights[name]).detach().pow(2).sum())
    # rounding apart (Adam amplifies it, and kernels differ with threads): the same training in another layout
    assert differ ** 0.5 < 0.25 * moved ** 0.5, (differ ** 0.5, moved ** 0.5)
    for a, b in zip(fast.history, plain.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=0.05), (fast.history, plain.history)
        assert abs(a["val_accuracy"] - b["val_accuracy"]) <= 0.1, (fast.history, plain.history)
