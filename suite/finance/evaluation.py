"""Evaluation of sentiment Solutions on labelled text (metrics with 95% bootstrap CIs)."""

from __future__ import annotations


def evaluate_sentiment(solution, data, description: str, seed: int = 0) -> dict:
    """Accuracy, macro-F1 (and the rest of the core report) of ``solution`` on ``data``, with CIs."""
    from suite.core.finetune import evaluate_solution

    report, _ = evaluate_solution(solution, data, data_desc=f"{description} ({len(data)} sentences)", seed=seed)
    keep = ("n", "data", "metrics", "ci95", "per_class", "confusion_matrix", "warnings")
    return {k: report[k] for k in keep if k in report}
