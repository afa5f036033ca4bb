"""Finance text data: Financial PhraseBank files, labelled CSV/JSON text, unlabelled news CSVs.

Sentiment classes are always ``negative, neutral, positive`` (in that order), whatever the source
calls them, so every finance model and score agrees on what column 2 means.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import numpy as np

from suite.core.data import LabeledData, from_text_csv, split_indices
from suite.core.errors import SuiteError

SENTIMENTS = ["negative", "neutral", "positive"]
AGREEMENTS = {"50": "Sentences_50Agree.txt", "66": "Sentences_66Agree.txt", "75": "Sentences_75Agree.txt",
              "all": "Sentences_AllAgree.txt"}
LABEL_ALIASES = {"neg": "negative", "negative": "negative", "bearish": "negative", "-1": "negative",
                 "neu": "neutral", "neutral": "neutral", "0": "neutral",
                 "pos": "positive", "positive": "positive", "bullish": "positive", "1": "positive"}


def normalise_text(text: str) -> str:
    """The duplicate key of a sentence: NFKC, lowercased, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _read_text(path: Path) -> str:
    """UTF-8 when the bytes are valid UTF-8 (AllAgree is, in some copies), else ISO-8859-1 (the release)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("iso-8859-1")


def phrasebank_file(path, agreement: str = "50") -> Path:
    """The ``Sentences_<agreement>Agree.txt`` file in a PhraseBank folder (or ``path`` itself)."""
    path = Path(path)
    if path.is_file():
        return path
    key = str(agreement).lower().replace("agree", "").rstrip("%")
    if key not in AGREEMENTS:
        raise SuiteError(f"agreement must be one of {', '.join(AGREEMENTS)}, got {agreement!r}")
    file = path / AGREEMENTS[key]
    if not file.is_file():
        raise SuiteError(f"{file}: not found; a Financial PhraseBank folder holds {', '.join(AGREEMENTS.values())}")
    return file


def load_phrasebank(path, agreement: str = "50") -> LabeledData:
    """Financial PhraseBank ``sentence@label`` lines (any agreement level) as LabeledData.

    ``path`` is the release folder (pick the file with ``agreement``: 50, 66, 75 or all) or one file.
    """
    file = phrasebank_file(path, agreement)
    texts, labels = [], []
    for n, line in enumerate(_read_text(file).splitlines(), 1):
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("@")
        label = label.strip().lower()
        if not sep or label not in SENTIMENTS:
            raise SuiteError(f"{file}: line {n} is not 'sentence@negative|neutral|positive': {line[:80]!r}")
        texts.append(sentence.strip())
        labels.append(SENTIMENTS.index(label))
    if not texts:
        raise SuiteError(f"{file}: no sentences")
    return LabeledData(items=texts, labels=np.array(labels, dtype=np.int64), classes=list(SENTIMENTS),
                       modality="text", groups=[normalise_text(t) for t in texts],
                       source=f"Financial PhraseBank {file.name}", task="multiclass")


def load_labelled_text(path, text_col: str = "text", label_col: str = "label") -> LabeledData:
    """Labelled texts from CSV/TSV/JSON/JSONL (columns ``text_col``, ``label_col``) or a
    ``sentence@label`` ``.txt`` file. Sentiment labels (``pos``, ``bullish``, ``-1``...) are mapped
    to ``negative/neutral/positive``; any other label set is kept as is."""
    path = Path(path)
    if path.suffix.lower() == ".txt":
        return load_phrasebank(path)
    data = from_text_csv(path, text_col=text_col, label_col=label_col)
    mapped = [LABEL_ALIASES.get(str(c).strip().lower()) for c in data.classes]
    if all(mapped):
        index = np.array([SENTIMENTS.index(m) for m in mapped])
        labels = np.where(data.labels >= 0, index[np.maximum(data.labels, 0)], -1)
        data = LabeledData(items=data.items, labels=labels, classes=list(SENTIMENTS), modality="text",
                           source=data.source, task="multiclass", warnings=data.warnings)
    data.groups = [normalise_text(str(t)) for t in data.items]
    return data


def phrasebank_split(data: LabeledData, test: float = 0.2, val: float = 0.1, seed: int = 42) -> dict[str, LabeledData]:
    """Seeded, stratified ``train``/``val``/``test`` parts; copies of a sentence (same normalised text)
    always land in the same part, so no test sentence is ever trained on."""
    groups = data.groups or [normalise_text(t) for t in data.items]
    idx = split_indices(data.labels, val=val, test=test, groups=groups, seed=seed)
    parts = {name: data.subset(i) for name, i in idx.items()}
    overlap = {normalise_text(t) for t in parts["train"].items} & {normalise_text(t) for t in parts["test"].items}
    if overlap:  # cannot happen with grouped splits; checked because the claim matters
        raise SuiteError(f"{len(overlap)} test sentence(s) also in training")
    return parts


def restrict_to(data: LabeledData, reference: LabeledData) -> LabeledData:
    """Items of ``data`` whose normalised text is in ``reference``, labelled as in ``reference``
    (e.g. the all-agree sentences inside a 50Agree test split)."""
    label_of = {normalise_text(t): int(y) for t, y in zip(reference.items, reference.labels)}
    keep = [i for i, t in enumerate(data.items) if normalise_text(t) in label_of]
    part = data.subset(keep)
    part.labels = np.array([label_of[normalise_text(t)] for t in part.items], dtype=np.int64)
    part.source = f"{data.source} restricted to {reference.source}"
    return part


# Majority share assumed for a sentence whose highest PhraseBank agreement level is the key: the
# middle of its band (all annotators; 75-99%; 66-74%; 50-65%).
AGREEMENT_SHARES = {"all": 1.0, "75": 0.85, "66": 0.70, "50": 0.58}


def agreement_targets(data: LabeledData, path, shares: dict | None = None) -> LabeledData:
    """``data`` (PhraseBank sentences) with soft training targets from annotator agreement.

    Each sentence's majority class gets the share of its highest agreement level in the release at
    ``path`` (``AGREEMENT_SHARES``: 1.0 when every annotator agreed, 0.58 when only half did); the
    rest goes to neutral for a positive or negative sentence and is split between positive and
    negative for a neutral one. Hard labels are unchanged, so splits and metrics are too.
    """
    shares = {**AGREEMENT_SHARES, **(shares or {})}
    level = {}
    for key in ("50", "66", "75", "all"):  # later (stricter) files overwrite earlier ones
        for text in load_phrasebank(path, key).items:
            level[normalise_text(text)] = key
    neutral = SENTIMENTS.index("neutral")
    soft = np.zeros((len(data), len(SENTIMENTS)), dtype=np.float32)
    for row, (text, label) in enumerate(zip(data.items, data.labels)):
        share = shares[level.get(normalise_text(text), "50")]
        if label == neutral:
            soft[row] = (1.0 - share) / 2
        else:
            soft[row, neutral] = 1.0 - share
        soft[row, label] = share
    out = data.subset(np.arange(len(data)))
    out.soft_labels = soft
    return out


_DATE_COLUMNS = ("date", "datetime", "time", "timestamp", "published", "published_at")
_TICKER_COLUMNS = ("ticker", "symbol", "stock", "company")
_TEXT_COLUMNS = ("text", "headline", "title", "sentence", "body", "content", "news")


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...], role: str, path) -> str | None:
    lower = {c.lower(): c for c in columns}
    if wanted:
        if wanted not in columns:
            raise SuiteError(f"{path}: no {role} column {wanted!r}; columns: {columns}")
        return wanted
    return next((lower[c] for c in candidates if c in lower), None)


def load_news(path_or_buffer, text_col: str | None = None, date_col: str | None = None,
              ticker_col: str | None = None, max_rows: int = 200_000):
    """An unlabelled news CSV as a DataFrame with columns ``date`` (datetime), ``ticker``, ``text``.

    Columns are found by name (``date``/``published``..., ``ticker``/``symbol``..., ``text``/
    ``headline``...) unless given. Rows without text or with an unreadable date are dropped and
    counted in ``df.attrs["dropped"]``; a missing ticker column gives ticker ``"ALL"``.
    """
    import pandas as pd

    name = getattr(path_or_buffer, "name", path_or_buffer)
    raw = path_or_buffer.read() if hasattr(path_or_buffer, "read") else Path(path_or_buffer).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    first = text.split("\n", 1)[0]
    delimiter = max(",\t;|", key=first.count) if any(c in first for c in ",\t;|") else ","
    try:
        df = pd.read_csv(io.StringIO(text), nrows=max_rows, sep=delimiter)
    except (ValueError, pd.errors.ParserError) as exc:
        raise SuiteError(f"{name}: not a readable CSV ({exc})") from None
    cols = [str(c) for c in df.columns]
    df.columns = cols
    text = _pick(cols, text_col, _TEXT_COLUMNS, "text", name)
    if text is None:
        raise SuiteError(f"{name}: no text column (looked for {', '.join(_TEXT_COLUMNS)}); columns: {cols}")
    date = _pick(cols, date_col, _DATE_COLUMNS, "date", name)
    ticker = _pick(cols, ticker_col, _TICKER_COLUMNS, "ticker", name)
    out = pd.DataFrame({"text": df[text].astype("string").fillna("").str.strip()})
    out["ticker"] = df[ticker].astype("string").fillna("").str.strip().str.upper() if ticker else "ALL"
    out["date"] = pd.to_datetime(df[date], errors="coerce", utc=False, format="mixed") if date else pd.NaT
    keep = out["text"].str.len() > 0
    if date:
        keep &= out["date"].notna()
    dropped = int((~keep).sum())
    out = out[keep].reset_index(drop=True)
    out.attrs["dropped"] = dropped
    out.attrs["source"] = str(name)
    if out.empty:
        raise SuiteError(f"{name}: no rows with text" + (" and a readable date" if date else ""))
    return out
