"""Batch scoring of news: per-item scores, aggregation per ticker and day, a score-over-time chart."""

from __future__ import annotations

from .sentiment import score_texts


def score_news(solution, news, batch_size: int = 64):
    """``news`` (a DataFrame from :func:`suite.finance.data.load_news`) with ``label``, ``score`` and
    class probabilities added. Identical texts are scored once."""
    unique = news["text"].drop_duplicates().tolist()
    scored = score_texts(solution, unique, batch_size).set_index("text")
    out = news.join(scored, on="text")
    out.attrs.update(news.attrs)
    return out


def aggregate_news(scored, freq: str = "D"):
    """Mean score per ticker and period (``freq``: ``D`` day, ``W`` week, ``M`` month).

    Columns: ``ticker``, ``date`` (period start), ``score`` (mean), ``n`` (items), ``positive`` /
    ``negative`` (share of items so labelled), ``score_sem`` (standard error of the mean; 0 for one item).
    """
    import pandas as pd

    df = scored.copy()
    if df["date"].isna().all():
        df["date"] = pd.NaT
        keys = ["ticker"]
    else:
        df["date"] = df["date"].dt.tz_localize(None) if getattr(df["date"].dt, "tz", None) else df["date"]
        df["date"] = df["date"].dt.to_period(freq).dt.start_time
        keys = ["ticker", "date"]
    df["is_pos"] = df["label"] == "positive"
    df["is_neg"] = df["label"] == "negative"
    grouped = df.groupby(keys, sort=True)
    out = grouped.agg(score=("score", "mean"), n=("score", "size"), positive=("is_pos", "mean"),
                      negative=("is_neg", "mean"), score_std=("score", "std")).reset_index()
    out["score_sem"] = (out.pop("score_std").fillna(0.0) / out["n"] ** 0.5).fillna(0.0)
    return out


def score_chart(aggregated, tickers=None, max_tickers: int = 8):
    """A matplotlib Figure of the mean score over time, one line per ticker (the most covered
    ``max_tickers`` when ``tickers`` is None), with +-1 standard-error bands."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    if "date" not in aggregated or aggregated["date"].isna().all():
        ax.bar(aggregated["ticker"], aggregated["score"], color=["#2a9d8f" if s >= 0 else "#e76f51"
                                                                 for s in aggregated["score"]])
        ax.set_ylabel("mean score")
    else:
        if tickers is None:
            tickers = aggregated.groupby("ticker")["n"].sum().sort_values(ascending=False).index[:max_tickers]
        for ticker in tickers:
            part = aggregated[aggregated["ticker"] == ticker].sort_values("date")
            line, = ax.plot(part["date"], part["score"], marker="o", ms=3, label=str(ticker))
            ax.fill_between(part["date"], part["score"] - part["score_sem"], part["score"] + part["score_sem"],
                            color=line.get_color(), alpha=0.15, linewidth=0)
        ax.legend(loc="best", fontsize=8, ncol=2)
        ax.set_ylabel("mean sentiment score")
        fig.autofmt_xdate()
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_title("Sentiment score = P(positive) - P(negative)")
    fig.tight_layout()
    return fig
