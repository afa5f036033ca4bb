"""Crashes for real: `suite train` killed with SIGKILL mid-epoch resumes to the uninterrupted result,
and a process killed while writing checkpoints never leaves a corrupt one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

REPO = Path(__file__).resolve().parents[1]
# Runs `suite train` unchanged, except that it prints PAUSED and waits (to be killed) after
# batch PAUSE_BATCH of epoch PAUSE_EPOCH.
PAUSING_TRAIN = """
import sys, time
from suite.core import trainer as T
pause_epoch, pause_batch = int(sys.argv[1]), int(sys.argv[2])
emit, seen = T.Trainer._emit, {"n": 0}
def pausing_emit(self, event):
    emit(self, event)
    if event == "batch_end" and self.state.epoch == pause_epoch:
        seen["n"] += 1
        if seen["n"] == pause_batch:
            print("PAUSED", flush=True)
            time.sleep(600)
T.Trainer._emit = pausing_emit
from suite.cli import main
sys.exit(main(sys.argv[3:]))
"""
TRAIN_ARGS = ["train", "--backbone", "small:cnn?width=8&size=32", "--no-pretrained", "--strategy", "full",
              "--epochs", "2", "--batch-size", "4", "--augment", "light", "--lr", "0.01", "--seed", "3",
              "--no-progress"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(REPO)}


def _train(data: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "suite.cli", *TRAIN_ARGS, "--data", str(data), "--out", str(out),
                             *extra], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "solution" / "model.safetensors"))


@pytest.mark.slow  # three `suite train` processes: about 50 s on 2 idle cores
def test_sigkill_mid_epoch_then_resume_ends_like_the_uninterrupted_run(photo_folder, tmp_path):
    import shutil

    data = Path(shutil.copytree(photo_folder, tmp_path / "photos"))
    (data / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # skipped and reported
    uninterrupted = _train(data, tmp_path / "a")  # runs alongside the run that gets killed
    killed = subprocess.Popen([sys.executable, "-c", PAUSING_TRAIN, "1", "3", *TRAIN_ARGS,
                               "--data", str(data), "--out", str(tmp_path / "b")],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in killed.stdout:  # wait until it is in the middle of the second epoch
            lines.append(line)
            if line.strip() == "PAUSED":
                break
        assert lines and lines[-1].strip() == "PAUSED", "".join(lines)
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(30) == -signal.SIGKILL
    finally:
        killed.kill()
    train_dir = tmp_path / "b" / "train"
    saved = torch.load(train_dir / "checkpoint.pt", weights_only=True)  # loads: not corrupt
    assert json.loads(saved["trainer"])["epoch"] == 0  # the first epoch is all that finished
    assert not (tmp_path / "b" / "solution").exists()

    resumed = _train(data, tmp_path / "b", "--resume")
    out_a, _ = uninterrupted.communicate(timeout=300)
    out_b, _ = resumed.communicate(timeout=300)
    assert uninterrupted.returncode == 0, out_a
    assert resumed.returncode == 0, out_b
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst <= 1e-6, f"resumed weights differ from the uninterrupted run by up to {worst}"
    logged = [json.loads(x) for x in (train_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in logged] == [0, 1]  # the redone epoch is logged once
    report_a = json.loads((tmp_path / "a" / "report" / "report.json").read_text())["metrics"]
    report_b = json.loads((tmp_path / "b" / "report" / "report.json").read_text())["metrics"]
    assert report_a == report_b
    skipped = json.loads((tmp_path / "a" / "report" / "report.json").read_text())["skipped_files"]
    assert [s["path"] for s in skipped] == [str(data / "cat" / "broken.png")]
    assert "warning:" in out_a and "broken.png" in out_a
    assert not list(train_dir.glob(".*.tmp"))


# Writes checkpoints of two different states in a loop until it is killed.
WRITER = """
import sys, torch
from pathlib import Path
from suite.core.trainer import _atomic_torch_save
path = Path(sys.argv[1])
states = [{"w": torch.full((256, 1024), float(k)), "k": torch.tensor(k)} for k in (1, 2)]
_atomic_torch_save(states[0], path)
print("WRITING", flush=True)
i = 0
while True:
    i += 1
    _atomic_torch_save(states[i % 2], path)
"""


def test_sigkill_while_writing_checkpoints_never_leaves_a_corrupt_file(tmp_path):
    from suite.core.trainer import _remove_stale_temporaries

    path = tmp_path / "checkpoint.pt"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        assert writer.stdout.readline().strip() == "WRITING"
        time.sleep(0.3)  # some dozens of writes in: the kill lands in a write or an fsync
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(30) == -signal.SIGKILL
    finally:
        writer.kill()
    state = torch.load(path, weights_only=True)  # whole: the old state or the new, never a mix
    k = int(state["k"])
    assert k in (1, 2) and torch.equal(state["w"], torch.full((256, 1024), float(k)))
    _remove_stale_temporaries(tmp_path)  # what Trainer.fit does first: a half-written temporary goes
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
