"""The model card of a leaf-disease Solution: data, license, metrics with intervals, per-class recall,
ONNX size and latency, limits, and the one command that reproduces it.

    python -m suite.agriculture.card --refresh-export suite/agriculture/solutions/tomato   # re-measure the export
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from .data import display_name

DATA_NOTE = ("PlantVillage colour images (Hughes & Salathe 2015, arXiv:1511.08060): single leaves detached and "
             "photographed on a plain backdrop in controlled light. Upstream PlantVillage terms; research use. "
             "The data is not shipped.")


def _ci(report: dict, metric: str) -> str:
    value, ci = report["metrics"].get(metric), report["ci95"].get(metric)
    if value is None:
        return "n/a"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def _count_range(counts: tuple) -> str:
    """``90`` or ``85-95`` from (fewest, most)."""
    lo, hi = counts
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def training_counts(data, recipe) -> tuple:
    """(fewest, most) photos of a class in the recipe's training split (its test and calibration leaves out)."""
    import numpy as np

    from .train import leaf_splits

    splits = leaf_splits(data, seed=recipe.seed, calibration=recipe.calibration)
    counts = np.bincount(np.asarray(data.labels)[splits["train"]], minlength=len(data.classes))
    return int(counts.min()), int(counts.max())


def _fmt(value) -> str:
    """A metric to 3 decimals; ``n/a`` when undefined (e.g. the precision of a class never predicted)."""
    return "n/a" if value is None else f"{value:.3f}"


def onnx_figures(solution) -> dict:
    """Export ``solution`` to a temporary ONNX file: size, parity with PyTorch and single-image latency
    (``export_onnx``'s figures without the file's path, which is gone on return)."""
    from suite.core.export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        figures = export_onnx(solution, Path(tmp) / "model.onnx")
    return {k: v for k, v in figures.items() if k != "path"}


def export_section(onnx: dict) -> str:
    """The card's Export section from ``export_onnx``'s figures."""
    checked = "logits and guard scores" if "guard_score" in onnx.get("outputs", ()) else "logits"
    return (f"- ONNX (opset 17, dynamic batch): {onnx['size_mb']} MB, parity with PyTorch: max |diff| on {checked} "
            f"{onnx['max_abs_diff']:.1e} (tolerance {onnx['atol']:.0e}), latency for one image {onnx['onnx_ms']} ms "
            f"(ONNX Runtime) vs {onnx['torch_ms']} ms (PyTorch), CPU, shared machine\n"
            f"- `suite export <this folder> --out tomato.onnx`: {_onnx_outputs(onnx)}")


def refresh_export(path) -> dict:
    """Measure a shipped solution's ONNX export again and rewrite its card's Export section and the
    figures in its config.json (the weight files are not touched). Returns the figures."""
    import json

    from suite.core import Solution

    path = Path(path)
    onnx = onnx_figures(Solution.load(path))
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    config["metrics"]["onnx"] = onnx
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    card = path / "README.md"
    card.write_text(set_card_section(card.read_text(encoding="utf-8"), "Export", export_section(onnx)),
                    encoding="utf-8")
    return onnx


def _onnx_outputs(onnx: dict) -> str:
    """What the exported file computes, for the card."""
    if "guard_score" not in onnx.get("outputs", ()):
        return "the file holds the classifier (output `logits`), not the input guard"
    carries = ("; the guard reads the untouched ImageNet backbone, which the file carries as well"
               if onnx.get("guard_reads") == "pretrained" else "")
    return ("the file outputs `logits` and the input guard's `guard_score` (above 1: unknown or not a leaf)"
            + carries + "; the leaf-colour check (under 5% of the photo leaf-coloured) runs outside the file")


COMBINED = {"soup": "a uniform soup (the weight average, Wortsman et al. 2022)",
            "ensemble": "an ensemble (every network kept, their probabilities averaged at each prediction, "
                        "so a photo costs one pass per run)"}


def build_card(solution, report: dict, data_desc: str, recipe: dict, seconds: float | None, command: str,
               onnx: dict | None = None, storage_dtype: str = "float32", *, train_per_class: tuple) -> str:
    """The model card markdown; ``train_per_class`` is the (fewest, most) training photos of a class."""
    per_class = report.get("per_class", {})
    how = next((key for key in COMBINED if recipe.get(key)), None)  # runs combined into this solution
    rows = "\n".join(f"| {display_name(label)} | {_fmt(row.get('recall'))} | {_fmt(row.get('precision'))} | "
                     f"{row['support']} |" for label, row in per_class.items())
    size = solution.preprocess.input_size
    backbone_groups = len(solution.model.param_groups()) - 1
    every_layer = int(recipe.get("n_groups") or 0) >= backbone_groups
    strategy = (f"strategy `partial` with all {backbone_groups} backbone groups + head, i.e. every layer trains "
                "(full fine-tuning)" if every_layer else
                f"strategy `partial` (last {recipe.get('n_groups')} backbone groups + head)")
    weights = ("- weights: every tensor changed in training, so all are stored" if every_layer else
               "- weights: only the fine-tuned blocks and the head are stored; the rest comes from the embedded "
               "backbone package")
    if storage_dtype == "float16":
        weights += ("; as float16 (loaded back to float32); its test predictions were compared with the "
                    "float32 model's, and the metrics below are those of the stored solution's predictions")
    weakest = min(per_class.items(), key=lambda kv: kv[1]["recall"] or 0.0) if per_class else None
    lines = [
        f"# {solution.name}: tomato leaf disease detection",
        "",
        "Classifies a photo of one tomato leaf into 9 diseases or healthy, with a disease information card, "
        "an input guard (\"unknown or not a leaf\") and Grad-CAM, in the suite's agriculture vertical.",
        "",
        "## Intended use",
        "Research and demonstration: a first opinion on a single leaf photographed on a plain background. "
        "Not a substitute for a plant pathologist or an extension service; not for decisions on pesticide use.",
        "",
        "## Model",
        f"- backbone: `{solution.model.spec}` (ImageNet)" + (f", {len(recipe[how])} networks" if how == "ensemble"
                                                               else "") + f", input {size[1]}x{size[2]} RGB, "
        f"{solution.preprocess.interpolation} resize, ImageNet mean/std",
        "- recipe: " + (f"{COMBINED[how]} of {len(recipe[how])} runs from the same pretrained weights, with the "
                        "augmentation presets " + ", ".join(f"`{a}`" for a in str(recipe.get("augment")).split("+"))
                        + " (each run's command under Reproduce); each run: " if how else "")
        + f"{strategy}, {recipe.get('epochs')} epochs, AdamW lr {recipe.get('lr')}, batch {recipe.get('batch_size')}, "
        f"label smoothing {recipe.get('label_smoothing')}, "
        + ("" if how else f"augmentation preset `{recipe.get('augment')}`, ")
        + f"seed {recipe.get('seed')}",
        f"- labels: {', '.join(display_name(lab) for lab in solution.labels)}",
        weights,
        "",
        "## Data",
        f"- {DATA_NOTE}",
        f"- evaluated on: {data_desc}",
        "- split: stratified and leaf-aware (photos of the same leaf, from PlantVillage file names, never "
        "cross the split); no validation split, the last epoch is kept",
        _guard_line(solution, recipe),
        "",
        "## Metrics (never-seen test photos, 95% bootstrap intervals)",
        f"- accuracy: **{_ci(report, 'accuracy')}**",
        f"- balanced accuracy: {_ci(report, 'balanced_accuracy')}",
        f"- macro-F1: {_ci(report, 'macro_f1')}",
        "",
        "| class | recall | precision | test photos |",
        "|---|---|---|---|",
        rows,
        "",
    ]
    if onnx:
        lines += ["## Export", export_section(onnx), ""]
    lines += [
        "## Robustness",
        "See the robustness section below when present, and `benchmarks/results/agriculture_robustness.md`.",
        "",
        "## Limits",
        "- Trained on lab photos only: accuracy on photos taken in the field is lower (Mohanty et al. 2016 "
        "measured about 31% for lab-trained models on photos from other conditions). The `field` augmentation "
        "narrows, not closes, that gap; the robustness report measures it on corrupted test photos, not on "
        "real field photos.",
        f"- A CPU recipe on {_count_range(train_per_class)} training photos per class ({size[1]} px): "
        + ("test accuracy is below the 98-99% reported for PlantVillage with thousands of photos per class"
           if report["metrics"].get("accuracy", 0) < 0.98 else
           f"one split's {report['n']} test photos leave a wide interval (above); *Other splits*, when present, "
           "gives the recipe's accuracy pooled over several splits")
        + (f"; the weakest class is {display_name(weakest[0])} (recall {_fmt(weakest[1]['recall'])}), whose lesions "
           "look like those of the other blights and leaf spots." if weakest else "."),
        "- Knows tomato only; other crops and several leaves in one photo are outside its scope. The input guard "
        "and the leaf-colour check flag many such photos, not all.",
        "- Research and demonstration use only.",
        "",
        "## Reproduce",
        "```bash",
        command,
        "```",
        (f"Training took {seconds:.0f} s on a shared 2-core CPU" + (", all runs together." if how
                                                                     else ".")) if seconds else "",
        "",
    ]
    return "\n".join(lines)


def set_card_section(card: str, title: str, body: str) -> str:
    """``card`` with the ``## title`` section replaced by ``body`` (appended before Limits when absent)."""
    section = f"## {title}\n{body.rstrip()}\n\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(card):
        return pattern.sub(lambda _: section, card, count=1)
    return card.replace("## Limits\n", section + "## Limits\n", 1)


def ship_solution(result, data, path, recipe, seconds: float | None, command: str,
                  storage_dtype: str = "float32") -> Path:
    """Save ``result.solution`` to ``path`` with the agriculture model card and metrics in config.json.

    ``storage_dtype="float16"`` halves the file; ``python -m suite.agriculture.train --half`` then
    scores the reloaded solution and, when a test prediction moved, writes the card from that score."""
    solution, report = result.solution, result.report
    solution.name = Path(path).name
    solution.description = "Tomato leaf disease detection (9 diseases and healthy) from one leaf photo."
    onnx = onnx_figures(solution)
    recipe_dict = {**{k: v for k, v in vars(recipe).items() if k != "extra"}, **recipe.extra}
    solution.recipe = {**solution.recipe, "agriculture_recipe": recipe_dict, "command": command}
    folder = Path(str(data.source).split()[-1]).name
    desc = f"the leaf-aware test split of {folder} ({report['n']} photos, never trained on)"
    # the headline metrics are the report's, as in the card (the reloaded float16 model's when it differs)
    solution.metrics = {**solution.metrics, "data": desc, **report["metrics"], "ci95": report.get("ci95", {}),
                        "per_class_recall": {lab: row["recall"] for lab, row in report.get("per_class", {}).items()},
                        "onnx": onnx}
    solution.card = build_card(solution, report, desc, recipe_dict, seconds, command, onnx, storage_dtype,
                               train_per_class=training_counts(data, recipe))
    return solution.save(path, storage_dtype=storage_dtype)


def _guard_line(solution, recipe: dict) -> str:
    """How the input guard's threshold was set."""
    guard = solution.guard
    if guard is None:
        return "- input guard: none"
    if guard.reads == "pretrained":
        where = (f"{guard.calibrated_on} photos held out of training" if guard.calibrated_on else
                 "a held-out fifth of the training photos")
        return (f"- input guard: models the features of the untouched ImageNet backbone (not the fine-tuned one) "
                f"of the training photos; its threshold is the {guard.quantile:.0%} quantile (conformal) of "
                f"{where}, which that network never trained on, so about {1 - guard.quantile:.0%} of new leaf "
                "photos like them are flagged; it costs a second backbone pass per photo")
    if guard.calibrated_on:
        return (f"- input guard: fitted on the training photos; its threshold is the {guard.quantile:.0%} quantile "
                f"(conformal) of {guard.calibrated_on} photos never trained on, a leaf-aware "
                f"{float(recipe.get('calibration') or 0):.0%} of the training leaves held out of training for it")
    return (f"- input guard: fitted on the training photos; its threshold is the {guard.quantile:.0%} quantile of "
            "held-out training photos the network trained on, so it flags more new leaves than that promises")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m suite.agriculture.card",
                                     description="Re-measure a shipped solution's ONNX export for its card.")
    parser.add_argument("--refresh-export", required=True, metavar="DIR", help="shipped solution folder")
    print(json.dumps(refresh_export(parser.parse_args(argv).refresh_export), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
