"""Pool several advisor validations (different seeded subsets of the same data sets) into one table.

One subset draw ranks grid cells that lie within a point or two of each other mostly by chance
(the best of eight noisy means is biased upwards). Pooling draws asks the question a user cares
about: averaged over data sets like this one, how far is the advice from the best fixed choice?
For each data set: the mean test accuracy of the recommended cell over the draws, against the
best mean of any single grid cell over the same draws; and the per-draw gaps beside it.

    .venv/bin/python benchmarks/advisor_pooled.py --runs advisor_validation_far_seed5 advisor_validation_pool_seed6 \
        advisor_validation_pool_seed7 advisor_validation_pool_seed8 --name advisor_pooled_far
    .venv/bin/python benchmarks/advisor_pooled.py --runs advisor_validation_seed2 advisor_validation_seed3 \
        --datasets tomato phrasebank digits --name advisor_pooled_other

Reads benchmarks/results/RUN.json (written by advisor_validation.py); writes NAME.md and NAME.json.
"""

from __future__ import annotations

from _common import RESULTS, publish

import argparse
import json

import numpy as np


def pool(runs: list[dict], datasets: list[str] | None = None) -> dict:
    """Per data set (all, or ``datasets``): draws, per-draw gaps, and the pooled gap (best mean cell minus
    mean of the advice)."""
    by_data: dict[str, list[dict]] = {}
    for run in runs:
        for r in run["results"]:
            if datasets is None or r["name"] in datasets:
                by_data.setdefault(r["name"], []).append(r)
    pooled = {}
    for name, draws in by_data.items():
        cells = set.intersection(*(set(d["cells"]) for d in draws))
        cell_means = {c: float(np.mean([d["cells"][c]["accuracy"] for d in draws])) for c in sorted(cells)}
        best = max(cell_means, key=cell_means.get)
        advised = float(np.mean([d["recommended_cell"]["accuracy"] for d in draws]))
        ratios = [d["advisor_path_s"] / d["grid_s"] for d in draws]
        pooled[name] = {
            "title": draws[0]["title"], "draws": [d["seed"] for d in draws],
            "recommended": [d["recommended"] for d in draws], "advised_mean": round(advised, 4),
            "best_cell": best, "best_mean": round(cell_means[best], 4), "cell_means": cell_means,
            "pooled_gap": round(100 * (cell_means[best] - advised), 2),
            "draw_gaps": [round(100 * (d["best_cell"]["accuracy"] - d["recommended_cell"]["accuracy"]), 1)
                          for d in draws],
            "time_ratio_mean": round(float(np.mean(ratios)), 3), "time_ratio_max": round(max(ratios), 3)}
    return pooled


def markdown(pooled: dict, names: list[str]) -> str:
    lines = ["## Transfer advisor validation pooled over subset draws", "",
             f"Runs pooled: {', '.join(names)}. Every draw is a fresh seeded training subset with its own advice "
             "and its own exhaustive grid (each cell the mean of its training runs). Pooled gap = best mean of one "
             "grid cell over the draws minus the mean of the advised cells (which may differ between draws). "
             "Target: within 1 point at a third of the grid's time or less.", "",
             "| data | draws (seeds) | advice per draw | advice, mean acc. | best single cell, mean acc. | "
             "pooled gap (points) | per-draw gaps | time ratio mean (max) | target met (pooled) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in pooled.values():
        met = "yes" if p["pooled_gap"] <= 1.0 and p["time_ratio_max"] <= 1 / 3 else "no"
        lines.append(f"| {p['title']} | {len(p['draws'])} ({', '.join(map(str, p['draws']))}) | "
                     f"{', '.join(p['recommended'])} | {p['advised_mean']:.3f} | {p['best_cell']} {p['best_mean']:.3f} | "
                     f"{p['pooled_gap']:.1f} | {', '.join(f'{g:.1f}' for g in p['draw_gaps'])} | "
                     f"{p['time_ratio_mean']:.2f} ({p['time_ratio_max']:.2f}) | {met} |")
    lines += ["", "Mean test accuracy of every grid cell over the draws:", ""]
    for p in pooled.values():
        lines.append(f"- {p['title']}: " + ", ".join(f"{c} {m:.3f}" for c, m in
                                                      sorted(p["cell_means"].items(), key=lambda x: -x[1])))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="result names under benchmarks/results/")
    parser.add_argument("--datasets", nargs="+", help="pool only these data sets (default: every one in the runs)")
    parser.add_argument("--name", default="advisor_pooled")
    args = parser.parse_args()
    runs = [json.loads((RESULTS / f"{name}.json").read_text()) for name in args.runs]
    pooled = pool(runs, args.datasets)
    publish(args.name, markdown(pooled, args.runs), {"runs": args.runs, "pooled": pooled})


if __name__ == "__main__":
    main()
