"""Robustness of the tomato model to field-like photos, before and after training with the field presets.

Two models with the same recipe (``suite.agriculture.train.Recipe``) differ only in the training
augmentation: ``light`` (flips, small shifts, brightness) versus ``field`` (background clutter
through the leaf mask, shadows, sun glare, blur, perspective, JPEG, colour shifts). Both are scored
on the same never-seen, leaf-aware test split (200 photos) after each corruption of
``suite.core.data.corruption`` at severities 1, 3 and 5; Grad-CAM's share on the leaf (leaf found
by colour segmentation) is measured on clean and background-cluttered photos; test-time
augmentation is scored for the last model. ``--soup`` adds a third model, the weight average of
the two (``python -m suite.agriculture.train --soup``): the shipped tomato model.

    .venv/bin/python benchmarks/agriculture_robustness.py                       # trains what is missing
    .venv/bin/python benchmarks/agriculture_robustness.py --field runs/tomato/solution \
        --light runs/tomato_light/solution --soup suite/agriculture/solutions/tomato

The light model, when missing, is trained into ``--runs``/light (about 13 min on a busy 2-core CPU).
Writes benchmarks/results/agriculture_robustness.md and .json (`--name` changes the stem).
"""

from __future__ import annotations

# _common first: it sets the OpenMP wait policy, which torch reads when it loads
from _common import REPO, TOMATO, publish, require, set_threads

import argparse
import sys
import time
from pathlib import Path

import numpy as np

CORRUPTIONS = ("clutter", "shadow", "glare", "blur", "perspective", "jpeg", "colour", "noise")
TTA_CORRUPTIONS = ("clutter", "shadow", "blur")
SHIPPED = REPO / "suite" / "agriculture" / "solutions" / "tomato"


def solution_for(augment: str, path: str | None, runs: Path, data):
    """The Solution trained with ``augment``: loaded from ``path``, or trained into ``runs/augment``."""
    from suite.agriculture.train import Recipe, train
    from suite.core import Solution

    target = Path(path) if path else runs / augment / "solution"
    if not (target / "config.json").is_file():
        print(f"training the {augment} model into {runs / augment}", flush=True)
        train(data, runs / augment, Recipe(augment=augment), progress=False)
        target = runs / augment / "solution"
    return Solution.load(target)


def cell(correct: np.ndarray) -> str:
    from suite.agriculture.robustness import bootstrap_ci

    lo, hi = bootstrap_ci(correct)
    return f"{correct.mean():.3f} [{lo:.3f}, {hi:.3f}]"


def tta_rows(solution, test, corruptions, severity: int) -> list[dict]:
    """Accuracy without and with test-time augmentation, clean and at one severity of each corruption."""
    from suite.agriculture.diagnose import TTA_VIEWS
    from suite.core.data import corruption
    from suite.core.tta import tta_predict_proba

    images = [test.load(i).convert("RGB") for i in range(len(test))]
    rows = []
    for name in ["none", *corruptions]:
        shown = images if name == "none" else [corruption(name, severity)(im) for im in images]
        plain = solution.predict_proba(shown).argmax(1) == test.labels
        tta = tta_predict_proba(solution, shown, views=TTA_VIEWS).argmax(1) == test.labels
        rows.append({"corruption": name, "severity": 0 if name == "none" else severity, "plain": plain, "tta": tta})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--field", default=str(SHIPPED), help="Solution trained with the field preset")
    parser.add_argument("--light", help="Solution trained with the light preset (default: train into --runs)")
    parser.add_argument("--soup", help="a third Solution: the uniform soup of the light and field runs, or an "
                                       "ensemble (`python -m suite.agriculture.train --ensemble`)")
    parser.add_argument("--runs", default="runs/agriculture_robustness")
    parser.add_argument("--cam-items", type=int, default=50, help="test photos for the Grad-CAM check")
    parser.add_argument("--tta-items", type=int, default=100, help="test photos for the TTA check")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="agriculture_robustness", help="stem of the results files")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 test photos, severities 1 and 5")
    parser.add_argument("--update-card", action="store_true",
                        help="write the summary into the Robustness section of the last model's card (--soup, "
                             "else --field)")
    args = parser.parse_args()
    machine = set_threads(args.threads)

    from suite.agriculture.data import load_leaves
    from suite.agriculture.robustness import SEVERITIES, corruption_accuracy, leaf_attention
    from suite.agriculture.train import leaf_splits
    from suite.core.data import corruption

    data = load_leaves(require(TOMATO))
    test = data.subset(leaf_splits(data, seed=0)["test"])
    severities = SEVERITIES
    if args.quick:
        test, severities, args.cam_items = test.subset(np.arange(0, len(test), 10)), (1, 5), 6
    desc = f"leaf-aware test split of PlantVillage tomato ({len(test)} photos, never trained on)"
    models = {"light": solution_for("light", args.light, Path(args.runs), data),
              "field": solution_for("field", args.field, Path(args.runs), data)}
    label = {name: f"{sol.recipe.get('augment') or name} preset" for name, sol in models.items()}
    if args.soup:
        from suite.core import Solution

        third = Solution.load(args.soup)
        members = (third.recipe.get("agriculture_recipe") or {}).get("ensemble")
        kind = "ensemble" if members else "soup"
        models[kind] = third
        label[kind] = f"ensemble of {len(members)} networks" if members else "soup (light + field)"
    combined = {"soup": "their weight average", "ensemble": "an ensemble of runs (probabilities averaged)"}
    combined = {k: v for k, v in combined.items() if k in models}
    last = list(models)[-1]
    results, attention, start = {}, {}, time.perf_counter()
    for name, sol in models.items():
        results[name] = corruption_accuracy(sol, test, CORRUPTIONS, severities)
        attention[name] = {
            "clean": leaf_attention(sol, test, max_items=args.cam_items),
            "clutter 5": leaf_attention(sol, test, corrupt=corruption("clutter", 5), max_items=args.cam_items),
        }
        print(f"scored the {name} model", flush=True)
    tta_test = test.subset(np.arange(0, len(test), 2)) if len(test) > args.tta_items else test
    tta = tta_rows(models[last], tta_test, TTA_CORRUPTIONS, 3)
    seconds = time.perf_counter() - start

    lines = [f"## Robustness to field-like photos: tomato leaves, `{label['light'].split()[0]}` vs "
             f"`{label['field'].split()[0]}` training presets"
             + "".join(f" and {label[k]}" for k in combined), "",
             f"Test set: {desc}. Same recipe for the light and field models (`{models['field'].model.spec}`, "
             f"{models['field'].recipe.get('strategy', 'fine-tuning')} with the last "
             f"{(models['field'].recipe.get('strategy_options') or {}).get('n_groups', '?')} backbone groups, "
             f"{models['field'].preprocess.input_size[1]} px), only the training augmentation differs"
             + "".join(f"; the {k} is {v}" for k, v in combined.items()) + ". " +
             "Corruptions from `suite.core.data.corruption` (deterministic per photo); 95% CIs: percentile "
             f"bootstrap over the photos. {machine}; the machine was shared with other jobs.", "",
             "| corruption | severity | " + " | ".join(f"{label[n]}: accuracy [95% CI]" for n in models) + " |",
             "|---|---|" + "---|" * len(models)]
    for rows in zip(*results.values()):
        lines.append(f"| {rows[0]['corruption']} | {rows[0]['severity'] or '-'} | "
                     + " | ".join(cell(r["correct"]) for r in rows) + " |")
    means = {name: float(np.mean([r["accuracy"] for r in rows if r["severity"]])) for name, rows in results.items()}
    worst = {name: min((r for r in rows if r["severity"]), key=lambda r: r["accuracy"])
             for name, rows in results.items()}
    lines += ["", "| model | clean accuracy | mean accuracy over all corruptions and severities | worst case |",
              "|---|---|---|---|"]
    for name in models:
        w = worst[name]
        lines.append(f"| {label[name]} | {results[name][0]['accuracy']:.3f} | {means[name]:.3f} | "
                     f"{w['accuracy']:.3f} ({w['corruption']} {w['severity']}) |")
    lines += ["", "### Where the model looks: Grad-CAM share on the leaf", "",
              "Grad-CAM (`suite.core.explain.gradcam`, predicted class) on the model's input; the leaf is found "
              "by colour segmentation (`suite.core.data.augment.leaf_mask`) on the clean photo (a cluttered "
              "backdrop never counts as leaf). `ratio` = share of "
              "the map on the leaf / share of the image that is leaf (1 = no preference; higher = looks at the "
              f"leaf). {args.cam_items} test photos, evenly spaced.", "",
              "| model | photos | Grad-CAM on leaf | leaf area | ratio | photos without a leaf found |",
              "|---|---|---|---|---|---|"]
    for name in models:
        for kind, a in attention[name].items():
            lines.append(f"| {label[name]} | {kind} | {a['cam_on_leaf']:.3f} | {a['leaf_area']:.3f} | "
                         f"{a['ratio']:.2f} | {a['skipped']} |")
    lines += ["", f"### Test-time augmentation ({label[last]} model, views: identity, hflip, vflip, zoom; {len(tta_test)} "
              "test photos, every other one)", "",
              "| corruption | severity | without TTA | with TTA |", "|---|---|---|---|"]
    for row in tta:
        lines.append(f"| {row['corruption']} | {row['severity'] or '-'} | {cell(row['plain'])} | {cell(row['tta'])} |")
    lines += ["", f"Scoring took {seconds:.0f} s.", ""]
    raw = {"test": desc, "machine": machine,
           "accuracy": {n: [{k: v for k, v in r.items() if k != "correct"} for r in rows]
                        for n, rows in results.items()},
           "mean_corrupted_accuracy": means,
           "gradcam": {n: {k: {m: v for m, v in a.items() if m != "per_item"} for k, a in d.items()}
                       for n, d in attention.items()},
           "tta": [{"corruption": r["corruption"], "severity": r["severity"], "plain": float(r["plain"].mean()),
                    "tta": float(r["tta"].mean())} for r in tta],
           "seconds": seconds}
    if args.quick:  # a smoke run prints, it does not overwrite the results
        print("\n".join(lines))
        return
    publish(args.name, "\n".join(lines), raw)
    if args.update_card:
        update_card(Path(args.soup or args.field), results, means, worst, attention,
                    models[last].preprocess.input_size[-1], label, last, args.name,
                    " ".join(["python benchmarks/agriculture_robustness.py", *sys.argv[1:]]))


def update_card(path: Path, results: dict, means: dict, worst: dict, attention: dict, side: int, label: dict,
                this: str, stem: str = "agriculture_robustness",
                command: str = "python benchmarks/agriculture_robustness.py") -> None:
    """Put the before/after summary into the model card (README.md) of the solution at ``path`` (``this``)."""
    from suite.agriculture.card import set_card_section

    rows = ["Accuracy on the 200 test photos after field-like corruptions (background clutter, shadow, glare, "
            "blur, perspective, JPEG, colour cast, sensor noise; severities 1, 3, 5), same recipe trained "
            f"with the `{label['light'].split()[0]}` preset and with the `{label['field'].split()[0]}` preset"
            + (", and their weight average" if "soup" in results else "")
            + (", and an ensemble of runs" if "ensemble" in results else "") + ":", "",
            "| training preset | clean | mean over corruptions | worst case | Grad-CAM on leaf / leaf area (clean) |",
            "|---|---|---|---|---|"]
    for name in results:
        w, a = worst[name], attention[name]["clean"]
        rows.append(f"| {label[name]}{' (this model)' if name == this else ''} | {results[name][0]['accuracy']:.3f} | {means[name]:.3f} | {w['accuracy']:.3f} "
                    f"({w['corruption']} {w['severity']}) | {a['cam_on_leaf']:.2f} / {a['leaf_area']:.2f} |")
    rows += ["", f"Full table: `benchmarks/results/{stem}.md` (`{command}`). Corrupted lab photos are a proxy: "
             "real field photos were not available to measure."]
    if side:
        rows[-1] += f" At {side} px the Grad-CAM layer is {side // 32}x{side // 32}, so the leaf share is coarse."
    card = path / "README.md"
    card.write_text(set_card_section(card.read_text(encoding="utf-8"), "Robustness", "\n".join(rows)),
                    encoding="utf-8")


if __name__ == "__main__":
    main()
