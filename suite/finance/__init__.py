"""Finance vertical: financial sentiment (negative / neutral / positive) in the FinBERT style,
offline by default on the embedded MiniLM encoder.

    from suite.finance import load_solution, score_texts, score_document, token_attributions
    solution = load_solution()                      # shipped, trained on Financial PhraseBank
    score_texts(solution, ["Operating profit rose to EUR 13.1 mn."])   # label, probs, score
"""

from __future__ import annotations

from suite.core.lazy import lazy_exports

_EXPORTS = {
    "load_phrasebank": "data", "load_labelled_text": "data", "load_news": "data", "phrasebank_split": "data",
    "restrict_to": "data", "agreement_targets": "data", "SENTIMENTS": "data",
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

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
