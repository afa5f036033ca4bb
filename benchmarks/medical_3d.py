"""Medical volumes: the shipped MRI and CT solutions and how they were measured.

1. BraTS 2015 FLAIR, tumour per axial slice: leave-one-subject-out AUROC per held-out subject.
2. AdrenalMNIST3D (official splits): a 3D CNN from scratch vs 2.5D transfer from the embedded
   ImageNet EfficientNet-Lite0, beside MedMNIST v2's published 3D baselines.

By default every solution is rebuilt (about 1.5 hours on 2 shared CPU cores, most of it the two 3D
CNN runs: the shipped one with flips and shifts, and the same without augmentation for comparison),
written into suite/medical/solutions/, and tabulated. ``--tabulate`` only reads the metrics the shipped
solutions recorded when they were built, plus the no-augmentation run from the JSON that
``python -m suite.medical.adrenal3d --which 3d --augment none --out-3d DIR --json PATH`` writes.

    .venv/bin/python benchmarks/medical_3d.py [--tabulate [--no-aug-json PATH]] [--epochs 15]
"""

from __future__ import annotations

import argparse
import json
import tempfile

from _common import DATA, publish, require, set_threads


def _cell(value, ci) -> str:
    return "n/a" if value is None else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _config(path) -> dict:
    return json.loads((path / "config.json").read_text())


def brats_table(cfg: dict) -> list[str]:
    rows = ["| held-out subject | slices | AUROC [95% CI] | accuracy [95% CI] | sensitivity | specificity "
            "| leakage check |", "|---|---|---|---|---|---|---|"]
    for name, r in cfg["metrics"]["per_subject"].items():
        rows.append(f"| {name} | {r['n']} | {_cell(r['auroc'], r['ci95']['auroc'])} | "
                    f"{_cell(r['accuracy'], r['ci95']['accuracy'])} | {r['sensitivity']:.3f} | "
                    f"{r['specificity']:.3f} | {r.get('leakage', '')} |")
    return rows


def adrenal_table(cfg3d: dict, cfg25d: dict, published: dict, no_aug: dict | None) -> list[str]:
    rows = ["| model | pretrained | AUROC [95% CI] | accuracy [95% CI] | build time (s) |", "|---|---|---|---|---|"]
    runs = [("3D ResNet-10 (quarter width), from scratch, flips + shifts (shipped)", cfg3d["metrics"], "none",
             cfg3d["recipe"].get("build_seconds", "n/a")),
            ("2.5D: Lite0 over 15 slices, mean features + logistic head (shipped)", cfg25d["metrics"],
             "ImageNet (frozen)", cfg25d["recipe"].get("build_seconds", "n/a"))]
    if no_aug:
        metrics = {**no_aug["metrics"], "ci95": no_aug["ci95"]}
        runs.insert(1, ("the same 3D network without augmentation", metrics, "none", no_aug["seconds"]))
    for label, m, pre, seconds in runs:
        rows.append(f"| {label} | {pre} | {_cell(m['auroc'], m['ci95']['auroc'])} | "
                    f"{_cell(m['accuracy'], m['ci95']['accuracy'])} | {seconds} |")
    for name, (auc, acc) in published.items():
        rows.append(f"| {name}, MedMNIST v2 (published, 100 epochs, GPU) | none | {auc:.3f} | {acc:.3f} | |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tabulate", action="store_true", help="only read the shipped solutions' recorded metrics")
    p.add_argument("--epochs", type=int, default=15, help="epochs of the 3D CNN")
    p.add_argument("--no-aug-json", help="with --tabulate: results of the 3D run without augmentation")
    args = p.parse_args()
    machine = set_threads(1)
    from suite.medical import adrenal3d, mri

    no_aug = None
    if not args.tabulate:
        mri.build_solution(require(DATA / "medical" / "brats2015"))
        npz = require(DATA / "medical" / "adrenalmnist3d.npz")
        adrenal3d.build_25d(npz)
        adrenal3d.build_3d(npz, epochs=args.epochs)
        with tempfile.TemporaryDirectory() as tmp:
            r = adrenal3d.build_3d(npz, out=tmp, epochs=args.epochs, augment=None)
        no_aug = {"metrics": r["report"]["metrics"], "ci95": r["report"]["ci95"], "seconds": r["seconds"]}
    elif args.no_aug_json:
        no_aug = json.loads(open(args.no_aug_json).read())["3d"]
    brats, a3d, a25 = _config(mri.SOLUTION_DIR), _config(adrenal3d.DIR_3D), _config(adrenal3d.DIR_25D)
    lines = ["# Medical volumes", "",
             "Not for clinical use: research and demonstration models. Machine: " + machine +
             ", 2 CPU cores shared with other jobs while measuring.", "",
             "## BraTS 2015 FLAIR: tumour present on an axial slice (leave-one-subject-out)", "",
             f"3 subjects; each row: trained on the other two, tested on this one. Recipe: {brats['recipe']}.",
             "Intervals are bootstraps over the held-out subject's slices (correlated: too narrow for new subjects).",
             "", *brats_table(brats), "",
             "## AdrenalMNIST3D: 3D from scratch vs 2.5D transfer (official test split, 298 volumes)", "",
             f"3D recipe: `{a3d['model']['spec']}`, {a3d['recipe']['epochs']} epochs, lr {a3d['recipe']['lr']}, "
             f"best validation loss. 2.5D: {a25['recipe'].get('sampling', a25['extra']['slices25d'])}, "
             f"C = {a25['recipe']['C']} (by validation AUROC).", "",
             *adrenal_table(a3d, a25, adrenal3d.PUBLISHED, no_aug), "",
             "All three selected on the validation split only (3D: the epoch with the lowest validation loss; "
             "2.5D: C by validation AUROC); the test split was used once per model.", ""]
    publish("medical_3d", "\n".join(lines) + "\n",
            {"brats": brats["metrics"], "adrenal3d": a3d["metrics"], "adrenal25d": a25["metrics"],
             "adrenal3d_no_augmentation": no_aug,
             "recipes": {"brats": brats["recipe"], "adrenal3d": a3d["recipe"], "adrenal25d": a25["recipe"]},
             "machine": machine})


if __name__ == "__main__":
    main()
