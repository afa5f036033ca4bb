"""Sim-to-real street-scene segmentation: simulator frames -> CamVid, every adaptation method, one table.

    .venv/bin/python benchmarks/driving_sim2real.py [--sim-frames 1000] [--epochs 5] [--save-solutions DIR]
    .venv/bin/python benchmarks/driving_sim2real.py --from-results runs/a/results.json runs/b/results.json  # table only

Source: frames of the built-in simulator with their labels. Target: CamVid train (367 frames) with
its labels removed. Evaluation: CamVid val (101 frames, 480x360), 11 classes, unlabelled pixels
ignored. Oracle: the same decoder trained on CamVid train labels. Frozen EfficientNet-Lite0
encoder at 240x180 (features cached), light FPN decoder; one seed. Writes
benchmarks/results/driving_sim2real.{md,json}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _common  # noqa: F401  (sets thread environment first)
from _common import DATA, REPO, publish, require, set_threads

ANCHORS = ("GTA5 -> Cityscapes (19 classes, full resolution, trained networks): source-only 36.6, AdaptSegNet 42.4, "
           "FDA 44.6 (50.45 with multi-band + pseudo-labels), DAFormer 68.3, oracle 70.5 mIoU.")


def markdown(summary: dict, machine: str, command: str) -> str:
    from suite.driving.sim2real import gap_closure, table

    res = summary["results"]
    adapted = [m for m in res if m != "source_only" and not m.startswith("oracle")]
    lines = [
        "# Sim-to-real segmentation: built-in simulator -> CamVid", "",
        f"- source: {summary['data']['source']}",
        f"- target (unlabelled): {summary['data']['target_unlabelled']}",
        f"- evaluation: {summary['data']['evaluation']}",
        f"- oracle: {summary['data']['oracle']}",
        f"- recipe: {summary['recipe']['encoder']}, input {summary['recipe']['input_size'][1]}x"
        f"{summary['recipe']['input_size'][0]}, decoder {summary['recipe']['decoder']}, FDA beta "
        f"{summary['recipe']['fda_beta']}",
        f"- machine: {machine}; shared with other jobs while measuring (total {summary['total_seconds']:.0f} s wall)",
        f"- command: `{command}`", "",
        "mIoU and per-class IoU in %, CamVid val; gain over source-only; gap closed = (method - source-only) / "
        "(oracle - source-only).", "", *([summary["note"], ""] if summary.get("note") else []),
        table(summary), ""]
    clean = [m for m in adapted if res[m].get("init", "initialisation").startswith("initialisation")]
    for label, pool in (("clean (one training from the shared initialisation)", clean),
                        ("any row", adapted if clean != adapted else [])):
        if not pool or "oracle" not in res:
            continue
        top = max(pool, key=lambda m: res[m]["miou"])
        gc = gap_closure(res, top)
        lines += [f"Best adaptation, {label}: **{top}**, {100 * (res[top]['miou'] - res['source_only']['miou']):+.1f} "
                  f"mIoU over source-only" + (f", closing {100 * gc:.0f}% of the gap to the oracle." if gc is not None
                                              else "."), ""]
    lines += [f"Field anchor for scale: {ANCHORS}", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sim-frames", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--fda-beta", type=float, default=0.05)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "sim2real")
    p.add_argument("--save-solutions", type=Path, default=None,
                   help="also write the frozen-encoder source-only decoder as a Solution under DIR (the shipped "
                        "solutions come from python -m suite.driving.dacs ... --ship suite/driving/solutions)")
    p.add_argument("--from-results", type=Path, nargs="+", default=None,
                   help="results.json files of earlier runs (rows merged in method order)")
    a = p.parse_args()
    machine = set_threads(1)
    command = (f".venv/bin/python benchmarks/driving_sim2real.py --sim-frames {a.sim_frames} --epochs {a.epochs} "
               f"--fda-beta {a.fda_beta}" + (f" --save-solutions {a.save_solutions}" if a.save_solutions else ""))
    if a.from_results is not None:
        from suite.driving.sim2real import METHODS

        runs = [json.loads(path.read_text()) for path in a.from_results]
        summary = runs[0]
        merged = {k: v for r in runs for k, v in r["results"].items()}
        summary["results"] = {m: merged[m] for m in METHODS if m in merged} if len(runs) > 1 else merged
        summary["total_seconds"] = sum(r["total_seconds"] for r in runs)
        command = " ; ".join(r.get("command", command) for r in runs)
    else:
        from suite.driving.sim2real import run

        camvid = require(DATA / "driving" / "camvid")
        summary = run(camvid, a.out, a.sim_frames, a.epochs, fda_beta=a.fda_beta,
                      save_solutions=a.save_solutions)
    publish("driving_sim2real", markdown(summary, machine, command), summary)


if __name__ == "__main__":
    main()
