"""Finance: sentiment of financial sentences, long texts and news files (FinBERT-style, offline)."""

from pathlib import Path
import sys

import pandas as pd
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a source checkout

from suite.core.errors import SuiteError  # noqa: E402

EXAMPLE = "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007."
LONG_EXAMPLE = ("Net sales increased by 12 % to EUR 1.2 bn, driven by strong demand in Asia. "
                "Operating profit fell to EUR 40 mn due to restructuring costs. "
                "The company will hold its annual general meeting in Helsinki on 15 March. "
                "The board expects profitability to improve significantly in the second half.")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


@st.cache_resource(show_spinner="Loading the sentiment model...")
def sentiment_solution(location: str):
    """The shipped offline solution (empty location), a Solution folder, or an hf: classifier."""
    from suite.finance import load_solution

    return load_solution(location or None)


def _ood_warning(flags) -> None:
    if any(bool(f) for f in flags):
        st.warning("Out of distribution: this input is unlike the sentences the model was trained on "
                   "(financial news); treat the result with caution.")


def _sentence(solution) -> None:
    from suite.finance import attribution_html, score_texts, token_attributions

    st.subheader("A sentence")
    text = st.text_area("Financial sentence", EXAMPLE, key="fin_text", height=80)
    if not text.strip():
        return
    row = score_texts(solution, [text]).iloc[0]
    left, mid, right = st.columns(3)
    left.metric("Label", row["label"])
    mid.metric("Score P(pos) - P(neg)", f"{row['score']:+.3f}")
    right.metric("Confidence", f"{row[f'p_{row.label}']:.1%}")
    probs = pd.DataFrame({"probability": [row[f"p_{c}"] for c in solution.labels]}, index=solution.labels)
    st.bar_chart(probs, horizontal=True, height=160)
    if "ood" in row:
        _ood_warning([row["ood"]])
    if st.toggle("Explain: token attributions (integrated gradients)", value=True, key="fin_explain"):
        try:
            result = token_attributions(solution, text)
        except SuiteError as exc:
            st.info(f"No token attribution for this model: {exc}")
            return
        st.markdown(attribution_html(result["tokens"]), unsafe_allow_html=True)
        st.caption(f"Green words push the score up (towards positive), red ones down. The attributions sum to "
                   f"{result['target_value'] - result['baseline_value']:+.3f} = logit(pos) - logit(neg) at "
                   f"the sentence minus at an all-[PAD] sentence (approximation error {result['delta']:+.1e}).")


def _document(solution) -> None:
    from suite.finance import score_document

    st.subheader("A long text")
    text = st.text_area("Earnings-call paragraph, filing excerpt or article", LONG_EXAMPLE, key="fin_doc",
                        height=140)
    if not text.strip():
        return
    result = score_document(solution, text)
    left, mid, right = st.columns(3)
    left.metric("Overall label", result["label"])
    mid.metric("Mean score", f"{result['score']:+.3f}")
    right.metric("Sentences", result["n_sentences"])
    table = result["sentences"]
    shown = table[["sentence", "label", "score", "contribution", "driver"]]
    st.dataframe(shown.style.format({"score": "{:+.3f}", "contribution": "{:+.3f}"}),
                 hide_index=True, width="stretch", key="fin_doc_table")
    drivers = table[table["driver"]]
    if len(drivers):
        st.caption("Drivers (moved the overall score most in its direction): "
                   + " | ".join(f"{s[:80]} ({v:+.2f})" for s, v in zip(drivers["sentence"], drivers["score"])))
    if "ood" in table:
        _ood_warning(table["ood"])


def _news(solution) -> None:
    from suite.finance import aggregate_news, load_news, score_chart, score_news

    st.subheader("A news file")
    upload = st.file_uploader("CSV with a text column (text/headline), optional date and ticker columns",
                              type=["csv", "tsv", "txt"], key="fin_news")
    if upload is None:
        return
    if upload.size > MAX_UPLOAD_BYTES:
        st.error(f"{upload.name}: {upload.size / 1e6:.1f} MB is more than the 20 MB limit.")
        return
    try:
        news = load_news(upload)
    except SuiteError as exc:
        st.error(str(exc))
        return
    freq = st.radio("Aggregate per", ["D", "W", "M"], format_func={"D": "day", "W": "week", "M": "month"}.get,
                    horizontal=True, key="fin_freq")
    scored = score_news(solution, news)
    agg = aggregate_news(scored, freq)
    note = f" ({news.attrs['dropped']} rows without text or readable date left out)" if news.attrs["dropped"] else ""
    st.write(f"{len(scored)} items, {scored['ticker'].nunique()} ticker(s){note}.")
    st.dataframe(agg, hide_index=True, width="stretch", key="fin_news_table")
    st.pyplot(score_chart(agg), clear_figure=True)
    if "ood" in scored:
        _ood_warning(scored["ood"])
    st.download_button("Download scored items (CSV)", scored.to_csv(index=False).encode(), "scored_news.csv",
                       "text/csv", key="fin_news_download")


def try_tab() -> None:
    location = st.text_input("Model: empty for the shipped offline model; or a Solution folder; or "
                             "hf:ProsusAI/finbert (needs network or a cache)", "", key="fin_model").strip()
    from apps.adapt_view import solution_choice

    try:
        solution = solution_choice("finance", {"this model": lambda: sentiment_solution(location)})
    except SuiteError as exc:
        st.error(str(exc))
        return
    if solution is None:
        return
    _sentence(solution)
    _document(solution)
    _news(solution)
    with st.expander("Model card"):
        st.markdown(solution.card or solution.default_card())


st.title("Finance: financial sentiment")
st.caption("Negative / neutral / positive from an investor's point of view, FinBERT-style, on a bundled "
           "encoder that works offline. Score = P(positive) - P(negative).")
try_, adapt, compare, explore = st.tabs(["Try", "Adapt", "Compare", "Explore"])
with try_:
    try_tab()
with adapt:
    from apps.adapt_view import adapt_view

    adapt_view("finance", modality="text", backbone="embedded:minilm_l6", strategy="lora", epochs=3, lr=1e-3,
               task_note="A CSV or JSON with `text` and `label` columns (negative/neutral/positive, or your own "
                         "labels). LoRA trains adapters on the attention of the bundled encoder; on a CPU a few "
                         "thousand sentences take tens of minutes.")
with compare:
    from apps.compare_view import compare_view

    compare_view("finance")
with explore:
    from apps.explore_view import explore_view

    explore_view("finance_explore", default_backbone="embedded:minilm_l6")
