"""Financial PhraseBank: finance recipes on the embedded MiniLM encoder vs the FinBERT anchor.

Fixed, seeded split of Sentences_50Agree (test 20%, validation 10%; copies of a sentence stay in one
part); metrics on the test split and on its all-agree sentences, with 95% bootstrap CIs.

    python benchmarks/finance_phrasebank.py --recipe lora --save suite/finance/solutions/phrasebank_minilm
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import DATA, RESULTS, ci_cell, publish, require, set_threads  # noqa: E402

PHRASEBANK = DATA / "finance" / "financial_phrasebank"
ANCHOR = "FinBERT (Araci 2019, BERT-base, 110M params): 0.86 / F1 0.84 on 50Agree, 0.97 / 0.95 on all-agree"


def splits():
    """The fixed PhraseBank parts and the all-agree sentences of the test part."""
    from suite.finance.data import load_phrasebank, phrasebank_split, restrict_to

    data = load_phrasebank(require(PHRASEBANK), "50")
    parts = phrasebank_split(data)
    parts["test_allagree"] = restrict_to(parts["test"], load_phrasebank(PHRASEBANK, "all"))
    return parts


def run(recipe: str, save: str | None, limit: int | None, epochs: int | None, threads: int,
        pretrain: dict | None = None, agreement: bool = False, seed: int = 0) -> dict:
    """Train ``recipe`` (after masked-language-model pretraining on the training sentences when
    ``pretrain`` is given; on soft targets from annotator agreement with ``agreement``) and evaluate
    it; with ``save``, also ship it."""
    machine = set_threads(threads)
    from suite.finance.recipes import DEFAULT_BACKBONE, train_sentiment

    parts = splits()
    train = parts["train"] if not limit else parts["train"].subset(range(limit))
    if agreement:
        from suite.finance.data import agreement_targets

        train = agreement_targets(train, PHRASEBANK)
    t0 = time.perf_counter()

    def log(event, state):
        if event == "epoch_end":
            print(json.dumps(state.history[-1]), flush=True)
        elif event == "batch_end" and state.step % 20 == 0:
            print(f"step {state.step}/{state.total_steps} {time.perf_counter() - t0:.0f}s", flush=True)

    overrides = {"seed": seed, **({"epochs": epochs} if epochs else {})}
    if pretrain:
        pretrain = {**pretrain, "progress": lambda h: print(json.dumps({"pretrain": h}), flush=True)}
    solution, state = train_sentiment(train, parts["val"], DEFAULT_BACKBONE, recipe, callbacks=[log],
                                      name="phrasebank_minilm", pretrain=pretrain, **overrides)
    name = recipe if not pretrain else (f"mlm{pretrain['epochs']}" + (f"-lora{pretrain['lora_rank']}" if
                                                                       pretrain.get("lora_rank") else "") + f"+{recipe}")
    name += ("+agree" if agreement else "") + (f"_e{epochs}" if epochs else "") + (f"_s{seed}" if seed else "")
    flags = (f" --pretrain-epochs {pretrain['epochs']}" if pretrain else "") + \
        (" --agreement-targets" if agreement else "") + (f" --epochs {epochs}" if epochs else "") + \
        (f" --seed {seed}" if seed else "")
    row = {"recipe": name, "seed": seed, "flags": f"--recipe {recipe}{flags}", "agreement_targets": agreement, "continued_pretraining": (solution.recipe or {}).get("continued_pretraining"), "backbone": DEFAULT_BACKBONE, "train_items": len(train), "val_items": len(parts["val"]),
           "train_seconds": round(time.perf_counter() - t0, 1), "best_epoch": state.best_epoch,
           "history": state.history, "machine": machine + " (shared with other jobs)"}
    if save:
        from suite.finance.recipes import save_compact

        save_compact(solution, save)
        return finalize(save, row, parts)
    return evaluate(solution, row, parts)


def evaluate(solution, row: dict, parts: dict) -> dict:
    from suite.finance.evaluation import evaluate_sentiment

    row["test_50agree"] = evaluate_sentiment(solution, parts["test"], "test split of 50Agree")
    row["test_allagree"] = evaluate_sentiment(solution, parts["test_allagree"],
                                              "all-agree sentences of that test split")
    (RESULTS / f"finance_phrasebank_{row['recipe']}.json").write_text(json.dumps(row, indent=2) + "\n")
    return row


def finalize(path, row: dict, parts: dict | None = None) -> dict:
    """Reload the saved (float16) solution, fit its input guard on the training sentences, evaluate
    what ships, and write the metrics and model card into it."""
    from suite.core import Solution
    from suite.finance.solution_card import write_card

    parts = parts or splits()
    path = Path(path)
    solution = Solution.load(path)
    solution.fit_guard(parts["train"])
    row = evaluate(solution, row, parts)
    write_card(solution, path, row)
    row["solution_bytes"] = (path / "model.safetensors").stat().st_size
    row["folder_bytes"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    write_card(solution, path, row)
    (RESULTS / f"finance_phrasebank_{row['recipe']}.json").write_text(json.dumps(row, indent=2) + "\n")
    return row


def stored_runs() -> list[dict]:
    """Every run's row written by this benchmark (``finance_phrasebank_<recipe>.json``)."""
    return [json.loads(f.read_text()) for f in sorted(RESULTS.glob("finance_phrasebank_*.json"))]


def table(runs: list[dict]) -> str:
    rows = []
    for r in runs:
        a, b = r["test_50agree"], r["test_allagree"]
        size = f"{r['solution_bytes'] / 1e6:.1f} MB" if r.get("solution_bytes") else "-"
        rows.append(f"| {r['recipe']} | {ci_cell(a)} | {ci_cell(a, 'macro_f1')} | {ci_cell(b)} | "
                    f"{ci_cell(b, 'macro_f1')} | {r['train_seconds'] / 60:.0f} min | {size} |")
    head = ("| recipe (embedded:minilm_l6, 22.7M params, max length 64) | accuracy 50Agree test | macro-F1 | "
            "accuracy all-agree test | macro-F1 | training time | stored delta |\n|---|---|---|---|---|---|---|\n")
    return (f"Financial PhraseBank, seeded 20% test split of Sentences_50Agree (n={r['test_50agree']['n']}) "
            f"and its all-agree sentences (n={r['test_allagree']['n']}); 95% bootstrap CIs. "
            f"Anchor: {ANCHOR}. Machine: {r['machine']}.\n\n" + head + "\n".join(rows) + "\n" + seed_table(runs))


def seed_table(runs: list[dict]) -> str:
    """Mean and range over the seeds of each recipe run with more than one seed (``_sN`` rows)."""
    import re
    from collections import defaultdict

    groups = defaultdict(list)
    for r in runs:
        groups[re.sub(r"_s\d+$", "", r["recipe"])].append(r)
    rows = []
    for name, runs in groups.items():
        if len(runs) < 2:
            continue
        cells = []
        for values in ([h["history"][h["best_epoch"]]["val_accuracy"] for h in runs],
                       [h["test_50agree"]["metrics"]["accuracy"] for h in runs],
                       [h["test_50agree"]["metrics"]["macro_f1"] for h in runs],
                       [h["test_allagree"]["metrics"]["accuracy"] for h in runs]):
            cells.append(f"{sum(values) / len(values):.3f} ({min(values):.3f}-{max(values):.3f})")
        seeds = ", ".join(str(h.get("seed", 0)) for h in runs)
        rows.append(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    if not rows:
        return ""
    return ("\nOver seeds (initialisation and batch order; the split is fixed): mean (range).\n\n"
            "| recipe | seeds | validation accuracy (chosen epoch) | accuracy 50Agree test | macro-F1 | "
            "accuracy all-agree test |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="lora")
    parser.add_argument("--save", default=None, help="write the Solution here (float16 delta)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N training sentences")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pretrain-epochs", type=int, default=0,
                        help="first continue masked-language-model pretraining on the training sentences")
    parser.add_argument("--pretrain-lr", type=float, default=1e-4)
    parser.add_argument("--pretrain-lora", type=int, default=None, help="... through LoRA adapters of this rank")
    parser.add_argument("--agreement-targets", action="store_true",
                        help="train on soft targets from annotator agreement (suite.finance.data.agreement_targets)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and batch order (the split stays fixed)")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--finalize-only", action="store_true",
                        help="re-evaluate the solution at --save and rewrite its card (no training)")
    args = parser.parse_args()
    if args.finalize_only:
        set_threads(args.threads)
        finalize(args.save, json.loads((RESULTS / f"finance_phrasebank_{args.recipe}.json").read_text()))
    elif not args.table_only:
        run(args.recipe, args.save, args.limit, args.epochs, args.threads,
            {"epochs": args.pretrain_epochs, "lr": args.pretrain_lr, "lora_rank": args.pretrain_lora}
            if args.pretrain_epochs else None, args.agreement_targets, args.seed)
    runs = stored_runs()
    publish("finance_phrasebank", table(runs), {"rows": runs})
