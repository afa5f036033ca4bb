"""Finance vertical: financial sentiment (negative / neutral / positive) in the FinBERT style,
offline by default on the embedded MiniLM encoder.

    from suite.finance import load_solution, score_texts, score_document, token_attributions
    solution = load_solution()                      # shipped, trained on Financial PhraseBank
    score_texts(solution, ["Operating profit rose to EUR 13.1 mn."])   # label, probs, score
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_phrasebank": "data", "load_labelled_text": "data", "load_news": "data", "phrasebank_split": "data",
    "restrict_to": "data", "SENTIMENTS": "data",
    "load_solution": "sentiment", "score_texts": "sentiment", "sentiment_score": "sentiment",
    "DEFAULT_SOLUTION": "sentiment",
    "score_news": "news", "aggregate_news": "news", "score_chart": "news",
    "split_sentences": "documents", "score_document": "documents",
    "token_attributions": "attribution", "attribution_html": "attribution",
    "RECIPES": "recipes", "recipe_config": "recipes", "train_sentiment": "recipes", "sentiment_model": "recipes",
    "save_compact": "recipes",
    "pretrained_solution": "classifier", "align_pretrained_head": "classifier",
    "evaluate_sentiment": "evaluation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
