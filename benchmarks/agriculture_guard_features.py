"""Which features should the input guard read: the fine-tuned network's, or the untouched ImageNet backbone's?

Fine-tuning pulls the training photos together, so a threshold set on photos the network trained on
flags many new leaves; a guard on the fine-tuned features needs leaves held out of training to set
it. The untouched pretrained backbone never saw the training photos: for it, held-out training
photos are exchangeable with new ones, so a guard on its features (``Solution.fit_guard(...,
reads="pretrained")``, what the shipped recipe uses) keeps every leaf for training, at the cost of
a second forward pass. On split 0 this compares:

- ``pretrained``: the core guard on the untouched backbone of the first solution (its input size),
  fitted on every training photo, its threshold on a held-out fifth of them;
- ``pretrained, calibrated``: fitted on the training leaves less a ``--calibration`` share, its
  threshold on that share;
- each ``--solution``'s own guard, as shipped.

Sets: the 200 clean test photos (a flag is a false alarm), 16 scikit-image photos and textures and
chest X-rays from PneumoniaMNIST (a flag is the wanted answer). The leaf-colour check is left out.

    .venv/bin/python benchmarks/agriculture_guard_features.py \\
        --solution suite/agriculture/solutions/tomato runs/cpu288/field_mix288_s0/solution

Writes benchmarks/results/agriculture_guard_features.md and .json.
"""

from __future__ import annotations

# _common first: it sets the OpenMP wait policy, which torch reads when it loads
from _common import PNEUMONIA, REPO, TOMATO, publish, require, set_threads

import argparse

import numpy as np
from agriculture_guard import SKIMAGE_PHOTOS, _uint8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solution", nargs="+", default=[str(REPO / "suite" / "agriculture" / "solutions" / "tomato")])
    parser.add_argument("--xrays", type=int, default=200)
    parser.add_argument("--calibration", type=float, default=0.1,
                        help="share of the training leaves that sets the calibrated guard's threshold")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    machine = set_threads(args.threads)

    from PIL import Image
    from skimage import data as skdata

    from suite.agriculture.data import load_leaves
    from suite.agriculture.train import leaf_splits
    from suite.core import Solution

    data = load_leaves(require(TOMATO))
    splits = leaf_splits(data, seed=0, calibration=args.calibration)
    photos = {part: [data.load(i).convert("RGB") for i in splits[part]] for part in ("train", "calibration", "test")}
    with np.load(require(PNEUMONIA)) as npz:
        xrays = [Image.fromarray(x).convert("RGB") for x in npz["test_images"][: args.xrays]]
    sets = {"clean tomato test photos": photos["test"],
            "scikit-image photos and textures": [Image.fromarray(_uint8(getattr(skdata, n)())).convert("RGB")
                                                 for n in SKIMAGE_PHOTOS],
            "PneumoniaMNIST chest X-rays": xrays}
    def scores_of(solution) -> dict:
        return {s: solution.ood_scores(images, 32) for s, images in sets.items()}

    probe = Solution.load(args.solution[0])  # refitted below; the solutions' own guards stay as shipped
    scores = {}
    probe.fit_guard(photos["train"] + photos["calibration"], reads="pretrained")  # a recipe with no hold-out
    scores["untouched ImageNet backbone, threshold on held-out training photos"] = scores_of(probe)
    probe.fit_guard(photos["train"], calibration=photos["calibration"], reads="pretrained")
    scores[f"untouched ImageNet backbone, threshold on {len(photos['calibration'])} calibration photos"] = scores_of(probe)
    for path in args.solution:
        solution = Solution.load(path)
        reads = "fine-tuned" if solution.guard.reads == "model" else "untouched ImageNet"
        how = f"calibrated on {solution.guard.calibrated_on}" if solution.guard.calibrated_on else "held-out training"
        scores[f"`{path}` own guard ({reads} features, {how})"] = scores_of(solution)
    header = " | ".join(f"{s} (n={len(images)})" for s, images in sets.items())
    lines = ["## Input guard: untouched ImageNet features vs the fine-tuned network's (tomato split 0)", "",
             f"Share flagged (guard score above 1), then the score's 5th percentile / median / 95th. On the clean "
             f"test photos a flag is a false alarm; on the others it is the wanted answer. Backbone "
             f"`{probe.model.spec}` at {probe.preprocess.input_size[-1]} px. {machine}; shared machine.", "",
             f"| guard | {header} |", "|---|" + "---|" * len(sets)]
    raw = {}
    for name, by_set in scores.items():
        cells = [f"**{(v > 1).mean():.3f}** ({' / '.join(f'{q:.2f}' for q in np.quantile(v, [0.05, 0.5, 0.95]))})"
                 for v in by_set.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        raw[name] = {s: {"flagged": float((v > 1).mean()), "median_score": float(np.median(v))}
                     for s, v in by_set.items()}
    lines.append("")
    publish("agriculture_guard_features", "\n".join(lines), {"machine": machine, "guards": raw})


if __name__ == "__main__":
    main()
