"""How tomato test accuracy grows with the number of finished runs whose predictions are averaged.

Single runs of every recipe tried sit near 97.5%, and their errors are mostly low-confidence and differ
from run to run. This scores, on each split where several finished runs ``{recipe}_s{split}`` share the
test split, the mean prediction of every subset of k runs (an ensemble: k networks per photo), for
every k. Each run predicts its split's 200 test photos once.

    .venv/bin/python benchmarks/agriculture_ensembles.py --runs runs/cpu288 --splits 0 1 \
        --recipes field_mix288 light288 field_mix288c field_mix288d

Writes benchmarks/results/agriculture_ensembles.md and .json (``--name`` changes the stem).
``--update-card DIR`` writes the pooled accuracy of every run of a split averaged (the ensemble
recipe whose members are ``--recipes``) into the shipped ensemble's card, as its *Other splits*:

    .venv/bin/python benchmarks/agriculture_ensembles.py --runs runs/cpu288 --splits 0 1 2 \
        --recipes field_mix288 field_mix288c light288 --name agriculture_ensemble3 \
        --update-card suite/agriculture/solutions/tomato_ensemble
"""

from __future__ import annotations

from _common import TOMATO, publish, require, set_threads

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from agriculture_splits import recorded_runs, score, wilson


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="PlantVillage tomato folders (default ../shared/data/...)")
    p.add_argument("--runs", type=Path, default=Path("runs/cpu288"))
    p.add_argument("--splits", type=int, nargs="+", default=[0, 1])
    p.add_argument("--recipes", nargs="+", default=["field_mix288", "light288", "field_mix288c", "field_mix288d"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default="agriculture_ensembles")
    p.add_argument("--update-card", type=Path, metavar="DIR",
                   help="shipped ensemble whose members are --recipes: write the pooled score as its Other splits")
    a = p.parse_args(argv)
    set_threads(a.threads)
    from suite.agriculture.data import load_leaves
    from suite.agriculture.train import leaf_splits
    from suite.core import Solution
    from suite.core.distill import teacher_probabilities

    started = time.perf_counter()
    data = load_leaves(a.data or str(require(TOMATO)))
    per_split = {}  # split -> (truth, {recipe: probabilities})
    for split in a.splits:
        test = data.subset(leaf_splits(data, seed=split)["test"])
        runs = [r for r in a.recipes if score(a.runs / f"{r}_s{split}") is not None]
        per_split[split] = (test.labels, {r: teacher_probabilities(test, [Solution.load(a.runs / f"{r}_s{split}"
                                                                                       / "solution")])
                                          for r in runs})
    sizes = range(1, max(len(probs) for _, probs in per_split.values()) + 1)
    rows = ["| runs averaged (k) | " + " | ".join(f"split {s}: mean [min, max] over subsets" for s in a.splits)
            + " | mean over splits |", "|---" * (2 + len(a.splits)) + "|"]
    raw = {}
    for k in sizes:
        cells, means = [], []
        for split, (truth, probs) in per_split.items():
            accs = [float((sum(probs[r] for r in subset).argmax(1) == truth).mean())
                    for subset in itertools.combinations(sorted(probs), k)]
            raw.setdefault(str(k), {})[str(split)] = accs
            cells.append(f"{np.mean(accs):.3f} [{min(accs):.3f}, {max(accs):.3f}] ({len(accs)})" if accs else "-")
            means += [np.mean(accs)] if accs else []
        rows.append(f"| {k} | " + " | ".join(cells) + f" | **{np.mean(means):.3f}** |")
    shared, wrong_in = [], {}  # per split: photos some run got wrong, and how many runs got each of them wrong
    for split, (truth, probs) in per_split.items():
        wrong = sum((pr.argmax(1) != truth).astype(int) for pr in probs.values())
        counts = [int((wrong == m).sum()) for m in range(1, len(probs) + 1)]
        shared.append(f"split {split}: {int((wrong > 0).sum())} photos wrong in at least one of {len(probs)} runs; "
                      + ", ".join(f"{c} in {m}" for m, c in enumerate(counts, 1)))
        wrong_in[str(split)] = counts
    hits = {s: sum(pr.values()).argmax(1) == truth for s, (truth, pr) in per_split.items()}  # every run averaged
    correct, n = sum(int(h.sum()) for h in hits.values()), sum(len(h) for h in hits.values())
    lo, hi = wilson(correct, n)
    members = {s: sorted(pr) for s, (_, pr) in per_split.items()}
    text = "\n".join(rows) + (f"\n\nEvery run of a split averaged: {correct}/{n} = **{correct / n:.3f}** [{lo:.3f}, "
                              f"{hi:.3f}] (Wilson 95%). Members: "
                              + "; ".join(f"split {s}: {', '.join(m)}" for s, m in members.items()) + ".\n\n"
                              + "Errors shared between runs: " + "; ".join(shared) + ".")
    publish(a.name, text, {"command": " ".join(["benchmarks/agriculture_ensembles.py", *(argv or sys.argv[1:])]),
                           "members": members, "accuracies": raw, "wrong_in_m_runs": wrong_in, "all_members": {"correct": correct, "n": n},
                           "seconds": round(time.perf_counter() - started, 1)})
    if a.update_card:
        print(update_card(a.update_card, members, {s: float(h.mean()) for s, h in hits.items()}, correct, n, a.name))
    return 0


SINGLE = ("field_mix288", ("agriculture_splits288", "agriculture_cpu288"))  # the one-network recipe and its results


def _single_network_note() -> str:
    """The one-network recipe's pooled accuracy, from its recorded results (empty when none are recorded)."""
    recipe, stems = SINGLE
    runs = [r for stem in stems for r in recorded_runs(stem, recipe)]
    if not runs:
        return ""
    k, n = sum(c for _, c, _ in runs), sum(m for _, _, m in runs)
    lo, hi = wilson(k, n)
    return (f" One network of the recipe `{recipe}` pools to {k / n:.3f} [{lo:.3f}, {hi:.3f}] over {n:,} test "
            f"predictions (`benchmarks/results/{stems[0]}.md`, `{stems[1]}.md`).")


def update_card(path: Path, members: dict, per_split: dict, correct: int, n: int, stem: str) -> str:
    """Write the ensemble recipe's accuracy on every scored split into the card at ``path``."""
    from suite.agriculture.card import set_card_section

    lo, hi = wilson(correct, n)
    splits = ", ".join(f"{per_split[s]:.3f} on split {s} ({len(m)} runs: {', '.join(f'`{r}`' for r in m)})"
                       for s, m in members.items())
    body = (f"The same ensemble recipe, one ensemble per leaf-aware split: {splits}. Pooled: {correct}/{n} = "
            f"**{correct / n:.3f}** [{lo:.3f}, {hi:.3f}] (Wilson 95%) never-seen test photos. Read this model's own "
            "test score as one such draw. Source: `benchmarks/results/" + stem + ".md` "
            "(`benchmarks/agriculture_ensembles.py`)." + _single_network_note())
    card = path / "README.md"
    card.write_text(set_card_section(card.read_text(encoding="utf-8"), "Other splits", body), encoding="utf-8")
    return body


if __name__ == "__main__":
    raise SystemExit(main())
