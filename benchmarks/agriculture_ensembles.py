"""How tomato test accuracy grows with the number of finished runs whose predictions are averaged.

Single runs of every recipe tried sit near 97.5%, and their errors are mostly low-confidence and differ
from run to run. This scores, on each split where several finished runs ``{recipe}_s{split}`` share the
test split, the mean prediction of every subset of k runs (an ensemble: k networks per photo), for
every k. Each run predicts its split's 200 test photos once.

    .venv/bin/python benchmarks/agriculture_ensembles.py --runs runs/cpu288 --splits 0 1 \
        --recipes field_mix288 light288 field_mix288c field_mix288d

Writes benchmarks/results/agriculture_ensembles.md and .json (``--name`` changes the stem).
"""

from __future__ import annotations

from _common import TOMATO, publish, require, set_threads

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
from agriculture_splits import score, wilson


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="PlantVillage tomato folders (default ../shared/data/...)")
    p.add_argument("--runs", type=Path, default=Path("runs/cpu288"))
    p.add_argument("--splits", type=int, nargs="+", default=[0, 1])
    p.add_argument("--recipes", nargs="+", default=["field_mix288", "light288", "field_mix288c", "field_mix288d"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default="agriculture_ensembles")
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
    correct = sum(int((sum(pr.values()).argmax(1) == truth).sum()) for truth, pr in per_split.values())
    n = sum(len(truth) for truth, _ in per_split.values())
    lo, hi = wilson(correct, n)
    members = {s: sorted(pr) for s, (_, pr) in per_split.items()}
    text = "\n".join(rows) + (f"\n\nEvery run of a split averaged: {correct}/{n} = **{correct / n:.3f}** [{lo:.3f}, "
                              f"{hi:.3f}] (Wilson 95%). Members: "
                              + "; ".join(f"split {s}: {', '.join(m)}" for s, m in members.items()) + ".\n\n"
                              + "Errors shared between runs: " + "; ".join(shared) + ".")
    publish(a.name, text, {"command": " ".join(["benchmarks/agriculture_ensembles.py", *(argv or sys.argv[1:])]),
                           "members": members, "accuracies": raw, "wrong_in_m_runs": wrong_in, "all_members": {"correct": correct, "n": n},
                           "seconds": round(time.perf_counter() - started, 1)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
