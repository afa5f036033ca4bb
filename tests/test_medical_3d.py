"""Volumes: NIfTI reading and preparation, 3D and 2.5D models, shipped volume solutions, the volume view."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, shared_data

nib = pytest.importorskip("nibabel")

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _nifti_bytes(array: np.ndarray, affine=None, gz: bool = True) -> bytes:
    img = nib.Nifti1Image(np.asarray(array), np.eye(4) if affine is None else affine)
    raw = img.to_bytes()
    return gzip.compress(raw) if gz else raw


def _write(path: Path, array, affine=None) -> Path:
    path.write_bytes(_nifti_bytes(array, affine, gz=str(path).endswith(".gz")))
    return path


def _brain(shape=(40, 40, 20), seed=0, tumour=True) -> np.ndarray:
    """A synthetic skull-stripped 'brain': an ellipsoid of noisy tissue, optionally a bright blob."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    inside = x ** 2 + y ** 2 + (z / 1.2) ** 2 < 0.8
    vol = np.where(inside, 100 + 10 * rng.standard_normal(shape), 0).astype(np.float32)
    if tumour:
        vol[(x - 0.3) ** 2 + y ** 2 + z ** 2 < 0.05] = 220
    return vol


# ----------------------------------------------------------------------------- reading


def test_lps_volume_is_reoriented_to_ras(tmp_path):
    from suite.medical.volumes import load_nifti

    array = np.zeros((6, 5, 4), dtype=np.float32)
    array[1, 2, 3] = 7.0  # voxel (1, 2, 3) of an LPS file
    path = _write(tmp_path / "lps.nii.gz", array, LPS)
    raw = load_nifti(path)
    assert raw.axcodes == ("L", "P", "S") and raw.array[1, 2, 3] == 7.0
    ras = load_nifti(path, orientation="RAS")
    assert ras.axcodes == ("R", "A", "S")
    assert ras.array[6 - 1 - 1, 5 - 1 - 2, 3] == 7.0  # x and y flipped, z kept
    from_bytes = load_nifti(path.read_bytes(), name="upload.nii.gz", orientation="RAS")
    np.testing.assert_array_equal(from_bytes.array, ras.array)


def test_spacing_is_resampled_to_one_millimetre(tmp_path):
    from suite.medical.volumes import VolumePrep, load_nifti, prepare_volume

    array = np.zeros((10, 10, 8), dtype=np.float32)
    array[:, :, 4] = 1.0  # a plane at z = 4 voxels = 12 mm
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    volume = load_nifti(_write(tmp_path / "aniso.nii", array, affine))
    assert volume.spacing == pytest.approx((1.0, 1.0, 3.0))
    out = prepare_volume(volume, VolumePrep(spacing=(1.0, 1.0, 1.0), intensity="none"))
    assert out.shape[:2] == (10, 10) and out.shape[2] in (22, 23)  # 8 voxels x 3 mm, resampled at 1 mm
    assert int(np.argmax(out[5, 5])) == 12  # the plane stays at 12 mm


def test_fixed_size_by_pad_crop_and_resize(tmp_path):
    from suite.medical.volumes import VolumePrep, load_nifti, prepare_volume

    volume = load_nifti(_write(tmp_path / "b.nii.gz", _brain()))
    for fit in ("pad_crop", "resize"):
        out = prepare_volume(volume, VolumePrep(spacing=None, size=(32, 48, 16), fit=fit))
        assert out.shape == (32, 48, 16) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_non_finite_voxels_are_refused(tmp_path, bad, word):
    from suite.core import SuiteError
    from suite.medical.volumes import load_nifti

    array = _brain()
    array[3, 4, 5] = bad
    with pytest.raises(SuiteError, match=word) as info:
        load_nifti(_write(tmp_path / "bad.nii.gz", array))
    assert "bad.nii.gz" in str(info.value) and "1 " in str(info.value)


@pytest.mark.parametrize("name, payload, message", [
    ("scan.png", b"\x89PNG\r\n\x1a\n" + b"0" * 400, "not supported"),
    ("scan.npy", b"\x93NUMPY" + b"0" * 400, "not supported"),
    ("scan.nii.gz", gzip.compress(b"hello " * 100), "not a NIfTI"),
    ("scan.nii.gz", b"\x1f\x8b\x08 truncated", "gzip"),
    ("scan.nii", b"", "empty"),
])
def test_files_that_are_not_nifti_are_refused_clearly(name, payload, message):
    from suite.core import SuiteError
    from suite.medical.volumes import load_nifti

    with pytest.raises(SuiteError, match=message) as info:
        load_nifti(payload, name=name)
    assert name in str(info.value)


def test_a_4d_series_is_refused():
    from suite.core import SuiteError
    from suite.medical.volumes import load_nifti

    with pytest.raises(SuiteError, match="4D"):
        load_nifti(_nifti_bytes(np.zeros((4, 4, 4, 3), np.float32)), name="series.nii.gz")


def test_foreground_intensity_scaling_ignores_offset_and_gain():
    from suite.medical.volumes import scale_intensity

    vol = _brain()
    skull_stripped = np.where(vol > 0, (vol - vol[vol > 0].mean()) / vol[vol > 0].std(), -3.2)  # BraTS-like
    a, b = scale_intensity(vol), scale_intensity(skull_stripped)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a[vol == 0].max() == 0.0 and a.max() <= 1.0


def test_axial_slices_are_square_and_radiological():
    from suite.medical.volumes import axial_slices

    vol = np.zeros((8, 6, 3), np.float32)
    vol[7, 5, 0] = 1.0  # most right, most anterior voxel of an RAS volume
    slices = axial_slices(vol)
    assert slices.shape == (3, 8, 8)
    assert slices[0, 1, 0] == 1.0  # anterior at the top (after padding 6 -> 8 rows), right on the left


# ----------------------------------------------------------------------------- data sets and splits


def test_nifti_manifest_keeps_subjects_in_one_split(tmp_path):
    from suite.core.data import find_leakage, split_indices
    from suite.medical.volumes import VolumePrep, from_nifti_csv

    rows = ["path,label,subject"]
    for s in range(4):
        for scan in range(2):
            name = f"sub{s}_scan{scan}.nii.gz"
            _write(tmp_path / name, _brain(seed=10 * s + scan, tumour=bool(scan)))
            rows.append(f"{name},{'tumour' if scan else 'none'},sub{s}")
    (tmp_path / "volumes.csv").write_text("\n".join(rows) + "\n")
    data = from_nifti_csv(tmp_path / "volumes.csv", prep=VolumePrep(spacing=None, size=(16, 16, 8), fit="resize"))
    assert data.modality == "volume" and len(data) == 8 and data.classes == ["none", "tumour"]
    assert data.items[0].shape == (16, 16, 8)
    splits = split_indices(data.labels, val=0.25, groups=data.groups, seed=0)
    groups = np.asarray(data.groups)
    assert not set(groups[splits["train"]]) & set(groups[splits["val"]])
    mixed = find_leakage(data, {"train": np.arange(0, 7), "val": np.array([7])})
    assert mixed["summary"] and "1 group(s) in more than one split" in mixed["summary"]

    from suite.core.finetune import finetune
    from suite.core.trainer import TrainConfig

    result = finetune(data, backbone="monai:resnet10?spatial_dims=3&size=16&widen_factor=0.125&conv1_t_size=3",
                      pretrained=False, val=0.25, test=0.25, config=TrainConfig(strategy="full", epochs=1,
                                                                                  batch_size=4, progress=False))
    assert result.solution.model.preprocess.in_chans == 1  # volumes (D, H, W) train a one-channel network
    assert result.leakage["groups_shared"] == []
    assert result.report["n"] >= 2 and result.solution.predict(data.items[0])["label"] in data.classes


def test_manifest_with_a_missing_column_names_it(tmp_path):
    from suite.core import SuiteError
    from suite.medical.volumes import from_nifti_csv

    (tmp_path / "m.csv").write_text("file,label\na.nii.gz,1\n")
    with pytest.raises(SuiteError, match="missing column"):
        from_nifti_csv(tmp_path / "m.csv")


# ----------------------------------------------------------------------------- models


def test_monai_spec_options_reach_the_network():
    from suite.core import SuiteError, create_model

    small = create_model("monai:resnet10?spatial_dims=3&widen_factor=0.125&conv1_t_size=3", num_classes=2,
                         in_chans=1, pretrained=False)
    wider = create_model("monai:resnet10?spatial_dims=3&widen_factor=0.25&conv1_t_size=3", num_classes=2,
                         in_chans=1, pretrained=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small) < count(wider) / 3
    assert small.backbone.conv1.kernel_size == (3, 3, 3)
    with pytest.raises(SuiteError, match="valid options"):
        create_model("monai:resnet10?spatial_dims=3&widht=2", num_classes=2, pretrained=False)
    with pytest.raises(SuiteError, match="must be a float"):
        create_model("monai:resnet10?spatial_dims=3&widen_factor=wide", num_classes=2, pretrained=False)


def test_volume_inputs_scale_8_bit_voxels_like_images():
    from suite.core.features import volume_tensor

    u8 = np.full((4, 4, 4), 255, np.uint8)
    assert volume_tensor(u8).shape == (1, 4, 4, 4) and float(volume_tensor(u8).max()) == 1.0
    assert float(volume_tensor(np.full((4, 4, 4), 0.5, np.float32), (0.5,), (0.25,)).max()) == 0.0


def test_volume_augmentation_flips_and_shifts_without_changing_voxels():
    from suite.core.data.augment import volume_augmentation

    vol = np.arange(6 * 7 * 8, dtype=np.uint8).reshape(6, 7, 8)
    assert np.array_equal(volume_augmentation("none", seed=0)(vol), vol)
    for preset in ("light", "standard"):
        first, again = volume_augmentation(preset, seed=3), volume_augmentation(preset, seed=3)
        outs = [first(vol) for _ in range(12)]
        assert all(np.array_equal(o, again(vol)) for o in outs)  # seeded: the same sequence
        assert all(o.shape == vol.shape and np.array_equal(np.sort(o, None), np.sort(vol, None)) for o in outs)
        assert sum(not np.array_equal(o, vol) for o in outs) >= 6


@pytest.fixture(scope="module")
def tiny_3d_solution():
    import torch

    from suite.core import Solution, create_model
    from suite.core.data import LabeledData

    torch.manual_seed(0)
    model = create_model("monai:resnet10?spatial_dims=3&size=16&widen_factor=0.125&conv1_t_size=3",
                         num_classes=2, in_chans=1, pretrained=False)
    rng = np.random.default_rng(0)
    vols = [rng.integers(0, 255, (16, 16, 16), dtype=np.uint8) for _ in range(12)]
    sol = Solution(model, ["normal", "mass"])
    sol.fit_guard(LabeledData(items=vols, labels=np.zeros(12, np.int64), classes=["normal", "mass"],
                              modality="volume", source="noise"))
    return sol, vols


def test_3d_solution_predicts_arrays_round_trips_and_explains(tiny_3d_solution, tmp_path):
    from suite.core import Solution
    from suite.medical.adrenal3d import predict_volume_3d

    sol, vols = tiny_3d_solution
    before = sol.predict(vols[:3])
    assert {"label", "probs", "ood", "ood_score"} <= set(before[0])
    loaded = Solution.load(sol.save(tmp_path / "s3d"))
    after = loaded.predict(vols[:3])
    for a, b in zip(before, after):
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-6)
    out = predict_volume_3d(loaded, vols[0])
    assert out["cam"].shape == (16, 16, 16) and 0.0 <= out["cam"].min() and out["cam"].max() <= 1.0
    assert out["volume"].max() <= 1.0


def test_2_5d_slices_and_linear_head_match_logistic_regression():
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from torch import nn

    from suite.medical.slices import SliceSampling, _set_linear_head, slice_stack

    sampling = SliceSampling(n_slices=3, planes=("axial", "sagittal"), image_size=32)
    vol = np.arange(10 * 12 * 14, dtype=np.float32).reshape(10, 12, 14) / (10 * 12 * 14)
    stack = slice_stack(vol, sampling)
    assert len(stack) == 6 and stack[0].shape == (12, 14) and stack[3].shape == (10, 12)
    assert stack[0].dtype == np.uint8 and stack[0].mean() < stack[2].mean()  # deeper axial slices are brighter
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (80, 5))
    y = (x[:, 0] + 0.5 * rng.standard_normal(80) > 3).astype(int)
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression().fit(scaler.transform(x), y)

    class Holder(nn.Module):
        head = nn.Sequential(nn.Linear(5, 2))

    model = Holder()
    _set_linear_head(model, clf.coef_[0], float(clf.intercept_[0]), scaler.mean_, scaler.scale_)
    ours = model.head(torch.as_tensor(x, dtype=torch.float32)).softmax(-1).detach().numpy()
    np.testing.assert_allclose(ours, clf.predict_proba(scaler.transform(x)), atol=1e-5)


def test_slice_sampling_rejects_unknown_planes():
    from suite.core import SuiteError
    from suite.medical.slices import SliceSampling

    with pytest.raises(SuiteError, match="planes"):
        SliceSampling(planes=("oblique",))


# ----------------------------------------------------------------------------- shipped solutions


def test_shipped_mri_solution_finds_a_synthetic_bright_lesion(tmp_path):
    """The shipped slice model on a synthetic brain: the slices with a bright blob score higher."""
    from suite.medical.mri import SOLUTION_DIR, load_solution, predict_volume
    from suite.medical.volumes import load_nifti

    if not (SOLUTION_DIR / "config.json").is_file():
        pytest.skip("the MRI solution is not built in this checkout")
    solution = load_solution()
    assert "Not for clinical use" in solution.card and solution.guard is not None
    vol = load_nifti(_write(tmp_path / "brain.nii.gz", _brain(shape=(64, 64, 24))))
    out = predict_volume(solution, vol)
    assert out["probs"].shape == (24,) and out["images"].shape == (24, 64, 64)
    assert out["ood"] is not None and len(out["ood"]) == 24


@pytest.mark.realdata
def test_shipped_mri_solution_on_a_brats_subject():
    """On a real subject's slices the tumour slices score higher than the tumour-free brain slices
    (the shipped model saw this subject; its held-out numbers are in its model card)."""
    from sklearn.metrics import roc_auc_score

    from suite.medical.mri import SOLUTION_DIR, load_solution, subject_slices

    folder = shared_data("medical", "brats2015", "brats_2013_pat0006_1")
    if not (SOLUTION_DIR / "config.json").is_file():
        pytest.skip("the MRI solution is not built in this checkout")
    solution = load_solution()
    s = subject_slices(folder)
    every_third = slice(0, None, 3)  # 44 of its 132 usable slices keep the test short
    probs = solution.predict_proba(list(s["images"][every_third]))[:, 1]
    assert roc_auc_score(s["labels"][every_third], probs) > 0.8
    for rep in solution.metrics["per_subject"].values():
        assert 0.5 < rep["auroc"] <= 1.0 and rep["ci95"]["auroc"][0] <= rep["auroc"] <= rep["ci95"]["auroc"][1]


@pytest.mark.realdata
def test_shipped_adrenal_solutions_on_test_volumes():
    from suite.core import Solution
    from suite.core.data import from_npz
    from suite.medical.adrenal3d import DIR_3D, DIR_25D
    from suite.medical.slices import predict_volumes

    npz = shared_data("medical", "adrenalmnist3d.npz")
    test = from_npz(npz, split="test")
    idx = np.r_[np.flatnonzero(test.labels == 0)[:6], np.flatnonzero(test.labels == 1)[:6]]
    vols = [test.items[i] for i in idx]
    for path in (DIR_3D, DIR_25D):
        if not (path / "config.json").is_file():
            pytest.skip(f"{path.name} is not built in this checkout")
        sol = Solution.load(path)
        assert "Not for clinical use" in sol.card and sol.guard is not None
        probs = (predict_volumes(sol, vols)["probs"] if "slices25d" in sol.extra
                 else sol.predict_proba(vols))
        assert probs.shape == (12, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
        assert 0.5 < sol.metrics["auroc"] <= 1.0


# ----------------------------------------------------------------------------- the app


PAGE = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from apps.medical_volume_view import volume_try_view
volume_try_view("vol")
"""


def _volume_page():
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from suite.medical.mri import SOLUTION_DIR

    if not (SOLUTION_DIR / "config.json").is_file():
        pytest.skip("the MRI solution is not built in this checkout")
    return AppTest.from_string(PAGE, default_timeout=180).run()


def test_volume_view_shows_per_slice_probabilities_and_grad_cam():
    at = _volume_page()
    assert not at.exception
    assert any("Not for clinical use" in w.value for w in at.warning)
    data = _nifti_bytes(_brain(shape=(48, 48, 12)), LPS)
    at.file_uploader(key="vol_upload").upload("brain.nii.gz", data, "application/gzip").run()
    assert not at.exception, at.exception
    assert len(at.slider) == 1 and at.slider[0].max == 11
    assert len(at.get("vega_lite_chart")) == 1  # the per-slice probability chart
    captions = [c for image in at.image for c in image.captions]
    assert any("Grad-CAM" in c for c in captions)
    at.slider[0].set_value(3).run()
    assert not at.exception and at.metric[0].label.endswith("slice 3")


def test_volume_view_refuses_a_file_that_is_not_nifti():
    at = _volume_page()
    at.file_uploader(key="vol_upload").upload("notes.nii.gz", b"plain text, not a volume", "text/plain").run()
    assert not at.exception
    assert any("notes.nii.gz" in e.value and "NIfTI" in e.value for e in at.error)
    assert len(at.slider) == 0  # nothing is predicted


def test_volume_view_runs_the_3d_model_with_grad_cam_by_slice():
    from suite.medical.adrenal3d import DIR_3D

    if not (DIR_3D / "config.json").is_file():
        pytest.skip("the 3D solution is not built in this checkout")
    at = _volume_page()
    at.selectbox(key="vol_model").select("Adrenal CT crop: adrenal mass (3D CNN)").run()
    at.file_uploader(key="vol_upload").upload("ct.nii", _nifti_bytes(_brain(shape=(30, 30, 30)), gz=False),
                                              "application/octet-stream").run()
    assert not at.exception, at.exception
    assert at.metric[0].label == "Prediction" and at.metric[0].value in ("normal", "adrenal mass")
    assert len(at.slider) == 1 and at.slider[0].max == 27  # the 28^3 input, slice by slice
    assert any("Grad-CAM" in c for image in at.image for c in image.captions)
