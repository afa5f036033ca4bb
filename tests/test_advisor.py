"""The transfer advisor: rules as a table, probes on synthetic features, the budgeted search, advise and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from suite.core.advisor import adaptation_advice, advise, recommend
from suite.core.advisor._probe import domain_gap, linear_probe
from suite.core.advisor._recipes import candidate, estimate_seconds


def _profile(per_class: int, classes: int = 3, modality: str = "image") -> dict:
    return {"min_per_class": per_class, "classes": classes, "labelled": per_class * classes, "imbalance": 1.0,
            "modality": modality}


def _fit(probe: float | None) -> dict:
    return {"backbone": "b", "probe": None if probe is None else {"balanced_accuracy": probe}}


@pytest.mark.parametrize("per_class, probe, raw, expected", [
    (500, 0.97, 0.50, "feature_extraction"),  # already separated, whatever the size
    (30, 0.90, 0.60, "feature_extraction"),   # similar domain, good features, little data
    (300, 0.90, 0.60, "partial"),             # similar domain, good features, plenty of data
    (30, 0.70, 0.50, "full"),                 # similar domain but much left to win
    (10, 0.70, 0.75, "feature_extraction"),   # different domain, too little data to move the backbone
    (50, 0.88, 0.90, "feature_extraction"),   # different domain, too few to re-learn the features
    (150, 0.88, 0.90, "partial"),             # different domain, a few hundred per class: the top re-learns
    (1500, 0.88, 0.90, "full"),               # different domain with plenty of data: every layer adapts
    (300, None, None, "partial"),             # no probe: size alone
])
def test_recommend_rules(per_class, probe, raw, expected):
    strategy, reasons = recommend(_profile(per_class), _fit(probe),
                                  None if raw is None else {"balanced_accuracy": raw, "representation": "pixels"})
    assert strategy == expected
    assert reasons and all(isinstance(r, str) and r for r in reasons)


def test_far_domain_partial_fine_tuning_gets_the_lower_learning_rate():
    from suite.core.advisor.advice import FAR_PARTIAL_LR, recommend_config

    pixels = {"balanced_accuracy": 0.90, "representation": "pixels"}
    far, _ = recommend_config(_profile(150), _fit(0.88), pixels)
    near, _ = recommend_config(_profile(300), _fit(0.90), {"balanced_accuracy": 0.60, "representation": "pixels"})
    assert (far["strategy"], far["lr"]) == ("partial", FAR_PARTIAL_LR)
    assert near["strategy"] == "partial" and near["lr"] != FAR_PARTIAL_LR  # the image default elsewhere


@pytest.mark.parametrize("per_class, probe, expected", [
    (30, 0.60, "partial"),    # few sentences per class: the top layers
    (300, 0.60, "full"),      # plenty: every layer
    (30, 0.97, "feature_extraction"),
])
def test_text_rules(per_class, probe, expected):
    strategy, _ = recommend(_profile(per_class, modality="text"), _fit(probe),
                            {"balanced_accuracy": 0.4, "representation": "TF-IDF"})
    assert strategy == expected


def test_adaptation_advice_needs_a_large_domain_gap():
    far, _ = adaptation_advice({"target_gap": {"proxy_a_distance": 1.8, "domain_accuracy": 0.95, "target_items": 50}})
    near, reasons = adaptation_advice({"target_gap": {"proxy_a_distance": 0.2, "domain_accuracy": 0.55,
                                                      "target_items": 50}})
    assert far == {"adapt": "coral", "head_hidden": 256}
    assert near is None and "without adaptation" in reasons[0]
    assert adaptation_advice({}) == (None, [])


def test_linear_probe_and_domain_gap_on_synthetic_features():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    separable = rng.normal(size=(60, 16)) + 4 * np.eye(16)[labels]
    noise = rng.normal(size=(60, 16))
    assert linear_probe(separable, labels)["balanced_accuracy"] > 0.9
    assert linear_probe(noise, labels)["balanced_accuracy"] < 0.7
    assert linear_probe(noise, np.array([0] * 59 + [1])) is None  # a class with one item
    same = domain_gap(rng.normal(size=(80, 8)), rng.normal(size=(80, 8)))
    shifted = domain_gap(rng.normal(size=(80, 8)), rng.normal(size=(80, 8)) + 3)
    assert same["proxy_a_distance"] < 0.6 < 1.5 < shifted["proxy_a_distance"]


def test_cost_estimates_follow_measured_rates():
    rates = {"features": 100.0, "partial": 40.0, "full": 10.0}
    fe, part, full = (estimate_seconds(candidate("image", s), rates, 200) for s in ("feature_extraction", "partial",
                                                                                   "full"))
    assert fe < part < full
    assert estimate_seconds(candidate("image", "full"), None, 200) is None


def test_search_lists_every_candidate_with_time_or_reason(photo_data, tmp_path):
    from suite.core.advisor._search import run_search

    cands = [candidate("image", "feature_extraction", 1e-2), candidate("image", "feature_extraction", 3e-3),
             candidate("image", "full")]
    slow = {"features": 200.0, "partial": 100.0, "full": 0.01}  # full fine-tuning would take hours
    result = run_search("embedded:efficientnet_lite0", photo_data, cands, budget_s=120, rates=slow, image_size=64,
                        cache_dir=tmp_path)
    rows = result["candidates"]
    assert [r["strategy"] for r in rows] == ["feature_extraction", "feature_extraction", "full"]
    trained = [r for r in rows if r["status"] == "trained"]
    assert len(trained) == 2 and all(r["seconds"] > 0 and 0 <= r["accuracy"] <= 1 for r in trained)
    assert rows[2]["status"].startswith("skipped: estimated")
    assert result["winner"] in trained and result["seconds"] >= sum(r["seconds"] for r in trained)
    assert result["train_items"] + result["val_items"] == len(photo_data)


@pytest.fixture(scope="module")
def photo_advice(tmp_path_factory):
    """advise() on three clearly different photos (cat, coffee, rocket crops), with progress."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import _photo_crops
    from suite.core.data import LabeledData

    crops = _photo_crops(10, 48, seed=1)
    data = LabeledData(items=[c for cs in crops.values() for c in cs], labels=np.repeat(np.arange(3), 10),
                       classes=list(crops), modality="image", source="photo crops")
    events = []
    advice = advise(data, image_size=64, cache_dir=tmp_path_factory.mktemp("cache"),
                    progress=lambda message, fraction: events.append((message, fraction)))
    return advice, events


def test_separable_photos_lead_to_feature_extraction(photo_advice):
    advice, events = photo_advice
    rec = advice.recommendation
    assert rec["strategy"] == "feature_extraction" and rec["backbone"] == "embedded:efficientnet_lite0"
    assert advice.backbones[0]["probe"]["balanced_accuracy"] >= 0.95
    assert any("already separate" in r for r in advice.reasons)
    assert rec["expected_s"] > 0 and set(advice.costs["run_s"]) == {"feature_extraction", "partial", "lp_ft", "full"}
    assert advice.costs["run_s"]["feature_extraction"] < advice.costs["run_s"]["full"]
    fractions = [f for _, f in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    d = advice.to_dict()
    assert json.loads(json.dumps(d))["recommendation"]["strategy"] == "feature_extraction"
    md = advice.to_markdown()
    assert "feature extraction" in md and "--strategy feature_extraction" in md


def test_advise_refuses_unlabelled_data():
    from suite.core import SuiteError
    from suite.core.data import LabeledData

    data = LabeledData(items=["a", "b", "c", "d"], labels=np.full(4, -1), classes=[], modality="text", source="t")
    with pytest.raises(SuiteError, match="needs labelled data"):
        advise(data)


def test_cli_writes_the_advice(photo_folder, tmp_path, capsys):
    from suite.cli import main

    out = tmp_path / "advice"
    assert main(["advise", "--data", str(photo_folder), "--out", str(out), "--image-size", "64",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    report = json.loads((out / "advice.json").read_text())
    assert report["profile"]["classes"] == 3 and report["profile"]["min_per_class"] == 12
    assert report["recommendation"]["strategy"] == "feature_extraction"
    assert "# Transfer advice" in (out / "advice.md").read_text()
    assert "Recommended" in capsys.readouterr().out
