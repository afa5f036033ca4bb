"""End to end: `suite train`, `evaluate`, `export` on a real image folder, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from suite.core import Solution
from suite.core.export import export_onnx
from suite.core.finetune import finetune
from suite.core.trainer import TrainConfig

SUITE = [sys.executable, "-m", "suite.cli"]


def run(*args):
    return subprocess.run([*SUITE, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.fixture(scope="module")
def trained(photo_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cli = run("train", "--data", str(photo_folder), "--out", str(out), "--epochs", "6", "--lr", "0.01",
              "--no-progress", "--test", "0.25", "--val", "0.2")
    assert cli.returncode == 0, cli.stderr
    return out, cli


def test_train_writes_solution_report_and_checkpoints(trained):
    out, cli = trained
    assert "accuracy" in cli.stdout and "never trained on" in cli.stdout
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["metrics"]["accuracy"] >= 0.8  # three very different photos
    lo, hi = report["ci95"]["accuracy"]
    assert lo <= report["metrics"]["accuracy"] <= hi
    assert report["n"] == 9 and "test split" in report["data"]
    for name in ("report.md", "confusion_matrix.png", "roc.png", "reliability.png"):
        assert (out / "report" / name).is_file()
    assert (out / "train" / "checkpoint.pt").is_file()
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 6 and "val_accuracy" in history[0]
    solution = Solution.load(out / "solution")
    assert solution.labels == ["cat", "coffee", "rocket"]
    assert solution.metrics["data"].startswith("test split")
    assert solution.recipe["strategy"] == "feature_extraction"


def test_evaluate_command(trained, photo_folder):
    out, _ = trained
    cli = run("evaluate", str(out / "solution"), "--data", str(photo_folder), "--out", str(out / "eval"))
    assert cli.returncode == 0, cli.stderr
    metrics = json.loads(cli.stdout)["metrics"]
    assert metrics["accuracy"] >= 0.8
    assert (out / "eval" / "report.md").is_file()


def test_export_onnx_matches_pytorch(trained, tmp_path):
    out, _ = trained
    cli = run("export", str(out / "solution"), "--out", str(tmp_path / "m.onnx"))
    assert cli.returncode == 0, cli.stderr
    result = json.loads(cli.stdout)
    assert result["parity"] is True and result["max_abs_diff"] <= 1e-4
    assert result["outputs"] == ["logits", "guard_score"] and result["guard_reads"] == "model"
    assert (tmp_path / "m.onnx").stat().st_size > 1e6
    cli = run("export", str(out / "solution"), "--out", str(tmp_path / "plain.onnx"), "--no-guard")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["outputs"] == ["logits"]


def test_export_text_solution(tmp_path):
    from suite.core import create_model

    solution = Solution(create_model("embedded:minilm_l6", num_classes=3), ["negative", "neutral", "positive"])
    result = export_onnx(solution, tmp_path / "text.onnx")
    assert result["parity"] and result["max_abs_diff"] <= 1e-4


@pytest.mark.parametrize("args,words", [
    (["train", "--data", "/no/such/folder", "--out", "x"], ["/no/such/folder"]),
    (["train", "--data", "{folder}", "--out", "{tmp}", "--strategy", "magic"], ["unknown strategy", "partial"]),
    (["train", "--data", "{folder}", "--out", "{tmp}", "--schedule", "step"], ["schedule must be one of"]),
    (["train", "--data", "{folder}", "--out", "{tmp}", "--backbone", "tv:resnet18"], ["tv:resnet18", "cache"]),
    (["evaluate", "/no/solution", "--data", "{folder}"], ["not a Solution directory"]),
    (["train", "--data", "{folder}", "--out", "{tmp}", "--adapt", "dann"], ["needs unlabelled target data"]),
    (["train", "--data", "{folder}", "--out", "{tmp}", "--adapt", "magic", "--target-data", "{folder}"],
     ["unknown adaptation method", "coral"]),
])
def test_bad_arguments_get_one_clear_line(photo_folder, tmp_path, args, words):
    args = [a.format(folder=photo_folder, tmp=tmp_path) for a in args]
    cli = run(*args)
    assert cli.returncode == 2
    assert "Traceback" not in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
    for word in words:
        assert word in cli.stderr


def test_finetune_with_scratch_baseline_reports_transfer_gain(photo_data, tmp_path):
    cfg = TrainConfig(epochs=4, batch_size=8, lr=1e-2, progress=False, augment="none")
    result = finetune(photo_data, config=cfg, output_dir=tmp_path, baseline="scratch", val=0.2, test=0.3,
                      image_size=96)
    assert result.solution.preprocess.input_size == (3, 96, 96)
    rows = {r["name"]: r for r in result.comparison["rows"]}
    assert set(rows) == {"pretrained", "scratch"}
    assert rows["pretrained"]["value"] > rows["scratch"]["value"]  # ImageNet features vs 4 epochs from zero
    assert not any("negative transfer" in w for w in result.report["warnings"])
    assert "Transfer vs scratch" in (tmp_path / "report" / "report.md").read_text()


def test_npz_files_keep_their_official_splits(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 24), ("val", 8), ("test", 10)):
        labels = np.arange(n) % 2
        images = (rng.random((n, 28, 28)) * 60 + labels[:, None, None] * 150).astype(np.uint8)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels[:, None]
    arrays["test_images"][3] = arrays["train_images"][5]  # a training image leaked into the test split
    np.savez(tmp_path / "toy.npz", **arrays)
    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-2, progress=False, augment="none")
    result = finetune(tmp_path / "toy.npz", config=cfg)
    assert result.report["n"] == 10  # the official test split, not a re-split
    assert result.report["leakage"]["n_exact"] == 1  # the given splits are checked against each other
    assert result.solution.preprocess.in_chans == 1  # grayscale detected, first conv adapted
    assert result.solution.guard.calibrated_on == 8  # the guard's threshold: the validation split, never trained on
    from suite.core.errors import SuiteError

    with pytest.raises(SuiteError, match="reads one of model, pretrained"):
        finetune(tmp_path / "toy.npz", config=cfg, output_dir=tmp_path / "typo", guard_reads="frozen")
    assert not (tmp_path / "typo").exists()  # refused before training, not after it


def test_train_with_adaptation_reports_source_only_on_the_target(photo_folder, tmp_path):
    from PIL import Image, ImageOps

    target = tmp_path / "target"
    for img in photo_folder.rglob("*.png"):
        (target / img.parent.name).mkdir(parents=True, exist_ok=True)
        ImageOps.invert(Image.open(img).convert("RGB")).save(target / img.parent.name / img.name)
    cli = run("train", "--data", str(photo_folder), "--out", str(tmp_path / "run"), "--epochs", "2",
              "--lr", "0.01", "--no-progress", "--adapt", "coral", "--target-data", str(target),
              "--target-eval-data", str(target), "--image-size", "64", "--head-hidden", "32")
    assert cli.returncode == 0, cli.stderr
    assert "target accuracy, source-only" in cli.stdout and "target accuracy, coral" in cli.stdout
    report = json.loads((tmp_path / "run" / "report" / "report.json").read_text())
    assert report["adaptation"]["target_items_unlabelled"] == 36
    assert set(report["adaptation"]["domain_gap_after"]) == {"domain_accuracy", "proxy_a_distance"}
