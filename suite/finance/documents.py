"""Long texts (earnings-call paragraphs, filings): split into sentences, score each, aggregate,
and say which sentences drove the result."""

from __future__ import annotations

import re

import numpy as np

from .sentiment import score_texts

ABBREVIATIONS = {
    "inc", "ltd", "corp", "co", "plc", "llc", "mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "no", "nos",
    "approx", "est", "e.g", "i.e", "u.s", "u.k", "e.u", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec", "fig", "ref", "vol", "a.m", "p.m", "plc", "oyj", "abp",
}  # units (mn, bn, EUR) often end a sentence, so they are not listed
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
MAX_SENTENCES = 500


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: blank lines and line breaks after end punctuation always split; a
    period ends a sentence unless it ends a known abbreviation (``Inc.``, ``U.S.``, ``Jan.``), a
    single initial or a number like ``2.4``."""
    sentences: list[str] = []
    for block in re.split(r"\n\s*\n|(?<=[.!?])\s*\n", text or ""):
        block = " ".join(block.split())
        if not block:
            continue
        start = 0
        for match in _BOUNDARY.finditer(block):
            before = block[start:match.start()].rstrip("\"')]").rstrip()
            last_word = before.rsplit(" ", 1)[-1].rstrip(".").lower()
            if before.endswith(".") and (last_word in ABBREVIATIONS or len(last_word) == 1):
                continue
            sentences.append(block[start:match.start()].strip())
            start = match.end()
        sentences.append(block[start:].strip())
    return [s for s in sentences if s]


def score_document(solution, text: str, top: int = 3, batch_size: int = 64) -> dict:
    """Score a long text sentence by sentence.

    Returns ``score`` (mean of sentence scores), ``label`` (the class of the mean probabilities),
    ``probs``, ``n_sentences`` and ``sentences``: a DataFrame (``sentence``, ``label``, ``score``,
    ``contribution`` = score / n, its share of the total, and ``driver``: the ``top`` sentences that
    pushed the score most in its direction).
    """
    sentences = split_sentences(text)[:MAX_SENTENCES]
    table = score_texts(solution, sentences, batch_size).rename(columns={"text": "sentence"})
    n = len(table)
    if n == 0:
        return {"score": 0.0, "label": None, "probs": {}, "n_sentences": 0, "sentences": table}
    prob_cols = [f"p_{c}" for c in solution.labels]
    mean_probs = table[prob_cols].mean().to_numpy()
    score = float(table["score"].mean())
    table["contribution"] = table["score"] / n
    direction = np.sign(score) if abs(score) > 1e-9 else 0.0
    pushing = table["contribution"] * direction if direction else table["contribution"].abs()
    table["driver"] = False
    ranked = pushing[pushing > 0].sort_values(ascending=False).index[:top]
    table.loc[ranked, "driver"] = True
    return {"score": score, "label": solution.labels[int(mean_probs.argmax())],
            "probs": dict(zip(solution.labels, map(float, mean_probs))), "n_sentences": n, "sentences": table}
