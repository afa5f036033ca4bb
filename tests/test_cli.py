"""The ``suite`` command: help, models, predict, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from suite.core import Solution, create_model

SUITE = [sys.executable, "-m", "suite.cli"]


def run(*args, **kw):
    return subprocess.run([*SUITE, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, **kw)


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("models", "predict", "app"):
        assert cmd in out.stdout


def test_models_marks_embedded_offline():
    out = run("models", "--json")
    assert out.returncode == 0
    rows = {r["spec"]: r for r in json.loads(out.stdout)}
    assert rows["embedded:efficientnet_lite0"]["offline"] is True
    assert rows["embedded:minilm_l6"]["offline"] is True
    assert rows["hf:ProsusAI/finbert"]["offline"] is False  # no cache on a clean machine


def test_predict_on_files_and_folder(tmp_path, chelsea, coffee):
    labels = [str(i) for i in range(1000)]
    Solution(create_model("embedded:efficientnet_lite0", num_classes=1000), labels).save(tmp_path / "sol")
    images = tmp_path / "imgs"
    images.mkdir()
    Image.fromarray(chelsea).save(images / "cat.png")
    Image.fromarray(coffee).save(images / "coffee.jpg")
    out = run("predict", str(tmp_path / "sol"), str(images), "--json")
    assert out.returncode == 0, out.stderr
    got = {os.path.basename(json.loads(line)["input"]): json.loads(line)["label"] for line in out.stdout.splitlines()}
    assert got == {"cat.png": "285", "coffee.jpg": "967"}
    (images / "list.csv").write_text("path,site\ncoffee.jpg,a\ncat.png,b\n")
    out = run("predict", str(tmp_path / "sol"), str(images / "list.csv"))
    assert out.returncode == 0, out.stderr
    assert [line.split("\t")[:2] for line in out.stdout.splitlines()] == [["coffee.jpg", "967"], ["cat.png", "285"]]
    out = run("predict", str(tmp_path / "sol"), str(images / "list.csv"), "--column", "file")
    assert out.returncode == 2 and "no column 'file'" in out.stderr and "path, site" in out.stderr


@pytest.mark.parametrize("args,words", [
    (["predict", "/no/such/solution", "x.png"], ["not a Solution directory"]),
    (["nosuchcommand"], ["invalid choice"]),
])
def test_errors_are_one_line_without_traceback(args, words):
    out = run(*args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    for word in words:
        assert word in out.stderr


def test_every_train_config_field_is_an_option_with_the_same_default():
    import argparse
    import dataclasses

    from suite.cli import _add_config_options, _config_from_args
    from suite.core.trainer import TrainConfig

    parser = argparse.ArgumentParser()
    _add_config_options(parser)
    parsed = _config_from_args(parser.parse_args([]))
    for f in dataclasses.fields(TrainConfig):
        if f.name not in ("progress",):
            assert getattr(parsed, f.name) == getattr(TrainConfig(), f.name), f.name
    assert parsed.channels_last is True  # a field that is on by default is not switched off by the CLI
    off = _config_from_args(parser.parse_args(["--no-channels-last", "--balanced-sampler"]))
    assert off.channels_last is False and off.balanced_sampler is True
