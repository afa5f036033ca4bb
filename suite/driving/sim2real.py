"""The sim-to-real experiment with a frozen encoder: simulator frames (labelled) + real frames
(unlabelled) -> a real-scene segmenter, every adaptation method in one results table;
``--save-solutions DIR`` writes its source-only decoder (and with ``--adapted METHOD`` that method's) as
Solutions. The shipped pair comes from ``suite.driving.dacs``: the whole network trained on simulator
frames (``sim2real_source_only``), then adapted (``sim2real_adapted``).

    python -m suite.driving.sim2real --camvid ../shared/data/driving/camvid --out runs/sim2real

Everything runs on a CPU: the EfficientNet-Lite0 encoder stays frozen (its features are computed
once per image set and cached), decoders train on the cached features. Real labels are used only
by the oracle row and for evaluation on CamVid val.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from ..core.segmentation import create_segmentation_model
from . import data as D
from .adapt import (DecoderConfig, adabn_decoder, adabn_encoder, class_weights, encode, evaluate, fda_style,
                    pseudo_labels, train_decoder)
from .schema import CAMVID_CLASSES

METHODS = ("source_only", "fda", "adabn", "adversarial", "entropy", "fda_self_training", "adabn_self_training",
           "adabn_adversarial", "adabn_adversarial_self_training", "oracle")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(camvid_root: Path, out: Path, sim_frames: int = 1000, epochs: int = 5, size=(180, 240), seed: int = 0,
        methods=METHODS, fda_beta: float = 0.05, cache: Path | None = None, save_solutions: Path | None = None,
        real_limit: int | None = None, rounds: int = 1, adapted: str | None = None) -> dict:
    """Train every method in ``methods``; returns the results (also written to ``out/results.json``)."""
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or out / "cache"
    key = f"{size[0]}x{size[1]}_s{seed}"
    model = create_segmentation_model("embedded:efficientnet_lite0", len(CAMVID_CLASSES), size)
    sim = D.simulated(sim_frames, seed=seed + 1)
    real_train = D.camvid(camvid_root, "train")  # labels used by the oracle only
    val = D.camvid(camvid_root, "val")
    if real_limit:  # quick runs
        real_train, val = real_train.subset(range(min(real_limit, len(real_train)))), val.subset(range(min(real_limit, len(val))))
    real_unlabelled = real_train.unlabelled()
    val_labels = [val.label(i) for i in range(len(val))]
    t0 = time.perf_counter()

    def feats(name, m, data, style=None):
        _log(f"encoding {name} ({len(data)} images)")
        return encode(m, data, style=style, cache=cache / f"{name}_{key}_{len(data)}.safetensors")

    S = feats("sim", model, sim)
    T = feats("camvid_train", model, real_train)
    V = feats("camvid_val", model, val)
    weights = class_weights(S.labels)
    cfg = DecoderConfig(epochs=epochs, seed=seed)
    results, decoders, timings = {}, {}, {}
    fresh = {k: v.clone() for k, v in model.decoder.state_dict().items()}  # every method starts from this init

    def train(name, source, encoder=None, bn_target=None, **kw):
        """A fresh decoder trained on ``source``; ``bn_target`` re-estimates its BatchNorm statistics there."""
        m = encoder or model
        m.decoder.load_state_dict(fresh)
        start = time.perf_counter()
        stats = train_decoder(m, source, cfg, weights=weights, log=_log, **kw)
        if bn_target is not None:
            adabn_decoder(m, bn_target)
        timings[name] = round(time.perf_counter() - start, 1)
        decoders[name] = {k: v.clone() for k, v in m.decoder.state_dict().items()}
        return stats

    def self_train(name, start, source, target, encoder=None, adabn=False):
        """Rounds of pseudo-labels from the current decoder (first: ``start``'s), then a fresh decoder."""
        m = encoder or model
        m.decoder.load_state_dict(decoders[start])
        for _ in range(rounds):
            labels, info = pseudo_labels(m, target, tuple(size))
            stats = train(name, source, m, target if adabn else None, target=target, method="self_training",
                          target_labels=labels)
        return {**stats, "pseudo_labels": info, "rounds": rounds}

    def record(name, fs, encoder=None, stats=None):
        res = evaluate(encoder or model, fs, val_labels)
        res["train"] = stats or {}
        results[name] = res
        _log(f"{name}: mIoU {100 * res['miou']:.1f}")

    if "source_only" in methods or "fda_self_training" in methods:
        record("source_only", V, stats=train("source_only", S))
    if "fda" in methods or "fda_self_training" in methods:
        S_fda = feats(f"sim_fda{fda_beta}", model, sim, fda_style(real_unlabelled, size, fda_beta, seed))
        record("fda", V, stats=train("fda", S_fda))
    bn = {}
    if any(m.startswith("adabn") for m in methods):
        _log("AdaBN: encoder statistics from simulator frames and from real frames")
        bn["sim"] = adabn_encoder(model, sim)
        bn["real"] = adabn_encoder(model, real_unlabelled)
        S_bn, T_bn, V_bn = feats("sim_bn", bn["sim"], sim), feats("camvid_train_bn", bn["real"], real_train), \
            feats("camvid_val_bn", bn["real"], val)
    if "adabn" in methods or "adabn_self_training" in methods:
        record("adabn", V_bn, bn["real"], train("adabn", S_bn, bn["real"], T_bn))
    if "adversarial" in methods:
        record("adversarial", V, stats=train("adversarial", S, target=T, method="adversarial"))
    if "entropy" in methods:
        record("entropy", V, stats=train("entropy", S, target=T, method="entropy"))
    if "fda_self_training" in methods:
        record("fda_self_training", V, stats=self_train("fda_self_training", "fda", S_fda, T))
    if "adabn_self_training" in methods:
        stats = self_train("adabn_self_training", "adabn", S_bn, T_bn, bn["real"], adabn=True)
        record("adabn_self_training", V_bn, bn["real"], stats)
    if "adabn_adversarial" in methods or "adabn_adversarial_self_training" in methods:
        stats = train("adabn_adversarial", S_bn, bn["real"], T_bn, target=T_bn, method="adversarial")
        record("adabn_adversarial", V_bn, bn["real"], stats)
    if "adabn_adversarial_self_training" in methods:
        stats = self_train("adabn_adversarial_self_training", "adabn_adversarial", S_bn, T_bn, bn["real"], adabn=True)
        record("adabn_adversarial_self_training", V_bn, bn["real"], stats)
    if "oracle" in methods:
        record("oracle", V, stats=train("oracle", T))
    summary = {
        "data": {"source": f"{sim_frames} simulator frames (seed {seed + 1}) with labels",
                 "target_unlabelled": f"{real_train.source}: {len(real_train)} frames, labels unused",
                 "evaluation": f"{val.source}: {len(val)} frames at 480x360, 11 classes, unlabelled ignored",
                 "oracle": f"{real_train.source}: {len(real_train)} frames with labels"},
        "recipe": {"encoder": "embedded:efficientnet_lite0 (frozen, ImageNet)", "input_size": list(size),
                   "self_training_rounds": rounds,
                   "decoder": asdict(cfg), "fda_beta": fda_beta, "class_weights": weights.tolist()},
        "results": {k: {"miou": v["miou"], "per_class_iou": v["per_class_iou"], "pixel_accuracy": v["pixel_accuracy"],
                        "train": v["train"]} for k, v in results.items()},
        "train_seconds": timings, "total_seconds": round(time.perf_counter() - t0, 1),
        "command": (f"python -m suite.driving.sim2real --camvid CAMVID_ROOT --sim-frames {sim_frames} --epochs {epochs} "
                    f"--fda-beta {fda_beta} --rounds {rounds} " + (f"--adapted {adapted} " if adapted else "")
                    + f"--methods {','.join(methods)} "
                    + (f"--real-limit {real_limit} " if real_limit else "")
                    + (f"--save-solutions {save_solutions}" if save_solutions is not None else "")).strip(),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    if save_solutions is not None:
        save_shipped(model, bn.get("real"), decoders, summary, save_solutions, adapted)
    return summary


def gap_closure(results: dict, method: str) -> float | None:
    so, orc = results["source_only"]["miou"], results.get("oracle", {}).get("miou")
    if orc is None or orc <= so:
        return None
    return (results[method]["miou"] - so) / (orc - so)


def table(summary: dict) -> str:
    """The results as a markdown table (mIoU in %, gap closure vs source-only and oracle)."""
    res = summary["results"]
    names = list(CAMVID_CLASSES)
    with_init = any("init" in r for r in res.values())  # merged tables say where each decoder started
    head = "| method | mIoU | gain | gap closed | " + " | ".join(names) + (" | decoder started from |" if with_init else " |")
    sep = "|---" * (4 + len(names) + with_init) + "|"
    rows = [head, sep]
    for name, r in res.items():
        gain = 100 * (r["miou"] - res["source_only"]["miou"]) if "source_only" in res else float("nan")
        gc = gap_closure(res, name) if "source_only" in res else None
        cells = [f"{100 * r['per_class_iou'][c]:.1f}" if r["per_class_iou"].get(c) is not None else "-" for c in names]
        rows.append(f"| {name} | **{100 * r['miou']:.1f}** | {gain:+.1f} | "
                    f"{'-' if gc is None or name == 'source_only' or name.startswith('oracle') else f'{100 * gc:.0f}%'} | "
                    + " | ".join(cells) + (f" | {r.get('init', '')} |" if with_init else " |"))
    return "\n".join(rows)


def save_shipped(model, real_encoder, decoders: dict, summary: dict, root: Path,
                 adapted: str | None = None) -> None:
    """Write the source-only Solution and, when ``adapted`` names a method (or ``best``), that method's as
    ``sim2real_adapted`` (decoder + encoder statistics that differ)."""
    from ..core import Solution

    res = summary["results"]
    if adapted == "best":  # the best adaptation on CamVid val, which is also the table's evaluation set
        adapted = max((m for m in res if m not in ("source_only", "oracle")), key=lambda m: res[m]["miou"],
                      default=None)
        summary["shipped_choice"] = f"{adapted}: the best adapted mIoU on CamVid val (selected on the evaluation set)"
    elif adapted is not None and adapted not in res:
        raise SystemExit(f"--adapted {adapted}: that method was not run (methods: {', '.join(res)})")
    plan = [("sim2real_source_only", "source_only", model)]
    if adapted:
        plan.append(("sim2real_adapted", adapted, real_encoder if adapted.startswith("adabn") else model))
    for folder, method, m in plan:
        m.decoder.load_state_dict(decoders[method])
        metrics = {"data": summary["data"]["evaluation"], "miou": res[method]["miou"],
                   "per_class_iou": res[method]["per_class_iou"], "pixel_accuracy": res[method]["pixel_accuracy"],
                   "source_only_miou": res["source_only"]["miou"], "oracle_miou": res.get("oracle", {}).get("miou")}
        sol = Solution(m, list(CAMVID_CLASSES), metrics=metrics, name=folder,
                       recipe={"method": method, **summary["recipe"], "data": summary["data"]},
                       description=f"Street-scene segmentation (CamVid 11 classes) trained on simulator frames; {method}.")
        sol.card = model_card(folder, method, summary)
        sol.save(root / folder)


def model_card(name: str, method: str, summary: dict) -> str:
    r = summary["results"][method]
    return "\n".join([
        f"# {name}", "",
        "Semantic segmentation of forward-camera street scenes into the CamVid 11 classes (sky, building, pole, "
        "road, pavement, tree, sign, fence, car, pedestrian, bicyclist), trained only on frames of the suite's "
        f"built-in driving simulator ({'no adaptation' if method == 'source_only' else 'adapted to real frames: ' + method}).",
        "", "## Model",
        "- encoder: `embedded:efficientnet_lite0` (ImageNet, frozen; "
        + ("BatchNorm statistics re-estimated on unlabelled CamVid train frames, stored here)" if method.startswith("adabn")
           else "unchanged, not stored)"),
        "- decoder: light FPN (1x1 laterals, 3x3 fusion at stride 8, 1x1 classifier at stride 4), 64 channels",
        f"- input: RGB resized to {summary['recipe']['input_size'][1]}x{summary['recipe']['input_size'][0]}",
        "", "## Data",
        f"- labelled source: {summary['data']['source']} (generated, no license restriction)",
        f"- unlabelled target: {summary['data']['target_unlabelled']} (CamVid, CC BY-NC 4.0; not shipped)",
        f"- evaluation: {summary['data']['evaluation']}",
        "", "## Metrics (CamVid val, 101 frames; a single run, no confidence interval)",
        f"- mIoU: **{100 * r['miou']:.1f}** (source-only {100 * summary['results']['source_only']['miou']:.1f}"
        + (f", oracle trained on CamVid train labels {100 * summary['results']['oracle']['miou']:.1f})"
           if "oracle" in summary["results"] else ")"),
        "", "| class | IoU |", "|---|---|",
        *[f"| {c} | {100 * v:.1f} |" if v is not None else f"| {c} | - |" for c, v in r["per_class_iou"].items()],
        *(["", f"Shipped method: {summary['shipped_choice']}."] if summary.get("shipped_choice") and
          method != "source_only" else []),
        "", "Full table of methods:", "", table(summary), "",
        "## Reproduce", "```bash",
        summary.get("command", "python -m suite.driving.sim2real --camvid CAMVID_ROOT --save-solutions "
                               "suite/driving/solutions"), "```",
        "", "## Limits",
        "Research and demonstration use only: not for driving or any safety-critical decision. Trained at low "
        "resolution on a CPU budget; thin and rare classes (poles, signs, bicyclists) are weak. CamVid frames come "
        "from Cambridge, UK (daylight): other cities, night and weather are untested.", ""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--camvid", type=Path, required=True, help="CamVid root (val/, valannot/, train*/, trainannot*/)")
    p.add_argument("--out", type=Path, default=Path("runs/sim2real"))
    p.add_argument("--sim-frames", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--size", type=int, nargs=2, default=(180, 240), metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--fda-beta", type=float, default=0.05)
    p.add_argument("--cache", type=Path, default=None, help="feature cache folder (default OUT/cache)")
    p.add_argument("--save-solutions", type=Path, default=None, help="write the two Solutions under this folder")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--real-limit", type=int, default=None, help="use only the first N real frames (quick runs)")
    p.add_argument("--rounds", type=int, default=1, help="self-training rounds")
    p.add_argument("--adapted", default=None,
                   help="also write this method as sim2real_adapted ('best': the best adapted mIoU on CamVid val), "
                        "replacing the shipped whole-network model")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    summary = run(a.camvid, a.out, a.sim_frames, a.epochs, tuple(a.size), a.seed,
                  tuple(m for m in a.methods.split(",") if m), a.fda_beta, a.cache, a.save_solutions, a.real_limit,
                  a.rounds, a.adapted)
    text = table(summary)
    (a.out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
