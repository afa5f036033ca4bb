"""Evaluation that tells the truth: exact metrics on hand-made cases, honest CIs, warnings, reports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from suite.core import SuiteError
from suite.core.evaluation import compare_runs, evaluate_predictions, format_comparison_md, write_report

ABC = ["a", "b", "c"]
NEG_POS = ["neg", "pos"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# A binary set small enough to score by hand: 4 positives, 6 negatives.
HAND_Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
HAND_P = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.1, 0.4, 0.05])
HAND_AUROC = 22 / 24  # of 4 x 6 (pos, neg) pairs, only 0.3 < 0.6 and 0.3 < 0.4 rank wrongly


def _onehot_probs(classes, k, confidence=1.0):
    """Probabilities putting ``confidence`` on each given class and the rest evenly on the others."""
    probs = np.full((len(classes), k), (1 - confidence) / (k - 1))
    probs[np.arange(len(classes)), classes] = confidence
    return probs


def _perfect_case(task):
    """y_true and probabilities that rank and classify every sample correctly."""
    if task == "multilabel":
        y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1]] * 5)
        return y, np.where(y == 1, 0.9, 0.1), ABC
    if task == "binary":
        y = np.array([0, 1] * 15)
        return y, _onehot_probs(y, 2, 0.8), NEG_POS
    y = np.array([0, 1, 2] * 10)
    return y, _onehot_probs(y, 3, 0.7), ABC


def _noisy_case(task, n, seed=0):
    """A realistic, imperfect classifier on ``n`` samples."""
    rng = np.random.default_rng(seed)
    if task == "multilabel":
        y = rng.integers(0, 2, size=(n, 3))
        return y, np.clip(0.35 * y + 0.65 * rng.random((n, 3)), 0, 1), ABC
    k = 2 if task == "binary" else 3
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs, NEG_POS if task == "binary" else ABC


def _is_json_clean(obj) -> bool:
    """Only plain Python JSON types all the way down (no numpy scalars, no NaN)."""
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _is_json_clean(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_is_json_clean(v) for v in obj)
    if isinstance(obj, float):
        return np.isfinite(obj)
    return obj is None or type(obj) in (int, str, bool)


# ----------------------------------------------------------------------------------------------
# Exact values
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_perfect_predictions_score_one_with_degenerate_ci(task):
    y, probs, labels = _perfect_case(task)
    result = evaluate_predictions(y, probs, labels, task=task, n_bootstrap=200)
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "auroc"):
        assert result["metrics"][name] == 1.0, name
        assert result["ci95"][name] == [1.0, 1.0], name
    assert _is_json_clean(result)


@pytest.mark.parametrize("threshold,accuracy,sensitivity,specificity,ppv,npv", [
    (0.5, 8 / 10, 3 / 4, 5 / 6, 3 / 4, 5 / 6),    # predicted positive: .9 .8 .7 .6
    (0.35, 7 / 10, 3 / 4, 4 / 6, 3 / 5, 4 / 5),   # adds .4
    (0.25, 8 / 10, 4 / 4, 4 / 6, 4 / 6, 4 / 4),   # adds .4 (FP) and .3 (TP)
    (0.95, 6 / 10, 0 / 4, 6 / 6, None, 6 / 10),   # nothing predicted positive: PPV undefined
])
def test_binary_rates_match_hand_count(threshold, accuracy, sensitivity, specificity, ppv, npv):
    result = evaluate_predictions(HAND_Y, HAND_P, NEG_POS, task="binary", threshold=threshold, n_bootstrap=0)
    metrics = result["metrics"]
    assert result["threshold"] == threshold
    assert metrics["accuracy"] == pytest.approx(accuracy)
    assert metrics["sensitivity"] == pytest.approx(sensitivity)
    assert metrics["specificity"] == pytest.approx(specificity)
    assert metrics["balanced_accuracy"] == pytest.approx((sensitivity + specificity) / 2)
    assert metrics["ppv"] == (None if ppv is None else pytest.approx(ppv))
    assert metrics["npv"] == pytest.approx(npv)
    assert metrics["auroc"] == pytest.approx(HAND_AUROC)  # ranking does not depend on the threshold


def test_binary_accepts_positive_class_column_alone():
    two_columns = evaluate_predictions(HAND_Y, np.column_stack([1 - HAND_P, HAND_P]), NEG_POS, task="binary")
    one_column = evaluate_predictions(HAND_Y, HAND_P, NEG_POS, task="binary")
    assert one_column == two_columns
    assert one_column["confusion_matrix"] == [[5, 1], [1, 3]]  # rows true neg/pos, columns predicted


def test_multiclass_hand_example():
    y = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    result = evaluate_predictions(y, _onehot_probs(predicted, 3, 0.8), ABC, n_bootstrap=0)
    assert result["metrics"]["accuracy"] == pytest.approx(4 / 6)
    assert result["metrics"]["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 2 + 1 / 2) / 3)
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert result["per_class"]["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0,
                                        "f1": pytest.approx(0.8), "support": 2}
    assert result["per_class"]["c"]["precision"] == 1.0
    assert result["threshold"] is None


def test_multilabel_per_label_auroc():
    y = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1]])
    probs = np.array([[0.9, 0.1, 0.2],   # label a ranks perfectly, b exactly backwards,
                      [0.8, 0.9, 0.7],   # c: positives .7 .3 vs negatives .2 .4 -> 3 of 4 pairs
                      [0.2, 0.2, 0.4],
                      [0.1, 0.8, 0.3]])
    result = evaluate_predictions(y, probs, ABC, task="multilabel", n_bootstrap=0)
    assert result["per_label_auroc"] == {"a": 1.0, "b": 0.0, "c": 0.75}
    assert result["metrics"]["auroc"] == pytest.approx((1.0 + 0.0 + 0.75) / 3)
    assert result["metrics"]["accuracy"] == 0.0  # no row has all three labels right
    assert result["confusion_matrix"][0] == [[2, 0], [0, 2]]  # label a: [[tn, fp], [fn, tp]]


def test_multilabel_label_without_positives_is_left_out_of_macro_auroc():
    y = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    probs = np.array([[0.9, 0.3], [0.1, 0.2], [0.7, 0.6], [0.4, 0.1]])
    result = evaluate_predictions(y, probs, ["x", "never"], task="multilabel", n_bootstrap=50)
    assert result["per_label_auroc"] == {"x": 1.0, "never": None}
    assert result["metrics"]["auroc"] == 1.0
    assert any("'never'" in w and "no positive" in w for w in result["warnings"])


# ----------------------------------------------------------------------------------------------
# Calibration
# ----------------------------------------------------------------------------------------------

def test_ece_of_constant_confidence_is_the_gap_to_accuracy():
    y = np.array([0] * 6 + [1] * 4)
    result = evaluate_predictions(y, _onehot_probs(np.zeros(10, int), 3, 0.9), ABC, n_bootstrap=0)
    assert result["metrics"]["accuracy"] == pytest.approx(0.6)
    assert result["metrics"]["ece"] == pytest.approx(0.9 - 0.6)


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("overconfident", [False, True])
def test_ece_small_when_calibrated_large_when_overconfident(task, overconfident):
    rng = np.random.default_rng(3)
    n = 20000
    if task == "multilabel":
        probs = rng.random((n, 3))
        y = (rng.random((n, 3)) < probs).astype(int)
        labels = ABC
    else:
        k = 2 if task == "binary" else 3
        probs = rng.dirichlet(np.ones(k), size=n)
        y = np.array([rng.choice(k, p=row) for row in probs])
        labels = NEG_POS if task == "binary" else ABC
    if overconfident:  # same ranking, probabilities pushed towards 0 and 1
        probs = probs ** 4 / (probs ** 4 + (1 - probs) ** 4) if task == "multilabel" else probs ** 6
    ece = evaluate_predictions(y, probs, labels, task=task, n_bootstrap=0)["metrics"]["ece"]
    assert (ece > 0.1) if overconfident else (ece < 0.02)


# ----------------------------------------------------------------------------------------------
# Bootstrap confidence intervals
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_ci_contains_estimate_and_narrows_with_more_samples(task):
    small = evaluate_predictions(*_noisy_case(task, 80), task=task, n_bootstrap=400)
    large = evaluate_predictions(*_noisy_case(task, 3000), task=task, n_bootstrap=400)
    for name, value in large["metrics"].items():
        for result in (small, large):
            low, high = result["ci95"][name]
            assert low <= result["metrics"][name] <= high, name
        assert np.diff(large["ci95"][name]) < np.diff(small["ci95"][name]), name
        assert large["ci95"][name] != small["ci95"][name]
    assert any("small test set (n=80)" in w for w in small["warnings"])
    assert not any("small test set" in w for w in large["warnings"])


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("seed", [0, 7])
def test_one_resample_scores_like_the_resampled_data(task, seed):
    """A single bootstrap resample equals evaluating the rows drawn with default_rng(seed)."""
    y, probs, labels = _noisy_case(task, 200, seed=seed)
    boot = evaluate_predictions(y, probs, labels, task=task, n_bootstrap=1, seed=seed)
    rows = np.random.default_rng(seed).integers(0, len(y), size=(1, len(y)))[0]
    direct = evaluate_predictions(y[rows], probs[rows], labels, task=task, n_bootstrap=0)
    for name, value in direct["metrics"].items():
        assert boot["ci95"][name] == pytest.approx([value, value]), name


def test_bootstrap_is_reproducible_by_seed():
    case = _noisy_case("multiclass", 150)
    first, again = (evaluate_predictions(*case, n_bootstrap=100, seed=1) for _ in range(2))
    other = evaluate_predictions(*case, n_bootstrap=100, seed=2)
    assert first == again
    assert first["ci95"] != other["ci95"]
    assert first["bootstrap"] == {"resamples": 100, "seed": 1, "method": "percentile",
                                  "skipped": {name: 0 for name in first["metrics"]}}


def test_resamples_missing_a_rare_class_are_skipped_for_auroc():
    y = np.array([1] + [0] * 39)
    probs = np.column_stack([1 - np.linspace(0.9, 0.0, 40), np.linspace(0.9, 0.0, 40)])
    result = evaluate_predictions(y, probs, NEG_POS, task="binary", n_bootstrap=300)
    skipped = result["bootstrap"]["skipped"]["auroc"]
    assert 0.2 * 300 < skipped < 0.5 * 300  # P(the one positive is not drawn) = (39/40)^40 ~ 0.36
    assert result["ci95"]["auroc"] == [1.0, 1.0]
    assert any("auroc: undefined in" in w for w in result["warnings"])


def test_bootstrap_on_a_large_set_gives_every_interval():
    rng = np.random.default_rng(0)
    n, k = 5000, 10
    y = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    result = evaluate_predictions(y, probs, list("abcdefghij"), n_bootstrap=1000)
    assert all(result["ci95"][name] is not None for name in result["metrics"])


# ----------------------------------------------------------------------------------------------
# Edge cases that must warn, and inputs that must be refused
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task,y,probs,labels", [
    ("binary", [0, 0, 0, 0], [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]], NEG_POS),
    ("binary", [1, 1, 1], [0.2, 0.9, 0.6], NEG_POS),
    ("multiclass", [1, 1, 1], _onehot_probs([1, 0, 1], 3, 0.8), ABC),
    ("multilabel", [[0, 1], [0, 1]], [[0.2, 0.9], [0.7, 0.4]], ["x", "y"]),
])
def test_single_class_y_true_gives_undefined_auroc_and_warns(task, y, probs, labels):
    result = evaluate_predictions(np.array(y), np.array(probs), labels, task=task, n_bootstrap=50)
    assert result["metrics"]["auroc"] is None
    assert result["ci95"]["auroc"] is None
    assert any("AUROC undefined" in w for w in result["warnings"])
    assert _is_json_clean(result)


@pytest.mark.parametrize("task,y,probs,labels", [
    ("multiclass", [2], [[0.1, 0.2, 0.7]], ABC),
    ("binary", [1], [[0.3, 0.7]], NEG_POS),
    ("multilabel", [[1, 0, 1]], [[0.8, 0.1, 0.4]], ABC),
])
def test_single_sample_does_not_crash(task, y, probs, labels):
    result = evaluate_predictions(np.array(y), np.array(probs), labels, task=task, n_bootstrap=20)
    assert result["n"] == 1
    assert result["metrics"]["auroc"] is None
    assert any("small test set (n=1)" in w for w in result["warnings"])
    assert _is_json_clean(result)


def test_absent_class_is_named_and_left_out_of_macro_auroc():
    y = np.array([0, 1, 0, 1, 0, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1],
                      [0.3, 0.6, 0.1], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    result = evaluate_predictions(y, probs, ABC, n_bootstrap=50)
    assert result["per_label_auroc"] == {"a": 1.0, "b": 1.0, "c": None}
    assert result["metrics"]["auroc"] == 1.0
    assert result["per_class"]["c"]["support"] == 0
    assert result["per_class"]["c"]["recall"] is None
    assert any("class 'c' has no samples" in w for w in result["warnings"])


@pytest.mark.parametrize("row_sum,warns", [(1 + 1e-7, False), (1 - 1e-7, False), (0.97, True), (0.5, True)])
def test_probabilities_not_summing_to_one_are_renormalised(row_sum, warns):
    y, probs, labels = _noisy_case("multiclass", 120)
    result = evaluate_predictions(y, probs * row_sum, labels, n_bootstrap=0)
    exact = evaluate_predictions(y, probs, labels, n_bootstrap=0)
    assert result["metrics"] == pytest.approx(exact["metrics"])
    assert any("do not sum to 1" in w for w in result["warnings"]) is warns


@pytest.mark.parametrize("kwargs,message", [
    (dict(task="regression"), "task must be one of"),
    (dict(probs=np.full((4, 2), 0.5)), "shape"),
    (dict(y_true=[0, 1, 2]), "shape"),
    (dict(y_true=[0, 1, 3, 1]), "class indices"),
    (dict(y_true=[0.5, 1, 2, 1]), "non-integer"),
    (dict(y_true=["a", "b", "c", "a"]), "dtype"),
    (dict(probs=np.full((4, 3), np.nan)), "NaN"),
    (dict(probs=np.array([[2.0, -1.0, 0.5]] * 4)), "logits"),
    (dict(probs=np.zeros((4, 3))), "all zero"),
    (dict(probs=np.zeros((0, 3)), y_true=[]), "shape"),
    (dict(labels=["a", "a", "b"]), "unique"),
    (dict(threshold=0.3), "threshold applies"),
    (dict(n_bootstrap=-1), "n_bootstrap"),
    (dict(task="binary"), "exactly 2 labels"),
    (dict(task="multilabel", y_true=np.full((4, 3), 2)), "only 0 and 1"),
    (dict(task="multilabel", threshold=1.5), "strictly between 0 and 1"),
])
def test_bad_inputs_are_refused(kwargs, message):
    args = dict(y_true=[0, 1, 2, 1], probs=_onehot_probs([0, 1, 2, 2], 3, 0.8), labels=ABC)
    if kwargs.get("task") == "multilabel" and "y_true" not in kwargs:
        args["y_true"] = np.eye(3, dtype=int)[[0, 1, 2, 1]]
    with pytest.raises(SuiteError, match=message):
        evaluate_predictions(**{**args, **kwargs})


def test_importing_the_module_is_cheap():
    code = ("import sys, suite.core.evaluation; "
            "print(sorted(m for m in ('matplotlib', 'sklearn', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_report_files_round_trip(tmp_path, task):
    y, probs, labels = _noisy_case(task, 60)
    result = evaluate_predictions(y, probs, labels, task=task, n_bootstrap=100, data_desc="held-out site B")
    paths = write_report(result, tmp_path / "out", y_true=y, probs=probs, title="Pneumonia check")
    assert set(paths) == {"json", "markdown", "confusion_matrix", "roc", "reliability"}
    assert json.loads(paths["json"].read_text()) == result
    for name in ("confusion_matrix", "roc", "reliability"):
        assert paths[name].read_bytes()[:8] == PNG_MAGIC
        assert paths[name].parent == paths["markdown"].parent
    md = paths["markdown"].read_text()
    assert md.startswith("# Pneumonia check")
    assert "measured on held-out site B only" in md
    for needed in ("](roc.png)", "](reliability.png)", "](confusion_matrix.png)",
                   "small test set (n=60)", "| accuracy | ", "95% CI"):
        assert needed in md, needed
    low, high = result["ci95"]["accuracy"]
    assert f"[{low:.4f}, {high:.4f}]" in md
    assert all(label in md for label in labels)


def test_report_without_predictions_has_no_roc_or_reliability(tmp_path):
    y, probs, labels = _noisy_case("multiclass", 40)
    result = evaluate_predictions(y, probs, labels, n_bootstrap=0)
    paths = write_report(result, tmp_path)
    assert set(paths) == {"json", "markdown", "confusion_matrix"}
    assert not (tmp_path / "roc.png").exists()
    assert "](roc.png)" not in paths["markdown"].read_text()
    assert "an unspecified test set" in paths["markdown"].read_text()


@pytest.mark.parametrize("y_slice,give_probs,message", [
    (slice(None), False, "both y_true and probs"),
    (slice(0, 30), True, "samples"),
])
def test_report_refuses_mismatched_predictions(tmp_path, y_slice, give_probs, message):
    y, probs, labels = _noisy_case("multiclass", 40)
    result = evaluate_predictions(y, probs, labels, n_bootstrap=0)
    with pytest.raises(SuiteError, match=message):
        write_report(result, tmp_path, y_true=y[y_slice], probs=probs[y_slice] if give_probs else None)


def test_report_of_degenerate_result_still_renders(tmp_path):
    y, probs = np.array([1, 1, 1]), np.array([0.2, 0.9, 0.6])
    result = evaluate_predictions(y, probs, NEG_POS, task="binary", n_bootstrap=10)
    paths = write_report(result, tmp_path, y_true=y, probs=probs)
    assert paths["roc"].read_bytes()[:8] == PNG_MAGIC
    assert "AUROC undefined" in paths["markdown"].read_text()


# ----------------------------------------------------------------------------------------------
# Comparing runs
# ----------------------------------------------------------------------------------------------

def _result(metrics, ci95=None, **extra):
    """A minimal result dict as compare_runs reads it."""
    base = {"n": 100, "data": "test", "labels": ["a", "b"], "task": "multiclass"}
    return {**base, "metrics": metrics, "ci95": ci95 or {}, **extra}


@pytest.mark.parametrize("metric,reference_value,run_value,negative", [
    ("accuracy", 0.80, 0.70, True),
    ("accuracy", 0.80, 0.85, False),
    ("accuracy", 0.80, 0.80, False),
    ("auroc", 0.91, 0.90, True),
    ("ece", 0.05, 0.12, True),    # lower is better for calibration error
    ("ece", 0.05, 0.02, False),
])
def test_compare_runs_flags_negative_transfer(metric, reference_value, run_value, negative):
    cmp = compare_runs({"scratch": _result({metric: reference_value}), "pretrained": _result({metric: run_value})},
                       metric=metric)
    assert cmp["reference"] == "scratch"
    assert [row["name"] for row in cmp["rows"]] == ["scratch", "pretrained"]
    assert cmp["rows"][1]["delta_vs_reference"] == pytest.approx(run_value - reference_value)
    assert cmp["rows"][0]["delta_vs_reference"] == 0.0
    assert any("negative transfer" in w and "'pretrained'" in w for w in cmp["warnings"]) is negative


def test_compare_runs_on_real_evaluations_with_explicit_reference():
    y, good, labels = _noisy_case("multiclass", 400)
    worse = 0.5 * good + 0.5 * np.random.default_rng(1).dirichlet(np.ones(3), size=len(y))
    results = {"dann": evaluate_predictions(y, worse, labels, n_bootstrap=200),
               "source-only": evaluate_predictions(y, good, labels, n_bootstrap=200)}
    cmp = compare_runs(results, metric="auroc", reference="source-only")
    [warning] = cmp["warnings"]
    assert "negative transfer" in warning and "'dann'" in warning and "CIs" in warning
    row = {r["name"]: r for r in cmp["rows"]}["dann"]
    assert row["ci95"] == results["dann"]["ci95"]["auroc"]
    table = format_comparison_md(cmp)
    assert "| Run | auroc | 95% CI | Δ vs source-only |" in table
    assert "dann" in table and "source-only (reference)" in table and "negative transfer" in table


@pytest.mark.parametrize("results,kwargs,message", [
    ({}, {}, "at least one"),
    ({"a": _result({"accuracy": 0.5})}, dict(reference="b"), "not one of the runs"),
    ({"a": _result({"accuracy": 0.5})}, dict(metric="auroc"), "no metric"),
])
def test_compare_runs_refuses_bad_arguments(results, kwargs, message):
    with pytest.raises(SuiteError, match=message):
        compare_runs(results, **kwargs)


def test_compare_runs_warns_when_data_differs_or_metric_undefined():
    cmp = compare_runs({"a": _result({"auroc": 0.8}), "b": _result({"auroc": None}, n=50)}, metric="auroc")
    assert any("differ in 'n'" in w for w in cmp["warnings"])
    assert any("'b': auroc is undefined" in w for w in cmp["warnings"])
    assert not any("negative transfer" in w for w in cmp["warnings"])
    assert cmp["rows"][1]["delta_vs_reference"] is None


def test_a_model_that_predicts_one_class_is_called_out():
    y = np.array([0, 1, 0, 1, 1, 1])
    probs = np.tile([0.2, 0.8], (6, 1))
    result = evaluate_predictions(y, probs, ["normal", "pneumonia"], task="binary", n_bootstrap=10)
    assert result["metrics"]["accuracy"] == pytest.approx(4 / 6)
    assert any("predicts 'pneumonia' for every item" in w for w in result["warnings"])
    varied = evaluate_predictions(y, np.array([[0.9, 0.1], [0.2, 0.8]] * 3), ["normal", "pneumonia"],
                                  task="binary", n_bootstrap=10)
    assert not any("for every item" in w for w in varied["warnings"])
