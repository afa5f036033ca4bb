"""ONNX export carries the input guard: the file's ``guard_score`` is the Solution's own guard score."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from suite.core import Solution, create_model
from suite.core.export import export_onnx


def _session_scores(path, solution, items):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["logits", "guard_score"]
    meta = session.get_modelmeta().custom_metadata_map  # what a device needs beside the graph
    assert json.loads(meta["suite.labels"]) == solution.labels
    assert json.loads(meta["suite.preprocess"])["input_size"] == list(solution.preprocess.input_size)
    assert json.loads(meta["suite.guard"])["reads"] == solution.guard.reads
    logits, scores = session.run(None, {"pixels": solution.encode(items).numpy()})
    return torch.from_numpy(logits).softmax(-1).numpy(), scores


def _same_scores(onnx_scores, solution_scores) -> bool:
    """Equal within export's parity rule: 1e-4 relative to max(1, score)."""
    return bool((np.abs(onnx_scores - solution_scores) <= 1e-4 * np.maximum(1, solution_scores)).all())


def test_onnx_file_scores_inputs_like_the_solution_guard_for_either_backbone(tmp_path, photo_data, chelsea, coffee):
    torch.manual_seed(0)
    model = create_model("embedded:efficientnet_lite0", num_classes=3)
    model.preprocess = replace(model.preprocess, input_size=(3, 64, 64))
    sol = Solution(model, photo_data.classes)
    with torch.no_grad():  # stands in for fine-tuning: the model's features differ from the pretrained ones
        for p in sol.model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    items = [photo_data.items[0], photo_data.items[12], photo_data.items[25], chelsea, coffee]

    sol.fit_guard(photo_data)
    own = export_onnx(sol, tmp_path / "own.onnx")
    assert own["guard_reads"] == "model" and own["parity"]
    probs, own_scores = _session_scores(tmp_path / "own.onnx", sol, items)
    assert _same_scores(own_scores, sol.ood_scores(items))
    assert probs == pytest.approx(sol.predict_proba(items), abs=1e-5)

    sol.fit_guard(photo_data, reads="pretrained")
    pretrained = export_onnx(sol, tmp_path / "pretrained.onnx")
    assert pretrained["guard_reads"] == "pretrained" and pretrained["parity"]
    assert pretrained["size_mb"] > 1.8 * own["size_mb"]  # the untouched backbone travels in the file
    _, scores = _session_scores(tmp_path / "pretrained.onnx", sol, items)
    assert _same_scores(scores, sol.ood_scores(items))
    assert not np.allclose(scores, own_scores, rtol=0.05)

    plain = export_onnx(sol, tmp_path / "plain.onnx", guard=False)
    assert plain["outputs"] == ["logits"] and plain["guard_reads"] is None
    assert plain["size_mb"] == pytest.approx(own["size_mb"], rel=0.05)


def test_readme_device_snippet_reads_labels_and_preprocessing_from_the_file(tmp_path, photo_data, coffee):
    """The README's ONNX Runtime lines (PIL resize, metadata only) agree with the Solution."""
    import onnxruntime as ort
    from PIL import Image

    model = create_model("embedded:efficientnet_lite0", num_classes=3)
    model.preprocess = replace(model.preprocess, input_size=(3, 64, 64))
    sol = Solution(model, photo_data.classes)
    sol.fit_guard(photo_data, reads="pretrained")
    export_onnx(sol, tmp_path / "m.onnx", check=False)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    meta = session.get_modelmeta().custom_metadata_map
    labels, pre = json.loads(meta["suite.labels"]), json.loads(meta["suite.preprocess"])
    _, height, width = pre["input_size"]
    for photo in (Image.fromarray(photo_data.items[3]), Image.fromarray(coffee)):
        image = photo.convert("RGB")
        scale = height / pre["crop_pct"] / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
        left, top = (image.width - width) // 2, (image.height - height) // 2
        image = image.crop((left, top, left + width, top + height))
        pixels = ((np.asarray(image, np.float32) / 255 - pre["mean"]) / pre["std"]).transpose(2, 0, 1)[None]
        logits, guard_score = session.run(None, {"pixels": pixels.astype(np.float32)})
        expected = sol.predict(photo)
        assert labels[int(logits.argmax())] == expected["label"]
        assert guard_score[0] == pytest.approx(expected["ood_score"], rel=0.05)
