"""Solution directories: bit-exact round trip, small files, no pickle, predict one or many."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from suite.core import Solution, SuiteError, create_model


def _perturb(model, scale=0.05):
    """Simulate fine-tuning: change the head and the last backbone group."""
    with torch.no_grad():
        for name in model.group_names()[-2] + model.group_names()[-1]:
            param = dict(model.named_parameters())[name]
            param.add_(scale * torch.randn_like(param))
    return model


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("spec,in_chans,labels,task", [
    ("embedded:efficientnet_lite0", 1, ["normal", "pneumonia"], "multiclass"),
    ("embedded:efficientnet_lite0", 3, ["a", "b", "c", "d"], "multilabel"),
    ("timm:resnet18", 3, ["x", "y"], "multiclass"),
])
def test_image_round_trip_is_bit_exact(tmp_path, chelsea, spec, in_chans, labels, task):
    pretrained = spec.startswith("embedded")
    model = _perturb(create_model(spec, num_classes=len(labels), in_chans=in_chans, pretrained=pretrained, task=task))
    solution = Solution(model, labels, metrics={"accuracy": 0.5}, name="t")
    solution.save(tmp_path)
    loaded = Solution.load(tmp_path)
    _assert_same_state(solution.model, loaded.model)
    assert loaded.labels == labels and loaded.task == task
    assert loaded.preprocess == solution.preprocess
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["preprocess"]["input_size"][0] == in_chans
    if pretrained:  # only what differs from the embedded backbone is stored
        assert cfg["weights"]["base"] == "pretrained" and cfg["weights"]["base_keys"] > 0
        full_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        assert (tmp_path / "model.safetensors").stat().st_size < 0.4 * full_bytes
    a, b = solution.predict([chelsea, chelsea]), loaded.predict(chelsea)
    np.testing.assert_allclose(list(a[0]["probs"].values()), list(b["probs"].values()), atol=1e-5)
    if task == "multilabel":
        assert set(b) >= {"labels", "probs"} and all(lab in labels for lab in b["labels"])


def test_text_round_trip_and_batch(tmp_path):
    model = _perturb(create_model("embedded:minilm_l6", num_classes=3))
    solution = Solution(model, ["negative", "neutral", "positive"])
    solution.save(tmp_path)
    assert (tmp_path / "tokenizer").is_dir()
    assert (tmp_path / "model.safetensors").stat().st_size < 10_000_000  # not the 90 MB encoder
    loaded = Solution.load(tmp_path)
    _assert_same_state(solution.model, loaded.model)
    texts = ["Operating profit rose to EUR 13.1 mn.", "The company cut 500 jobs."]
    np.testing.assert_allclose(solution.predict_proba(texts), loaded.predict_proba(texts), atol=1e-6)


def test_solution_dir_is_a_model_spec(tmp_path):
    model = _perturb(create_model("embedded:efficientnet_lite0", num_classes=2))
    Solution(model, ["a", "b"]).save(tmp_path)
    again = create_model(str(tmp_path))
    _assert_same_state(model, again)
    assert create_model(str(tmp_path), num_classes=5).num_classes == 5


def test_changed_base_weights_are_detected(tmp_path):
    model = _perturb(create_model("embedded:efficientnet_lite0", num_classes=2))
    Solution(model, ["a", "b"]).save(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["weights"]["base_fingerprint"] = "0" * 16
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SuiteError, match="differs"):
        Solution.load(tmp_path)


@pytest.mark.parametrize("make,match", [
    (lambda d: None, "not a Solution directory"),
    (lambda d: (d / "config.json").write_text("{not json"), "not a Solution directory"),
    (lambda d: (d / "config.json").write_text('{"format": "other"}'), "not a Solution directory"),
])
def test_not_a_solution(tmp_path, make, match):
    make(tmp_path)
    with pytest.raises(SuiteError, match=match):
        Solution.load(tmp_path)


def test_corrupt_weights_file_is_reported(tmp_path):
    model = create_model("embedded:efficientnet_lite0", num_classes=2)
    Solution(model, ["a", "b"]).save(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(SuiteError, match="model.safetensors"):
        Solution.load(tmp_path)


def test_labels_must_match_outputs():
    with pytest.raises(SuiteError, match="3 labels"):
        Solution(create_model("embedded:efficientnet_lite0", num_classes=2), ["a", "b", "c"])


def test_binary_label_follows_the_stored_threshold(tmp_path, chelsea):
    model = _perturb(create_model("embedded:efficientnet_lite0", num_classes=2, task="binary"))
    solution = Solution(model, ["normal", "finding"])
    p = solution.predict(chelsea)["probs"]["finding"]
    for threshold, expected in ((p - 1e-3, "finding"), (p + 1e-3, "normal")):
        solution.threshold = threshold
        solution.save(tmp_path / str(threshold))
        row = Solution.load(tmp_path / str(threshold)).predict(chelsea)
        assert row["label"] == expected and row["score"] == pytest.approx(row["probs"][expected])


@pytest.mark.parametrize("kind,match", [
    ("os.system", "unknown solution kind"),
    ("suite.core.solution.Path", "not a Solution class"),
    ("suite.core.no_such_module.Thing", "unknown solution kind"),
])
def test_solution_kind_is_restored_and_restricted(tmp_path, kind, match):
    from suite.medical.xray import XraySolution

    model = _perturb(create_model("embedded:efficientnet_lite0", num_classes=2, in_chans=1))
    XraySolution(model, ["normal", "pneumonia"]).save(tmp_path / "xray")
    assert type(Solution.load(tmp_path / "xray")) is XraySolution  # DICOM reading comes with it
    Solution(model, ["normal", "pneumonia"]).save(tmp_path / "plain")
    assert "kind" not in json.loads((tmp_path / "plain" / "config.json").read_text())
    assert type(Solution.load(tmp_path / "plain")) is Solution
    cfg = json.loads((tmp_path / "xray" / "config.json").read_text())
    cfg["kind"] = kind
    (tmp_path / "xray" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SuiteError, match=match):
        Solution.load(tmp_path / "xray")


def test_low_rank_changes_are_stored_as_factors(tmp_path):
    """A merged-adapter change (rank <= r) is stored as two factors and rebuilt on loading; a full-rank
    change (the head) is stored whole; a different pretrained base is still detected."""
    model = create_model("embedded:minilm_l6", num_classes=3)
    params = dict(model.named_parameters())
    targets = [n for n in params if n.endswith("attention.self.query.weight")]
    with torch.no_grad():
        for name in targets:  # what merge_and_unload leaves: W + B @ A with rank 4
            w = params[name]
            w.add_(0.01 * torch.randn(w.shape[0], 4) @ torch.randn(4, w.shape[1]))
        params["head.0.weight"].add_(0.1 * torch.randn_like(params["head.0.weight"]))
    solution = Solution(model, ["negative", "neutral", "positive"])
    solution.save(tmp_path / "whole")
    solution.save(tmp_path / "factored", low_rank=4)
    cfg = json.loads((tmp_path / "factored" / "config.json").read_text())
    assert sorted(cfg["weights"]["low_rank"]["keys"]) == sorted(targets) and "head.0.weight" not in targets
    size = {d: (tmp_path / d / "model.safetensors").stat().st_size for d in ("whole", "factored")}
    assert size["factored"] < 0.2 * size["whole"]
    loaded = Solution.load(tmp_path / "factored")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], value, atol=1e-6, rtol=0)
    cfg["weights"]["base_fingerprint"] = "0" * 16
    (tmp_path / "factored" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SuiteError, match="differs"):
        Solution.load(tmp_path / "factored")


def test_uniform_soup_averages_runs_and_refuses_mismatches():
    from suite.core.soup import uniform_soup

    runs = [Solution(_perturb(create_model("embedded:efficientnet_lite0", num_classes=2)), ["a", "b"])
            for _ in range(3)]
    soup = uniform_soup(runs, input_size=96)
    for key, value in soup.model.state_dict().items():
        if value.is_floating_point():
            expected = torch.stack([r.model.state_dict()[key] for r in runs]).mean(0)
            torch.testing.assert_close(value, expected, atol=1e-6, rtol=1e-6)
    assert soup.preprocess.input_size == (3, 96, 96) and runs[0].preprocess.input_size[-1] != 96
    assert soup.guard is None and soup.metrics == {}  # a soup is measured anew
    with pytest.raises(SuiteError, match="labels"):
        uniform_soup([runs[0], Solution(runs[1].model, ["x", "y"])])
    with pytest.raises(SuiteError, match="at least two"):
        uniform_soup(runs[:1])
