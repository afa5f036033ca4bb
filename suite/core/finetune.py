"""``finetune``: data in, a trustworthy Solution out (splits, leakage check, training, honest report).

This is what ``suite train`` and the apps call; it only composes the pieces below it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import SuiteError
from .hub import create_model
from .ood import check_reads
from .solution import Solution
from .trainer import Trainer, TrainConfig, seed_everything


@dataclass
class FinetuneResult:
    solution: Solution
    report: dict
    history: list[dict]
    leakage: dict | None = None
    baseline: dict | None = None
    comparison: dict | None = None
    files: dict[str, Path] = field(default_factory=dict)


def _as_data(data, **kw):
    from .data import LabeledData, load_data

    if data is None or isinstance(data, LabeledData):
        return data
    return load_data(data, **kw)


def _official_splits(data, val_data, test_data, data_options):
    """MedMNIST-style ``.npz`` files carry official splits: use them instead of re-splitting."""
    if isinstance(data, (str, os.PathLike)) and str(data).endswith(".npz") and val_data is None:
        opts = {k: v for k, v in (data_options or {}).items() if k != "split"}
        val_data = _as_data(data, split="val", **opts)
        if test_data is None:
            test_data = _as_data(data, split="test", **opts)
        data_options = {**opts, "split": "train"}
    return val_data, test_data, data_options


def infer_in_chans(data, sample: int = 8) -> int:
    """1 when the first images are all grayscale (X-rays, MedMNIST), else 3; volumes ``(D, H, W)`` 1,
    ``(C, D, H, W)`` C."""
    if data.modality == "volume" and len(data):
        shape = np.shape(data.items[0])
        return 1 if len(shape) == 3 else int(shape[0])
    if data.modality != "image":
        return 3
    modes = {data.load(i).mode for i in range(min(sample, len(data)))}
    return 1 if modes == {"L"} else 3


def make_splits(data, val_data, test_data, val: float, test: float, seed: int, calibration: float = 0.0):
    """Train/val/test LabeledData: the given sets, or group-aware stratified splits of ``data``.

    ``calibration`` > 0 also moves that share of the training split (whole groups, stratified) to a
    ``calibration`` split that is never trained on; the test split stays the one without it.
    """
    from .data import split_indices

    splits = split_indices(data.labels, val=0.0 if val_data is not None else val,
                           test=0.0 if test_data is not None else test, groups=data.groups, seed=seed)
    if calibration > 0:
        train = splits["train"]
        groups = None if data.groups is None else np.asarray(data.groups)[train]
        inner = split_indices(np.asarray(data.labels)[train], val=calibration, groups=groups, seed=seed)
        splits["train"], splits["calibration"] = train[inner["train"]], train[inner["val"]]
    parts = {name: data.subset(idx) for name, idx in splits.items() if len(idx)}
    if val_data is not None:
        parts["val"] = val_data
    if test_data is not None:
        parts["test"] = test_data
    return parts, splits


def _check_classes(train, other, name: str) -> None:
    if other is not None and list(other.classes) != list(train.classes):
        raise SuiteError(f"{name} data has classes {other.classes}, training data {train.classes}: they must match")


def evaluate_solution(solution: Solution, data, batch_size: int = 64, data_desc: str | None = None,
                      n_bootstrap: int = 1000, seed: int = 0) -> tuple[dict, np.ndarray]:
    """The evaluation report of ``solution`` on labelled ``data``, and its probabilities."""
    from .evaluation import evaluate_predictions

    from .features import predict_logits

    logits = predict_logits(solution.model, data, batch_size)
    probs = (logits.sigmoid() if solution.task == "multilabel" else logits.softmax(-1)).numpy()
    desc = data_desc or f"{data.source} ({len(data)} items)"
    result = evaluate_predictions(data.labels, probs, solution.labels, task=solution.task,
                                  threshold=solution.threshold if solution.task != "multiclass" else None,
                                  n_bootstrap=n_bootstrap, seed=seed, data_desc=desc)
    return result, probs


def _train_one(backbone, parts, config: TrainConfig, out: Path | None, in_chans, pretrained, task,
               resume, callbacks, image_size: int | None = None, target=None, head_hidden: int = 0):
    seed_everything(config.seed)
    train = parts["train"]
    model = create_model(backbone, num_classes=len(train.classes), in_chans=in_chans, pretrained=pretrained,
                         task=task, head_hidden=head_hidden)
    if image_size and model.preprocess.modality == "image":
        model.preprocess = replace(model.preprocess, input_size=(model.preprocess.in_chans, image_size, image_size))
    trainer = Trainer(model, config, output_dir=out, callbacks=callbacks)
    state = trainer.fit(train, parts.get("val"), resume=resume, target=target)
    return trainer.model, state


def _unlabelled(data):
    """The same items with every label hidden: adaptation never sees target labels."""
    hidden = np.full(data.labels.shape, -1, dtype=np.int64)
    return replace(data, labels=hidden)


def domain_gap(solution: Solution, source, target, batch_size: int = 64) -> dict:
    """Domain-classifier accuracy and proxy A-distance on ``solution``'s features of two data sets."""
    from .adaptation import domain_classifier_accuracy
    from .features import extract_features

    model = solution.model
    f_s = extract_features(model, source, batch_size).numpy()
    f_t = extract_features(model, target, batch_size).numpy()
    return domain_classifier_accuracy(f_s, f_t)


def finetune(data, backbone: str = "embedded:efficientnet_lite0", config: TrainConfig | None = None,
             output_dir: str | os.PathLike | None = None, val_data=None, test_data=None, val: float = 0.15,
             test: float = 0.15, in_chans: int | None = None, pretrained: bool = True, baseline: str | None = None,
             resume: bool = False, check_leakage: bool = True, name: str | None = None,
             callbacks: list[Callable] | None = None, data_options: dict[str, Any] | None = None,
             image_size: int | None = None, target_data=None, target_eval_data=None,
             head_hidden: int = 0, guard: bool = True, calibration: float = 0.0,
             guard_reads: str = "model") -> FinetuneResult:
    """Fine-tune ``backbone`` on ``data`` (a path or LabeledData) and return the Solution with its report.

    Without ``val_data``/``test_data`` the data is split (stratified, by group when it has groups).
    The report is computed on the test split (else validation) and says so. ``baseline="scratch"``
    also trains the same architecture from random weights (all layers, same epochs) and reports the
    transfer gain, warning on negative transfer. ``image_size`` trains at a smaller square input than
    the backbone's default (faster on CPU); it is stored with the Solution's preprocessing.

    With ``config.adapt`` the model adapts to ``target_data`` (unlabelled; labels are hidden from
    training) and a source-only model is trained under the same budget. ``target_eval_data``
    (labelled target data, used for evaluation only) then measures both, the domain classifier's
    accuracy on their features (proxy A-distance) before and after, and warns on negative transfer.

    With ``guard`` (default) the Solution gets an input guard fitted on the training split, so its
    predictions flag inputs unlike the training data (``ood`` in ``Solution.predict``). Its threshold
    is set on items never trained on: the ``calibration`` split (that share of the training split,
    held out of training) or else the validation split; without either, on training items.
    ``guard_reads="pretrained"`` fits it on the untouched pretrained backbone's features instead (see
    ``Solution.fit_guard``): a held-out part of the training items then sets a sound threshold, so none
    needs keeping out of training.
    """
    from .data import find_leakage, find_leakage_across
    from .evaluation import compare_runs, format_comparison_md, write_report

    from accelerate import PartialState

    config = config or TrainConfig()
    check_reads(guard_reads)  # before training, not after it
    val_data, test_data, data_options = _official_splits(data, val_data, test_data, data_options)
    data = _as_data(data, **(data_options or {}))
    val_data, test_data = _as_data(val_data), _as_data(test_data)
    for other, label in ((val_data, "validation"), (test_data, "test")):
        _check_classes(data, other, label)
    parts, splits = make_splits(data, val_data, test_data, val, test, config.seed, calibration)
    out = Path(output_dir) if output_dir else None
    leakage = None
    if check_leakage and (val_data is not None or test_data is not None):  # given sets: check them too
        leakage = find_leakage_across({name: parts.get(name) for name in ("train", "val", "test")})
    elif check_leakage and len(splits) > 1:
        leakage = find_leakage(data, splits)
    if leakage and leakage.get("summary") and config.progress:
        print(f"leakage check: {leakage['summary']}", flush=True)
    in_chans = in_chans or infer_in_chans(data)
    target, target_eval = _as_data(target_data), _as_data(target_eval_data)
    _check_classes(data, target_eval, "target evaluation")
    if config.adapt and target is None:
        raise SuiteError(f"adaptation {config.adapt!r} needs unlabelled target data (--target-data)")
    model, state = _train_one(backbone, parts, config, out / "train" if out else None, in_chans, pretrained,
                              data.task, resume, callbacks, image_size,
                              _unlabelled(target) if target is not None else None, head_hidden)
    if not PartialState().is_main_process:  # other ranks helped train; rank 0 evaluates and saves
        return FinetuneResult(Solution(model, data.classes), {}, state.history, leakage)
    eval_name = "test" if "test" in parts else "val"
    eval_data = parts.get(eval_name)
    recipe = {"backbone": backbone, "pretrained": pretrained, **asdict(config)}
    solution = Solution(model, data.classes, recipe=recipe, name=name or Path(str(data.source or "solution")).name,
                        description=f"Fine-tuned {backbone} on {data.source}.")
    if guard and len(parts["train"]) >= 10:
        unseen = parts.get("calibration", parts.get("val"))
        solution.fit_guard(parts["train"], batch_size=config.eval_batch_size, calibration=unseen, reads=guard_reads)
    report, files, baseline_report, comparison = {}, {}, None, None
    if eval_data is not None and len(eval_data):
        given = eval_data.source != data.source  # a set passed in (an official split), not cut from data
        where = eval_data.source if given else f"{eval_name} split of {data.source}"
        desc = f"{where} ({len(eval_data)} items, never trained on)"
        report, probs = evaluate_solution(solution, eval_data, data_desc=desc, seed=config.seed)
        report["leakage"] = None if leakage is None else {k: leakage[k] for k in ("n_exact", "n_near", "summary")
                                                         if k in leakage}
        report["skipped_files"] = [{"path": p, "problem": why} for p, why in data.skipped]  # unreadable, left out
        if baseline == "scratch":
            scratch_cfg = replace(config, strategy="full", strategy_options={})
            scratch_model, _ = _train_one(backbone, parts, scratch_cfg, out / "scratch" if out else None, in_chans,
                                          False, data.task, False, None, image_size)
            scratch = Solution(scratch_model, data.classes)
            baseline_report, _ = evaluate_solution(scratch, eval_data, data_desc=desc, seed=config.seed)
            comparison = compare_runs({"pretrained": report, "scratch": baseline_report}, metric="accuracy",
                                      reference="scratch")
            report["baseline_scratch"] = {"metrics": baseline_report["metrics"], "ci95": baseline_report["ci95"]}
            report["transfer_comparison"] = comparison
            report.setdefault("warnings", []).extend(comparison.get("warnings", []))
        elif baseline:
            raise SuiteError(f"unknown baseline {baseline!r}; the one baseline is 'scratch'")
        if config.adapt:
            report["adaptation"] = _adaptation_report(solution, parts, target, target_eval, backbone, config,
                                                      out, in_chans, pretrained, data.task, image_size,
                                                      head_hidden)
            report.setdefault("warnings", []).extend(report["adaptation"].get("warnings", []))
        solution.metrics = {"data": desc, **report["metrics"], "ci95": report["ci95"]}
        if config.adapt and report["adaptation"].get("target"):
            solution.metrics["target"] = report["adaptation"]["target"]
        if out is not None:
            files = write_report(report, out / "report", eval_data.labels, probs,
                                 title=f"{solution.name}: {backbone}")
            if config.adapt:
                with open(out / "report" / "report.md", "a") as f:
                    f.write(_adaptation_markdown(report["adaptation"]))
            if comparison is not None:
                with open(out / "report" / "report.md", "a") as f:
                    f.write("\n## Transfer vs scratch (same architecture, same epochs)\n\n")
                    f.write(format_comparison_md(comparison) + "\n")
    if out is not None:
        solution.save(out / "solution")
        (out / "history.json").write_text(json.dumps(state.history, indent=2))
    return FinetuneResult(solution, report, state.history, leakage, baseline_report, comparison, files)


def _adaptation_report(solution, parts, target, target_eval, backbone, config, out, in_chans, pretrained, task,
                       image_size, head_hidden) -> dict:
    """Source-only under the same budget, both on the labelled target data, and the domain gap."""
    from .evaluation import compare_runs

    source_cfg = replace(config, adapt=None, adapt_options={})
    source_model, _ = _train_one(backbone, parts, source_cfg, out / "source_only" if out else None, in_chans,
                                 pretrained, task, False, None, image_size, None, head_hidden)
    source_only = Solution(source_model, solution.labels)
    result = {"method": config.adapt, "options": config.adapt_options, "target_items_unlabelled": len(target),
              "warnings": []}
    source_eval = parts.get("test") or parts.get("val") or parts["train"]
    if target_eval is None:
        result["warnings"].append("no labelled target data given (--target-eval-data): the adaptation's "
                                  "effect on the target domain is not measured")
        return result
    desc = f"labelled target data {target_eval.source} ({len(target_eval)} items, used for evaluation only)"
    adapted_report, _ = evaluate_solution(solution, target_eval, data_desc=desc, seed=config.seed)
    source_report, _ = evaluate_solution(source_only, target_eval, data_desc=desc, seed=config.seed)
    comparison = compare_runs({"source-only": source_report, config.adapt: adapted_report}, metric="accuracy",
                              reference="source-only")
    result.update({
        "target": {"data": desc, "metrics": adapted_report["metrics"], "ci95": adapted_report["ci95"]},
        "source_only_target": {"metrics": source_report["metrics"], "ci95": source_report["ci95"]},
        "comparison": comparison,
        "domain_gap_before": domain_gap(source_only, source_eval, target_eval),
        "domain_gap_after": domain_gap(solution, source_eval, target_eval),
    })
    result["warnings"].extend(comparison.get("warnings", []))
    return result


def _adaptation_markdown(adapt: dict) -> str:
    from .evaluation import format_comparison_md

    lines = [f"\n## Domain adaptation: {adapt['method']}\n",
             f"Unlabelled target items used in training: {adapt['target_items_unlabelled']}.\n"]
    if "comparison" in adapt:
        lines += [f"Target evaluation: {adapt['target']['data']}.\n", format_comparison_md(adapt["comparison"]), "",
                  "| domain classifier on features | accuracy | proxy A-distance |", "|---|---|---|",
                  f"| source-only model | {adapt['domain_gap_before']['domain_accuracy']:.3f} | "
                  f"{adapt['domain_gap_before']['proxy_a_distance']:.3f} |",
                  f"| adapted model | {adapt['domain_gap_after']['domain_accuracy']:.3f} | "
                  f"{adapt['domain_gap_after']['proxy_a_distance']:.3f} |", ""]
    lines += [f"- {w}" for w in adapt.get("warnings", [])]
    return "\n".join(lines) + "\n"
