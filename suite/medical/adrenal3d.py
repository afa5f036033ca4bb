"""AdrenalMNIST3D (28^3 CT volumes, adrenal mass yes/no): a small 3D CNN from scratch vs 2.5D transfer.

No 3D pretrained weights work offline, so two routes are compared on the official splits:
``3d``, a MONAI 3D ResNet-10 (quarter width) trained from random weights, and ``2.5d``, the frozen
ImageNet EfficientNet-Lite0 over slices with a linear head on the mean slice features
(:mod:`suite.medical.slices`). Both are shipped as solutions with model cards.

Reproduce: ``python -m suite.medical.adrenal3d --data adrenalmnist3d.npz --which both``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from .slices import SliceSampling

SPEC_3D = "monai:resnet10?spatial_dims=3&size=28&widen_factor=0.25&conv1_t_size=3"
CLASSES = ["normal", "adrenal mass"]
SOLUTIONS = Path(__file__).parent / "solutions"
DIR_3D = SOLUTIONS / "adrenal3d"
DIR_25D = SOLUTIONS / "adrenal25d"
# MedMNIST v2 (Yang et al., Scientific Data 2023), AdrenalMNIST3D test split, as published.
PUBLISHED = {"ResNet-18+3D": (0.863, 0.721), "ResNet-50+3D": (0.852, 0.732)}
NOT_CLINICAL = ("**Not for clinical use.** Research and demonstration only; not validated for diagnosis, "
                "screening or treatment decisions.")


def _load(npz, split: str):
    from suite.core.data import from_npz

    return from_npz(npz, split=split, classes=CLASSES)


def official_split_leakage(npz) -> dict:
    """The leakage check across the official train/val/test splits (exact and near-duplicate volumes)."""
    from suite.core.data import find_leakage_across

    report = find_leakage_across({name: _load(npz, name) for name in ("train", "val", "test")})
    return {"n_exact": report["n_exact"], "n_near": report["n_near"], "summary": report["summary"]}


def build_3d(npz, out=DIR_3D, epochs: int = 15, lr: float = 1e-3, seed: int = 0,
             augment: str | None = "standard") -> dict:
    """Train the 3D CNN from scratch on the official train split (random flips and small shifts with
    ``augment="standard"``; best epoch by validation loss), evaluate on the official test split, write
    the solution (with input guard) to ``out``."""
    from suite.core.finetune import finetune
    from suite.core.trainer import TrainConfig

    config = TrainConfig(strategy="full", epochs=epochs, lr=lr, batch_size=32, seed=seed, augment=augment,
                         progress=False)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as run:
        result = finetune(_load(npz, "train"), backbone=SPEC_3D, config=config, val_data=_load(npz, "val"),
                          test_data=_load(npz, "test"), in_chans=1, pretrained=False, output_dir=run,
                          name="adrenal3d")
    seconds = round(time.perf_counter() - start, 1)
    solution = result.solution
    report = result.report
    report["leakage"] = official_split_leakage(npz)
    solution.description = "Adrenal mass vs normal on 28^3 abdominal CT volumes (AdrenalMNIST3D)."
    solution.metrics = {"data": report["data"], "auroc": report["metrics"]["auroc"],
                        "accuracy": report["metrics"]["accuracy"], "ci95": {k: report["ci95"][k]
                                                                            for k in ("auroc", "accuracy")},
                        "published": PUBLISHED}
    solution.extra = {"volume": {"source": "MedMNIST 3D .npz", "size": [28, 28, 28], "scale": "uint8 / 255"},
                      "not_for_clinical_use": True}
    solution.recipe["build_seconds"] = seconds
    solution.card = card_3d(report, epochs, lr, seconds, augment)
    solution.save(out)
    return {"report": report, "seconds": seconds, "history": result.history, "leakage": report.get("leakage")}


def build_25d(npz, out=DIR_25D, sampling: SliceSampling | None = None, seed: int = 0) -> dict:
    """The 2.5D transfer solution: frozen Lite0 slice features (cached), linear head chosen on the
    official validation split, evaluated on the official test split."""
    from . import slices

    sampling = sampling or SliceSampling()
    start = time.perf_counter()
    train, val, test = (_load(npz, s) for s in ("train", "val", "test"))
    solution, fit = slices.train_linear(train, val, sampling, seed=seed)
    desc = f"official test split of {npz} ({len(test)} volumes, never trained on)"
    report, _ = slices.evaluate(solution, test, desc)
    report["leakage"] = official_split_leakage(npz)
    seconds = round(time.perf_counter() - start, 1)
    solution.name = "adrenal25d"
    solution.description = "Adrenal mass vs normal on 28^3 CT volumes: ImageNet Lite0 over slices (2.5D)."
    solution.metrics = {"data": desc, "auroc": report["metrics"]["auroc"], "accuracy": report["metrics"]["accuracy"],
                        "ci95": {k: report["ci95"][k] for k in ("auroc", "accuracy")}, "published": PUBLISHED}
    solution.recipe.update(build_seconds=seconds, sampling=sampling.to_dict())
    solution.card = card_25d(report, sampling, fit, seconds)
    solution.save(out)
    return {"report": report, "seconds": seconds, "fit": fit}


def _ci(report: dict, metric: str) -> str:
    v, ci = report["metrics"][metric], report["ci95"][metric]
    return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _metrics_section(report: dict) -> str:
    """The cards' metrics table (this model beside the published anchors) and the leakage line."""
    published = "\n".join(f"| {name} (MedMNIST v2 as published; quoted, not re-read here) | {auc:.3f} | {acc:.3f} |"
                          for name, (auc, acc) in PUBLISHED.items())
    leakage = (report.get("leakage") or {}).get("summary", "not run")
    return f"""## Metrics (official test split, 298 volumes; 95% bootstrap intervals)
| model | AUROC | accuracy |
|---|---|---|
| this model | {_ci(report, 'auroc')} | {_ci(report, 'accuracy')} |
{published}

Leakage check across the official splits: {leakage}."""


_DATA = """## Data
AdrenalMNIST3D from MedMNIST v2 (Yang et al., Scientific Data 2023), 28x28x28 crops of abdominal CT
around the adrenal glands, label 1 = adrenal mass; official splits 1,188 train / 98 validation /
298 test volumes. License of the data: CC BY 4.0."""


def card_3d(report: dict, epochs: int, lr: float, seconds: float, augment: str | None = "standard") -> str:
    aug = ("random flips along each axis and shifts of up to 2 voxels (`augment=\"standard\"`)"
           if augment not in (None, "none") else "no augmentation")
    return f"""# adrenal3d: adrenal mass on a 28^3 CT volume (3D CNN from scratch)

{NOT_CLINICAL}

## Model
`{SPEC_3D}`: MONAI 3D ResNet-10 at a quarter of its width (0.9M parameters), 3x3x3 stem, random
initialisation (no 3D pretrained weights offline), all layers trained {epochs} epochs, AdamW lr {lr},
batch 32, warm-up + cosine, {aug}; the epoch with the lowest validation loss is kept. Input: the MedMNIST
volume as stored (uint8 scaled to [0, 1]), shape (1, 28, 28, 28). Grad-CAM in 3D (`suite.core.explain`),
shown slice by slice. The input guard (Mahalanobis distance on the backbone features of the training
volumes) flags volumes unlike them.

{_DATA}

{_metrics_section(report)}
The published models trained 100 epochs on GPU; this one {epochs} epochs on 2 shared CPU cores ({seconds:.0f} s).

## Limits
Small crops of one public CT collection; not a detector for whole scans. Accuracy uses the 0.5
threshold of the softmax, where sensitivity is {report['metrics'].get('sensitivity', float('nan')):.3f} and specificity
{report['metrics'].get('specificity', float('nan')):.3f} (69 masses among the 298 test volumes): a screening use would need
another threshold, chosen on validation data.

## Reproduce
`python -m suite.medical.adrenal3d --data adrenalmnist3d.npz --which 3d --augment {augment or 'none'}`
"""


def card_25d(report: dict, sampling: SliceSampling, fit: dict, seconds: float) -> str:
    return f"""# adrenal25d: adrenal mass on a 28^3 CT volume (2.5D transfer from ImageNet)

{NOT_CLINICAL}

## Model
`embedded:efficientnet_lite0` (ImageNet, frozen, one input channel) applied to {sampling.describe()};
the pooled slice features are averaged per volume and a logistic regression on them (scikit-learn,
standardised features, C = {fit['C']} chosen by validation AUROC among {fit['grid']}) is stored as the
model's linear head. Only the head is stored. The input guard is fitted on the per-volume mean features.

{_DATA}

{_metrics_section(report)}
Validation AUROC of the chosen C: {fit['val_auroc']:.3f}. Built in {seconds:.0f} s on 2 shared CPU cores
(slice features computed once).

## Limits
ImageNet features of upsampled 28x28 CT slices; not a detector for whole scans. Not for clinical use.

## Reproduce
`python -m suite.medical.adrenal3d --data adrenalmnist3d.npz --which 2.5d`
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Build the AdrenalMNIST3D solutions (3D from scratch, 2.5D transfer).")
    p.add_argument("--data", required=True, help="adrenalmnist3d.npz (MedMNIST 3D, 28^3)")
    p.add_argument("--which", choices=["3d", "2.5d", "both"], default="both")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--augment", default="standard", help="3D training augmentation preset (none, light, standard)")
    p.add_argument("--out-3d", default=str(DIR_3D), help="where the 3D solution is written")
    p.add_argument("--json", help="write the raw results here")
    args = p.parse_args(argv)
    results = {}
    if args.which in ("2.5d", "both"):
        r = build_25d(args.data)
        results["2.5d"] = {"metrics": r["report"]["metrics"], "ci95": r["report"]["ci95"], "seconds": r["seconds"],
                           "fit": r["fit"]}
        print(f"2.5D: AUROC {_ci(r['report'], 'auroc')} accuracy {_ci(r['report'], 'accuracy')} ({r['seconds']} s)")
    if args.which in ("3d", "both"):
        r = build_3d(args.data, out=args.out_3d, epochs=args.epochs, augment=args.augment)
        results["3d"] = {"metrics": r["report"]["metrics"], "ci95": r["report"]["ci95"], "seconds": r["seconds"],
                         "history": r["history"], "leakage": r["leakage"]}
        print(f"3D: AUROC {_ci(r['report'], 'auroc')} accuracy {_ci(r['report'], 'accuracy')} ({r['seconds']} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# ----------------------------------------------------------------------------- inference on NIfTI


def nifti_prep():
    """How an uploaded NIfTI becomes a 28^3 input for the 3D solution (MedMNIST volumes come prepared)."""
    from .volumes import VolumePrep

    return VolumePrep(orientation="RAS", spacing=None, intensity="minmax", size=(28, 28, 28), fit="resize")


def predict_volume_3d(solution, volume) -> dict:
    """Probability, input-guard result and 3D Grad-CAM ``(D, H, W)`` of one volume through the 3D solution.

    ``volume`` is a :class:`~suite.medical.volumes.Volume` (prepared with :func:`nifti_prep`) or an
    already prepared array ``(D, H, W)`` (MedMNIST layout, uint8 or [0, 1] floats)."""
    import numpy as np

    from suite.core.explain import gradcam
    from suite.core.features import eval_transform

    from .volumes import Volume, axial_slices, prepare_volume

    array = axial_slices(prepare_volume(volume, nifti_prep())) if isinstance(volume, Volume) else np.asarray(volume)
    result = solution.predict(array)
    x = eval_transform(solution.model)(array)[None]
    cam = gradcam(solution.model, x, class_idx=len(solution.labels) - 1)[0]
    shown = array.astype(np.float32) / (255.0 if array.dtype == np.uint8 else 1.0)
    return {"result": result, "cam": cam, "volume": shown}
