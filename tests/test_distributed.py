"""Two CPU processes (gloo) train one model together, as `accelerate launch`/torchrun would run it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).resolve().parent / "_dist_worker.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args, timeout=600):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_two_processes_share_gradients_and_write_one_checkpoint(tmp_path):
    proc = _torchrun(str(WORKER), str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["final"] == ranks[1]["final"]  # synchronised: both hold the same trained model
    assert ranks[0]["final"] != ranks[0]["initial"]  # and it did train
    assert ranks[0]["steps"] == 2 * 4  # 30 items, batch 4 per process, 2 processes -> 4 steps an epoch
    assert [p.name for p in (tmp_path / "run").glob("checkpoint*")] == ["checkpoint.pt"]


def test_suite_train_runs_unchanged_under_torchrun(photo_folder, tmp_path):
    proc = _torchrun("-m", "suite.cli", "train", "--data", str(photo_folder), "--out", str(tmp_path),
                     "--epochs", "2", "--lr", "0.01", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("solution:") == 1  # rank 0 evaluates and saves
    assert (tmp_path / "solution" / "model.safetensors").is_file()
    assert (tmp_path / "report" / "report.json").is_file()
