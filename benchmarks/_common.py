"""Helpers shared by the benchmark scripts: data locations, threads, sampling, result files."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Idle OpenMP threads sleep instead of spinning. On this 2-core machine, with another job busy, a
# 2-thread training step ran 7x slower when spinning; on an idle machine sleeping costs ~30% per step.
# Stable numbers under contention matter more here; set OMP_WAIT_POLICY=ACTIVE to override.
# torch reads it when it loads, so import this module first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SUITE_DATA", REPO.parent / "shared" / "data"))
TOMATO = DATA / "agriculture" / "plantvillage_tomato"
PNEUMONIA = DATA / "medical" / "pneumoniamnist.npz"
RESULTS = REPO / "benchmarks" / "results"
BACKBONE = "embedded:efficientnet_lite0"


def set_threads(threads: int) -> str:
    """Fix torch's intra-op threads; returns a one-line description of the machine for the tables."""
    import torch

    torch.set_num_threads(threads)
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads "
            f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}), {os.cpu_count()} CPUs "
            f"{platform.machine()}")


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"{path}: benchmark data not found (set SUITE_DATA to the shared data folder)")
    return path


def per_class(labels: np.ndarray, n: int | None, rng: np.random.Generator, pool=None) -> np.ndarray:
    """Sorted indices of ``n`` random items per class (all when ``n`` is None) from ``pool`` (default: all)."""
    pool = np.arange(len(labels)) if pool is None else np.asarray(pool)
    picked = [rng.permutation(pool[labels[pool] == c])[:n] for c in np.unique(labels[pool])]
    return np.sort(np.concatenate(picked))


def ci_cell(report: dict, metric: str = "accuracy") -> str:
    """``0.812 [0.755, 0.865]``: a metric of an evaluation report with its 95% bootstrap CI."""
    value, ci = report["metrics"][metric], report["ci95"][metric]
    return "n/a" if value is None else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def publish(name: str, markdown: str, raw: dict) -> None:
    """Print the table and write it to ``benchmarks/results/NAME.md`` with raw numbers in ``NAME.json``."""
    print(markdown)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text(markdown)
    (RESULTS / f"{name}.json").write_text(json.dumps(raw, indent=2) + "\n")
