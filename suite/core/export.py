"""ONNX export of a Solution, with a parity check against PyTorch and size/latency figures."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import SuiteError

PARITY_ATOL = 1e-4  # max |onnx - torch| on logits


class _ImageGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixels):
        return self.model(pixels)


class _TextGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model({"input_ids": input_ids, "attention_mask": attention_mask})


def _example_inputs(solution, batch: int) -> dict[str, torch.Tensor]:
    pre = solution.preprocess
    if pre.modality == "text":
        enc = solution.model.tokenizer(["Operating profit rose to EUR 13.1 mn."] * batch, padding="max_length",
                                       max_length=min(32, pre.max_length), truncation=True, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    gen = torch.Generator().manual_seed(0)
    return {"pixels": torch.randn(batch, *pre.input_size, generator=gen)}


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
                atol: float = PARITY_ATOL) -> dict:
    """Write ``solution``'s model as ONNX (dynamic batch; dynamic length for text) and check parity.

    Returns ``{"path", "size_mb", "max_abs_diff", "atol", "parity", "torch_ms", "onnx_ms"}``
    (latencies: median of 10 single-input runs on this machine). Raises when parity fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = solution.model.eval().cpu()
    graph = (_TextGraph(model) if solution.preprocess.modality == "text" else _ImageGraph(model)).eval()
    inputs = _example_inputs(solution, 2)
    names = list(inputs)
    dynamic = {n: {0: "batch"} for n in names}
    if solution.preprocess.modality == "text":
        dynamic = {n: {0: "batch", 1: "tokens"} for n in names}
    dynamic["logits"] = {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, tuple(inputs.values()), str(path), input_names=names, output_names=["logits"],
                          dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    result = {"path": str(path), "size_mb": round(path.stat().st_size / 1e6, 2), "atol": atol}
    if check:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        test = _example_inputs(solution, 3)
        feed = {k: v.numpy() for k, v in test.items()}
        onnx_out = session.run(None, feed)[0]
        with torch.no_grad():
            torch_out = graph(*test.values()).numpy()
        diff = float(np.abs(onnx_out - torch_out).max())
        result.update(max_abs_diff=diff, parity=diff <= atol)
        one = {k: v[:1] for k, v in test.items()}
        one_np = {k: v.numpy() for k, v in one.items()}
        with torch.no_grad():
            result["torch_ms"] = round(median_ms(lambda: graph(*one.values())), 2)
        result["onnx_ms"] = round(median_ms(lambda: session.run(None, one_np)), 2)
        if diff > atol:
            raise SuiteError(f"{path}: ONNX output differs from PyTorch by {diff:.2e} (> {atol:.0e})")
    return result
