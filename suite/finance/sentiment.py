"""Sentiment scores of financial texts: label, probabilities and score = P(positive) - P(negative)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from suite.core.errors import SuiteError

SOLUTIONS = Path(__file__).resolve().parent / "solutions"
DEFAULT_SOLUTION = SOLUTIONS / "phrasebank_minilm"


def load_solution(path: str | os.PathLike | None = None):
    """A finance Solution: a Solution directory, a sentiment sequence classifier (``hf:`` spec such
    as ``hf:ProsusAI/finbert``, or a local Hugging Face model folder; used as published), or the
    shipped offline one by default."""
    from suite.core import Solution, is_solution_dir

    if path is None:
        if not (DEFAULT_SOLUTION / "config.json").is_file():
            raise SuiteError(f"{DEFAULT_SOLUTION}: the shipped solution is missing; rebuild it with "
                             "python benchmarks/finance_phrasebank.py --recipe lora --agreement-targets --save "
                             + str(DEFAULT_SOLUTION))
        return Solution.load(DEFAULT_SOLUTION)
    if str(path).startswith("hf:") or (Path(path).is_dir() and not is_solution_dir(path)
                                      and (Path(path) / "config.json").is_file()):
        from .classifier import pretrained_solution

        return pretrained_solution(str(path) if str(path).startswith("hf:") else f"hf:{path}")
    return Solution.load(path)


def sentiment_score(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """``P(positive) - P(negative)`` per row of ``probs`` ``(N, K)``, in [-1, 1]."""
    names = [str(x).lower() for x in labels]
    if "positive" not in names or "negative" not in names:
        raise SuiteError(f"a sentiment score needs 'positive' and 'negative' labels, this model has {list(labels)}")
    probs = np.asarray(probs, dtype=np.float64)
    return probs[:, names.index("positive")] - probs[:, names.index("negative")]


def score_texts(solution, texts: Sequence[str], batch_size: int = 64):
    """A DataFrame with one row per text: ``text``, ``label``, ``score``, ``p_<label>`` per class,
    and ``ood``/``ood_score`` when the solution carries an input guard."""
    import pandas as pd

    texts = [str(t) for t in texts]
    if not texts:
        return pd.DataFrame(columns=["text", "label", "score", *[f"p_{c}" for c in solution.labels]])
    results = solution.predict(texts, batch_size=batch_size)
    probs = np.array([[r["probs"][c] for c in solution.labels] for r in results])
    df = pd.DataFrame({"text": texts, "label": [r["label"] for r in results],
                       "score": sentiment_score(probs, solution.labels)})
    for k, c in enumerate(solution.labels):
        df[f"p_{c}"] = probs[:, k]
    if results and "ood" in results[0]:
        df["ood"] = [bool(r["ood"]) for r in results]
        df["ood_score"] = [float(r.get("ood_score", np.nan)) for r in results]
    return df
