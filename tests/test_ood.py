"""Input guard: flags inputs unlike the training data, travels with the Solution."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from suite.core import Solution, create_model
from suite.core.errors import SuiteError
from suite.core.ood import InputGuard

from conftest import shared_data


def _cluster(n, d=16, other=False, seed=0):
    """Features pointing one way (as pooled CNN features of one kind of image do), or another way."""
    g = torch.Generator().manual_seed(seed)
    base = torch.zeros(d)
    base[1 if other else 0] = 10.0
    return base + torch.randn(n, d, generator=g) * torch.linspace(2.0, 0.1, d)


def test_guard_calibrated_on_held_out_items():
    guard = InputGuard.fit(_cluster(2000), quantile=0.99)
    fresh = guard.score(_cluster(2000, seed=1))
    assert 0.002 < (fresh > 1).mean() < 0.03  # about 1% of in-distribution inputs flagged
    assert (guard.score(_cluster(200, other=True, seed=2)) > 1).mean() > 0.95


def test_guard_threshold_set_on_never_trained_items_keeps_its_false_alarm_rate():
    """A fine-tuned network pulls its own training items together: a threshold set on them flags half of
    new in-domain items; set on items it never trained on (``calibration``), about 1%."""
    base = torch.zeros(16)
    base[0] = 10.0
    trained = base + (_cluster(1000) - base) * 0.6
    fresh, other = _cluster(2000, seed=2), _cluster(200, other=True, seed=3)
    on_training = InputGuard.fit(trained)
    calibrated = InputGuard.fit(trained, calibration=_cluster(300, seed=1))
    assert (on_training.score(fresh) > 1).mean() > 0.3 and on_training.calibrated_on == 0
    assert 0.002 < (calibrated.score(fresh) > 1).mean() < 0.03 and calibrated.calibrated_on == 300
    assert (calibrated.score(other) > 1).mean() > 0.95
    again = InputGuard.from_state_dict(calibrated.state_dict())
    assert again.calibrated_on == 300 and again.threshold == pytest.approx(calibrated.threshold)
    older = {**calibrated.state_dict(), "scalars": calibrated.state_dict()["scalars"][:3]}  # files before it
    assert InputGuard.from_state_dict(older).calibrated_on == 0
    with pytest.raises(SuiteError, match="calibration"):
        InputGuard.fit(trained, calibration=torch.randn(0, 16))


def test_guard_rejects_bad_features():
    with pytest.raises(SuiteError, match="at least 10"):
        InputGuard.fit(torch.randn(5, 8))
    with pytest.raises(SuiteError, match="non-finite"):
        InputGuard.fit(torch.full((20, 8), float("nan")))
    with pytest.raises(SuiteError, match="expects 8 features"):
        InputGuard.fit(torch.randn(50, 8)).score(torch.randn(3, 9))


def test_solution_guard_round_trip_and_predict_fields(tmp_path, photo_data, chelsea):
    model = create_model("embedded:efficientnet_lite0", num_classes=3)
    model.preprocess = replace(model.preprocess, input_size=(3, 64, 64))
    sol = Solution(model, photo_data.classes)
    assert "ood" not in sol.predict(chelsea)  # no guard, no claim
    sol.fit_guard(photo_data)
    before = sol.predict([photo_data.items[0], chelsea])
    assert all("ood" in r and isinstance(r["ood_score"], float) for r in before)
    loaded = Solution.load(sol.save(tmp_path / "sol"))
    assert (tmp_path / "sol" / "guard.safetensors").is_file()
    after = loaded.predict([photo_data.items[0], chelsea])
    assert [r["ood_score"] for r in after] == pytest.approx([r["ood_score"] for r in before], rel=1e-5)
    loaded.guard = None
    loaded.save(tmp_path / "sol")
    assert not (tmp_path / "sol" / "guard.safetensors").exists()


def test_xray_guard_flags_leaves_and_photos(chelsea, coffee):
    root = shared_data()
    from PIL import Image

    d = np.load(root / "medical" / "pneumoniamnist.npz")
    model = create_model("embedded:efficientnet_lite0", num_classes=2, in_chans=1)
    model.preprocess = replace(model.preprocess, input_size=(1, 64, 64))
    sol = Solution(model, ["normal", "pneumonia"])
    sol.fit_guard(list(d["train_images"][:300]))
    xrays = sol.ood_scores(list(d["test_images"][:150]))
    leaves = sorted((root / "agriculture" / "plantvillage_tomato").glob("*/*.*"))[::100]
    others = sol.ood_scores([Image.open(p) for p in leaves] + [chelsea, coffee])
    assert (xrays > 1).mean() < 0.1  # calibrated at 1% on training data; the test split is shifted
    assert (others > 1).mean() >= 0.9


def test_guard_reading_the_pretrained_backbone_ignores_fine_tuning_and_travels(tmp_path, photo_data, chelsea):
    """``reads="pretrained"``: the guard models the untouched ImageNet backbone's features, so changing the
    fine-tuned weights changes the predictions but not the guard scores; the choice is saved and checked."""
    import json

    from suite.core.tta import tta_forward

    model = create_model("embedded:efficientnet_lite0", num_classes=3)
    model.preprocess = replace(model.preprocess, input_size=(3, 64, 64))
    sol = Solution(model, photo_data.classes)

    def fine_tune():  # stands in for training: every weight moves
        with torch.no_grad():
            for p in sol.model.parameters():
                p.add_(torch.randn_like(p) * 0.05)

    fine_tune()
    own = sol.fit_guard(photo_data).threshold
    guard = sol.fit_guard(photo_data, reads="pretrained")
    assert guard.reads == "pretrained" and guard.threshold != pytest.approx(own)
    items = [photo_data.items[0], photo_data.items[15], chelsea]
    before = sol.predict(items)
    fine_tune()
    after = sol.predict(items)
    assert [r["ood_score"] for r in after] == pytest.approx([r["ood_score"] for r in before], rel=1e-5)
    assert after[0]["probs"] != pytest.approx(before[0]["probs"], abs=1e-4)
    assert tta_forward(sol, items, ["identity", "hflip"])[1].numpy() == pytest.approx(
        sol.forward_items(items)[1].numpy(), rel=1e-4)  # the guard reads the un-augmented view
    loaded = Solution.load(sol.save(tmp_path / "sol"))
    assert loaded.guard.reads == "pretrained"
    assert [r["ood_score"] for r in loaded.predict(items)] == pytest.approx([r["ood_score"] for r in after], rel=1e-5)
    cfg = json.loads((tmp_path / "sol" / "config.json").read_text())
    cfg["guard"]["reads"] = "head"
    (tmp_path / "sol" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SuiteError, match="reads one of model, pretrained"):
        Solution.load(tmp_path / "sol")
    with pytest.raises(SuiteError, match="reads one of"):
        sol.fit_guard(photo_data, reads="frozen")
