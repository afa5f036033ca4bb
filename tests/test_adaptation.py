"""Domain adaptation: each loss measures what it claims, and the trainer combines them with the task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from suite.core import SuiteError
from suite.core.adaptation import (CorrelationAlignmentLoss, DomainAdversarialLoss, DomainDiscriminator,
                                   EntropyLoss, GradientReverseLayer, MultipleKernelMMD, PseudoLabelLoss,
                                   WarmStartGradientReverseLayer, adapt_batchnorm, create_adaptation,
                                   domain_classifier_accuracy, fda_swap, importance_weights, list_adaptations)


def _gaussians(shift: float, n: int = 200, d: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) + shift


def test_gradient_reversal_negates_and_scales():
    x = torch.ones(3, requires_grad=True)
    GradientReverseLayer(0.5)(x).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))


def test_warm_start_grows_from_zero_to_one():
    grl = WarmStartGradientReverseLayer(max_iters=100)
    coeffs = []
    for _ in range(100):
        grl.step()
        coeffs.append(grl.coeff)
    assert coeffs[0] < 0.1 and coeffs[-1] > 0.99
    assert all(a <= b for a, b in zip(coeffs, coeffs[1:]))
    assert int(grl.state_dict()["iter"]) == 100  # saved with checkpoints


@pytest.mark.parametrize("loss", [CorrelationAlignmentLoss(), MultipleKernelMMD()])
def test_alignment_losses_grow_with_the_domain_shift(loss):
    values = [loss(*_gaussians(shift)).item() for shift in (0.0, 0.5, 2.0)]
    assert values[0] < values[1] < values[2]
    assert values[0] < 0.1 * values[2]


def test_dann_trains_the_discriminator_and_fools_it_with_the_features():
    """One step: the discriminator gets better at telling the domains apart, the features worse."""
    torch.manual_seed(0)
    xs, xt = _gaussians(1.5, n=128)
    features = nn.Linear(8, 8)
    dann = DomainAdversarialLoss(DomainDiscriminator(8, 32), GradientReverseLayer(1.0))
    bce = nn.functional.binary_cross_entropy_with_logits
    labels = torch.cat([torch.ones(128), torch.zeros(128)])

    def discriminator_loss():
        dann.eval()
        with torch.no_grad():
            return bce(dann.discriminator(torch.cat([features(xs), features(xt)])), labels).item()

    warm = torch.optim.Adam(dann.parameters(), lr=1e-2)
    for _ in range(50):  # a discriminator that already separates the domains
        warm.zero_grad()
        dann.train()
        dann(features(xs).detach(), features(xt).detach()).backward()
        warm.step()
    start = discriminator_loss()
    dann.train()
    dann(features(xs), features(xt)).backward()
    with torch.no_grad():  # a step on the features only, along the reversed gradient
        for p in features.parameters():
            p -= 0.5 * p.grad
    assert dann.domain_accuracy > 0.9
    assert discriminator_loss() > 1.2 * start  # the features moved to confuse the discriminator


def test_entropy_and_pseudo_labels():
    uniform, confident = torch.zeros(4, 5), torch.eye(5)[:4] * 20
    assert EntropyLoss()(uniform).item() == pytest.approx(np.log(5), rel=1e-5)
    assert EntropyLoss()(confident).item() < 1e-3
    pl = PseudoLabelLoss(threshold=0.9)
    pl(torch.cat([uniform, confident]))
    assert pl.kept == 0.5  # only the 4 confident rows are used
    assert pl(uniform).item() == 0.0


def test_importance_weights_favour_target_like_sources():
    rng = np.random.default_rng(0)
    f_s = np.concatenate([rng.normal(0, 1, (300, 4)), rng.normal(3, 1, (300, 4))])  # half looks like target
    f_t = rng.normal(3, 1, (300, 4))
    w, stats = importance_weights(f_s, f_t, clip=(0.1, 10))
    assert w.mean() == pytest.approx(1.0)
    assert w[300:].mean() > 5 * w[:300].mean()
    assert stats["effective_sample_size"] < 0.75 * len(f_s)
    same, same_stats = importance_weights(rng.normal(0, 1, (300, 4)), rng.normal(0, 1, (300, 4)))
    assert same_stats["ess_share"] > 0.9


def test_proxy_a_distance_bounds():
    rng = np.random.default_rng(0)
    same = domain_classifier_accuracy(rng.normal(0, 1, (300, 4)), rng.normal(0, 1, (300, 4)))
    apart = domain_classifier_accuracy(rng.normal(0, 1, (300, 4)), rng.normal(5, 1, (300, 4)))
    assert same["proxy_a_distance"] < 0.3 and apart["proxy_a_distance"] > 1.9


def test_adabn_takes_the_target_statistics():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    target = [torch.randn(16, 3, 8, 8) * 2 + 5 for _ in range(3)]
    assert adapt_batchnorm(model, target) == 1
    with torch.no_grad():
        acts = torch.cat([model[0](x) for x in target])
    assert torch.allclose(model[1].running_mean, acts.mean((0, 2, 3)), atol=1e-4)
    assert not model.training


def test_fda_takes_the_target_colour_and_keeps_the_content():
    rng = np.random.default_rng(0)
    source = rng.random((32, 32, 3)) * 100
    target = rng.random((32, 32, 3)) * 50 + 150
    out = fda_swap(source, target, beta=0.05)
    assert np.allclose(out.mean((0, 1)), target.mean((0, 1)), atol=1e-6)  # DC amplitude comes from the target
    assert np.corrcoef(out[..., 0].ravel(), source[..., 0].ravel())[0, 1] > 0.8  # the source content stays


def test_every_method_is_registered_and_bad_names_fail():
    assert set(list_adaptations()) == {"dann", "coral", "mmd", "reweight", "adabn", "fda", "self_training", "entropy"}
    with pytest.raises(SuiteError, match="choose one of"):
        create_adaptation("magic")
    with pytest.raises(SuiteError, match="valid options"):
        create_adaptation("dann", strength=2)


@pytest.fixture
def shifted(photo_data):
    """The photo set with inverted colours: a target domain with the same classes."""
    from dataclasses import replace

    return replace(photo_data, items=[255 - x for x in photo_data.items], source="inverted photo crops")


@pytest.mark.parametrize("method", ["dann", "coral", "mmd", "entropy", "self_training", "reweight", "adabn", "fda"])
def test_trainer_runs_each_method(small_model, photo_data, shifted, method):
    from suite.core.trainer import Trainer, TrainConfig

    cfg = TrainConfig(epochs=2, batch_size=10, lr=1e-3, strategy="partial", augment="none", progress=False,
                      adapt=method)
    trainer = Trainer(small_model, cfg)
    state = trainer.fit(photo_data, target=shifted)
    assert len(state.history) == 2 and np.isfinite(state.history[-1]["train_loss"])


def test_adaptation_without_target_data_is_refused(small_model, photo_data):
    from suite.core.trainer import Trainer, TrainConfig

    with pytest.raises(SuiteError, match="needs unlabelled target data"):
        Trainer(small_model, TrainConfig(adapt="coral", progress=False)).fit(photo_data)


def test_finetune_reports_source_only_and_the_domain_gap(photo_data, shifted, tmp_path):
    from suite.core.finetune import finetune
    from suite.core.trainer import TrainConfig

    cfg = TrainConfig(epochs=2, batch_size=10, lr=1e-2, augment="none", progress=False, adapt="coral",
                      strategy="feature_extraction")
    result = finetune(photo_data, config=cfg, output_dir=tmp_path, target_data=shifted, target_eval_data=shifted,
                      val=0.2, test=0.2, image_size=64, head_hidden=32)
    adapt = result.report["adaptation"]
    assert {r["name"] for r in adapt["comparison"]["rows"]} == {"source-only", "coral"}
    for key in ("domain_gap_before", "domain_gap_after"):
        assert 0.0 <= adapt[key]["domain_accuracy"] <= 1.0
    worse = adapt["comparison"]["rows"][1]["value"] < adapt["comparison"]["rows"][0]["value"]
    assert worse == any("negative transfer" in w for w in result.report["warnings"])
    assert "Domain adaptation: coral" in (tmp_path / "report" / "report.md").read_text()
    assert (tmp_path / "source_only" / "best.safetensors").is_file()
