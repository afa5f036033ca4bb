"""ONNX export of a Solution, classifier and input guard, with a parity check against PyTorch and
size/latency figures. A phone or edge device runs one file and gets the prediction and whether to
trust it (``guard_score`` above 1: unlike the training data)."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import SuiteError

PARITY_ATOL = 1e-4  # max |onnx - torch| on logits (on guard scores: relative to max(1, score))


class _GuardScore(nn.Module):
    """An InputGuard's score as graph operations: the Mahalanobis distance of the L2-normalised
    features under its Gaussian, divided by its threshold (above 1: unlike the training data)."""

    def __init__(self, guard):
        super().__init__()
        self.register_buffer("mean", guard.mean.float())
        self.register_buffer("components", guard.components.float())
        self.register_buffer("inverse_variances", (1 / guard.variances.double()).float())
        self.inverse_noise = 1 / guard.noise
        self.threshold = guard.threshold

    def forward(self, features):
        centred = nn.functional.normalize(features, dim=1) - self.mean
        projected = centred @ self.components.T
        residual = centred - projected @ self.components  # stable in float32, unlike |c|^2 - |p|^2
        squared = (projected * projected * self.inverse_variances).sum(1) + (residual * residual).sum(1) * self.inverse_noise
        return squared.sqrt() / self.threshold


class _Graph(nn.Module):
    """What the ONNX file computes: logits, and with a guard also its score from the features it reads."""

    def __init__(self, solution, guard: bool):
        super().__init__()
        self.model = solution.model.eval().cpu()
        self.text = solution.preprocess.modality == "text"
        self.guard = _GuardScore(solution.guard) if guard else None
        reads_own = not guard or solution.guard.reads == "model"
        self.guard_reader = None if reads_own else solution.guard_model(solution.guard.reads).eval().cpu()

    def forward(self, *inputs):
        x = {"input_ids": inputs[0], "attention_mask": inputs[1]} if self.text else inputs[0]
        if self.guard is None:
            return self.model(x)
        features = self.model.forward_features(x)
        logits = self.model.forward_head(features)
        read = features if self.guard_reader is None else self.guard_reader.forward_features(x)
        return logits, self.guard(read)


def _example_inputs(solution, batch: int) -> dict[str, torch.Tensor]:
    pre = solution.preprocess
    if pre.modality == "text":
        enc = solution.model.tokenizer(["Operating profit rose to EUR 13.1 mn."] * batch, padding="max_length",
                                       max_length=min(32, pre.max_length), truncation=True, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    gen = torch.Generator().manual_seed(0)
    return {"pixels": torch.randn(batch, *pre.input_size, generator=gen)}


def _write_metadata(path: Path, solution, guard: bool) -> None:
    """Store what a device needs beside the graph in the file's metadata (ONNX Runtime:
    ``session.get_modelmeta().custom_metadata_map``): labels, task, preprocessing, and the guard."""
    import json

    import onnx

    meta = {"suite.name": solution.name or "", "suite.labels": json.dumps(list(solution.labels)),
            "suite.task": solution.task, "suite.preprocess": json.dumps(solution.preprocess.to_dict())}
    if guard:
        meta["suite.guard"] = json.dumps({"output": "guard_score", "reads": solution.guard.reads,
                                          "quantile": solution.guard.quantile,
                                          "meaning": "above 1: the input is unlike the training data"})
    model = onnx.load(str(path))
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def median_ms(fn, repeats: int = 10) -> float:
    """Median wall time of ``fn()`` in ms over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def export_onnx(solution, path: str | os.PathLike, opset: int = 17, check: bool = True,
                atol: float = PARITY_ATOL, guard: bool = True) -> dict:
    """Write ``solution``'s model as ONNX (dynamic batch; dynamic length for text) and check parity.

    With ``guard`` (default) and an input guard on the Solution, the file also outputs
    ``guard_score`` ``(N,)``, the guard's score (above 1: unlike the training data); a guard that reads
    the untouched pretrained backbone brings that backbone into the file. Returns ``{"path",
    "size_mb", "outputs", "guard_reads", "max_abs_diff", "atol", "parity", "torch_ms", "onnx_ms"}``
    (``max_abs_diff``: logits, and the guard score relative to max(1, score); latencies: median of
    10 single-input runs of the whole file on this machine). The file's metadata holds the labels,
    task, preprocessing and guard (see ``_write_metadata``). Raises when parity fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    guard = guard and solution.guard is not None
    graph = _Graph(solution, guard).eval()
    inputs = _example_inputs(solution, 2)
    names = list(inputs)
    outputs = ["logits", "guard_score"] if guard else ["logits"]
    dynamic = {n: {0: "batch", 1: "tokens"} if graph.text else {0: "batch"} for n in names}
    dynamic.update({n: {0: "batch"} for n in outputs})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, tuple(inputs.values()), str(path), input_names=names, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    _write_metadata(path, solution, guard)
    result = {"path": str(path), "size_mb": round(path.stat().st_size / 1e6, 2), "outputs": outputs,
              "guard_reads": solution.guard.reads if guard else None, "atol": atol}
    if check:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        test = _example_inputs(solution, 3)
        onnx_out = session.run(None, {k: v.numpy() for k, v in test.items()})
        with torch.no_grad():
            torch_out = graph(*test.values())
        torch_out = [t.numpy() for t in (torch_out if guard else (torch_out,))]
        diff = max(float((np.abs(o - t) / (1 if i == 0 else np.maximum(1, np.abs(t)))).max())
                   for i, (o, t) in enumerate(zip(onnx_out, torch_out)))
        result.update(max_abs_diff=diff, parity=diff <= atol)
        one = {k: v[:1] for k, v in test.items()}
        one_np = {k: v.numpy() for k, v in one.items()}
        with torch.no_grad():
            result["torch_ms"] = round(median_ms(lambda: graph(*one.values())), 2)
        result["onnx_ms"] = round(median_ms(lambda: session.run(None, one_np)), 2)
        if diff > atol:
            raise SuiteError(f"{path}: ONNX output differs from PyTorch by {diff:.2e} (> {atol:.0e})")
    return result
