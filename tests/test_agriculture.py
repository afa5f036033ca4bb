"""The agriculture vertical: leaf data, leaf masks, field corruptions, disease cards, TTA, the shipped
tomato solution, its unknown-input verdict and its page."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_data
from suite.agriculture.data import (display_name, is_healthy, load_leaves, parse_class_name,
                                    plantvillage_leaf_id)
from suite.core.errors import SuiteError

TOMATO_DATA = ("agriculture", "plantvillage_tomato")


def leaf_photo(size: int = 96, lesion: bool = True, backdrop=(150, 145, 160)) -> np.ndarray:
    """A green elliptic leaf with a brown lesion and a dark shadow on a grey-purple backdrop."""
    yy, xx = np.mgrid[:size, :size] / size
    img = np.empty((size, size, 3), np.uint8)
    img[:] = backdrop
    shadow = ((yy - 0.56) / 0.3) ** 2 + ((xx - 0.56) / 0.22) ** 2 < 1
    img[shadow] = (40, 38, 45)
    leaf = ((yy - 0.5) / 0.3) ** 2 + ((xx - 0.5) / 0.22) ** 2 < 1
    img[leaf] = (60, 130, 45)
    if lesion:
        img[((yy - 0.5) ** 2 + (xx - 0.5) ** 2) < 0.06 ** 2] = (70, 50, 40)
    return img


# ----------------------------------------------------------------------------- data


@pytest.mark.parametrize("name, crop, disease", [
    ("Tomato___Early_blight", "Tomato", "Early blight"),
    ("Tomato___Spider_mites Two-spotted_spider_mite", "Tomato", "Spider mites Two-spotted spider mite"),
    ("Corn_(maize)___Common_rust_", "Corn", "Common rust"),
    ("Pepper,_bell___healthy", "Pepper bell", "healthy"),
    ("rust", "", "rust"),
])
def test_class_names_parse_into_crop_and_disease(name, crop, disease):
    assert parse_class_name(name) == (crop, disease)
    assert is_healthy(name) == (disease == "healthy")
    assert display_name(name) == (f"{crop}: {disease}" if crop else disease)


@pytest.mark.parametrize("a, b, same", [
    ("0c31___GHLB Leaf 4.1 Day 1.JPG", "0fca___GHLB Leaf 4 Day 12.JPG", True),
    ("0c9f___GHLB2 Leaf 107.1.JPG", "1b27___GHLB2 Leaf 107.2.JPG", True),
    ("0c9f___GHLB2 Leaf 107.1.JPG", "1b27___GHLB2 Leaf 108.1.JPG", False),
    ("00bc___RS_HL 0223.JPG", "01c1___RS_HL 9641.JPG", False),
])
def test_plantvillage_leaf_ids_join_photos_of_one_leaf(a, b, same):
    folder = Path("Tomato___Late_blight")
    assert (plantvillage_leaf_id(folder / a) == plantvillage_leaf_id(folder / b)) == same
    assert plantvillage_leaf_id(folder / a).startswith("Tomato___Late_blight/")


def _write_plantvillage(root: Path) -> Path:
    for k, cls in enumerate(["Tomato___healthy", "Tomato___Leaf_Mold"]):
        (root / cls).mkdir(parents=True)
        for leaf in range(6):
            for photo in (1, 2):
                img = leaf_photo(48, lesion=bool(k))
                Image.fromarray(img).save(root / cls / f"{leaf:04d}{photo}___GH Leaf {leaf}.{photo}.JPG")
    return root


def test_plantvillage_folders_get_leaf_groups_and_splits_keep_leaves_whole(tmp_path):
    from suite.agriculture.train import leaf_splits

    data = load_leaves(_write_plantvillage(tmp_path / "pv"))
    assert data.classes == ["Tomato___Leaf_Mold", "Tomato___healthy"] and len(data) == 24
    assert len(set(data.groups)) == 12
    splits = leaf_splits(data, seed=0, test=0.34)
    train_leaves = {data.groups[i] for i in splits["train"]}
    test_leaves = {data.groups[i] for i in splits["test"]}
    assert test_leaves and not train_leaves & test_leaves
    assert set(data.labels[splits["test"]]) == {0, 1}


def test_calibration_leaves_come_out_of_training_and_leave_the_test_split_alone(tmp_path):
    from suite.agriculture.train import leaf_splits, recorded_recipe

    data = load_leaves(_write_plantvillage(tmp_path / "pv"))
    plain = leaf_splits(data, seed=0, test=0.34)
    cut = leaf_splits(data, seed=0, test=0.34, calibration=0.25)
    assert np.array_equal(plain["test"], cut["test"])
    assert np.array_equal(np.sort(np.concatenate([cut["train"], cut["calibration"]])), plain["train"])
    leaves = {name: {data.groups[i] for i in cut[name]} for name in cut}
    assert leaves["calibration"] and not leaves["calibration"] & leaves["train"]
    assert set(data.labels[cut["calibration"]]) == {0, 1}
    older = recorded_recipe({"recipe": {"seed": 1}})  # runs recorded before the options
    assert older.calibration == 0.0 and older.guard == "model"


def test_train_ships_with_the_full_command_and_a_finished_run_ships_again_in_float16(tmp_path):
    from suite.agriculture.train import leaf_splits, main
    from suite.core import Solution

    data, run = _write_plantvillage(tmp_path / "pv"), tmp_path / "run"
    recipe = ["--image-size", "32", "--n-groups", "1", "--epochs", "1", "--augment", "light", "--threads", "1",
              "--calibration", "0.25", "--guard", "model"]
    assert main(["--data", str(data), "--out", str(run), "--ship", str(tmp_path / "a"), *recipe]) == 0
    card = (tmp_path / "a" / "README.md").read_text()
    assert all(option in card for option in ("--epochs 1", "--n-groups 1", "--augment light", "--image-size 32",
                                             "--calibration 0.25", "--guard model"))
    unseen = Solution.load(tmp_path / "a").guard.calibrated_on  # the guard's threshold: leaves never trained on
    leaves = load_leaves(data)
    splits = leaf_splits(leaves, seed=0, calibration=0.25)
    assert unseen == len(splits["calibration"]) > 0
    assert f"of {unseen} photos never trained on" in card
    per_class = np.bincount(leaves.labels[splits["train"]])  # the split's, not PlantVillage's 100 per class
    assert f"on {per_class.min()}-{per_class.max()} training photos" in card or (
        per_class.min() == per_class.max() and f"on {per_class.min()} training photos per class" in card)
    assert "--lr" not in card and "--backbone" not in card and "float16" not in card  # defaults stay off
    assert main(["--data", str(data), "--out", str(run), "--ship-run", "--ship", str(tmp_path / "b"), "--half"]) == 0
    shipped = Solution.load(tmp_path / "b")  # shipped with the default guard: fitted again on the ImageNet backbone
    assert "as float16" in shipped.card and "--epochs 1" in shipped.card
    assert shipped.guard.reads == "pretrained" and shipped.guard.calibrated_on == unseen
    assert "--guard pretrained --ship" in shipped.card and "--guard model" not in shipped.card
    assert "untouched ImageNet backbone" in shipped.card
    assert f"accuracy: **{shipped.metrics['accuracy']:.3f}" in shipped.card  # config.json and card agree
    assert "`guard_score`" in shipped.card and shipped.metrics["onnx"]["guard_reads"] == "pretrained"
    from suite.agriculture.card import main as card_main, set_card_section

    weights = (tmp_path / "b" / "model.safetensors").read_bytes()
    card = set_card_section(shipped.card, "Export", "- ONNX: stale figures")
    (tmp_path / "b" / "README.md").write_text(set_card_section(card, "Robustness", "- written by a benchmark"))
    assert card_main(["--refresh-export", str(tmp_path / "b")]) == 0  # the export measured again, nothing else
    refreshed = Solution.load(tmp_path / "b")
    assert "stale" not in refreshed.card and "`guard_score`" in refreshed.card
    assert "- written by a benchmark" in refreshed.card and refreshed.metrics["accuracy"] == shipped.metrics["accuracy"]
    assert refreshed.metrics["onnx"]["outputs"] == ["logits", "guard_score"]
    assert (tmp_path / "b" / "model.safetensors").read_bytes() == weights
    from types import SimpleNamespace

    from suite.agriculture.card import ship_solution
    from suite.agriculture.train import Recipe

    report = json.loads((run / "report" / "report.json").read_text())
    moved = {**report, "metrics": {**report["metrics"], "accuracy": 0.125}}  # as if float16 moved predictions
    ship_solution(SimpleNamespace(solution=shipped, report=moved), leaves, tmp_path / "d", Recipe(), 1.0,
                  command="python -m suite.agriculture.train")
    assert Solution.load(tmp_path / "d").metrics["accuracy"] == 0.125
    assert (tmp_path / "b" / "model.safetensors").stat().st_size < 0.7 * (tmp_path / "a" / "model.safetensors").stat().st_size
    assert main(["--data", str(data), "--out", str(tmp_path / "nothing"), "--ship-run", "--ship", str(tmp_path / "c")]) == 2


def test_a_stopped_run_resumes_from_its_checkpoint_with_the_same_recipe_only(tmp_path, capsys):
    import json

    from suite.agriculture.train import main

    data, run = _write_plantvillage(tmp_path / "pv"), tmp_path / "run"
    recipe = ["--image-size", "32", "--n-groups", "1", "--epochs", "2", "--augment", "light", "--threads", "1"]
    assert main(["--data", str(data), "--out", str(run), "--quiet", *recipe]) == 0
    trained = json.loads((run / "run.json").read_text())["seconds"]
    longer = [*recipe[:4], "--epochs", "3", *recipe[6:]]
    assert main(["--data", str(data), "--out", str(run), "--quiet", "--resume", *longer]) == 2
    assert "cannot resume: epochs was 2, now 3" in capsys.readouterr().out
    assert main(["--data", str(data), "--out", str(run), "--quiet", "--resume", *recipe]) == 0
    assert len((run / "train" / "metrics.jsonl").read_text().splitlines()) == 2  # nothing left to train
    seconds = json.loads((run / "run.json").read_text())["seconds"]
    assert 0 < seconds <= trained  # the first session's training time, not this call's


def test_soup_or_ensemble_of_finished_runs_ships_with_its_card(tmp_path):
    import torch

    from suite.agriculture.train import main
    from suite.core import Solution

    data = _write_plantvillage(tmp_path / "pv")
    recipe = ["--image-size", "32", "--n-groups", "1", "--epochs", "1", "--threads", "1"]
    for preset in ("light", "field"):
        assert main(["--data", str(data), "--out", str(tmp_path / preset), "--augment", preset, *recipe]) == 0
    runs = [str(tmp_path / "light"), str(tmp_path / "field")]
    assert main(["--data", str(data), "--out", str(tmp_path / "soup"), "--soup", *runs,
                 "--ship", str(tmp_path / "shipped")]) == 0
    a, b = (Solution.load(Path(r) / "solution").model.state_dict() for r in runs)
    soup = Solution.load(tmp_path / "shipped")
    key = next(k for k, v in a.items() if v.is_floating_point() and not torch.equal(v, b[k]))
    assert torch.allclose(soup.model.state_dict()[key], (a[key] + b[key]) / 2, atol=1e-6)
    assert soup.guard.reads == "pretrained" and (tmp_path / "soup" / "report" / "report.json").is_file()
    assert "uniform soup" in soup.card and "`light`, `field`" in soup.card and "--soup" in soup.card
    # an ensemble keeps both networks: its probabilities are their mean, its card says what a photo costs
    assert main(["--data", str(data), "--out", str(tmp_path / "ens"), "--ensemble", *runs,
                 "--ship", str(tmp_path / "shipped_ens")]) == 0
    ens = Solution.load(tmp_path / "shipped_ens")
    photos = sorted(Path(data).rglob("*.JPG"))[::4]
    members = [Solution.load(Path(r) / "solution").predict_proba(photos) for r in runs]
    assert ens.predict_proba(photos) == pytest.approx((members[0] + members[1]) / 2, abs=1e-5)
    assert ens.name == "shipped_ens" and ens.guard.reads == "pretrained"
    assert "an ensemble" in ens.card and "2 networks" in ens.card and "--ensemble" in ens.card
    report = json.loads((tmp_path / "ens" / "report" / "report.json").read_text())
    assert ens.metrics["accuracy"] == pytest.approx(report["metrics"]["accuracy"])
    assert main(["--data", str(data), "--out", str(tmp_path / "other"), "--augment", "light", "--seed", "1",
                 *recipe]) == 0
    assert main(["--data", str(data), "--out", str(tmp_path / "bad"), "--soup", runs[0],
                 str(tmp_path / "other")]) == 2  # another seed: another test split


def test_csv_leaf_column_and_file_name_pattern_give_groups(tmp_path):
    root = tmp_path / "own"
    (root / "rust").mkdir(parents=True)
    (root / "ok").mkdir()
    rows = ["path,label,plant"]
    for i in range(4):
        for cls in ("rust", "ok"):
            Image.fromarray(leaf_photo(32)).save(root / cls / f"plant{i}_{cls}.png")
            rows.append(f"{cls}/plant{i}_{cls}.png,{cls},p{i}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    from_csv = load_leaves(root / "labels.csv", leaf_col="plant")
    assert sorted(set(from_csv.groups)) == ["p0", "p1", "p2", "p3"]
    from_names = load_leaves(root, leaf_pattern=r"(plant\d+)_")
    assert from_names.classes == ["ok", "rust"] and sorted(set(from_names.groups)) == ["plant0", "plant1", "plant2",
                                                                                     "plant3"]
    with pytest.raises(SuiteError, match="leaf_col needs a CSV"):
        load_leaves(root, leaf_col="plant")


# ----------------------------------------------------------------------------- leaf mask and field corruptions


def test_leaf_mask_keeps_leaf_and_lesion_and_drops_backdrop_and_shadow():
    from suite.core.data.augment import leaf_mask

    img = leaf_photo(96)
    yy, xx = np.mgrid[:96, :96] / 96
    leaf = ((yy - 0.5) / 0.3) ** 2 + ((xx - 0.5) / 0.22) ** 2 < 1
    mask = leaf_mask(img)
    assert mask[48, 48]  # the brown lesion is inside the leaf
    assert (mask == leaf).mean() > 0.97
    assert not mask[:5].any() and not mask[90, 70]  # backdrop and shadow
    grey = np.full((64, 64, 3), 128, np.uint8)
    assert not leaf_mask(grey).any()


def test_leaf_mask_finds_the_leaf_in_real_photos():
    from suite.core.data.augment import leaf_mask

    root = shared_data(*TOMATO_DATA)
    shares = [leaf_mask(np.asarray(Image.open(next((root / c).iterdir())).convert("RGB"))).mean()
              for c in sorted(p.name for p in root.iterdir())]
    assert all(0.1 < s < 0.8 for s in shares), shares


def test_clutter_corruption_replaces_background_not_leaf():
    from suite.core.data import corruption

    img = Image.fromarray(leaf_photo(96))
    out = np.asarray(corruption("clutter", 5)(img), dtype=int)
    yy, xx = np.mgrid[:96, :96] / 96
    inner = ((yy - 0.5) / 0.25) ** 2 + ((xx - 0.5) / 0.17) ** 2 < 1
    before = np.asarray(img, dtype=int)
    assert np.abs(out[inner] - before[inner]).max() <= 2
    assert np.abs(out[:10] - before[:10]).mean() > 15


# ----------------------------------------------------------------------------- cards


def test_model_card_sections_are_replaced_or_inserted_before_limits():
    from suite.agriculture.card import set_card_section

    card = "# m\n\n## Robustness\nold\n\n## Limits\n- lab photos\n"
    replaced = set_card_section(card, "Robustness", "new table")
    assert "old" not in replaced and replaced.index("new table") < replaced.index("## Limits")
    inserted = set_card_section("# m\n\n## Limits\n- x\n", "Robustness", "added")
    assert inserted.index("## Robustness\nadded") < inserted.index("## Limits")


def test_every_tomato_class_has_a_card_with_a_source_and_unknown_labels_have_none():
    from suite.agriculture.diseases import CARDS, card_for

    root_classes = ["Tomato___Bacterial_spot", "Tomato___Early_blight", "Tomato___Late_blight",
                    "Tomato___Leaf_Mold", "Tomato___Septoria_leaf_spot",
                    "Tomato___Spider_mites Two-spotted_spider_mite", "Tomato___Target_Spot",
                    "Tomato___Tomato_Yellow_Leaf_Curl_Virus", "Tomato___Tomato_mosaic_virus", "Tomato___healthy"]
    cards = [card_for(c) for c in root_classes]
    assert all(c is not None and c.source and c.signs and c.management for c in cards)
    assert len({c.name for c in cards}) == len(CARDS) == 10
    assert card_for("Tomato___healthy").kind == "healthy"
    assert card_for("Apple___Cedar_apple_rust") is None


# ----------------------------------------------------------------------------- test-time augmentation


def test_tta_averages_views_and_identity_matches_predict(small_model, chelsea, coffee):
    from suite.core import Solution
    from suite.core.tta import tta_predict, tta_predict_proba

    sol = Solution(small_model, ["a", "b", "c"])
    images = [Image.fromarray(chelsea), Image.fromarray(coffee)]
    plain = sol.predict_proba(images)
    assert np.allclose(tta_predict_proba(sol, images, views=["identity"]), plain, atol=1e-6)
    flipped = sol.predict_proba([im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for im in images])
    both = tta_predict_proba(sol, images, views=["identity", "hflip"])
    assert np.allclose(both, (plain + flipped) / 2, atol=1e-4)
    result = tta_predict(sol, images[0], views=["identity", "hflip"])
    assert result["label"] in sol.labels and result["tta_views"] == ["identity", "hflip"]
    with pytest.raises(SuiteError, match=r"'mirror'.*\['hflip'"):
        tta_predict_proba(sol, images, views=["mirror"])


# ----------------------------------------------------------------------------- the shipped tomato solution


@pytest.fixture(scope="module")
def tomato():
    from suite.agriculture.diagnose import TOMATO, load_tomato

    if not (TOMATO / "config.json").is_file():
        pytest.fail(f"the shipped tomato solution is missing from {TOMATO}")
    return load_tomato()


@pytest.fixture(scope="module")
def tomato_test_photos():
    """Two never-trained-on photos per class from the solution's own leaf-aware test split."""
    from suite.agriculture.train import leaf_splits

    data = load_leaves(shared_data(*TOMATO_DATA))
    test = leaf_splits(data, seed=0)["test"]
    picked = np.concatenate([test[data.labels[test] == c][:2] for c in range(len(data.classes))])
    return data.subset(picked)


def test_shipped_solution_is_small_and_its_card_reports_recall_and_the_command(tomato):
    from suite.agriculture.diagnose import TOMATO

    import json

    weights = json.loads((TOMATO / "config.json").read_text())["weights"]
    assert weights["base_keys"] + weights["stored_keys"] == len(tomato.model.state_dict())
    assert (TOMATO / "model.safetensors").stat().st_size < 16e6  # every layer of Lite2 in float16: 9.8 MB
    assert len(tomato.labels) == 10 and tomato.guard is not None
    # its guard reads the untouched ImageNet backbone, which never trained on a leaf (no leaf held out for it)
    assert tomato.guard.reads == "pretrained" and tomato.recipe["agriculture_recipe"]["calibration"] == 0
    card = tomato.card
    assert "python -m suite.agriculture.train" in card and "recall" in card and "ONNX" in card
    onnx = tomato.metrics["onnx"]  # the exported file also says "unknown or not a leaf"
    assert onnx["parity"] and onnx["outputs"] == ["logits", "guard_score"] and "`guard_score`" in card
    recall = tomato.metrics["per_class_recall"]
    assert set(recall) == set(tomato.labels)


def test_shipped_solution_recognises_never_seen_photos(tomato, tomato_test_photos):
    from suite.agriculture.diagnose import diagnose

    results = [diagnose(tomato, tomato_test_photos.items[i]) for i in range(len(tomato_test_photos))]
    truth = [tomato_test_photos.classes[y] for y in tomato_test_photos.labels]
    correct = sum(r.label == t for r, t in zip(results, truth))
    assert correct >= 18, [(r.label, t) for r, t in zip(results, truth) if r.label != t]
    assert sum(r.unknown for r in results) <= 2
    assert all(r.card is not None and r.card.kind != "unknown" for r in results if not r.unknown)
    assert any(r.healthy for r in results) and not any(r.healthy and "healthy" not in r.label for r in results)


def test_photos_that_are_not_leaves_are_unknown(tomato, coffee):
    from skimage import data as skdata

    from suite.agriculture.diagnose import diagnose

    for img in (coffee, skdata.camera(), skdata.rocket()):
        result = diagnose(tomato, img)
        assert result.unknown and result.card.kind == "unknown" and result.warnings


def test_tta_diagnosis_agrees_on_a_clear_leaf(tomato, tomato_test_photos):
    from suite.agriculture.diagnose import diagnose

    item = tomato_test_photos.items[0]
    plain, with_tta = diagnose(tomato, item), diagnose(tomato, item, tta=True)
    assert with_tta.tta and with_tta.label == plain.label


def test_robustness_tools_on_real_photos(tomato, tomato_test_photos):
    from suite.agriculture.robustness import corruption_accuracy, leaf_attention
    from suite.core.data import corruption

    few = tomato_test_photos.subset(np.arange(0, len(tomato_test_photos), 4))
    rows = corruption_accuracy(tomato, few, corruptions=["blur"], severities=[1, 5])
    assert [(r["corruption"], r["severity"]) for r in rows] == [("none", 0), ("blur", 1), ("blur", 5)]
    assert rows[2]["accuracy"] <= rows[0]["accuracy"] and len(rows[0]["correct"]) == len(few)
    attention = leaf_attention(tomato, few.subset([0, 1]), corrupt=corruption("clutter", 5))
    assert attention["n"] + attention["skipped"] == 2
    assert 0 <= attention["cam_on_leaf"] <= 1 and 0 < attention["leaf_area"] < 1


@pytest.fixture(scope="module")
def tomato_ensemble():
    from suite.agriculture.diagnose import TOMATO_ENSEMBLE, load_tomato

    if not (TOMATO_ENSEMBLE / "config.json").is_file():
        pytest.fail(f"the shipped tomato ensemble is missing from {TOMATO_ENSEMBLE}")
    return load_tomato(TOMATO_ENSEMBLE)


def test_shipped_ensemble_is_three_networks_with_one_guard_and_its_card(tomato_ensemble):
    from suite.agriculture.diagnose import TOMATO_ENSEMBLE
    from suite.core.ensemble import EnsembleModel

    config = json.loads((TOMATO_ENSEMBLE / "config.json").read_text())
    assert config["model"]["members"] == 3 and isinstance(tomato_ensemble.model, EnsembleModel)
    assert (TOMATO_ENSEMBLE / "model.safetensors").stat().st_size < 32e6  # three Lite2 networks in float16
    assert tomato_ensemble.guard.reads == "pretrained"
    assert tomato_ensemble.guard.mean.numel() == tomato_ensemble.model.member_features  # one backbone's features
    card = tomato_ensemble.card
    assert "an ensemble" in card and "--ensemble" in card and "## Other splits" in card
    assert card.count("python -m suite.agriculture.train") == 4  # three runs and the ensemble
    onnx = tomato_ensemble.metrics["onnx"]
    assert onnx["parity"] and onnx["outputs"] == ["logits", "guard_score"]


def test_shipped_ensemble_scores_what_its_card_says_on_its_test_split(tomato_ensemble):
    from suite.agriculture.train import leaf_splits

    data = load_leaves(shared_data(*TOMATO_DATA))
    test = data.subset(leaf_splits(data, seed=0)["test"])
    probs = tomato_ensemble.predict_proba([test.load(i) for i in range(len(test))])
    accuracy = float((probs.argmax(1) == test.labels).mean())
    assert accuracy == pytest.approx(tomato_ensemble.metrics["accuracy"], abs=1e-9)
    recall = tomato_ensemble.metrics["per_class_recall"]
    for k, label in enumerate(tomato_ensemble.labels):
        assert float((probs.argmax(1)[test.labels == k] == k).mean()) == pytest.approx(recall[label])


def test_shipped_ensemble_calls_a_coffee_cup_unknown(tomato_ensemble, coffee):
    from suite.agriculture.diagnose import diagnose

    result = diagnose(tomato_ensemble, coffee)
    assert result.unknown and result.card.kind == "unknown"


# ----------------------------------------------------------------------------- the page


def test_agriculture_page_diagnoses_an_uploaded_leaf(tomato_test_photos):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    import sys

    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:  # the page imports apps.common, as it does under apps/Home.py
        sys.path.insert(0, str(repo))
    at = AppTest.from_file(str(repo / "apps" / "views" / "agriculture.py"), default_timeout=180).run()
    assert not at.exception, at.exception
    truth = display_name(tomato_test_photos.classes[tomato_test_photos.labels[0]])
    photo = Path(tomato_test_photos.items[0]).read_bytes()
    at.file_uploader(key="leaf").upload("leaf.jpg", photo, "image/jpeg").run()
    assert not at.exception, at.exception
    assert at.metric[0].value == truth
    assert any("Source" in m.value for m in at.markdown)
    assert not at.warning
    buf = io.BytesIO()
    from skimage import data as skdata

    Image.fromarray(skdata.coffee()).save(buf, format="PNG")
    at.file_uploader(key="leaf").upload("coffee.png", buf.getvalue(), "image/png").run()
    assert not at.exception and at.metric[0].value == "Unknown"
    assert any("not a leaf" in w.value for w in at.warning)
    # the ready-made ensemble is one click away and diagnoses the same leaf
    choice = at.radio(key="agriculture_solution_choice")
    ensemble = next(o for o in choice.options if "ensemble" in o)
    choice.set_value(ensemble).run()
    at.file_uploader(key="leaf").upload("leaf.jpg", photo, "image/jpeg").run()
    assert not at.exception, at.exception
    assert at.metric[0].value == truth and not at.warning
    assert any(m.value.startswith("# tomato_ensemble") for m in at.markdown)  # its model card is the one shown
