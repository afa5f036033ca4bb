"""Brain MRI, slice by slice: tumour present or absent on each axial FLAIR slice (BraTS layout).

A 2D ImageNet backbone classifies axial slices of a prepared volume (:mod:`suite.medical.volumes`);
a whole volume gives one probability per slice. Labels come from the tumour label map: a slice is
``tumour`` when at least ``min_tumour_pixels`` of its voxels carry a tumour label. Evaluation holds
out whole subjects (leave-one-subject-out), never slices of a subject seen in training.

Reproduce the shipped solution: ``python -m suite.medical.mri --data <brats2015 folder>``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from suite.core.errors import SuiteError

from .volumes import Volume, VolumePrep, axial_slices, load_nifti, prepare_volume, to_uint8

CLASSES = ["no tumour", "tumour"]
FLAIR_PREP = VolumePrep(orientation="RAS", spacing=(1.0, 1.0, 1.0), intensity="foreground_z", window=(-2.5, 6.5))
MIN_TUMOUR_PIXELS = 50  # a slice with fewer tumour pixels (but some) is ambiguous and left out
MIN_BRAIN_FRACTION = 0.02  # slices with less brain than this share of the slice are left out
BACKBONE = "embedded:efficientnet_lite0"
SOLUTION_DIR = Path(__file__).parent / "solutions" / "brats_flair_slices"
NOT_CLINICAL = ("**Not for clinical use.** Research and demonstration only: trained on three subjects; "
                "it has not been validated for diagnosis, screening or treatment decisions.")


@dataclass
class SliceSet:
    """Axial slices of several subjects as a 2D image data set, with where each slice came from."""

    data: Any  # LabeledData of uint8 slices (H, W), groups = subject ids
    subject: list[str]
    slice_index: list[int]
    tumour_pixels: list[int]
    left_out: dict[str, int] = field(default_factory=dict)


def brats_subjects(root) -> list[Path]:
    """Subject folders of a BraTS-layout directory (each with a FLAIR and a label map)."""
    root = Path(root)
    subjects = sorted(p for p in root.iterdir() if p.is_dir() and list(p.glob("*Flair*.nii*")))
    if not subjects:
        raise SuiteError(f"{root}: no subject folders with a *Flair*.nii(.gz) volume")
    return subjects


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        raise SuiteError(f"{folder}: no file matching {pattern}")
    return found[0]


def subject_slices(folder: Path, prep: VolumePrep = FLAIR_PREP, min_tumour_pixels: int = MIN_TUMOUR_PIXELS,
                   min_brain_fraction: float = MIN_BRAIN_FRACTION) -> dict[str, np.ndarray]:
    """One subject's usable axial slices: ``images`` (uint8), ``labels``, ``index``, ``tumour_pixels``,
    and counts of slices left out (too little brain; ambiguous, 1..min-1 tumour pixels)."""
    flair = prepare_volume(load_nifti(_one(folder, "*Flair*.nii*")), prep)
    labels = load_nifti(_one(folder, "OTMultiClass*.nii*"), orientation=prep.orientation).array
    mask_files = sorted(folder.glob("brainmask*.nii*"))
    brain = (load_nifti(mask_files[0], orientation=prep.orientation).array > 0.5) if mask_files else flair > 0
    if labels.shape != flair.shape or brain.shape != flair.shape:
        raise SuiteError(f"{folder}: FLAIR {flair.shape}, label map {labels.shape} and brain mask {brain.shape} "
                         "must have one shape (the label map is not resampled)")
    images = to_uint8(axial_slices(flair))
    tumour = (axial_slices(labels) > 0).sum(axis=(1, 2))
    brain_share = axial_slices(brain.astype(np.float32)).mean(axis=(1, 2))
    enough_brain = brain_share >= min_brain_fraction
    ambiguous = (tumour > 0) & (tumour < min_tumour_pixels)
    keep = enough_brain & ~ambiguous
    return {"images": images[keep], "labels": (tumour[keep] >= min_tumour_pixels).astype(np.int64),
            "index": np.flatnonzero(keep), "tumour_pixels": tumour[keep],
            "left_out": {"little_brain": int((~enough_brain).sum()),
                         "ambiguous": int((enough_brain & ambiguous).sum())}}


def brats_slices(root, prep: VolumePrep = FLAIR_PREP, min_tumour_pixels: int = MIN_TUMOUR_PIXELS,
                 min_brain_fraction: float = MIN_BRAIN_FRACTION) -> SliceSet:
    """Every subject's usable FLAIR slices as one grouped 2D data set (group = subject)."""
    from suite.core.data import LabeledData

    items, labels, subjects, index, tumour, left_out = [], [], [], [], [], {}
    for folder in brats_subjects(root):
        s = subject_slices(folder, prep, min_tumour_pixels, min_brain_fraction)
        items += list(s["images"])
        labels.append(s["labels"])
        subjects += [folder.name] * len(s["labels"])
        index += s["index"].tolist()
        tumour += s["tumour_pixels"].tolist()
        left_out[folder.name] = s["left_out"]
    data = LabeledData(items=items, labels=np.concatenate(labels), classes=list(CLASSES), modality="image",
                       groups=list(subjects), source=f"BraTS FLAIR axial slices ({root})", task="binary")
    return SliceSet(data, subjects, index, tumour, left_out)


# ----------------------------------------------------------------------------- training


def _model(image_size: int):
    import dataclasses

    from suite.core import create_model

    model = create_model(BACKBONE, num_classes=len(CLASSES), in_chans=1, task="binary")
    model.preprocess = dataclasses.replace(model.preprocess, input_size=(1, image_size, image_size))
    return model


def train_slices(data, config=None, image_size: int = 160):
    """A Lite0 slice classifier trained on ``data`` (frozen backbone, cached features by default)."""
    from suite.core.trainer import TrainConfig, Trainer, seed_everything

    config = config or TrainConfig(strategy="feature_extraction", epochs=40, lr=1e-2, batch_size=32,
                                   class_weights=True, progress=False)
    seed_everything(config.seed)
    trainer = Trainer(_model(image_size), config)
    trainer.fit(data)
    return trainer.model


def leave_one_subject_out(slices: SliceSet, config=None, image_size: int = 160, n_bootstrap: int = 1000) -> dict:
    """Train on all subjects but one, evaluate on that one, for each subject (with the leakage check
    of train vs held-out slices). Returns per-subject reports and a pooled one."""
    from suite.core.data import find_leakage
    from suite.core.evaluation import evaluate_predictions
    from suite.core.finetune import evaluate_solution
    from suite.core.solution import Solution

    data = slices.data
    groups = np.asarray(data.groups)
    folds, pooled_y, pooled_p = {}, [], []
    for subject in sorted(set(groups)):
        test_idx, train_idx = np.flatnonzero(groups == subject), np.flatnonzero(groups != subject)
        leakage = find_leakage(data, {"train": train_idx, "test": test_idx}, max_pairs=10 ** 6)
        start = time.perf_counter()
        model = train_slices(data.subset(train_idx), config, image_size)
        held_out = data.subset(test_idx)
        desc = f"held-out subject {subject} ({len(test_idx)} FLAIR slices, never trained on)"
        report, probs = evaluate_solution(Solution(model, CLASSES), held_out, data_desc=desc,
                                          n_bootstrap=n_bootstrap)
        report["leakage"] = _leakage_cell(leakage)
        report["seconds"] = round(time.perf_counter() - start, 1)
        folds[subject] = report
        pooled_y.append(held_out.labels)
        pooled_p.append(probs)
    y, p = np.concatenate(pooled_y), np.concatenate(pooled_p)
    pooled = evaluate_predictions(y, p, CLASSES, task="binary", n_bootstrap=n_bootstrap,
                                  data_desc=f"all {len(y)} held-out slices of the {len(folds)} folds pooled")
    return {"folds": folds, "pooled": pooled}


def _leakage_cell(leakage: dict) -> dict:
    """Pairs that cross the train/held-out boundary (near duplicates inside training, neighbouring
    slices of one brain, are expected and not leakage), and subjects in both."""
    cross = {kind: sum(p["split_a"] != p["split_b"] for p in leakage[kind]) for kind in ("exact", "near")}
    shared = len(leakage["groups_shared"])
    return {"exact_across": cross["exact"], "near_across": cross["near"], "subjects_shared": shared,
            "summary": f"{cross['exact']} exact / {cross['near']} near duplicates across; {shared} shared subjects",
            "full": leakage["summary"]}


def _summary(loso: dict) -> dict:
    cells = {}
    for name, rep in [*loso["folds"].items(), ("pooled", loso["pooled"])]:
        cells[name] = {"n": rep["n"], "data": rep["data"],
                       **{m: rep["metrics"][m] for m in ("auroc", "accuracy", "sensitivity", "specificity")
                          if m in rep["metrics"]},
                       "ci95": {m: rep["ci95"][m] for m in ("auroc", "accuracy") if m in rep["ci95"]},
                       **({"leakage": rep["leakage"]["summary"]} if "leakage" in rep else {})}
    return cells


def loso_markdown(loso: dict) -> str:
    """A table of AUROC and accuracy (95% bootstrap CIs) per held-out subject and pooled."""
    def cell(rep, m):
        v, ci = rep["metrics"].get(m), rep["ci95"].get(m)
        return "n/a" if v is None else f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"

    lines = ["| held-out subject | slices (tumour) | AUROC [95% CI] | accuracy [95% CI] | leakage check |",
             "|---|---|---|---|---|"]
    for name, rep in [*loso["folds"].items(), ("pooled", loso["pooled"])]:
        pos = rep["per_class"][CLASSES[1]]["support"] if "per_class" in rep else "?"
        leak = rep.get("leakage", {}).get("summary", "") if name != "pooled" else ""
        lines.append(f"| {name} | {rep['n']} ({pos}) | {cell(rep, 'auroc')} | {cell(rep, 'accuracy')} | {leak} |")
    return "\n".join(lines)


def build_solution(root, out=SOLUTION_DIR, image_size: int = 160, epochs: int = 40, seed: int = 0) -> dict:
    """Leave-one-subject-out evaluation, then the solution trained on every subject, written to ``out``."""
    from suite.core.solution import Solution
    from suite.core.trainer import TrainConfig

    config = TrainConfig(strategy="feature_extraction", epochs=epochs, lr=1e-2, batch_size=32, class_weights=True,
                         seed=seed, progress=False)
    start = time.perf_counter()
    slices = brats_slices(root)
    loso = leave_one_subject_out(slices, config, image_size)
    model = train_slices(slices.data, config, image_size)
    recipe = {"backbone": BACKBONE, "strategy": "feature_extraction", "epochs": epochs, "lr": 1e-2,
              "batch_size": 32, "class_weights": True, "image_size": image_size, "seed": seed,
              "min_tumour_pixels": MIN_TUMOUR_PIXELS, "min_brain_fraction": MIN_BRAIN_FRACTION}
    metrics = {"protocol": "leave-one-subject-out on BraTS 2015 FLAIR axial slices (3 subjects)",
               "per_subject": _summary(loso)}
    solution = Solution(model, CLASSES, metrics=metrics, recipe=recipe, name="brats_flair_slices",
                        description="Tumour present vs absent on axial brain MRI FLAIR slices.",
                        extra={"volume": FLAIR_PREP.to_dict(), "slices": "axial", "sequence": "FLAIR",
                               "not_for_clinical_use": True})
    solution.fit_guard(slices.data)
    recipe["build_seconds"] = round(time.perf_counter() - start, 1)
    solution.card = model_card(loso, slices, recipe)
    Path(out).mkdir(parents=True, exist_ok=True)
    solution.save(out)
    return {"loso": loso, "left_out": slices.left_out, "n_slices": len(slices.data),
            "seconds": recipe["build_seconds"], "solution": str(out)}


def model_card(loso: dict, slices: SliceSet, recipe: dict) -> str:
    n_pos = int(slices.data.labels.sum())
    return f"""# brats_flair_slices: brain tumour present on an axial FLAIR slice

{NOT_CLINICAL}

## What it does
Given a brain MRI FLAIR volume (NIfTI), it prepares it (RAS orientation, 1 mm spacing, z-score of the
non-background voxels, window [-2.5, 6.5] mapped to gray levels) and gives each axial slice a
probability that tumour (any BraTS label 1-4: necrosis, edema, non-enhancing or enhancing tumour)
is visible on it. Labels, classes: `{CLASSES[0]}`, `{CLASSES[1]}`.

## Model
- backbone `{BACKBONE}` (ImageNet, embedded, frozen; first convolution summed to one channel),
  input {recipe['image_size']}x{recipe['image_size']}, linear head on its pooled features
  (feature extraction, {recipe['epochs']} epochs, AdamW lr {recipe['lr']}, class weights). Only the head is stored.
- Grad-CAM maps per slice come from `suite.core.explain`.

## Data
BraTS 2015 training data (Menze et al., IEEE TMI 2015), 3 subjects ({', '.join(sorted(slices.left_out))}),
FLAIR volumes 240x240x155 at 1 mm, skull-stripped and z-normalised inside the brain by the data
provider. License of the data: CC BY-NC-SA 3.0 CH (non-commercial). {len(slices.data)} slices used,
{n_pos} with tumour: a slice is `tumour` with at least {MIN_TUMOUR_PIXELS} tumour pixels; slices with
1-{MIN_TUMOUR_PIXELS - 1} tumour pixels (ambiguous) and slices with less than {MIN_BRAIN_FRACTION:.0%}
brain are left out (per subject: {json.dumps(slices.left_out)}).

## Metrics (leave-one-subject-out: trained on two subjects, tested on the third)
{loso_markdown(loso)}

95% intervals are percentile bootstraps over the held-out subject's slices. Neighbouring slices are
strongly correlated, so these intervals are too narrow for new subjects: with three subjects the
honest statement is "worked on each of three held-out brains", not a population estimate.
The leakage check compared every training slice with every held-out slice (exact and near duplicates,
subjects in both); near duplicates among a subject's own neighbouring slices are expected and not counted.
Built in {recipe['build_seconds']:.0f} s on 2 CPU cores shared with other jobs (slice features are computed once).

## Limits
- Three subjects, one data set, one scanner protocol family (BraTS 2013 part of BraTS 2015),
  skull-stripped inputs. Raw scans with skull, other sequences (T1, T2) or other orientations than
  axial slices are outside what it was trained on; the input guard flags slices whose features lie
  far from the training slices.
- A slice-level presence score, not a segmentation, not a diagnosis.

## Reproduce
`python -m suite.medical.mri --data /path/to/brats2015 --out {SOLUTION_DIR.relative_to(SOLUTION_DIR.parents[3])}`
(the solution trained on all three subjects; the table above from its leave-one-subject-out step).
"""


# ----------------------------------------------------------------------------- inference


def load_solution(path=SOLUTION_DIR):
    """The shipped (or another) slice solution."""
    from suite.core.solution import Solution

    if not (Path(path) / "config.json").is_file():
        raise SuiteError(f"{path}: no solution there; build it with python -m suite.medical.mri --data <brats2015>")
    return Solution.load(path)


def volume_slice_images(solution, volume: Volume) -> np.ndarray:
    """The volume prepared as ``solution`` was trained (its ``extra["volume"]``): uint8 axial slices ``(Z, H, W)``."""
    prep = VolumePrep.from_dict(solution.extra.get("volume", FLAIR_PREP.to_dict()))
    return to_uint8(axial_slices(prepare_volume(volume, prep)))


def predict_volume(solution, volume: Volume, batch_size: int = 32) -> dict:
    """Per-slice tumour probabilities of a volume: ``probs`` (Z,), ``images`` (Z, H, W) uint8 and, when
    the solution has an input guard, ``ood`` flags per slice."""
    images = volume_slice_images(solution, volume)
    results = solution.predict(list(images), batch_size=batch_size)
    positive = solution.labels[-1]
    probs = np.array([r["probs"][positive] for r in results], dtype=np.float32)
    ood = [bool(r["ood"]) for r in results] if results and "ood" in results[0] else None
    return {"probs": probs, "images": images, "ood": ood, "label": positive}


def explain_slice(solution, image: np.ndarray) -> np.ndarray:
    """Grad-CAM of the positive class on one slice (uint8 ``(H, W)``): an RGB overlay on the model's input."""
    from suite.core.explain import explain_image

    return explain_image(solution, image, class_idx=len(solution.labels) - 1)[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Build the BraTS FLAIR slice solution (leave-one-subject-out report).")
    p.add_argument("--data", required=True, help="BraTS-layout folder: one sub-folder per subject")
    p.add_argument("--out", default=str(SOLUTION_DIR))
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    result = build_solution(args.data, args.out, args.image_size, args.epochs, args.seed)
    print(loso_markdown(result["loso"]))
    print(f"\n{result['n_slices']} slices; left out per subject: {result['left_out']}; "
          f"{result['seconds']} s; solution: {result['solution']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
