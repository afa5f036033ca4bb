"""Training recipes for chest X-rays: ``adapt_xrays`` (any labelled X-ray data -> an XraySolution with an
honest report) and the backbones that fit 2D radiographs.

Grayscale reaches RGB-pretrained backbones through their first convolution adapted to one channel
(``in_chans=1``, done by the core hub), never by copying the gray channel three times. Binary tasks
get a decision threshold chosen on the validation split only; the test split is touched once, for
the report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import SuiteError
from ..core.trainer import TrainConfig
from .xray import NOT_FOR_CLINICAL_USE, XraySolution

BACKBONES_2D = {
    "embedded:efficientnet_lite0": "ImageNet EfficientNet-Lite0 embedded in the install (offline default)",
    "timm:resnet18": "any timm model (needs network or a filled Hugging Face cache)",
    "tv:densenet121": "any torchvision classifier (needs network or a filled TORCH_HOME)",
    "monai:DenseNet121?spatial_dims=2": "MONAI DenseNet-121, random init (its pretrained weights need network)",
}
THRESHOLD_CRITERIA = ("youden", "accuracy", "fixed")


def choose_threshold(y_true: np.ndarray, p_positive: np.ndarray, criterion: str = "youden") -> float:
    """The decision threshold on positive-class probabilities that maximises ``criterion`` on the given
    (validation) data: ``youden`` (sensitivity + specificity, robust to a different class balance at
    test time), ``accuracy``, or ``fixed`` (0.5)."""
    if criterion not in THRESHOLD_CRITERIA:
        raise SuiteError(f"threshold criterion must be one of {THRESHOLD_CRITERIA}, got {criterion!r}")
    y, p = np.asarray(y_true).astype(int), np.asarray(p_positive, dtype=float)
    if criterion == "fixed" or len(np.unique(y)) < 2:
        return 0.5
    candidates = np.unique(p)
    mids = np.concatenate([[candidates[0] / 2], (candidates[1:] + candidates[:-1]) / 2,
                           [(1 + candidates[-1]) / 2]])
    predicted = p[None, :] >= mids[:, None]
    tpr = (predicted & (y == 1)).sum(1) / (y == 1).sum()
    tnr = (~predicted & (y == 0)).sum(1) / (y == 0).sum()
    score = tpr + tnr if criterion == "youden" else (predicted == (y == 1)).mean(1)
    return float(np.clip(mids[int(np.argmax(score))], 1e-6, 1 - 1e-6))


def clinical_card(solution, report: dict, data_desc: str, command: str, extra_sections: str = "") -> str:
    """A model card: intended use, not-for-clinical-use, data, metrics with 95% CIs, threshold, limits."""
    m, ci = report["metrics"], report["ci95"]
    rows = "\n".join(f"| {k} | {v:.3f} | " + (f"[{ci[k][0]:.3f}, {ci[k][1]:.3f}]" if ci.get(k) else "—") + " |"
                     for k, v in m.items() if v is not None)
    per_label = report.get("per_label_auroc")
    findings = "" if not per_label else "\n## AUROC per finding\n\n| finding | AUROC |\n|---|---|\n" + "\n".join(
        f"| {k} | " + ("—" if v is None else f"{v:.3f}") + " |" for k, v in per_label.items()) + "\n"
    pre = solution.preprocess
    native = solution.extra.get("native_size")
    return f"""# {solution.name}

{solution.description}

> **{NOT_FOR_CLINICAL_USE}**

## Model
- backbone: `{solution.model.spec}` (first convolution adapted to 1 grayscale channel)
- task: {solution.task}; labels: {', '.join(solution.labels)}
- input: grayscale, {'resized to ' + str(native) + 'x' + str(native) + ' (the training resolution), then ' if native else ''}\
{pre.input_size[1]}x{pre.input_size[2]} {pre.interpolation}, mean {pre.mean[0]:.3f} / std {pre.std[0]:.3f}
- inputs accepted: PNG/JPEG (8/16-bit), DICOM (rescale slope/intercept, VOI LUT or window, MONOCHROME1 inverted)
{f'- decision threshold on P({solution.labels[1]}): {solution.threshold:.4f}, chosen on the validation split only' if solution.task == 'binary' else ''}

## Data
{data_desc}

## Metrics ({report['data']})

| metric | value | 95% CI |
|---|---|---|
{rows}

95% CIs: percentile bootstrap over {report['bootstrap']['resamples']} resamples of the test images.
{findings}{extra_sections}
## Reproduce

```bash
{command}
```

## Limits
- Trained on one public data set; performance on other hospitals, devices or populations is unknown.
- Inputs that are not chest radiographs are flagged (colour check, DICOM modality, input guard) but
  the model still outputs a probability: read the warnings.
- {NOT_FOR_CLINICAL_USE}
"""


def _as_xray_solution(solution) -> XraySolution:
    xray = XraySolution(solution.model, solution.labels, metrics=solution.metrics, recipe=solution.recipe,
                        name=solution.name, description=solution.description, card=solution.card,
                        threshold=solution.threshold, extra=dict(solution.extra))
    xray.guard = getattr(solution, "guard", None)  # the input guard finetune fitted on the training split
    return xray


def adapt_xrays(data, output_dir: str | os.PathLike | None = None, backbone: str = "embedded:efficientnet_lite0",
                config: TrainConfig | None = None, patient_col: str | None = None,
                patient_pattern: str | None = None, image_size: int | None = 128, threshold: str = "youden",
                name: str | None = None, data_options: dict[str, Any] | None = None, **finetune_kw):
    """Fine-tune ``backbone`` on chest X-rays and return ``(XraySolution, report)``.

    ``data``: a class-folder tree or CSV of PNG/JPEG/DICOM files (patient ids from ``patient_col``
    or ``patient_pattern``; splits keep patients whole, the leakage check runs), or a MedMNIST
    ``.npz`` (official splits). Binary tasks get a threshold chosen on validation (``threshold``).
    """
    from ..core.evaluation import write_report
    from ..core.finetune import _official_splits, evaluate_solution, finetune, make_splits
    from .data import load_xrays

    config = config or TrainConfig(strategy="partial", strategy_options={"n_groups": 3}, epochs=5)
    path = Path(data) if isinstance(data, (str, os.PathLike)) else None
    if path is not None and path.suffix.lower() == ".npz":
        val_data, test_data, opts = _official_splits(str(path), None, None, data_options)
        labelled = load_xrays(path, **opts)
    else:
        labelled = data if path is None else load_xrays(path, patient_col=patient_col,
                                                        patient_pattern=patient_pattern, **(data_options or {}))
        val_data = test_data = None
    result = finetune(labelled, backbone=backbone, config=config, output_dir=output_dir, val_data=val_data,
                      test_data=test_data, in_chans=1, image_size=image_size,
                      name=name or (path.stem if path else "xray"), **finetune_kw)
    leakage = result.report.get("leakage")
    solution = _as_xray_solution(result.solution)
    if val_data is None:
        parts, _ = make_splits(labelled, None, None, finetune_kw.get("val", 0.15), finetune_kw.get("test", 0.15),
                               config.seed)
        val_data, test_data = parts.get("val"), parts.get("test")
    if labelled.items and isinstance(labelled.items[0], np.ndarray) and np.ndim(labelled.items[0]) == 2:
        solution.extra["native_size"] = int(min(np.shape(labelled.items[0])))
    if solution.task == "binary" and val_data is not None and len(val_data):
        _, val_probs = evaluate_solution(solution, val_data, n_bootstrap=0)
        solution.threshold = choose_threshold(val_data.labels, val_probs[:, 1], threshold)
        solution.extra["threshold_rule"] = f"{threshold} on the validation split ({len(val_data)} items)"
    report = result.report
    if test_data is not None and len(test_data):
        source = test_data.source if test_data.source != labelled.source else f"test split of {labelled.source}"
        desc = f"{source} ({len(test_data)} items, never trained on or tuned on)"
        report, probs = evaluate_solution(solution, test_data, data_desc=desc, seed=config.seed)
        report["leakage"] = leakage
        report["notice"] = NOT_FOR_CLINICAL_USE
        for key in ("baseline_scratch", "transfer_comparison", "adaptation"):  # finetune's extra sections
            if key in result.report:
                report[key] = result.report[key]
                report["warnings"] += [w for w in result.report.get("warnings", []) if w not in report["warnings"]]
        if output_dir is not None:
            write_report(report, Path(output_dir) / "report", test_data.labels, probs,
                         title=f"{solution.name}: {backbone} (not for clinical use)")
        solution.metrics = {"data": desc, **report["metrics"], "ci95": report["ci95"],
                            "threshold": solution.threshold}
        if "per_label_auroc" in report:
            solution.metrics["per_label_auroc"] = report["per_label_auroc"]
    solution.card = clinical_card(solution, report, labelled.source, "see recipe in config.json")
    if output_dir is not None:
        solution.save(Path(output_dir) / "solution")
    return solution, report
