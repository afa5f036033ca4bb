"""Ensemble Solutions: several runs of one backbone as one Solution whose probabilities are their mean."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from suite.core import Solution, SuiteError, create_model
from suite.core.ensemble import EnsembleModel, ensemble_solutions
from suite.core.explain import explain_image, target_layers


def _run(classes, seed: int, size: int = 64) -> Solution:
    """A stand-in for one fine-tuned run: the pretrained backbone nudged, a fresh head (its own seed)."""
    torch.manual_seed(seed)
    model = create_model("embedded:efficientnet_lite0", num_classes=len(classes))
    model.preprocess = replace(model.preprocess, input_size=(3, size, size))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return Solution(model, classes, name="leaf")


@pytest.fixture
def runs(photo_data):
    return [_run(photo_data.classes, seed) for seed in (0, 1, 2)]


def test_ensemble_probabilities_are_the_mean_of_its_members(runs, photo_data):
    items = photo_data.items[::4]
    ens = ensemble_solutions(runs)
    members = np.stack([r.predict_proba(items) for r in runs])
    assert ens.predict_proba(items) == pytest.approx(members.mean(0), abs=1e-5)
    assert not np.allclose(members[0], members[1], atol=1e-3)  # the members do differ
    assert [p["label"] for p in ens.predict(items)] == [ens.labels[k] for k in members.mean(0).argmax(1)]
    assert ens.model.num_features == 3 * runs[0].model.num_features
    # the members are copies: changing a run afterwards leaves the ensemble as it was
    with torch.no_grad():
        runs[0].model.head[-1].weight.zero_()
    assert ens.predict_proba(items) == pytest.approx(members.mean(0), abs=1e-5)


def test_multilabel_ensemble_averages_sigmoids(photo_data):
    members = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        model = create_model("embedded:efficientnet_lite0", num_classes=3, task="multilabel")
        model.preprocess = replace(model.preprocess, input_size=(3, 64, 64))
        members.append(Solution(model, photo_data.classes))
    items = photo_data.items[:4]
    expected = np.mean([m.predict_proba(items) for m in members], 0)
    assert ensemble_solutions(members).predict_proba(items) == pytest.approx(expected, abs=1e-5)


def test_ensemble_saves_and_loads_with_its_guard(tmp_path, runs, photo_data, chelsea):
    ens = ensemble_solutions(runs)
    ens.fit_guard(photo_data, reads="pretrained")
    ens.save(tmp_path / "ens", storage_dtype="float16")
    cfg = json.loads((tmp_path / "ens" / "config.json").read_text())
    assert cfg["model"]["members"] == 3 and cfg["model"]["num_features"] == runs[0].model.num_features
    back = Solution.load(tmp_path / "ens")
    assert isinstance(back.model, EnsembleModel) and len(back.model.members) == 3
    items = photo_data.items[::5] + [chelsea]
    assert back.predict_proba(items) == pytest.approx(ens.predict_proba(items), abs=2e-3)  # float16 storage
    # a guard on the untouched backbone reads one network's features, as for a single run
    assert back.guard.mean.numel() == runs[0].model.num_features
    assert back.ood_scores(items) == pytest.approx(ens.ood_scores(items), rel=1e-3)
    assert back.ood_scores([chelsea])[0] > np.median(back.ood_scores(photo_data.items[::5]))


def test_edited_member_count_is_refused(tmp_path, runs):
    ensemble_solutions(runs[:2]).save(tmp_path / "ens")
    cfg_path = tmp_path / "ens" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for bad in (3, 1, 10**6, "2"):  # 3: the weights hold two members' tensors
        cfg["model"]["members"] = bad
        cfg_path.write_text(json.dumps(cfg))
        with pytest.raises(SuiteError):
            Solution.load(tmp_path / "ens")


def test_members_must_agree(runs, photo_data):
    with pytest.raises(SuiteError, match="at least two"):
        ensemble_solutions(runs[:1])
    swapped = _run(photo_data.classes[::-1], 5)
    with pytest.raises(SuiteError, match="labels"):
        ensemble_solutions([runs[0], swapped])
    other_size = _run(photo_data.classes, 6, size=96)
    with pytest.raises(SuiteError, match="preprocessing"):
        ensemble_solutions([runs[0], other_size])
    other_backbone = Solution(create_model("embedded:efficientnet_lite2", num_classes=3), photo_data.classes)
    with pytest.raises(SuiteError, match="backbone"):
        ensemble_solutions([runs[0], other_backbone])


def test_gradcam_of_an_ensemble_averages_each_members_map(runs, photo_data):
    ens = ensemble_solutions(runs[:2])
    x = ens.transform(photo_data.items[0])[None]
    layers = target_layers(ens.model, x)
    assert [name.split(".")[:2] for name in layers] == [["members", "0"], ["members", "1"]]
    cam, shown, k = explain_image(ens, photo_data.items[0])
    assert cam.shape == (64, 64) and shown.shape == (64, 64, 3)
    assert cam.min() == pytest.approx(0.0) and cam.max() == pytest.approx(1.0)
    assert k == int(np.argmax(ens.predict_proba([photo_data.items[0]])[0]))


def test_ensemble_exports_one_onnx_file_with_the_averaged_output(tmp_path, runs, photo_data, chelsea):
    import onnxruntime as ort

    from suite.core.export import export_onnx

    ens = ensemble_solutions(runs[:2])
    ens.fit_guard(photo_data, reads="pretrained")
    result = export_onnx(ens, tmp_path / "ens.onnx")
    assert result["parity"] and result["outputs"] == ["logits", "guard_score"]
    session = ort.InferenceSession(str(tmp_path / "ens.onnx"), providers=["CPUExecutionProvider"])
    items = photo_data.items[::6] + [chelsea]
    logits, scores = session.run(None, {"pixels": ens.encode(items).numpy()})
    assert torch.from_numpy(logits).softmax(-1).numpy() == pytest.approx(ens.predict_proba(items), abs=1e-5)
    assert scores == pytest.approx(ens.ood_scores(items), rel=1e-4)
