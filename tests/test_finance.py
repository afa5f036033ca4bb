"""Finance vertical: PhraseBank and news loaders, Hugging Face sequence classifiers, the FinBERT and
LoRA recipes, sentiment scores, long texts, token attribution, the shipped solution and the page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import shared_data

PHRASEBANK = ("finance", "financial_phrasebank")
WORDS = ("[PAD] [UNK] [CLS] [SEP] [MASK] the profit rose fell sales loss company shares strong weak growth "
         "decline , . % net operating increased decreased").split()


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A tiny BERT sequence classifier saved like a hub checkpoint (labels in FinBERT's order)."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    root = tmp_path_factory.mktemp("tiny_bert")
    (root / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    BertTokenizer(str(root / "vocab.txt")).save_pretrained(root)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=3, initializer_range=0.3,
                        id2label={0: "positive", 1: "negative", 2: "neutral"},
                        label2id={"positive": 0, "negative": 1, "neutral": 2})
    torch.manual_seed(0)
    BertForSequenceClassification(config).eval().save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def tiny_solution(tiny_bert):
    from suite.finance import pretrained_solution

    return pretrained_solution(str(tiny_bert))


@pytest.fixture(scope="module")
def shipped():
    from suite.finance import DEFAULT_SOLUTION, load_solution

    if not (DEFAULT_SOLUTION / "config.json").is_file():
        pytest.skip("the shipped solution is not built in this checkout")
    return load_solution()


def _tiny_texts(n: int, seed: int = 0):
    """Texts whose label is decided by one word (rose -> positive, fell -> negative, else neutral)."""
    from suite.core.data import LabeledData

    rng = np.random.default_rng(seed)
    cue = {0: "fell", 1: "the", 2: "rose"}
    labels = rng.integers(0, 3, n)
    texts = [f"{rng.choice(['net', 'operating'])} profit {cue[int(y)]} {rng.choice(['.', '%'])}" for y in labels]
    return LabeledData(items=texts, labels=labels.astype(np.int64), classes=["negative", "neutral", "positive"],
                       modality="text", source="tiny texts")


# ----------------------------------------------------------------------------- data


@pytest.mark.parametrize("agreement,count", [("50", 4846), ("66", 4217), ("75", 3453), ("all", 2264)])
def test_phrasebank_every_agreement_level_loads(agreement, count):
    from suite.finance import load_phrasebank

    data = load_phrasebank(shared_data(*PHRASEBANK), agreement)
    assert len(data) == count and data.classes == ["negative", "neutral", "positive"]
    assert set(np.unique(data.labels)) == {0, 1, 2}
    assert not any(t.endswith("@") or "\ufffd" in t for t in data.items)


def test_phrasebank_encodings_agree_across_files():
    """50Agree is ISO-8859-1 and AllAgree UTF-8 here: each all-agree sentence, accents included, is
    found in 50Agree with the same label only when both are decoded right."""
    from suite.finance.data import load_phrasebank, normalise_text

    root = shared_data(*PHRASEBANK)
    fifty, allagree = load_phrasebank(root, "50"), load_phrasebank(root, "all")
    label_of = {normalise_text(t): y for t, y in zip(fifty.items, fifty.labels)}
    accented = [t for t in allagree.items if any(ord(c) > 127 for c in t)]
    assert accented, "expected some non-ASCII sentences"
    assert all(label_of[normalise_text(t)] == y for t, y in zip(allagree.items, allagree.labels))


def test_phrasebank_split_is_seeded_grouped_and_disjoint():
    from suite.finance import load_phrasebank, phrasebank_split, restrict_to
    from suite.finance.data import normalise_text

    root = shared_data(*PHRASEBANK)
    data = load_phrasebank(root, "50")
    a, b = phrasebank_split(data), phrasebank_split(data)
    assert a["test"].items == b["test"].items
    assert abs(len(a["test"]) / len(data) - 0.2) < 0.01
    train = {normalise_text(t) for t in a["train"].items + a["val"].items}
    assert not train & {normalise_text(t) for t in a["test"].items}
    assert len(data) - len(set(data.groups)) > 0, "50Agree holds duplicate sentences; they must stay together"
    sub = restrict_to(a["test"], load_phrasebank(root, "all"))
    assert 0 < len(sub) < len(a["test"]) and set(sub.items) <= set(a["test"].items)


def test_agreement_targets_soften_labels_by_annotator_agreement(tmp_path):
    """Soft targets follow the strictest agreement file holding the sentence; hard labels stay."""
    from suite.finance import agreement_targets, load_phrasebank
    from suite.finance.data import AGREEMENT_SHARES

    lines = {"all": ["Profit rose .@positive"], "75": ["Sales fell .@negative"],
             "66": ["The board met .@neutral"], "50": ["Shares moved .@positive"]}
    files = {"50": "Sentences_50Agree.txt", "66": "Sentences_66Agree.txt", "75": "Sentences_75Agree.txt",
             "all": "Sentences_AllAgree.txt"}
    order = ["all", "75", "66", "50"]
    for k, key in enumerate(order):  # each file holds its own sentences and every stricter one's
        (tmp_path / files[key]).write_text("\n".join(x for level in order[:k + 1] for x in lines[level]) + "\n",
                                           encoding="iso-8859-1")
    data = load_phrasebank(tmp_path, "50")
    soft = agreement_targets(data, tmp_path)
    assert np.array_equal(soft.labels, data.labels) and data.soft_labels is None
    rows = {t: r for t, r in zip(soft.items, soft.soft_labels)}
    assert np.allclose(rows["Profit rose ."], [0, 0, 1])
    assert np.allclose(rows["Sales fell ."], [AGREEMENT_SHARES["75"], 1 - AGREEMENT_SHARES["75"], 0])
    half = (1 - AGREEMENT_SHARES["66"]) / 2
    assert np.allclose(rows["The board met ."], [half, AGREEMENT_SHARES["66"], half])
    assert np.allclose(rows["Shares moved ."], [0, 1 - AGREEMENT_SHARES["50"], AGREEMENT_SHARES["50"]])
    part = soft.subset([3, 0])
    assert np.allclose(part.soft_labels, soft.soft_labels[[3, 0]])


def test_a_distilled_models_card_names_its_teachers_and_how_to_make_them():
    from suite.finance.solution_card import _teachers

    assert _teachers({"flags": "--recipe lora"}) == ""
    row = {"teachers": ["runs/a", "runs/b"], "teacher_weight": 0.3,
           "flags": "--recipe lora --agreement-targets --teachers runs/a runs/b --teacher-weight 0.3 --seed 2"}
    text = _teachers(row)
    assert "0.3 of each target" in text and "2 teacher runs" in text and "runs/a runs/b" in text
    command = text.split("Each teacher: `")[1]
    assert command.startswith("python benchmarks/finance_phrasebank.py --recipe lora --agreement-targets --seed N")
    assert "--teachers" not in command and "--teacher-weight" not in command and "--seed 2" not in command


def test_the_card_says_how_the_recipe_scored_on_other_splits():
    from suite.finance.solution_card import _other_splits

    fixed = {"test_50agree": {"metrics": {"accuracy": 0.85}}}
    assert _other_splits(fixed) == ""
    text = _other_splits({**fixed, "other_splits": {1: 0.83, 2: 0.84}})
    assert "2 other seeded splits" in text and "0.830-0.840" in text and "0.840 on average over all 3" in text
    assert "scored above every other one" in text
    mixed = _other_splits({**fixed, "other_splits": {1: 0.83, 2: 0.86}})
    assert "above every other" not in mixed and "below every other" not in mixed


def test_labelled_csv_and_jsonl_map_sentiment_aliases(tmp_path):
    from suite.finance import load_labelled_text

    (tmp_path / "a.csv").write_text("text,label\nProfit rose,pos\nSales fell,neg\nMeeting held,neutral\n")
    data = load_labelled_text(tmp_path / "a.csv")
    assert data.classes == ["negative", "neutral", "positive"] and data.labels.tolist() == [2, 0, 1]
    (tmp_path / "b.jsonl").write_text('{"sentence": "Up", "y": "bullish"}\n{"sentence": "Down", "y": "bearish"}\n')
    data = load_labelled_text(tmp_path / "b.jsonl", text_col="sentence", label_col="y")
    assert data.labels.tolist() == [2, 0]
    (tmp_path / "c.csv").write_text("text,label\nA,buy\nB,sell\n")
    assert load_labelled_text(tmp_path / "c.csv").classes == ["buy", "sell"]  # other label sets are kept


def test_news_csv_columns_found_and_bad_rows_dropped(tmp_path):
    from suite.core.errors import SuiteError
    from suite.finance import load_news

    (tmp_path / "n.csv").write_text("published,symbol,headline\n2024-01-02,aapl,Profit rose\n"
                                    "not a date,MSFT,Sales fell\n2024-01-03,MSFT,\n2024-01-03 10:00,msft,Loss\n")
    news = load_news(tmp_path / "n.csv")
    assert list(news.columns) == ["text", "ticker", "date"] and len(news) == 2
    assert news.attrs["dropped"] == 2 and news["ticker"].tolist() == ["AAPL", "MSFT"]
    (tmp_path / "t.csv").write_text("text\nProfit rose\n")
    assert load_news(tmp_path / "t.csv")["ticker"].tolist() == ["ALL"]
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SuiteError, match="no text column"):
        load_news(tmp_path / "x.csv")


# ----------------------------------------------------------------------------- backbones


def test_hf_sequence_classifier_keeps_its_head_and_matches_transformers(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    from suite.core import create_model

    model = create_model(str(tiny_bert), num_classes=3).eval()
    assert model.head_pretrained and model.backbone_info["head_labels"] == ["positive", "negative", "neutral"]
    reference = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    batch = dict(model.tokenizer(["the profit rose", "sales fell sharply ."], padding=True, return_tensors="pt"))
    with torch.no_grad():
        torch.testing.assert_close(model(batch), reference(**batch).logits)
    other = create_model(f"hf:{tiny_bert}", num_classes=2)
    assert not other.head_pretrained  # a different number of classes gets a fresh head on the same encoder


def test_pretrained_head_is_reordered_to_finance_labels(tiny_bert, tiny_solution):
    from transformers import AutoModelForSequenceClassification

    reference = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    batch = tiny_solution.encode(["profit rose strong growth"])
    with torch.no_grad():
        p = reference(**batch).logits.softmax(-1)[0].numpy()  # positive, negative, neutral
    ours = tiny_solution.predict("profit rose strong growth")["probs"]
    np.testing.assert_allclose([ours["positive"], ours["negative"], ours["neutral"]], p, rtol=1e-5)


def test_finbert_recipe_is_registered_and_unfreezes_from_the_top(tiny_bert):
    from suite.core import create_model
    from suite.core.strategies import create_strategy, list_strategies
    from suite.finance import recipe_config

    assert "finbert" in list_strategies() and recipe_config("finbert").warmup == 0.2
    model = create_model(str(tiny_bert), num_classes=3)
    strategy = create_strategy("finbert", groups_per_epoch=1)
    trainable = []
    for epoch in range(3):
        strategy.on_epoch_start(model, epoch, None)
        trainable.append([any(p.requires_grad for p in g) for g in model.param_groups()])
    n = len(trainable[0])  # embeddings, layer 0, layer 1, pooler, head
    assert trainable[0] == [False] * (n - 1) + [True]
    assert trainable[2] == [False] * (n - 3) + [True] * 3
    lrs = [g["lr"] for g in strategy.param_groups(model, 1e-3, 0.0)]
    assert lrs[0] < lrs[-1] and max(lrs) == pytest.approx(1e-3)


@pytest.mark.parametrize("recipe", ["finbert", "lora"])
def test_recipes_learn_a_cue_word_and_lora_stores_a_small_delta(tiny_bert, recipe, tmp_path):
    from suite.core import Solution
    from suite.finance import evaluate_sentiment, save_compact, train_sentiment

    train, test = _tiny_texts(96), _tiny_texts(60, seed=1)
    opts = {"strategy_options": {"groups_per_epoch": 2}} if recipe == "finbert" else {}
    solution, state = train_sentiment(train, None, f"hf:{tiny_bert}", recipe, epochs=6, lr=3e-3, batch_size=8,
                                      **opts)
    acc = evaluate_sentiment(solution, test, "tiny")["metrics"]["accuracy"]
    assert acc > 0.75, f"{recipe}: accuracy {acc} on a one-word rule (chance: about 0.33)"
    path = save_compact(solution, tmp_path / recipe)
    stored = json.loads((path / "config.json").read_text())["weights"]
    reloaded = Solution.load(path)
    np.testing.assert_allclose(reloaded.predict_proba(test.items), solution.predict_proba(test.items), atol=2e-3)
    if recipe == "lora":  # merged adapters: only q/k/v of the 2 layers and the head differ from the base
        assert stored["stored_keys"] == 2 * 3 + 2 and stored["base"] == "pretrained"


def test_mask_tokens_spares_special_tokens_and_masks_every_text():
    from suite.core.text_pretrain import mask_tokens

    long = [2] + [5 + i % 17 for i in range(30)] + [3, 0, 0]  # 30 words, then padding
    ids = torch.tensor([long, [2, 13, 3] + [0] * 31]).repeat(200, 1)
    mask = (ids != 0).long()
    generator = torch.Generator().manual_seed(0)
    masked, targets = mask_tokens(ids, mask, [0, 1, 2, 3, 4], 4, len(WORDS), generator)
    chosen = targets != -100
    assert not chosen[torch.isin(ids, torch.tensor([0, 2, 3]))].any()  # pad, CLS, SEP never
    assert chosen.any(1).all()  # at least one target per text, even a one-word text
    assert torch.equal(targets[chosen], ids[chosen])
    assert 0.13 < chosen[0::2, 1:31].float().mean() < 0.17  # about 15% of the words of the long texts
    assert 0.75 < (masked[chosen] == 4).float().mean() < 0.85  # most chosen words become [MASK]
    assert torch.equal(masked[~chosen], ids[~chosen])


@pytest.mark.parametrize("lora_rank", [None, 2])
def test_continued_pretraining_learns_the_domain_and_keeps_the_model(tiny_bert, lora_rank):
    from suite.core.text_pretrain import continue_pretraining
    from suite.finance.recipes import sentiment_model

    model = sentiment_model(f"hf:{tiny_bert}")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    texts = list(_tiny_texts(64).items)
    report = continue_pretraining(model, texts, epochs=12, lr=1e-2, batch_size=16, lora_rank=lora_rank)
    history = report["history"]
    assert history[-1]["loss"] < 0.6 * history[0]["loss"], history  # the masked words of the domain are learnt
    after = model.state_dict()
    assert set(after) == set(before)  # the MLM head and the adapters are gone again
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and not any(k.startswith("head.") for k in changed)
    if lora_rank:  # only linear weights moved, each by a rank <= lora_rank change
        assert all(k.endswith(".weight") and before[k].ndim == 2 and "embeddings" not in k for k in changed)
        assert max(int(torch.linalg.matrix_rank(after[k] - before[k], atol=1e-5)) for k in changed) <= lora_rank


def test_continued_pretraining_refuses_image_models_and_empty_text(tiny_bert):
    from suite.core import SuiteError, create_model
    from suite.core.text_pretrain import continue_pretraining
    from suite.finance.recipes import sentiment_model

    with pytest.raises(SuiteError, match="text model"):
        continue_pretraining(create_model("small:cnn", num_classes=2, pretrained=False), ["a b"])
    with pytest.raises(SuiteError, match="non-empty"):
        continue_pretraining(sentiment_model(f"hf:{tiny_bert}"), ["profit rose", " ", None])


# ----------------------------------------------------------------------------- scores


def test_sentiment_score_is_positive_minus_negative(tiny_solution):
    from suite.finance import score_texts, sentiment_score

    probs = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    np.testing.assert_allclose(sentiment_score(probs, ["negative", "neutral", "positive"]), [0.6, -0.5])
    df = score_texts(tiny_solution, ["the profit rose", "sales fell"])
    np.testing.assert_allclose(df["score"], df["p_positive"] - df["p_negative"])
    assert df["label"].tolist() == [max(tiny_solution.labels, key=lambda c: r[f"p_{c}"]) for _, r in df.iterrows()]


def test_news_aggregates_per_ticker_and_day_and_charts(tiny_solution, tmp_path):
    from suite.finance import aggregate_news, load_news, score_chart, score_news

    rows = ["date,ticker,text"] + [f"2024-01-0{1 + i % 3} 0{i}:00,{'AB'[i % 2]},{WORDS[5 + i % 9]} profit"
                                   for i in range(10)]
    (tmp_path / "news.csv").write_text("\n".join(rows) + "\n")
    scored = score_news(tiny_solution, load_news(tmp_path / "news.csv"))
    agg = aggregate_news(scored)
    manual = scored.assign(day=scored["date"].dt.normalize()).groupby(["ticker", "day"])["score"].mean()
    np.testing.assert_allclose(agg.set_index(["ticker", "date"])["score"].to_numpy(), manual.to_numpy())
    assert agg["n"].sum() == 10
    fig = score_chart(agg)
    assert len(fig.axes[0].get_lines()) == 2 + 1  # one line per ticker and the zero line


def test_sentence_splitter_keeps_abbreviations_and_numbers():
    from suite.finance import split_sentences

    text = ("Nokia Corp. said net sales rose 12.5 % to EUR 3.2 bn. Mr. Smith of Acme Inc. was named CEO! "
            "Profit fell.\n\nOutlook is unchanged")
    assert split_sentences(text) == ["Nokia Corp. said net sales rose 12.5 % to EUR 3.2 bn.",
                                     "Mr. Smith of Acme Inc. was named CEO!", "Profit fell.", "Outlook is unchanged"]


def test_document_score_is_the_mean_and_drivers_point_its_way(tiny_solution):
    from suite.finance import score_document

    result = score_document(tiny_solution, "The profit rose. Sales fell. Net loss. Strong growth. Shares rose.")
    table = result["sentences"]
    assert result["n_sentences"] == 5
    assert result["score"] == pytest.approx(table["contribution"].sum())
    drivers = table[table["driver"]]
    assert 1 <= len(drivers) <= 3
    assert (np.sign(drivers["score"]) == np.sign(result["score"])).all()
    same_way = table.loc[~table["driver"] & (np.sign(table["score"]) == np.sign(result["score"])), "score"]
    assert same_way.empty or drivers["score"].abs().min() >= same_way.abs().max()


def test_integrated_gradients_sum_to_the_score_difference(tiny_solution):
    from suite.finance import token_attributions

    result = token_attributions(tiny_solution, "net profit rose strong growth", steps=32)
    words = [w for w, _ in result["tokens"]]
    assert words == ["net", "profit", "rose", "strong", "growth"]
    total = sum(v for _, v in result["tokens"])
    gap = result["target_value"] - result["baseline_value"]
    assert abs(gap) > 1e-3 and total == pytest.approx(gap, rel=0.02, abs=1e-4)
    assert abs(result["delta"]) < 0.02 * abs(gap) + 1e-4


# ----------------------------------------------------------------------------- shipped solution


def test_shipped_solution_is_small_offline_and_sensible(shipped):
    from suite.finance import DEFAULT_SOLUTION, score_texts

    size = (DEFAULT_SOLUTION / "model.safetensors").stat().st_size
    assert size < 8e6, f"{size / 1e6:.1f} MB: the delta should stay a few MB"
    assert shipped.model.spec == "embedded:minilm_l6" and shipped.preprocess.max_length == 64
    cfg = json.loads((DEFAULT_SOLUTION / "config.json").read_text())
    assert "test split" in cfg["metrics"]["data"] and len(cfg["metrics"]["ci95"]["accuracy"]) == 2
    df = score_texts(shipped, ["Operating profit rose to EUR 13.1 mn from EUR 8.7 mn.",
                               "Operating loss widened and net sales decreased by 20 %.",
                               "The annual general meeting will be held in Helsinki."])
    assert df["label"].tolist() == ["positive", "negative", "neutral"]
    assert df["score"].iloc[0] > 0.5 > -0.5 > df["score"].iloc[1]


def test_shipped_solution_attributions_blame_the_right_word(shipped):
    from suite.finance import token_attributions

    result = token_attributions(shipped, "Operating profit fell sharply in the third quarter.")
    top_word, top_value = min(result["tokens"], key=lambda wv: wv[1])
    assert top_word in {"fell", "sharply"} and top_value < 0
    gap = result["target_value"] - result["baseline_value"]
    assert abs(result["delta"]) < 0.05 * abs(gap) + 0.05


def test_shipped_solution_accuracy_on_phrasebank_test_slice(shipped):
    """The stored metrics are reproducible: 200 test sentences agree with the stored accuracy's CI."""
    from suite.finance import evaluate_sentiment, load_phrasebank, phrasebank_split

    data = load_phrasebank(shared_data(*PHRASEBANK), "50")
    test = phrasebank_split(data)["test"]
    test = test.subset(np.random.default_rng(0).permutation(len(test))[:200])
    acc = evaluate_sentiment(shipped, test, "slice")["metrics"]["accuracy"]
    assert abs(acc - shipped.metrics["accuracy"]) < 0.08


# ----------------------------------------------------------------------------- app page


def test_finance_page_scores_text_document_and_news(tiny_bert):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    page = str(Path(__file__).resolve().parents[1] / "apps" / "views" / "finance.py")
    at = AppTest.from_file(page, default_timeout=120).run()
    assert not at.exception
    assert [t.label for t in at.tabs][:4] == ["Try", "Adapt", "Compare", "Explore"]
    at.text_input(key="fin_model").set_value(str(tiny_bert)).run()
    assert not at.exception
    at.text_area(key="fin_text").set_value("net profit rose").run()
    labels = {m.label: m.value for m in at.metric}
    assert labels["Label"] in {"negative", "neutral", "positive"}
    assert -1 <= float(labels["Score P(pos) - P(neg)"]) <= 1
    assert any("rgba" in m.value for m in at.markdown)  # token attributions rendered
    assert labels["Sentences"] == "4"
    at.file_uploader(key="fin_news").upload("news.csv", b"date,ticker,text\n2024-01-02,ABC,profit rose\n"
                                            b"2024-01-02,ABC,sales fell\n2024-01-03,XYZ,net loss\n", "text/csv").run()
    assert not at.exception
    assert len(at.dataframe) == 2 and "3 items, 2 ticker(s)" in " ".join(m.value for m in at.markdown)
    at.file_uploader(key="fin_news").upload("bad.csv", b"a,b\n1,2\n", "text/csv").run()
    assert not at.exception and any("no text column" in e.value for e in at.error)
