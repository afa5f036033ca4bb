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


def command(recipe: dict) -> str:
    """The commands that rebuild and ship a solution trained with ``recipe``."""
    opts = "".join(f" --{k.replace('_', '-')} {recipe[k]}" for k in RECIPE if recipe.get(k, RECIPE[k]) != RECIPE[k])
    return (f"python -m suite.medical.train_pneumonia --data pneumoniamnist.npz --out runs/pneumonia_xray{opts}\n"
            "cp runs/pneumonia_xray/solution/* suite/medical/solutions/pneumonia_xray/")


def at_half(solution, data: str) -> dict:
    """Test metrics at threshold 0.5, MedMNIST's convention for ACC (the published anchors use it)."""
    import numpy as np

    from ..core.evaluation import evaluate_predictions

    with np.load(data) as npz:
        images, labels = list(npz["test_images"]), npz["test_labels"][:, 0]
    probs = solution.forward_items(images, batch_size=128)[0]
    return evaluate_predictions(labels, probs, list(solution.labels), task="binary", threshold=0.5)


def write_card(solution, report: dict, half: dict | None = None) -> None:
    """Description and model card (data, metrics with CIs, training, leakage check, reproduce command)."""
    from .recipes import clinical_card

    recipe = solution.recipe
    solution.description = ("Pneumonia vs normal from a frontal pediatric chest X-ray (PNG/JPEG/DICOM), "
                            "fine-tuned from ImageNet EfficientNet-Lite0 on PneumoniaMNIST.")
    leak = report.get("leakage") or {}
    extra = (f"\n## Training\n\n{recipe['epochs']} epochs, strategy {recipe['strategy']}, {recipe['image_size']} px, "
             f"augmentation `{recipe['augment']}`, class-weighted loss, AdamW lr {recipe['lr']:g}, batch "
             f"{recipe['batch_size']}; {recipe.get('train_seconds', 0) / 60:.0f} min on 2 CPU cores shared with "
             f"other jobs. Leakage check (train/val/test): {leak.get('summary', 'not run')}.\n")
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
                                   name="pneumonia_xray", data_options={"classes": list(LABELS)}, resume=resume)
    if getattr(solution, "guard", False) is None:  # the input guard, fitted on the training split
        from ..core.data import from_npz

        solution.fit_guard(from_npz(data, split="train", classes=list(LABELS)))
    solution.recipe = {**solution.recipe, **recipe, "train_seconds": round(time.time() - started, 1)}
    half = at_half(solution, data)
    solution.metrics = {**solution.metrics, "accuracy_at_0.5": half["metrics"]["accuracy"],
                        "accuracy_at_0.5_ci95": half["ci95"]["accuracy"]}
    write_card(solution, report, half)
    solution.save(Path(out) / "solution")
    return solution, report


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="pneumoniamnist.npz (MedMNIST v2)")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    for key, value in RECIPE.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=type(value) if not isinstance(value, bool) else
                       (lambda s: s.lower() in ("1", "true", "yes")), default=value)
    args = vars(p.parse_args(argv))
    data, out, threads, resume = args.pop("data"), args.pop("out"), args.pop("threads"), args.pop("resume")
    _, report = train(data, out, threads, resume, **args)
    print(json.dumps({"metrics": report["metrics"], "ci95": report["ci95"]}, indent=2))


if __name__ == "__main__":
    main()
