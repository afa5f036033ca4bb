"""Rebuild the shipped pneumonia solution from PneumoniaMNIST (official splits).

    python -m suite.medical.train_pneumonia --data pneumoniamnist.npz --out runs/pneumonia

writes ``runs/pneumonia/solution`` (copy it to ``suite/medical/solutions/pneumonia_xray`` to ship it)
and ``runs/pneumonia/report`` (test-split report with 95% CIs).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

LABELS = ("normal", "pneumonia")
RECIPE = {"backbone": "embedded:efficientnet_lite0", "image_size": 80, "strategy": "full", "epochs": 3,
          "lr": 1e-3, "batch_size": 64, "augment": "medical", "class_weights": True, "threshold": "youden"}
DATA_DESC = ("PneumoniaMNIST (MedMNIST v2; Yang et al. 2023, from Kermany et al. 2018 pediatric chest X-rays), "
             "28x28 grayscale, license CC BY 4.0. Trained on the train split as distributed here (3,882 images: "
             "388 normal, 3,494 pneumonia); decision threshold chosen on the official validation split (524); "
             "metrics on the official test split (624: 234 normal, 390 pneumonia).")


def _options(recipe: dict) -> str:
    return "".join(f" --{k.replace('_', '-')} {recipe[k]}" for k in RECIPE if recipe.get(k, RECIPE[k]) != RECIPE[k])


def command(recipe: dict) -> str:
    """The commands that rebuild and ship a solution trained with ``recipe`` (a soup: each run, then the soup)."""
    base = "python -m suite.medical.train_pneumonia --data pneumoniamnist.npz --out "
    if recipe.get("soup"):
        runs = [f"runs/pneumonia_{r['image_size']}px_{r['epochs']}ep" for r in recipe["soup"]]
        lines = [base + run + _options(r) for run, r in zip(runs, recipe["soup"])]
        lines.append(base + "runs/pneumonia_xray --soup " + " ".join(runs))
    else:
        lines = [base + "runs/pneumonia_xray" + _options(recipe)]
    return "\n".join(lines + ["cp runs/pneumonia_xray/solution/* suite/medical/solutions/pneumonia_xray/"])


def at_half(solution, data: str, probs=None) -> dict:
    """Test metrics at threshold 0.5, MedMNIST's convention for ACC (the published anchors use it);
    ``probs``: the solution's test-split probabilities when already computed."""
    import numpy as np

    from ..core.evaluation import evaluate_predictions

    with np.load(data) as npz:
        labels = npz["test_labels"][:, 0]
        if probs is None:
            probs = solution.predict_proba(list(npz["test_images"]), batch_size=128)
    return evaluate_predictions(labels, probs, list(solution.labels), task="binary", threshold=0.5)


def write_card(solution, report: dict, half: dict | None = None) -> None:
    """Description and model card (data, metrics with CIs, training, leakage check, reproduce command)."""
    from .recipes import clinical_card

    recipe = solution.recipe
    solution.description = ("Pneumonia vs normal from a frontal pediatric chest X-ray (PNG/JPEG/DICOM), "
                            "fine-tuned from ImageNet EfficientNet-Lite0 on PneumoniaMNIST.")
    leak = report.get("leakage") or {}

    def one(r: dict) -> str:
        return (f"{r['epochs']} epochs, strategy {r['strategy']}, {r['image_size']} px, augmentation "
                f"`{r['augment']}`, class-weighted loss, AdamW lr {r['lr']:g}, batch {r['batch_size']}")

    if recipe.get("soup"):
        scores = ", ".join(f"{k} px {v}" for k, v in solution.extra.get("soup_val_auroc", {}).items())
        how = (f"A uniform model soup (Wortsman et al. 2022): the weight average of {len(recipe['soup'])} runs "
               "fine-tuned from the same ImageNet weights, each: " + "; ".join(one(r) for r in recipe["soup"])
               + f". The soup runs at {recipe['image_size']} px, the input size with the best validation AUROC "
               f"({scores}); input size and threshold were chosen on the validation split only")
    else:
        how = one(recipe)
    extra = (f"\n## Training\n\n{how}; {recipe.get('train_seconds', 0) / 60:.0f} min in all on 2 CPU cores shared "
             f"with other jobs. Leakage check (train/val/test): {leak.get('summary', 'not run')}.\n")
    if half:
        m, ci = half["metrics"], half["ci95"]
        extra += ("\n## At threshold 0.5\n\nMedMNIST reports ACC at threshold 0.5, as do the published anchors "
                  "(ResNet-18 0.864, ResNet-50 0.884). The same test split at 0.5: accuracy "
                  f"{m['accuracy']:.3f} [{ci['accuracy'][0]:.3f}, {ci['accuracy'][1]:.3f}], sensitivity "
                  f"{m['sensitivity']:.3f}, specificity {m['specificity']:.3f}. The stored threshold above, chosen "
                  "on the validation split, is what `predict` uses.\n")
    solution.card = clinical_card(solution, report, DATA_DESC, command(recipe), extra)


def train(data: str, out: str, threads: int = 2, resume: bool = False, **overrides) -> tuple:
    """Train with :data:`RECIPE` (``overrides`` change it), write solution and report under ``out``."""
    import torch

    from ..core.trainer import TrainConfig
    from .recipes import adapt_xrays

    torch.set_num_threads(threads)
    recipe = {**RECIPE, **overrides}
    config = TrainConfig(epochs=recipe["epochs"], lr=recipe["lr"], batch_size=recipe["batch_size"],
                         strategy=recipe["strategy"], augment=recipe["augment"],
                         class_weights=recipe["class_weights"], seed=0, progress=False)
    started = time.time()
    solution, report = adapt_xrays(data, output_dir=out, backbone=recipe["backbone"], config=config,
                                   image_size=recipe["image_size"], threshold=recipe["threshold"],
                                   name="pneumonia_xray", data_options={"classes": list(LABELS)}, resume=resume,
                                   guard_reads="pretrained")  # the guard reads the untouched ImageNet backbone
    if getattr(solution, "guard", False) is None:  # the input guard, fitted on the training split
        from ..core.data import from_npz

        solution.fit_guard(from_npz(data, split="train", classes=list(LABELS)), reads="pretrained")
    solution.recipe = {**solution.recipe, **recipe, "train_seconds": round(time.time() - started, 1)}
    half = at_half(solution, data)
    solution.metrics = {**solution.metrics, "accuracy_at_0.5": half["metrics"]["accuracy"],
                        "accuracy_at_0.5_ci95": half["ci95"]["accuracy"]}
    write_card(solution, report, half)
    solution.save(Path(out) / "solution")
    return solution, report


def soup(data: str, out: str, runs: list[str], threads: int = 2) -> tuple:
    """Average the solutions of finished ``runs`` (a uniform model soup), keep the input size with the
    best validation AUROC, choose the threshold on validation, fit the guard, measure on test."""
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from ..core.data import find_leakage_across, from_npz
    from ..core.evaluation import write_report
    from ..core.finetune import evaluate_solution
    from ..core.soup import uniform_soup
    from .recipes import NOT_FOR_CLINICAL_USE, XraySolution, choose_threshold

    torch.set_num_threads(threads)
    started = time.time()
    ingredients = [XraySolution.load(Path(r) / "solution") for r in runs]
    splits = {name: from_npz(data, split=name, classes=list(LABELS)) for name in ("train", "val", "test")}
    sizes = sorted({s.preprocess.input_size[-1] for s in ingredients})
    by_size = {}
    for size in sizes:  # the input size is chosen on validation AUROC, never on the test split
        candidate = uniform_soup(ingredients, input_size=size)
        _, probs = evaluate_solution(candidate, splits["val"], n_bootstrap=0)
        by_size[size] = (roc_auc_score(splits["val"].labels, probs[:, 1]), candidate, probs)
    size = max(by_size, key=lambda k: by_size[k][0])
    solution, val_probs = by_size[size][1], by_size[size][2]
    solution.name, solution.extra = "pneumonia_xray", dict(ingredients[0].extra)
    solution.threshold = choose_threshold(splits["val"].labels, val_probs[:, 1], RECIPE["threshold"])
    solution.extra["threshold_rule"] = f"youden on the validation split ({len(splits['val'])} items)"
    solution.extra["soup_val_auroc"] = {str(k): round(float(v[0]), 4) for k, v in by_size.items()}
    solution.fit_guard(splits["train"], reads="pretrained")  # the untouched backbone: held-out X-rays set its threshold
    desc = f"{data} [test] ({len(splits['test'])} items, never trained on or tuned on)"
    report, probs = evaluate_solution(solution, splits["test"], data_desc=desc)
    leakage = find_leakage_across(splits)
    report["leakage"] = {k: leakage[k] for k in ("n_exact", "n_near", "summary")}
    report["notice"] = NOT_FOR_CLINICAL_USE
    write_report(report, Path(out) / "report", splits["test"].labels, probs,
                 title="pneumonia_xray: uniform soup (not for clinical use)")
    solution.metrics = {"data": desc, **report["metrics"], "ci95": report["ci95"], "threshold": solution.threshold}
    half = at_half(solution, data, probs)
    solution.metrics.update({"accuracy_at_0.5": half["metrics"]["accuracy"],
                             "accuracy_at_0.5_ci95": half["ci95"]["accuracy"]})
    runs_recipes = [{**RECIPE, **{k: v for k, v in s.recipe.items() if k in RECIPE}} for s in ingredients]
    solution.recipe = {**RECIPE, "image_size": size, "soup": runs_recipes, "runs": [str(r) for r in runs],
                       "train_seconds": round(sum(s.recipe.get("train_seconds", 0) for s in ingredients)
                                              + time.time() - started, 1)}
    write_card(solution, report, half)
    solution.save(Path(out) / "solution")
    return solution, report


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="pneumoniamnist.npz (MedMNIST v2)")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--soup", nargs="+", metavar="RUN", help="average these finished runs (their --out folders) "
                                                            "into one model instead of training")
    for key, value in RECIPE.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=type(value) if not isinstance(value, bool) else
                       (lambda s: s.lower() in ("1", "true", "yes")), default=value)
    args = vars(p.parse_args(argv))
    data, out, threads, resume = args.pop("data"), args.pop("out"), args.pop("threads"), args.pop("resume")
    runs = args.pop("soup")
    _, report = soup(data, out, runs, threads) if runs else train(data, out, threads, resume, **args)
    print(json.dumps({"metrics": report["metrics"], "ci95": report["ci95"]}, indent=2))


if __name__ == "__main__":
    main()
