"""How often the tomato solution says "unknown or not a leaf", on leaves and on photos that are not leaves.

Two checks (``suite.agriculture.diagnose``): the leaf-colour check (under 5% of the photo
leaf-coloured) and the core input guard (Mahalanobis distance on backbone features, the fine-tuned
network's or the untouched ImageNet one's; the threshold is set on photos the network it reads
never trained on, or on held-out training photos for solutions trained without them). Rates are reported per check and for either.

Sets: the tomato test split (200 never-seen photos; flagging them is a false alarm), the same photos
after field-like corruptions at severity 3, 16 everyday photos and textures bundled with
scikit-image, and 200 chest X-rays from the PneumoniaMNIST test split (upscaled from 28 px).

    .venv/bin/python benchmarks/agriculture_guard.py [--solution suite/agriculture/solutions/tomato]
    .venv/bin/python benchmarks/agriculture_guard.py --solution runs/cpu288/field_mix288c_s1/solution \
        --split 1 --name agriculture_guard_s1      # a run of another split, on that split's test photos

Writes benchmarks/results/agriculture_guard.md and .json (``--name`` changes the stem).
"""

from __future__ import annotations

# _common first: it sets the OpenMP wait policy, which torch reads when it loads
from _common import PNEUMONIA, REPO, TOMATO, publish, require, set_threads

import argparse

import numpy as np

SKIMAGE_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "retina", "hubble_deep_field",
                  "immunohistochemistry", "grass", "gravel", "brick", "moon", "coins", "clock", "horse", "page")


def _uint8(arr: np.ndarray) -> np.ndarray:
    return arr.astype(np.uint8) * 255 if arr.dtype == bool else arr


def flags(solution, images) -> dict:
    """Per-image flags of the two checks and of either."""
    from suite.agriculture.diagnose import MIN_LEAF_SHARE, leaf_share

    shares = np.array([leaf_share(im) for im in images])
    predictions = solution.predict(list(images)) if solution.guard is not None else []
    ood = np.array([r["ood"] for r in predictions]) if predictions else np.zeros(len(images), bool)
    scores = np.array([r["ood_score"] for r in predictions]) if predictions else np.full(len(images), np.nan)
    colour = shares < MIN_LEAF_SHARE
    return {"leaf colour": colour, "input guard": ood, "either": colour | ood, "n": len(images),
            "guard score": scores}


def guard_cost_ms(solution, photo, repeats: int = 20) -> tuple[float, float]:
    """Median ms for one photo: ``predict`` (prediction and guard) and ``predict_proba`` (prediction only);
    the warm-up call builds what is built once, such as a guard's pretrained backbone."""
    from suite.core.export import median_ms

    return (median_ms(lambda: solution.predict(photo), repeats),
            median_ms(lambda: solution.predict_proba([photo]), repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solution", default=str(REPO / "suite" / "agriculture" / "solutions" / "tomato"))
    parser.add_argument("--xrays", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--split", type=int, default=0, help="seed of the leaf-aware split the solution was trained on")
    parser.add_argument("--name", default="agriculture_guard", help="stem of the results files")
    args = parser.parse_args()
    machine = set_threads(args.threads)

    from PIL import Image
    from skimage import data as skdata

    from suite.agriculture.data import load_leaves
    from suite.agriculture.robustness import FIELD_CORRUPTIONS
    from suite.agriculture.train import leaf_splits
    from suite.core import Solution
    from suite.core.data import corruption

    solution = Solution.load(args.solution)
    data = load_leaves(require(TOMATO))
    test = data.subset(leaf_splits(data, seed=args.split)["test"])
    leaves = [test.load(i).convert("RGB") for i in range(len(test))]
    sets = {"tomato test photos (clean)" + (f", split {args.split}" if args.split else ""): leaves}
    for name in FIELD_CORRUPTIONS:
        sets[f"tomato test photos, {name} 3"] = [corruption(name, 3)(im) for im in leaves]
    sets["scikit-image photos and textures"] = [Image.fromarray(_uint8(getattr(skdata, n)())) for n in SKIMAGE_PHOTOS]
    with np.load(require(PNEUMONIA)) as npz:
        xrays = npz["test_images"][: args.xrays]
    sets["PneumoniaMNIST chest X-rays (test)"] = [Image.fromarray(x) for x in xrays]
    rows = {name: flags(solution, images) for name, images in sets.items()}
    with_guard, without = guard_cost_ms(solution, leaves[0])
    reads = solution.guard.reads if solution.guard is not None else "none"

    lines = ["## Unknown-input rates of the tomato solution", "",
             "Share of photos called \"unknown or not a leaf\" by each check. On tomato photos a flag is a false "
             "alarm (clean) or a refusal (corrupted: the photo moved away from the training photos); on the other "
             f"sets it is the wanted answer. {machine}; shared machine.", "",
             "Guard score: distance to the training photos over the guard's threshold (above 1: flagged); its "
             "min, median and 95th percentile show how far each set sits from the threshold.", "",
             "| photos | n | leaf-colour check | input guard | either (what the app shows) | guard score min / median / p95 |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        q = np.nanquantile(r["guard score"], [0, 0.5, 0.95]) if np.isfinite(r["guard score"]).any() else [np.nan] * 3
        lines.append(f"| {name} | {r['n']} | {r['leaf colour'].mean():.3f} | {r['input guard'].mean():.3f} | "
                     f"**{r['either'].mean():.3f}** | {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f} |")
    lines += ["", f"Cost of the guard (it reads the `{reads}` backbone): one photo through `predict` (prediction and "
              f"guard) {with_guard:.1f} ms vs `predict_proba` (prediction only) {without:.1f} ms, median of 20.", ""]
    raw = {name: {k: (float(np.nanmedian(v)) if k == "guard score" else float(v.mean()))
                  if isinstance(v, np.ndarray) else v for k, v in r.items()} for name, r in rows.items()}
    publish(args.name, "\n".join(lines), {"machine": machine, "rates": raw, "skimage": list(SKIMAGE_PHOTOS),
                                          "solution": str(args.solution), "split": args.split,
                                          "guard_reads": reads, "ms_predict": with_guard, "ms_predict_proba": without})


if __name__ == "__main__":
    main()
