"""Which features should the input guard read: the fine-tuned network's, or the frozen ImageNet backbone's?

Fine-tuning pulls the training photos together, so a threshold set on photos the network trained on
flags many new leaves; the shipped recipe therefore holds a tenth of the training leaves out of training
to set it. The frozen pretrained backbone never saw the training photos: for it, held-out training
photos are exchangeable with new ones, so a guard on its features could keep every leaf for training,
at the cost of a second forward pass. On split 0 this compares:

- ``frozen``: the embedded ImageNet weights of the first solution's backbone, at its input size; the
  guard fitted on the training photos, its threshold on a held-out fifth of them;
- ``frozen, calibrated``: fitted on the recipe's training leaves, threshold on its calibration leaves;
- each ``--solution``'s own guard (its fine-tuned features, its threshold as shipped).

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


def frozen_twin(solution):
    """The solution's backbone with its embedded ImageNet weights (nothing fine-tuned), same preprocessing."""
    from suite.core import Solution, create_model

    model = create_model(solution.model.spec, num_classes=len(solution.labels), pretrained=True)
    model.preprocess = solution.model.preprocess
    return Solution(model, solution.labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solution", nargs="+", default=[str(REPO / "suite" / "agriculture" / "solutions" / "tomato")])
    parser.add_argument("--xrays", type=int, default=200)
    parser.add_argument("--calibration", type=float, default=0.1, help="the recipe's calibration share")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    machine = set_threads(args.threads)

    from PIL import Image
    from skimage import data as skdata

    from suite.agriculture.data import load_leaves
    from suite.agriculture.train import leaf_splits
    from suite.core import Solution
    from suite.core.ood import InputGuard

    data = load_leaves(require(TOMATO))
    splits = leaf_splits(data, seed=0, calibration=args.calibration)
    photos = {part: [data.load(i).convert("RGB") for i in splits[part]] for part in ("train", "calibration", "test")}
    with np.load(require(PNEUMONIA)) as npz:
        xrays = [Image.fromarray(x).convert("RGB") for x in npz["test_images"][: args.xrays]]
    sets = {"clean tomato test photos": photos["test"],
            "scikit-image photos and textures": [Image.fromarray(_uint8(getattr(skdata, n)())).convert("RGB")
                                                 for n in SKIMAGE_PHOTOS],
            "PneumoniaMNIST chest X-rays": xrays}
    solutions = {path: Solution.load(path) for path in args.solution}
    frozen = frozen_twin(next(iter(solutions.values())))
    feats = {part: frozen.forward_items(images, 32)[1] for part, images in {**photos, **sets}.items()}
    order = np.random.default_rng(0).permutation(len(feats["train"]) + len(feats["calibration"]))
    every_leaf = np.concatenate([feats["train"], feats["calibration"]])[order]  # a recipe with no hold-out
    guards = {"frozen ImageNet features, threshold on held-out training photos": InputGuard.fit(every_leaf),
              f"frozen ImageNet features, threshold on {len(feats['calibration'])} calibration photos":
                  InputGuard.fit(feats["train"], calibration=feats["calibration"])}
    scores = {name: {s: guard.score(feats[s]) for s in sets} for name, guard in guards.items()}
    for path, solution in solutions.items():
        how = f"calibrated on {solution.guard.calibrated_on}" if solution.guard.calibrated_on else "held-out training"
        scores[f"`{path}` own guard (fine-tuned features, {how})"] = {s: solution.ood_scores(images, 32)
                                                                      for s, images in sets.items()}
    header = " | ".join(f"{s} (n={len(images)})" for s, images in sets.items())
    lines = ["## Input guard: frozen ImageNet features vs the fine-tuned network's (tomato split 0)", "",
             f"Share flagged (guard score above 1), then the score's 5th percentile / median / 95th. On the clean "
             f"test photos a flag is a false alarm; on the others it is the wanted answer. Backbone "
             f"`{frozen.model.spec}` at {frozen.preprocess.input_size[-1]} px. {machine}; shared machine.", "",
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
