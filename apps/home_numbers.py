"""Numbers the home page shows, read from benchmark results and the shipped solutions' configs."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = {"data_efficiency": "PlantVillage tomato", "data_efficiency_pneumonia": "PneumoniaMNIST"}
HEADLINE = ("accuracy", "auroc", "miou", "macro_f1")


def data_efficiency_rows() -> list[dict]:
    """The smallest-data cell of each data-efficiency benchmark: pretrained vs scratch accuracy."""
    rows = []
    for stem, name in DATASETS.items():
        path = ROOT / "benchmarks" / "results" / f"{stem}.json"
        if not path.is_file():
            continue
        cells = json.loads(path.read_text()).get("cells", [])
        if cells:
            c = cells[0]
            rows.append({"data": name, "n_train": c["n_train"],
                         "pretrained": c["pretrained"]["metrics"]["accuracy"],
                         "scratch": c["scratch"]["metrics"]["accuracy"]})
    return rows


def _headline(metrics: dict) -> str:
    parts = []
    for key in HEADLINE:
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            ci = metrics.get("ci95", {}).get(key)
            parts.append(f"{key} {value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
    data = re.sub(r"/\S*/", "", str(metrics.get("data") or ""))  # file names, not machine paths
    return ", ".join(parts) + (f" on {data}" if data and parts else "")


def shipped_solutions() -> dict[str, list[tuple[str, str]]]:
    """vertical -> [(solution name, headline metrics line)] for every solution shipped in the package."""
    out: dict[str, list[tuple[str, str]]] = {}
    for cfg in sorted((ROOT / "suite").glob("*/solutions/*/config.json")):
        try:
            metrics = json.loads(cfg.read_text()).get("metrics", {}) or {}
        except ValueError:
            continue
        line = _headline(metrics)
        out.setdefault(cfg.parts[-4], []).append((cfg.parent.name, line or "see its model card"))
    return out
