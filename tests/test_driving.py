"""Driving vertical: simulator, schemas and loaders, segmentation metrics and model, shipped solutions, page."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, shared_data
from suite.core.errors import SuiteError
from suite.core.segmentation import (confusion_matrix, create_segmentation_model, iou_from_confusion,
                                     segmentation_metrics)
from suite.core.weights import load_state_dict
from suite.driving import data as D
from suite.driving.schema import (CAMVID_CLASSES, CITYSCAPES_PALETTE, IGNORE, cityscapes_colors_to_camvid,
                                  cityscapes_to_camvid, colorize, synthia_to_camvid)
from suite.driving.sim import DrivingSimulator, SimConfig

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)


# --- simulator ------------------------------------------------------------------------------------
def test_simulator_is_deterministic_by_seed_and_index():
    a, b = DrivingSimulator(120, 160, seed=3), DrivingSimulator(120, 160, seed=3)
    rgb1, lab1 = a.frame(5)
    rgb2, lab2 = b.frame(5)
    assert rgb1.shape == (120, 160, 3) and rgb1.dtype == np.uint8 and lab1.shape == (120, 160)
    assert np.array_equal(rgb1, rgb2) and np.array_equal(lab1, lab2)
    assert not np.array_equal(a.frame(6)[0], rgb1)
    assert not np.array_equal(DrivingSimulator(120, 160, seed=4).frame(5)[0], rgb1)


def test_simulator_renders_every_class_in_plausible_places():
    sim = DrivingSimulator(180, 240, seed=0)
    counts = np.zeros(12, np.int64)
    for i in range(16):
        _, label = sim.frame(i)
        assert label.max() <= BICYCLIST  # every pixel gets a class: nothing unlabelled
        counts += np.bincount(label.ravel(), minlength=12)
        rows = np.arange(label.shape[0])[:, None].repeat(label.shape[1], 1)
        if (label == SKY).any() and (label == ROAD).any():
            assert rows[label == SKY].mean() < rows[label == ROAD].mean()  # sky above the road
        assert (label[-1] == ROAD).any() or (label[-1] == PAVEMENT).any() or (label[-1] == CAR).any()
    assert (counts[:11] > 0).all(), dict(zip(CAMVID_CLASSES, counts))


def test_simulator_labels_follow_the_painted_colours():
    """Without randomisation (clean daylight, no noise or blur) the colours are exactly what each label
    region was painted: the grey road differs from the blue sky, and labels change where colours do."""
    sim = DrivingSimulator(120, 160, seed=1, config=SimConfig(randomize=False))
    rgb, label = sim.frame(0)
    rgb = rgb.astype(np.int32)
    sky, road = rgb[label == SKY], rgb[label == ROAD]
    assert (sky[:, 2] > sky[:, 0]).mean() > 0.9  # blue sky
    assert np.abs(road[:, 0] - road[:, 1]).mean() < 15  # grey road
    # where the label changes between horizontal neighbours, the colour changes too (mostly)
    edges = label[:, 1:] != label[:, :-1]
    colour_jump = np.abs(rgb[:, 1:] - rgb[:, :-1]).sum(-1) > 0
    assert colour_jump[edges].mean() > 0.95


def test_bare_crowns_are_labelled_tree_over_their_whole_outline():
    """In winter the sky shows between the twigs, and those pixels are still tree (CamVid's convention);
    a crown in leaf is labelled where its leaves are, which hide the sky."""
    from suite.driving.sim import _Scene

    def tree_over_blue_sky(foliage):
        scene = _Scene(DrivingSimulator(180, 240, seed=0), np.random.default_rng(5))
        scene.rgb[:] = (0, 0, 255)
        scene.label[:], scene.depth[:], scene.light[:] = SKY, np.inf, 1.0
        scene.foliage = foliage
        scene.tree(0.0, 30.0)
        return scene.rgb[scene.label == TREE], scene.label == TREE

    bare, bare_mask = tree_over_blue_sky(0.0)
    leafy, leafy_mask = tree_over_blue_sky(1.0)
    assert bare_mask.sum() > 200 and leafy_mask.sum() > 200
    sky_between = lambda px: (px[:, 2] > px[:, 0] + 60).mean()  # blue still dominates: sky seen through
    assert sky_between(bare) > 0.3 and sky_between(leafy) < 0.05
    assert bare_mask.sum() > leafy_mask.sum()  # the whole outline, gaps included


# --- schemas and loaders --------------------------------------------------------------------------
@pytest.mark.parametrize("label_id,expected", [(7, ROAD), (8, PAVEMENT), (11, BUILDING), (12, BUILDING), (13, FENCE),
                                               (17, POLE), (19, SIGN), (20, SIGN), (21, TREE), (22, IGNORE),
                                               (23, SKY), (24, PEDESTRIAN), (25, BICYCLIST), (26, CAR), (28, CAR),
                                               (33, BICYCLIST), (0, IGNORE), (1, IGNORE), (255, IGNORE)])
def test_cityscapes_label_ids_map_to_camvid(label_id, expected):
    assert cityscapes_to_camvid(np.array([[label_id]], np.uint8))[0, 0] == expected


def test_cityscapes_train_ids_and_palette_agree():
    train_ids = np.arange(19, dtype=np.uint8)[None]
    via_ids = cityscapes_to_camvid(np.concatenate([train_ids, [[255]]], 1), "trainIds")
    via_colours = cityscapes_colors_to_camvid(np.concatenate([CITYSCAPES_PALETTE[None], [[[1, 2, 3]]]], 1))
    assert np.array_equal(via_ids, via_colours)
    assert via_ids[0, -1] == IGNORE
    # CARLA's road-line colour is road
    assert cityscapes_colors_to_camvid(np.array([[[157, 234, 50]]], np.uint8))[0, 0] == ROAD
    with pytest.raises(ValueError):
        cityscapes_to_camvid(np.zeros((2, 2), np.uint8), "colours")


def test_synthia_ids_and_colorize():
    ids = np.array([[1, 2, 3, 4, 8, 10, 22, 0]], np.uint8)
    assert synthia_to_camvid(ids).tolist() == [[SKY, BUILDING, ROAD, PAVEMENT, CAR, PEDESTRIAN, ROAD, IGNORE]]
    assert colorize(np.array([[IGNORE]]))[0, 0].tolist() == [0, 0, 0]


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_gta5_and_synthia_layouts(tmp_path):
    import cv2

    rgb = np.zeros((8, 10, 3), np.uint8)
    gta = tmp_path / "gta5"
    for i in range(2):
        _png(gta / "images" / f"{i:05d}.png", rgb)
        _png(gta / "labels" / f"{i:05d}.png", np.full((8, 10), 26 if i else 7, np.uint8))  # car, road
    data = D.load_driving_data(gta)
    assert data.source == "GTA5" and len(data) == 2
    assert np.unique(data.load(0)[1]).tolist() == [ROAD] and np.unique(data.load(1)[1]).tolist() == [CAR]

    syn = tmp_path / "synthia"
    _png(syn / "RGB" / "0000000.png", rgb)
    (syn / "GT" / "LABELS").mkdir(parents=True)
    label16 = np.zeros((8, 10, 3), np.uint16)  # SYNTHIA: class id in the first (R) channel, instance in G
    label16[..., 0], label16[..., 1] = 10, 300  # pedestrian, instance 300
    cv2.imwrite(str(syn / "GT" / "LABELS" / "0000000.png"), label16[..., ::-1])
    data = D.load_driving_data(syn)
    assert data.source == "SYNTHIA" and np.unique(data.load(0)[1]).tolist() == [PEDESTRIAN]

    broken = tmp_path / "broken"
    _png(broken / "images" / "a.png", rgb)
    (broken / "labels").mkdir()
    with pytest.raises(SuiteError, match="no label file"):
        D.gta5(broken)


def test_camvid_splits():
    root = shared_data("driving", "camvid")
    val, train = D.camvid(root, "val"), D.camvid(root, "train")
    assert len(val) == 101 and len(train) == 367
    rgb, label = val.load(0)
    assert rgb.shape == (360, 480, 3) and label.shape == (360, 480) and label.max() <= IGNORE
    assert train.load(0)[0].shape == (180, 240, 3)
    assert train.unlabelled().label(0) is None


def test_cityscapes_and_carla_samples():
    city = D.load_driving_data(shared_data("driving", "cityscapes_sample"))
    rgb, label = city.load(0)
    assert rgb.shape[:2] == label.shape
    train_ids = np.asarray(Image.open(next((shared_data("driving", "cityscapes_sample") / "gtFine")
                                           .glob("*labelTrainIds.png"))))
    from_train = cityscapes_to_camvid(train_ids, "trainIds")
    both = (from_train != IGNORE) & (label != IGNORE)
    # the sample's two label files were downscaled separately: they agree except at a few boundary pixels
    assert both.mean() > 0.5 and (from_train[both] == label[both]).mean() > 0.99
    carla = D.load_driving_data(shared_data("driving", "carla_sample"))
    assert len(carla) == 6
    _, label = carla.load(0)
    shares = np.bincount(label.ravel(), minlength=12) / label.size
    # the camera sits behind the ego car's bonnet (labelled car); CARLA 0.9.5 leaves the sky unlabelled
    assert shares[CAR] > 0.2 and shares[ROAD] > 0.005 and shares[PAVEMENT] > 0.01 and shares[BUILDING] > 0.05
    assert shares[IGNORE] > 0.1 and shares[SKY] == 0


# --- metrics --------------------------------------------------------------------------------------
def test_miou_with_ignore_label():
    target = np.array([[0, 0, 1, 1], [2, 2, IGNORE, IGNORE]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    cm = confusion_matrix(pred, target, 3, ignore_index=IGNORE)
    assert cm.sum() == 6 and cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    iou = iou_from_confusion(cm)
    assert np.allclose(iou, [1 / 3, 2 / 3, 1 / 2])
    m = segmentation_metrics(cm, ["a", "b", "c"])
    assert m["miou"] == pytest.approx(np.mean([1 / 3, 2 / 3, 1 / 2])) and m["pixel_accuracy"] == pytest.approx(4 / 6)
    # a class absent from target and prediction is NaN and left out of the mean
    cm4 = confusion_matrix(pred, target, 4, ignore_index=IGNORE)
    assert np.isnan(iou_from_confusion(cm4)[3])
    assert segmentation_metrics(cm4)["miou"] == pytest.approx(m["miou"])
    with pytest.raises(ValueError):
        confusion_matrix(pred[:1], target, 3)


# --- model, training, solution --------------------------------------------------------------------
def test_tiny_training_step_and_segmentation_solution(tmp_path):
    from suite.core import Solution
    from suite.driving.adapt import DecoderConfig, encode, evaluate, train_decoder

    torch.manual_seed(0)
    model = create_segmentation_model("embedded:efficientnet_lite0", 11, input_size=(64, 96))
    frames = D.simulated(8, seed=5, height=64, width=96)
    fs = encode(model, frames, batch_size=8)
    assert fs.feats[0].shape == (8, 24, 16, 24) and fs.labels.shape == (8, 64, 96)
    before = evaluate(model, fs, [frames.label(i) for i in range(8)])["pixel_accuracy"]
    stats = train_decoder(model, fs, DecoderConfig(epochs=8, batch_size=4, lr=5e-3))
    assert stats["loss"][-1] < stats["loss"][0]
    after = evaluate(model, fs, [frames.label(i) for i in range(8)])["pixel_accuracy"]
    assert after > before and after > 0.5

    sol = Solution(model, list(CAMVID_CLASSES), name="tiny")
    sol.save(tmp_path / "sol")
    stored = (tmp_path / "sol" / "model.safetensors").stat().st_size
    assert stored < 1_000_000  # the decoder only: the frozen encoder comes from the embedded package
    loaded = Solution.load(tmp_path / "sol")
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model.eval()(x))
    out = loaded.predict(frames.image(0))
    assert out["mask"].shape == (64, 96) and sum(out["shares"].values()) == pytest.approx(1.0)
    from suite.core.export import export_onnx

    exported = export_onnx(loaded, tmp_path / "tiny.onnx")  # per-pixel logits; no guard on this Solution
    assert exported["parity"] and exported["outputs"] == ["logits"]


def test_shipped_solutions_load_and_differ():
    from suite.driving.segment import load_solution, overlay, solution_path

    for kind in ("source_only", "adapted"):
        if not (solution_path(kind) / "config.json").is_file():
            pytest.fail(f"shipped solution {kind} missing")
    # both: the whole network in float16, from one chain of runs
    for kind in ("source_only", "adapted"):
        assert (solution_path(kind) / "model.safetensors").stat().st_size < 8_000_000
    src, ada = load_solution("source_only"), load_solution("adapted")
    assert src.task == ada.task == "segmentation" and src.labels == list(CAMVID_CLASSES)
    assert "--ship-source-only" in src.card and "python -m suite.driving.dacs" in ada.card
    assert ada.metrics["miou"] > ada.metrics["source_only_miou"] and "AdaBN" in ada.card
    # the demo's baseline is the model the adapted one's chain started from, and the card says so
    assert src.metrics["miou"] == pytest.approx(ada.metrics["source_only_miou"])
    assert src.metrics["adabn_miou"] > src.metrics["miou"] and "it has seen no real frame" in src.card
    rgb, _ = DrivingSimulator(180, 240, seed=9).frame(0)
    a, b = src.predict(rgb), ada.predict(rgb)
    assert a["mask"].shape == (180, 240) and not np.array_equal(a["mask"], b["mask"])
    assert overlay(rgb, a["mask"]).shape == rgb.shape


# --- app page -------------------------------------------------------------------------------------
def test_driving_page_segments_an_uploaded_frame():
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    val = REPO.parent / "shared" / "data" / "driving" / "camvid" / "val"
    if val.is_dir():
        image = np.asarray(Image.open(sorted(val.glob("*.png"))[0]).convert("RGB"))
    else:
        image = DrivingSimulator(360, 480, seed=11).frame(0)[0]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    at = AppTest.from_file(str(REPO / "apps" / "views" / "driving.py"), default_timeout=120).run()
    assert not at.exception
    at.file_uploader(key="driving_frame").upload("frame.png", buf.getvalue(), "image/png").run()
    assert not at.exception
    shares = at.dataframe[0].value
    assert list(shares["class"]) == list(CAMVID_CLASSES)
    assert shares["adapted %"].sum() == pytest.approx(100, abs=0.5)
    assert any("bicyclist" in m.value for m in at.markdown)  # the class legend under the overlays
    assert "agree" in at.metric[0].label
    # Adapt tab: AdaBN on two unlabelled frames
    sim_buf = io.BytesIO()
    Image.fromarray(DrivingSimulator(180, 240, seed=12).frame(0)[0]).save(sim_buf, format="PNG")
    at.file_uploader(key="driving_adapt_frames").set_value([("a.png", buf.getvalue(), "image/png"),
                                                            ("b.png", sim_buf.getvalue(), "image/png")]).run()
    at.button(key="driving_adapt_go").click().run()
    assert not at.exception
    assert any("BatchNorm layers re-estimated" in s.value for s in at.success)


def test_class_mix_masks_take_half_of_each_frames_classes():
    from suite.driving.dacs import class_mix_masks

    labels = torch.tensor([[[0, 0, 1, 1], [2, 2, 3, IGNORE]], [[5, 5, 5, 5], [IGNORE] * 4]], dtype=torch.long)
    masks = class_mix_masks(labels, torch.Generator().manual_seed(0))
    chosen = set(labels[0][masks[0]].tolist())
    assert len(chosen) == 2 and chosen <= {0, 1, 2, 3}  # half of 4 classes, never the ignore label
    assert all(bool(masks[0][labels[0] == c].all()) for c in chosen)  # whole classes are pasted
    assert labels[1][masks[1]].tolist() == [5] * 4  # one class: it is taken


def test_dacs_steps_train_the_student_and_move_the_teacher(tmp_path):
    """A few steps on tiny frames: the mixed term runs, the EMA teacher differs from the start and from
    the student, the time budget shortens the schedule, and source-only keeps the plain loss."""
    from suite.driving.dacs import DacsConfig, evaluate, load_arrays, train

    torch.manual_seed(0)
    sim = D.simulated(6, seed=3, height=48, width=64)
    source = load_arrays(sim, (48, 64))
    target = load_arrays(D.simulated(4, seed=9, height=48, width=64).unlabelled(), (48, 64))[0]
    assert source[0].shape == (6, 48, 64, 3) and source[0].dtype == torch.uint8 and source[1].shape == (6, 48, 64)
    model = create_segmentation_model("embedded:efficientnet_lite0", 11, input_size=(48, 64))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = DacsConfig(steps=4, batch_size=2, warmup=1, threshold=0.0, amp=False)
    labels = [sim.label(i) for i in range(6)]
    result = train(model, source, target, cfg, "dacs", evaluate_every=2,
                   evaluate_fn=lambda m: evaluate(m, source[0], labels)["miou"])
    teacher, student = result["model"], result["student"]
    assert result["steps"] == 4 and [h["step"] for h in result["history"]] == [2, 4]
    assert all("loss_mix" in h and 0.0 <= h["miou"] <= 1.0 for h in result["history"])
    name = "decoder.classifier.weight" if "decoder.classifier.weight" in start else next(
        k for k in start if k.startswith("decoder.") and k.endswith("weight"))
    assert not torch.equal(teacher.state_dict()[name], start[name])
    assert not torch.equal(teacher.state_dict()[name], student.state_dict()[name])
    plain = train(create_segmentation_model("embedded:efficientnet_lite0", 11, input_size=(48, 64)), source, target,
                  DacsConfig(steps=3, batch_size=2, amp=False), "source_only")
    assert plain["model"] is plain["student"]
    from suite.driving.dacs import CALIBRATION_STEPS

    short = train(plain["model"], source, None, DacsConfig(steps=1000, batch_size=1, amp=False), "source_only",
                  max_seconds=1e-3)
    assert short["planned_steps"] == 1000 and short["steps"] == CALIBRATION_STEPS[1] + 1
    with pytest.raises(ValueError):
        train(model, source, target, cfg, "fda")


class _FixedLogits(torch.nn.Module):
    """A stand-in teacher with given logits, the same for mirrored frames: class 1 wins in columns 2-3,
    class 0 elsewhere, and the confidence grows from the top row to the bottom one."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.preprocess = create_segmentation_model("embedded:efficientnet_lite0", 11, input_size=(4, 6),
                                                    pretrained=False).preprocess

    def forward(self, x):
        margin = torch.arange(1.0, 5.0)[:, None].expand(4, 6)
        logits = torch.zeros(len(x), 11, 4, 6)
        logits[:, 0] = margin
        logits[:, 1, :, 2:4] = margin[:, 2:4] + 0.5
        return logits


def test_pseudo_labels_keep_the_confident_share_of_each_class():
    from suite.driving.dacs import pseudo_labels

    images = torch.zeros(2, 4, 6, 3, dtype=torch.uint8)
    row = torch.tensor([0, 0, 1, 1, 0, 0], dtype=torch.uint8)
    labels, thresholds = pseudo_labels(_FixedLogits(), images, share=0.5, cap=1.0)
    expected = torch.stack([torch.full((6,), IGNORE, dtype=torch.uint8)] * 2 + [row] * 2).expand(2, 4, 6)
    assert labels.dtype == torch.uint8 and torch.equal(labels, expected)  # the bottom half of each class
    assert set(thresholds) == {"sky", "building"}
    top, _ = pseudo_labels(_FixedLogits(), images, share=0.0, cap=1.0)
    assert torch.equal(top[:, :3], torch.full((2, 3, 6), IGNORE, dtype=torch.uint8)) and torch.equal(top[:, 3], row.expand(2, 6))
    capped, thresholds = pseudo_labels(_FixedLogits(), images, share=0.0, cap=0.0)
    assert bool((capped != IGNORE).all()) and set(thresholds.values()) == {0.0}  # the cap keeps every pixel


def test_self_training_learns_the_fixed_pseudo_labels_and_keeps_the_student(tmp_path):
    """``self_train`` labels the target frames once with the incoming model, then trains against those
    labels: no teacher is kept, the weights move, and a missing target is refused."""
    from suite.driving.dacs import DacsConfig, load_arrays, train

    torch.manual_seed(0)
    source = load_arrays(D.simulated(4, seed=3, height=48, width=64), (48, 64))
    target = load_arrays(D.simulated(3, seed=9, height=48, width=64).unlabelled(), (48, 64))[0]
    model = create_segmentation_model("embedded:efficientnet_lite0", 11, input_size=(48, 64))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    logs = []
    result = train(model, source, target, DacsConfig(steps=3, batch_size=2, warmup=1, amp=False), "self_train",
                   log=logs.append)
    assert result["model"] is result["student"]
    assert result["pseudo_thresholds"] and all(0.0 < t <= 0.9 for t in result["pseudo_thresholds"].values())
    assert "pseudo_labelled_share" in logs[0]
    moved = [k for k, v in result["model"].state_dict().items() if v.dtype.is_floating_point
             and not torch.equal(v, start[k])]
    assert any(k.startswith("backbone.") for k in moved) and any(k.startswith("decoder.") for k in moved)
    with pytest.raises(ValueError):
        train(model, source, None, DacsConfig(steps=1, batch_size=2, amp=False), "self_train")


def test_simulator_frame_cache_is_keyed_by_seed_and_simulator_version(tmp_path):
    from suite.driving import sim
    from suite.driving.dacs import _simulator_frames

    cache = tmp_path / "sim.npz"
    first = _simulator_frames(2, 1, (48, 64), 0, cache)
    again = _simulator_frames(2, 1, (48, 64), 0, cache)
    other = _simulator_frames(2, 2, (48, 64), 0, cache)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    assert torch.equal(other[0], _simulator_frames(2, 2, (48, 64), 0, None)[0])
    # frames cached by an older simulator are rendered again, not reused
    np.savez(cache, images=np.zeros((2, 48, 64, 3), np.uint8), labels=np.zeros((2, 48, 64), np.uint8),
             seed=np.int64(2), version=np.int64(sim.SIM_VERSION - 1))
    assert torch.equal(_simulator_frames(2, 2, (48, 64), 0, cache)[0], other[0])
    assert int(np.load(cache)["version"]) == sim.SIM_VERSION  # and the cache now holds the new frames


def test_whole_network_run_is_reproducible_and_ships_an_adabn_solution(tmp_path):
    """``python -m suite.driving.dacs`` on CamVid (a few frames): the same command gives the same weights,
    and ``--ship`` writes an AdaBN Solution whose card and metrics come from the run."""
    from suite.core import Solution
    from suite.driving.dacs import main

    camvid = shared_data("driving", "camvid")
    args = ["--camvid", str(camvid), "--method", "source_only", "--steps", "3", "--batch-size", "2",
            "--sim-frames", "4", "--real-limit", "4", "--size", "48", "64", "--workers", "1", "--threads", "1",
            "--evaluate-every", "0", "--warmup", "1"]
    assert main(args + ["--out", str(tmp_path / "a"), "--ship", str(tmp_path / "ship")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    for name in ("model.safetensors", "model_adabn.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # --ship-source-only ships the same run's model before AdaBN, as the baseline
    assert main(args + ["--out", str(tmp_path / "s"), "--ship", str(tmp_path / "ship_src"), "--ship-source-only"]) == 0
    assert not (tmp_path / "ship_src" / "sim2real_adapted").exists()
    base = Solution.load(tmp_path / "ship_src" / "sim2real_source_only")
    trained = load_state_dict(tmp_path / "a" / "model.safetensors")  # the run's weights (float16), before AdaBN
    for k, v in base.model.state_dict().items():  # unchanged pretrained tensors load exact, hence the tolerance
        assert torch.allclose(v, trained[k].to(v.dtype), rtol=1e-3, atol=1e-6), k
    assert "it has seen no real frame" in base.card and "--ship-source-only" in base.card
    with pytest.raises(SystemExit):  # only a simulator-only run can ship the baseline
        main(args + ["--method", "oracle", "--out", str(tmp_path / "o"), "--ship", str(tmp_path / "x"),
                     "--ship-source-only"])
    summary = json.loads((tmp_path / "a" / "results.json").read_text())
    sol = Solution.load(tmp_path / "ship" / "sim2real_adapted")
    assert sol.metrics["miou"] == pytest.approx(summary["adabn"]["miou"])
    assert sol.metrics["source_only_miou"] == pytest.approx(summary["miou"])
    assert "python -m suite.driving.dacs --camvid" in sol.card and "AdaBN" in sol.card
    assert sol.predict(np.zeros((48, 64, 3), np.uint8))["mask"].shape == (48, 64)
    # self-training starts from the shipped weights: scored before training, pseudo-labels from them
    assert main(args + ["--method", "self_train", "--init", str(tmp_path / "ship" / "sim2real_adapted"),
                        "--out", str(tmp_path / "c"), "--ship", str(tmp_path / "ship2")]) == 0
    resumed = json.loads((tmp_path / "c" / "results.json").read_text())
    assert resumed["init"]["miou"] == pytest.approx(summary["adabn"]["miou"], abs=0.02)
    assert resumed["pseudo_thresholds"] and resumed["method"] == "self_train"
    # it ships the self-trained model itself, and its card reproduces the whole chain of runs
    tuned = Solution.load(tmp_path / "ship2" / "sim2real_adapted")
    assert tuned.metrics["miou"] == pytest.approx(resumed["miou"]) and tuned.metrics["initial_miou"] == resumed["init"]["miou"]
    assert tuned.metrics["source_only_miou"] == pytest.approx(summary["miou"])  # where the chain started
    assert resumed["commands"][0] == summary["command"] and resumed["commands"][1] == resumed["command"]
    assert tuned.recipe["commands"] == resumed["commands"] and resumed["commands"][0] in tuned.card
    assert "--method self_train" in tuned.card and "pseudo-labels" in tuned.card
    from suite.driving.dacs import model_card  # the card names the share of pixels the run kept

    assert "most confident half of each class" in tuned.card
    resumed["config"]["pseudo_share"] = 0.8
    assert "most confident 80% of each class" in model_card("x", resumed)
