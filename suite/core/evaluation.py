"""Evaluation that tells the truth: metrics with bootstrap CIs, calibration, warnings and reports.

``evaluate_predictions`` turns labels and predicted probabilities into a JSON-ready dict: point
metrics (scikit-learn), 95% percentile-bootstrap intervals, per-class tables, confusion matrices and
plain-language warnings (small test set, absent classes, undefined AUROC). ``write_report`` renders
it as JSON, Markdown and PNG plots; ``compare_runs`` puts several runs side by side and flags
negative transfer.

The bootstrap is vectorised: a resample is a vector of per-sample counts, so each metric over many
resamples is a few (weights @ indicator) products instead of a Python loop of sklearn calls. The
point estimates come from scikit-learn and the tests check the two agree. Heavy imports (scikit-learn,
SciPy, matplotlib) happen inside the functions that need them, so importing this module is cheap.
"""

from __future__ import annotations

import json
import warnings as pywarnings
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from .errors import SuiteError

TASKS = ("multiclass", "binary", "multilabel")
ECE_BINS = 15
SMALL_TEST_SET = 100  # below this many samples the report warns that intervals are wide
SUM_TOLERANCE = 1e-3  # softmax rows further than this from 1 are reported, then renormalised
LOWER_IS_BETTER = frozenset({"ece"})
_BOOTSTRAP_CELLS = 1_000_000  # resample weights per chunk (resamples x samples): bounded memory, cache-friendly


class _Inputs(NamedTuple):
    """Validated arrays: y (N,) or (N, K), probs (N, K), pred like y, threshold, warnings."""

    y: np.ndarray
    probs: np.ndarray
    pred: np.ndarray
    threshold: float | None
    warnings: list[str]


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------

def evaluate_predictions(y_true, probs, labels: list[str], task: str = "multiclass",
                         threshold: float | None = None, n_bootstrap: int = 1000, seed: int = 0,
                         data_desc: str = "") -> dict:
    """Metrics, 95% bootstrap CIs, per-class table, confusion matrix and warnings as a JSON-ready dict."""
    labels = [str(label) for label in labels]
    if n_bootstrap < 0:
        raise SuiteError(f"n_bootstrap must be >= 0, got {n_bootstrap}")
    inp = _prepare(y_true, probs, labels, task, threshold)
    warns = list(inp.warnings)
    n = len(inp.y)
    if n < SMALL_TEST_SET:
        warns.append(f"small test set (n={n}): wide confidence intervals")
    warns += _absent_class_warnings(inp.y, labels, task)
    if task != "multilabel" and n > 1 and len(np.unique(inp.pred)) == 1:
        warns.append(f"the model predicts {labels[int(inp.pred[0])]!r} for every item: its accuracy is that "
                     "class's share, not evidence that it learned anything")

    per_label_auroc = _per_label_auroc(inp.y, inp.probs, task)
    metrics = _point_metrics(inp, task, per_label_auroc)
    warns += _auroc_warnings(metrics["auroc"], per_label_auroc, task)
    boot = _bootstrap(_resample_metrics(inp, task, per_label_auroc), n, n_bootstrap, seed)
    ci95, skipped = _intervals(metrics, boot)
    warns += [f"{name}: undefined in {count} of {n_bootstrap} bootstrap resamples, which were skipped; "
              f"its CI comes from the other {n_bootstrap - count}" for name, count in skipped.items() if count]

    result = {
        "task": task, "n": n, "data": data_desc, "labels": labels,
        "metrics": metrics, "threshold": inp.threshold, "ci95": ci95,
        "per_class": _per_class(inp, labels, task),
        "confusion_matrix": _confusion(inp, labels, task),
        "bootstrap": {"resamples": int(n_bootstrap), "seed": int(seed), "method": "percentile",
                      "skipped": skipped},
        "warnings": warns,
    }
    if task != "binary":
        result["per_label_auroc"] = dict(zip(labels, per_label_auroc))
        per_label_ci, _ = _intervals({f"auroc/{j}": auc for j, auc in enumerate(per_label_auroc)}, boot)
        result["per_label_auroc_ci95"] = {label: per_label_ci[f"auroc/{j}"] for j, label in enumerate(labels)}
    return result


def write_report(result: dict, out_dir, y_true=None, probs=None, title: str = "Evaluation") -> dict[str, Path]:
    """Write report.json, report.md and PNG plots into ``out_dir``; return {name: path}.

    The confusion-matrix plot needs only ``result``; ROC curves and the reliability diagram are drawn
    when ``y_true`` and ``probs`` (the ones ``result`` was computed from) are given.
    """
    if (y_true is None) != (probs is None):
        raise SuiteError("write_report needs both y_true and probs to draw ROC and reliability plots")
    inp = (None if y_true is None
           else _prepare(y_true, probs, result["labels"], result["task"], result["threshold"]))
    if inp is not None and len(inp.y) != result["n"]:
        raise SuiteError(f"y_true has {len(inp.y)} samples but the result was computed on {result['n']}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json"}
    paths["json"].write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    paths["confusion_matrix"] = _plot_confusion(result, out / "confusion_matrix.png")
    if inp is not None:
        paths["roc"] = _plot_roc(inp, result, out / "roc.png")
        paths["reliability"] = _plot_reliability(inp, result, out / "reliability.png")

    paths["markdown"] = out / "report.md"
    plots = {name: path.name for name, path in paths.items() if path.suffix == ".png"}
    paths["markdown"].write_text(_report_markdown(result, title, plots), encoding="utf-8")
    return paths


def compare_runs(results: dict[str, dict], metric: str = "accuracy", reference: str | None = None) -> dict:
    """Compare runs evaluated on the same data; warn of negative transfer against ``reference``.

    ``reference`` is the baseline without (or with less) transfer, e.g. "scratch" or "source-only";
    it defaults to the first run. A run whose metric is worse than the reference's is flagged.
    """
    if not results:
        raise SuiteError("compare_runs needs at least one result")
    reference = next(iter(results)) if reference is None else reference
    if reference not in results:
        raise SuiteError(f"reference {reference!r} is not one of the runs: {sorted(results)}")
    for name, res in results.items():
        if metric not in res.get("metrics", {}):
            raise SuiteError(f"run {name!r} has no metric {metric!r}; it has {sorted(res.get('metrics', {}))}")

    values = {name: res["metrics"][metric] for name, res in results.items()}
    cis = {name: res.get("ci95", {}).get(metric) for name, res in results.items()}
    ref_value = values[reference]
    rows, warns = [], _data_mismatch_warnings(results)
    for name, value in values.items():
        delta = None if value is None or ref_value is None else float(value - ref_value)
        rows.append({"name": name, "value": value, "ci95": cis[name], "delta_vs_reference": delta})
        if value is None:
            warns.append(f"run {name!r}: {metric} is undefined")
        elif name != reference and delta is not None and _is_worse(metric, delta):
            warns.append(_negative_transfer_warning(name, reference, metric, value, ref_value,
                                                    cis[name], cis[reference]))
    return {"metric": metric, "rows": rows, "reference": reference, "warnings": warns}


def format_comparison_md(cmp: dict) -> str:
    """A markdown table of a ``compare_runs`` result, followed by its warnings."""
    metric = cmp["metric"]
    rows = [[_md_escape(row["name"]) + (" (reference)" if row["name"] == cmp["reference"] else ""),
             _fmt(row["value"]), _fmt_ci(row["ci95"]), _fmt(row["delta_vs_reference"], signed=True)]
            for row in cmp["rows"]]
    text = _md_table(["Run", metric, "95% CI", f"Δ vs {_md_escape(cmp['reference'])}"], rows)
    if cmp["warnings"]:
        text += "\n" + "".join(f"- {_md_escape(w)}\n" for w in cmp["warnings"])
    return text


# ----------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------

def _prepare(y_true, probs, labels: list[str], task: str, threshold: float | None) -> _Inputs:
    """Check shapes, ranges and the task; renormalise softmax rows; derive predictions."""
    if task not in TASKS:
        raise SuiteError(f"task must be one of {TASKS}, got {task!r}")
    k = len(labels)
    if len(set(labels)) != k:
        raise SuiteError(f"labels must be unique, got {labels}")
    probs = np.asarray(probs, dtype=float)
    if task == "binary" and probs.ndim == 1:
        probs = np.column_stack([1.0 - probs, probs])
    y = np.asarray(y_true)
    if probs.ndim != 2 or probs.shape[1] != k or len(probs) == 0:
        raise SuiteError(f"probs must have shape (N >= 1, {k}) for {k} labels, got {probs.shape}")
    if not np.isfinite(probs).all():
        raise SuiteError("probs contain NaN or infinity")
    if probs.min() < -1e-6 or probs.max() > 1 + 1e-6:
        raise SuiteError(f"probs must be probabilities in [0, 1], got values in [{probs.min():.3g}, "
                         f"{probs.max():.3g}] (logits? apply softmax or sigmoid first)")
    probs = np.clip(probs, 0.0, 1.0)
    if task == "binary" and k != 2:
        raise SuiteError(f"binary task needs exactly 2 labels (negative, positive), got {k}")
    threshold = _decision_threshold(task, threshold)

    if task == "multilabel":
        y = _as_int_array(y, (len(probs), k), "multilabel y_true must be an (N, K) array of 0/1")
        if not np.isin(y, (0, 1)).all():
            raise SuiteError("multilabel y_true must contain only 0 and 1")
        return _Inputs(y, probs, (probs >= threshold).astype(int), threshold, [])

    y = _as_int_array(y, (len(probs),), f"{task} y_true must be an (N,) array of class indices")
    if y.min() < 0 or y.max() >= k:
        raise SuiteError(f"y_true holds class indices in [{y.min()}, {y.max()}] but there are {k} labels")
    probs, warns = _normalise_rows(probs)
    pred = (probs[:, 1] >= threshold).astype(int) if task == "binary" else probs.argmax(axis=1)
    return _Inputs(y, probs, pred, threshold, warns)


def _decision_threshold(task: str, threshold: float | None) -> float | None:
    """The threshold on positive probabilities: given or 0.5 (binary, multilabel); None for multiclass."""
    if task == "multiclass":
        if threshold is not None:
            raise SuiteError("threshold applies to binary and multilabel tasks only")
        return None
    threshold = 0.5 if threshold is None else float(threshold)
    if not 0.0 < threshold < 1.0:
        raise SuiteError(f"threshold must lie strictly between 0 and 1, got {threshold}")
    return threshold


def _as_int_array(y: np.ndarray, shape: tuple, message: str) -> np.ndarray:
    """``y`` as an int array of ``shape``, refusing non-integer values."""
    if y.shape != shape:
        raise SuiteError(f"{message} matching probs {shape}; got shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise SuiteError(f"{message}; got dtype {y.dtype}")
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        raise SuiteError(f"{message}; got non-integer values")
    return y.astype(int)


def _normalise_rows(probs: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Rescale softmax rows to sum to 1, warning when they were clearly off."""
    sums = probs.sum(axis=1)
    if (sums <= 0).any():
        raise SuiteError("some rows of probs are all zero; softmax probabilities must sum to 1")
    warns = []
    if np.abs(sums - 1.0).max() > SUM_TOLERANCE:
        warns.append(f"probabilities do not sum to 1 (row sums in [{sums.min():.4g}, {sums.max():.4g}]); "
                     "renormalised before scoring")
    return probs / sums[:, None], warns


def _absent_class_warnings(y: np.ndarray, labels: list[str], task: str) -> list[str]:
    """One warning per class (or label) that y_true never shows, or, for multilabel, always shows."""
    if task != "multilabel":
        counts = np.bincount(y, minlength=len(labels))
        return [f"class {label!r} has no samples in y_true: its recall and AUROC are undefined"
                for label, count in zip(labels, counts) if count == 0]
    positives = y.sum(axis=0)
    return ([f"label {label!r} has no positive samples in y_true: its recall and AUROC are undefined"
             for label, count in zip(labels, positives) if count == 0]
            + [f"label {label!r} has no negative samples in y_true: its AUROC is undefined"
               for label, count in zip(labels, positives) if count == len(y)])


def _auroc_warnings(auroc: float | None, per_label_auroc: list, task: str) -> list[str]:
    """Say when AUROC is undefined, or when its macro average leaves classes out."""
    if auroc is None:
        return ["AUROC undefined: " + ("no label has both positive and negative samples in y_true"
                                       if task == "multilabel" else "y_true contains only one class")]
    defined = sum(auc is not None for auc in per_label_auroc)
    if task == "binary" or defined == len(per_label_auroc):
        return []
    kind = "labels" if task == "multilabel" else "classes"
    return [f"macro AUROC averages only the {defined} of {len(per_label_auroc)} {kind} where it is defined"]


# ----------------------------------------------------------------------------------------------
# Point estimates (scikit-learn)
# ----------------------------------------------------------------------------------------------

def _per_label_auroc(y: np.ndarray, probs: np.ndarray, task: str) -> list[float | None]:
    """One-vs-rest ROC AUC per class (multilabel: per label); None where only one class is present."""
    from sklearn.metrics import roc_auc_score

    targets = y if task == "multilabel" else np.eye(probs.shape[1], dtype=int)[y]
    return [float(roc_auc_score(targets[:, j], probs[:, j])) if 0 < targets[:, j].sum() < len(y) else None
            for j in range(probs.shape[1])]


def _point_metrics(inp: _Inputs, task: str, per_label_auroc: list[float | None]) -> dict:
    """Accuracy, balanced accuracy, macro F1, AUROC, ECE (+ binary rates) on the full test set."""
    from sklearn import metrics as skm

    y, pred = inp.y, inp.pred
    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore", UserWarning)  # "y_pred contains classes not in y_true"
        if task == "multilabel":
            balanced = np.mean([skm.balanced_accuracy_score(y[:, j], pred[:, j]) for j in range(y.shape[1])])
            present = np.flatnonzero(y.any(axis=0) | pred.any(axis=0))
            macro_f1 = (skm.f1_score(y, pred, labels=present, average="macro", zero_division=0)
                        if len(present) else None)
        else:
            balanced = skm.balanced_accuracy_score(y, pred)
            macro_f1 = skm.f1_score(y, pred, average="macro", zero_division=0)

    if task == "binary":
        auroc = per_label_auroc[1]
    else:
        defined = [a for a in per_label_auroc if a is not None]
        auroc = float(np.mean(defined)) if defined else None
    metrics = {"accuracy": skm.accuracy_score(y, pred), "balanced_accuracy": balanced, "macro_f1": macro_f1,
               "auroc": auroc, "ece": _weighted_ece(np.ones((1, len(y))), _calibration_terms(inp, task))[0]}
    if task == "binary":
        precision, recall, _, _ = skm.precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=np.nan)
        metrics.update(sensitivity=recall[1], specificity=recall[0], ppv=precision[1], npv=precision[0])
    return {name: _num(value) for name, value in metrics.items()}


def _per_class(inp: _Inputs, labels: list[str], task: str) -> dict[str, dict]:
    """Precision, recall, F1 and support per class; None where a ratio has a zero denominator."""
    from sklearn.metrics import precision_recall_fscore_support

    label_ids = None if task == "multilabel" else list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        inp.y, inp.pred, labels=label_ids, zero_division=np.nan)
    return {label: {"precision": _num(p), "recall": _num(r), "f1": _num(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)}


def _confusion(inp: _Inputs, labels: list[str], task: str) -> list:
    """Rows = true, columns = predicted; multilabel: one [[tn, fp], [fn, tp]] per label."""
    from sklearn.metrics import confusion_matrix, multilabel_confusion_matrix

    if task == "multilabel":
        return multilabel_confusion_matrix(inp.y, inp.pred).tolist()
    return confusion_matrix(inp.y, inp.pred, labels=list(range(len(labels)))).tolist()


def _calibration_terms(inp: _Inputs, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample index, confidence, outcome) per forecast for the ECE and reliability diagram.

    Multiclass/binary: one forecast per sample, confidence = max probability, outcome = the argmax
    was right. Multilabel: every label probability is a forecast of that label being present.
    """
    if task == "multilabel":
        n, k = inp.y.shape
        return np.repeat(np.arange(n), k), inp.probs.ravel(), inp.y.ravel().astype(float)
    top = inp.probs.argmax(axis=1)
    return np.arange(len(inp.y)), inp.probs.max(axis=1), (top == inp.y).astype(float)


def _ece_bin(confidence: np.ndarray) -> np.ndarray:
    """Index of the equal-width bin (ECE_BINS over [0, 1], right-closed) of each confidence."""
    return np.clip(np.ceil(confidence * ECE_BINS).astype(int) - 1, 0, ECE_BINS - 1)


def _weighted_ece(weights: np.ndarray, terms: tuple) -> np.ndarray:
    """ECE per row of ``weights`` (B, N): sum over bins of |confidence - outcome| mass / forecasts."""
    rows, confidence, outcome = terms
    n = weights.shape[1]
    gaps = _weighted_sums(weights, _indicator(rows, _ece_bin(confidence), confidence - outcome, (n, ECE_BINS)))
    forecasts = weights.sum(axis=1) * (len(rows) / n)
    return np.abs(gaps).sum(axis=1) / forecasts


# ----------------------------------------------------------------------------------------------
# Vectorised bootstrap
# ----------------------------------------------------------------------------------------------

def _bootstrap(stats: Callable[[np.ndarray], dict], n: int, n_bootstrap: int, seed: int) -> dict[str, np.ndarray]:
    """Apply ``stats`` to sample-count weights of ``n_bootstrap`` resamples drawn with default_rng(seed)."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOTSTRAP_CELLS // n)
    parts = []
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        drawn = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n)
        parts.append(stats(np.asfortranarray(counts, dtype=float)))  # weights.T contiguous for sparse products
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]} if parts else {}


def _resample_metrics(inp: _Inputs, task: str, per_label_auroc: list) -> Callable[[np.ndarray], dict]:
    """A function from resample weights (B, N) to each scalar metric (B,), NaN where undefined."""
    n, k = inp.probs.shape
    calibration = _calibration_terms(inp, task)
    targets = inp.y if task == "multilabel" else np.eye(k, dtype=int)[inp.y]
    ranked_ids = [j for j, auc in enumerate(per_label_auroc) if auc is not None and (task != "binary" or j == 1)]
    ranked = [_rank_slots(targets[:, j], inp.probs[:, j]) for j in ranked_ids]
    if task == "multilabel":
        truth, predicted, hits = (_indicator(*np.nonzero(m), 1.0, (n, k))
                                  for m in (inp.y, inp.pred, inp.y & inp.pred))
        exact = (inp.y == inp.pred).all(axis=1).astype(float)
    else:
        rows = np.arange(n)
        truth, predicted = _indicator(rows, inp.y, 1.0, (n, k)), _indicator(rows, inp.pred, 1.0, (n, k))
        hits = _indicator(rows, inp.y, (inp.y == inp.pred).astype(float), (n, k))

    def stats(weights: np.ndarray) -> dict:
        total = weights.sum(axis=1)
        tp, support, pred_count = (_weighted_sums(weights, m) for m in (hits, truth, predicted))
        out = _count_metrics(tp, support, pred_count, total[:, None], task)
        out["accuracy"] = (weights @ exact if task == "multilabel" else tp.sum(axis=1)) / total
        aurocs = [_weighted_auroc(weights, slots) for slots in ranked]
        out["auroc"] = np.mean(aurocs, axis=0) if aurocs else np.full(len(weights), np.nan)
        if task != "binary":  # per class / per finding (ChestX-ray14-style reports)
            out.update({f"auroc/{j}": auc for j, auc in zip(ranked_ids, aurocs)})
        out["ece"] = _weighted_ece(weights, calibration)
        return out

    return stats


def _count_metrics(tp, support, pred_count, total, task: str) -> dict:
    """Balanced accuracy, macro F1 (and binary rates) from weighted per-class counts (B, K)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp / support  # NaN where a class is absent from the resample
        f1 = np.where(support + pred_count > 0, 2 * tp / (support + pred_count), np.nan)
        out = {"macro_f1": _nanmean_rows(f1)}
        if task == "multilabel":
            specificity = (total - support - pred_count + tp) / (total - support)
            out["balanced_accuracy"] = np.mean(_nanmean_rows(np.stack([recall, specificity], axis=2)), axis=1)
        else:
            out["balanced_accuracy"] = _nanmean_rows(recall)
        if task == "binary":
            precision = tp / pred_count
            out.update(sensitivity=recall[:, 1], specificity=recall[:, 0],
                       ppv=precision[:, 1], npv=precision[:, 0])
    return out


def _rank_slots(targets: np.ndarray, scores: np.ndarray) -> tuple:
    """Map each sample to a rank slot among the distinct positive scores, for ``_weighted_auroc``.

    With u_1 < ... < u_m the distinct scores of positives, slot 2r holds scores strictly between
    u_r and u_(r+1) and slot 2r+1 scores equal to u_(r+1); so positives sit in odd slots. Returns
    a sparse (N, 2 * slots) indicator, positives in the first half, negatives in the second.
    """
    positive_scores = np.unique(scores[targets == 1])
    lower = np.searchsorted(positive_scores, scores, side="left")
    tied = np.searchsorted(positive_scores, scores, side="right") > lower
    slots = 2 * len(positive_scores) + 1
    columns = 2 * lower + tied + slots * (targets == 0)
    return _indicator(np.arange(len(scores)), columns, 1.0, (len(scores), 2 * slots)), slots


def _weighted_auroc(weights: np.ndarray, rank_slots: tuple) -> np.ndarray:
    """Mann-Whitney AUROC per resample (ties count 1/2); NaN when a resample lacks a class."""
    matrix, slots = rank_slots
    sums = np.asarray(matrix.T @ weights.T)  # (2 * slots, B): slots along the fast cumsum axis
    positives, negatives = sums[:slots], sums[slots:]
    credit = np.cumsum(negatives, axis=0) - 0.5 * negatives  # negatives below, ties count half
    with np.errstate(divide="ignore", invalid="ignore"):
        return (positives * credit).sum(axis=0) / (positives.sum(axis=0) * negatives.sum(axis=0))


def _indicator(rows: np.ndarray, cols: np.ndarray, values, shape: tuple):
    """Sparse (N, M) matrix holding ``values`` at (rows[i], cols[i]); duplicates add up."""
    from scipy import sparse

    data = np.broadcast_to(np.asarray(values, dtype=float), rows.shape)
    return sparse.csr_matrix((data, (rows, cols)), shape=shape)


def _weighted_sums(weights: np.ndarray, matrix) -> np.ndarray:
    """``weights`` (B, N) @ sparse ``matrix`` (N, M) as a dense (B, M) array."""
    return np.asarray((matrix.T @ weights.T).T)


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN; NaN where a row has no values."""
    defined = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        return np.where(defined, values, 0.0).sum(axis=-1) / defined.sum(axis=-1)


def _intervals(metrics: dict, boot: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """95% percentile interval per metric over the resamples where it is defined, and skip counts."""
    ci95, skipped = {}, {}
    for name, point in metrics.items():
        values = boot.get(name, np.empty(0))
        defined = values[~np.isnan(values)]
        skipped[name] = int(len(values) - len(defined)) if point is not None else 0
        ci95[name] = (None if point is None or len(defined) == 0
                      else [float(v) for v in np.percentile(defined, [2.5, 97.5])])
    return ci95, skipped


def _num(value) -> float | None:
    """A plain float, or None for NaN / missing values (JSON has no NaN)."""
    return None if value is None or np.isnan(value) else float(value)


# ----------------------------------------------------------------------------------------------
# Comparison helpers
# ----------------------------------------------------------------------------------------------

def _is_worse(metric: str, delta: float) -> bool:
    """Whether a difference from the reference is a loss for this metric."""
    return delta > 0 if metric in LOWER_IS_BETTER else delta < 0


def _negative_transfer_warning(name, reference, metric, value, ref_value, ci, ref_ci) -> str:
    """Flag a run worse than the reference, saying whether the 95% intervals overlap."""
    text = (f"negative transfer: {name!r} {metric} = {value:.4f} is worse than reference "
            f"{reference!r} ({ref_value:.4f}, delta {value - ref_value:+.4f})")
    if ci and ref_ci:
        overlap = ci[0] <= ref_ci[1] and ref_ci[0] <= ci[1]
        text += "; the 95% CIs overlap, so it may be noise" if overlap else "; the 95% CIs do not overlap"
    return text


def _data_mismatch_warnings(results: dict[str, dict]) -> list[str]:
    """Warn when runs were not evaluated on the same data (sample count, description, labels)."""
    warns = []
    for key in ("n", "data", "labels", "task"):
        values = {name: res.get(key) for name, res in results.items()}
        if len({json.dumps(v) for v in values.values()}) > 1:
            warns.append(f"runs differ in {key!r} ({values}); they may not be comparable")
    return warns


# ----------------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------------

def _report_markdown(result: dict, title: str, plots: dict[str, str]) -> str:
    """The readable report: data, metrics with CIs, per-class table, confusion matrix, warnings, plots."""
    data = result["data"] or "an unspecified test set"
    boot = result.get("bootstrap", {})
    parts = [f"# {title}\n",
             f"**Data:** {_md_escape(data)} (n = {result['n']}, task: {result['task']}"
             + (f", decision threshold {result['threshold']:g}" if result.get("threshold") is not None else "")
             + ")\n",
             f"> These metrics were measured on {_md_escape(data)} only. They do not show how the model "
             "performs on other data (other sites, devices, populations or time periods).\n",
             "## Metrics\n",
             _md_table(["Metric", "Value", "95% CI"],
                       [[name, _fmt(value), _fmt_ci(result["ci95"].get(name))]
                        for name, value in result["metrics"].items()]),
             f"95% CIs: {boot.get('method', 'percentile')} bootstrap over {boot.get('resamples', '?')} "
             f"resamples of the test samples (seed {boot.get('seed', '?')}).\n",
             "## Per class\n", _per_class_markdown(result),
             "## Confusion matrix\n", _confusion_markdown(result),
             "## Warnings\n",
             "".join(f"- {_md_escape(w)}\n" for w in result["warnings"]) or "None.\n"]
    if plots:
        parts.append("## Plots\n")
        parts += [f"![{name.replace('_', ' ')}]({file})\n" for name, file in plots.items()]
    return "\n".join(parts)


def _per_class_markdown(result: dict) -> str:
    """Per-class precision/recall/F1/support (and AUROC where known) as a table."""
    aurocs = result.get("per_label_auroc")
    auroc_ci = result.get("per_label_auroc_ci95") or {}
    header = ["Class", "Precision", "Recall", "F1", "Support"] + (["AUROC", "AUROC 95% CI"] if aurocs else [])
    rows = [[_md_escape(label), _fmt(row["precision"]), _fmt(row["recall"]), _fmt(row["f1"]), str(row["support"])]
            + ([_fmt(aurocs[label]), _fmt_ci(auroc_ci.get(label))] if aurocs else [])
            for label, row in result["per_class"].items()]
    return _md_table(header, rows)


def _confusion_markdown(result: dict) -> str:
    """Rows = true class, columns = predicted; multilabel: TN/FP/FN/TP per label."""
    labels = [_md_escape(label) for label in result["labels"]]
    matrix = result["confusion_matrix"]
    if result["task"] == "multilabel":
        rows = [[label] + [str(v) for pair in cm for v in pair] for label, cm in zip(labels, matrix)]
        return _md_table(["Label", "TN", "FP", "FN", "TP"], rows)
    rows = [[label] + [str(v) for v in row] for label, row in zip(labels, matrix)]
    return "Rows: true class; columns: predicted class.\n\n" + _md_table(["true \\ predicted"] + labels, rows)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def _md_escape(text) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _fmt(value, signed: bool = False) -> str:
    """A metric value with 4 decimals, or an em dash when undefined."""
    if value is None:
        return "—"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _fmt_ci(ci) -> str:
    """A [low, high] interval, or an em dash."""
    return "—" if not ci else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


# ----------------------------------------------------------------------------------------------
# Plots (matplotlib Agg, imported lazily)
# ----------------------------------------------------------------------------------------------

def _figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas (no pyplot, no global backend state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _plot_confusion(result: dict, path: Path) -> Path:
    """Heatmap of the confusion matrix (multilabel: TN/FP/FN/TP per label)."""
    labels = result["labels"]
    multilabel = result["task"] == "multilabel"
    matrix = np.array(result["confusion_matrix"]).reshape(len(labels), -1)
    columns = ["TN", "FP", "FN", "TP"] if multilabel else labels
    size = min(4 + 0.4 * len(labels), 16)
    fig = _figure(size if not multilabel else 6, size)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    if len(labels) <= 30:
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    if matrix.size <= 400:
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center",
                    color="white" if count > matrix.max() / 2 else "black", fontsize=8)
    ax.set_xlabel("count" if multilabel else "predicted")
    ax.set_ylabel("label" if multilabel else "true")
    ax.set_title("Confusion matrix" + (" per label" if multilabel else ""))
    fig.savefig(path)
    return path


def _plot_roc(inp: _Inputs, result: dict, path: Path) -> Path:
    """ROC curves: binary one curve, otherwise one-vs-rest per class / per label."""
    from sklearn.metrics import roc_curve

    task, labels = result["task"], result["labels"]
    targets = inp.y if task == "multilabel" else np.eye(len(labels), dtype=int)[inp.y]
    columns = [1] if task == "binary" else range(len(labels))
    fig = _figure(6, 6)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    for j in columns:
        if 0 < targets[:, j].sum() < len(targets):
            fpr, tpr, _ = roc_curve(targets[:, j], inp.probs[:, j])
            auc = result["metrics"]["auroc"] if task == "binary" else result["per_label_auroc"][labels[j]]
            ax.plot(fpr, tpr, linewidth=1.5, label=f"{labels[j]} (AUC {auc:.3f})")
    if len(columns) <= 20:
        ax.legend(loc="lower right", fontsize=8)
    auroc = result["metrics"]["auroc"]
    kind = "" if task == "binary" else " (one-vs-rest)" if task == "multiclass" else " (per label)"
    ax.set_title(f"ROC{kind}, AUROC = " + ("undefined" if auroc is None else f"{auroc:.3f}"))
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    fig.savefig(path)
    return path


def _plot_reliability(inp: _Inputs, result: dict, path: Path) -> Path:
    """Reliability diagram: observed accuracy (or frequency) against confidence per ECE bin."""
    _, confidence, outcome = _calibration_terms(inp, result["task"])
    bins = _ece_bin(confidence)
    counts = np.bincount(bins, minlength=ECE_BINS)
    seen = counts > 0
    observed = np.bincount(bins, weights=outcome, minlength=ECE_BINS)[seen] / counts[seen]
    mean_conf = np.bincount(bins, weights=confidence, minlength=ECE_BINS)[seen] / counts[seen]
    centers = (np.arange(ECE_BINS)[seen] + 0.5) / ECE_BINS

    fig = _figure(6, 6)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    ax.bar(centers, observed, width=1 / ECE_BINS, edgecolor="black", alpha=0.7, label="observed")
    ax.plot(mean_conf, observed, marker="o", color="tab:red", linewidth=1, label="observed at mean bin confidence")
    multilabel = result["task"] == "multilabel"
    ax.set_xlabel("predicted probability" if multilabel else "confidence (max probability)")
    ax.set_ylabel("observed frequency" if multilabel else "accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"Reliability, ECE = {result['metrics']['ece']:.4f} ({ECE_BINS} bins)")
    fig.savefig(path)
    return path
