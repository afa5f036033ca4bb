"""The ``explore/`` output folder: report.json, report.md, items.csv, label_first.csv, embeddings,
and the map (``explore_views``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .explore import Exploration, _label_name, save_embeddings, write_csv

MAX_LISTED = 100  # duplicate groups and outliers listed in report.json (counts are complete)


def _sizes(clusters: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(clusters, return_counts=True)
    return {str(int(c)): int(n) for c, n in sorted(zip(values, counts), key=lambda vc: -vc[1])}


def _round(value, digits: int = 4):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, (list, tuple)):
        return [_round(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    return value


def build_report(x: Exploration) -> dict:
    """The JSON-ready report of an exploration: data, methods, clusters, map, near duplicates,
    outliers, label-first list, label agreement per backbone and timings."""
    data, names = x.embeddings.data, x.embeddings.names
    known = int((data.labels.reshape(len(data), -1)[:, 0] >= 0).sum())
    outliers = x.outliers
    return _round({
        "data": {"source": data.source, "n": len(data), "modality": data.modality, "labelled": known,
                 "classes": list(data.classes), "warnings": list(data.warnings)},
        "backbone": x.embeddings.backbone,
        "methods": x.methods,
        "clusters": {"used": x.cluster_source, "k": x.k, "k_chosen_by": x.k_how,
                     "silhouette_by_k": {str(k): s for k, s in x.k_scores.items()}, "sizes": _sizes(x.clusters),
                     "central_items": {c: [names[i] for i in x.central_items(int(c), 3)] for c in _sizes(x.clusters)}},
        "kmeans_sizes": _sizes(x.kmeans_clusters),
        "density": {"n_clusters": int(len(set(x.density.tolist()) - {-1})), "noise": int((x.density < 0).sum())},
        "map": x.map_method,
        "near_duplicates": {
            "n_groups": len(x.duplicates), "n_items": sum(len(g["members"]) for g in x.duplicates),
            "groups": [{**g, "items": [names[i] for i in g["members"]]} for g in x.duplicates[:MAX_LISTED]]},
        "outliers": {"fence": x.outlier_fence, "n": len(outliers),
                     "top": [{"index": int(i), "item": names[i], "score": float(x.outlier_score[i]),
                              "cluster": int(x.clusters[i])} for i in outliers[:MAX_LISTED]]},
        "label_first": label_first_rows(x),
        "agreement": x.agreement,
        "backbones": x.compared,
        "timings_seconds": x.timings,
    })


def label_first_rows(x: Exploration) -> list[dict]:
    """Rows of label_first.csv: rank, index, item, cluster, known label, why it was picked."""
    names = x.embeddings.names
    return [{"rank": r, "index": p["index"], "item": names[p["index"]], "cluster": p["cluster"],
             "label": _label_name(x.embeddings.data, p["index"]), "reason": p["reason"]}
            for r, p in enumerate(x.picks, 1)]


def short(text: str, width: int = 70) -> str:
    """``text`` on one line, at most ``width`` characters: long ones keep their start and end."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    head = (width - 3) * 2 // 3
    return text[:head] + "..." + text[len(text) - (width - 3 - head):]


def _cell(text: str, width: int = 70) -> str:
    return short(text, width).replace("|", "\\|")


def _fmt(value, pattern: str = "{:.3f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def backbone_table(rows: list[dict]) -> str:
    """The markdown table of label agreement per backbone."""
    lines = ["| backbone | n | k chosen | ARI (k chosen) | ARI (k = classes) | k-NN accuracy [95% CI] | fold std "
             "| majority class | embedding s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = r.get("knn_ci95") or [None, None]
        knn = "n/a" if r.get("knn_accuracy") is None else f"{r['knn_accuracy']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
        lines.append(f"| `{r['backbone']}` | {r['n']} | {r['k']} | {_fmt(r.get('ari'))} | "
                     f"{_fmt(r.get('ari_k_classes'))} | {knn} | {_fmt(r.get('knn_fold_std'))} | "
                     f"{_fmt(r.get('majority_baseline'))} | {r['embed_seconds']:.1f} |")
    return "\n".join(lines)


def report_markdown(report: dict) -> str:
    """report.md: what was found, how, and in what time."""
    d = report["data"]
    out = [f"# Exploration of {d['source']}", "",
           f"{d['n']} {d['modality']} items, {d['labelled']} labelled"
           + (f" ({len(d['classes'])} classes)" if d["classes"] else "") + f"; backbone `{report['backbone']}`.", "",
           "## How", ""]
    out += [f"- **{key}**: {text}" for key, text in report["methods"].items()]
    c = report["clusters"]
    out += ["", f"## Clusters ({c['used']}, k = {c['k']})", "", "| cluster | items | most typical items |",
            "|---|---|---|"]
    out += [f"| {k} | {n} | {'; '.join(_cell(t, 50) for t in c['central_items'][k])} |" for k, n in c["sizes"].items()]
    if c["silhouette_by_k"]:
        out += ["", "Silhouette by k: " + ", ".join(f"{k}: {s:.3f}" for k, s in c["silhouette_by_k"].items())]
    out += ["", f"HDBSCAN found {report['density']['n_clusters']} dense cluster(s) and "
                f"{report['density']['noise']} noise item(s).", "", f"Map: {report['map']}."]
    dup = report["near_duplicates"]
    out += ["", f"## Near duplicates: {dup['n_groups']} group(s), {dup['n_items']} items", ""]
    out += [f"- {len(g['items'])} items (min cosine {g['min_cosine']:.3f}, by {', '.join(g['found_by'])}): "
            + "; ".join(_cell(t, 40) for t in g["items"][:6]) for g in dup["groups"][:20]]
    o = report["outliers"]
    out += ["", f"## Outliers: {o['n']} above the fence {o['fence']:.4f}", ""]
    out += [f"- {_cell(t['item'])} (distance {t['score']:.4f}, cluster {t['cluster']})" for t in o["top"][:20]]
    out += ["", f"## Label these first ({len(report['label_first'])})", "", "| rank | item | cluster | label |",
            "|---|---|---|---|"]
    out += [f"| {r['rank']} | {_cell(r['item'])} | {r['cluster']} | {r['label']} |" for r in report["label_first"]]
    agreement = report["agreement"]
    out += ["", "## Agreement with the known labels", ""]
    if agreement.get("available"):
        out += [f"{agreement['n_labelled']} labelled items in {agreement['n_classes']} classes.", "",
                backbone_table(report["backbones"])]
        if "ari_density" in agreement:
            out += ["", f"ARI of the HDBSCAN clusters (noise as one cluster): {agreement['ari_density']:.3f}."]
    else:
        out.append(f"Not measured: {agreement['why']}.")
    out += ["", "## Time", "", " | ".join(f"{k} {v:.1f} s" for k, v in report["timings_seconds"].items())]
    return "\n".join(out) + "\n"


def write_outputs(x: Exploration, out_dir) -> dict[str, Path]:
    """Write the whole ``explore/`` folder and return its files by name."""
    import time

    from .explore_views import map_html, map_png

    out = Path(out_dir)
    start = time.perf_counter()
    duplicate_of = {i: n for n, g in enumerate(x.duplicates) for i in g["members"]}
    rank = {p["index"]: r for r, p in enumerate(x.picks, 1)}
    columns = {"cluster": x.clusters.tolist(), "kmeans_cluster": x.kmeans_clusters.tolist(),
               "density_cluster": x.density.tolist(), "x": np.round(x.coords[:, 0], 4).tolist(),
               "y": np.round(x.coords[:, 1], 4).tolist(), "outlier_score": np.round(x.outlier_score, 5).tolist(),
               "outlier": (x.outlier_score > x.outlier_fence).astype(int).tolist(),
               "duplicate_group": [duplicate_of.get(i, "") for i in range(len(x.clusters))],
               "label_first_rank": [rank.get(i, "") for i in range(len(x.clusters))]}
    files = save_embeddings(x.embeddings, out, columns)
    files["label_first"] = out / "label_first.csv"
    write_csv(files["label_first"], label_first_rows(x))
    files["map_html"] = out / "map.html"
    files["map_html"].write_text(map_html(x), encoding="utf-8")
    files["map_png"] = out / "map.png"
    map_png(x, files["map_png"])
    x.timings["write"] = time.perf_counter() - start
    report = build_report(x)
    files["report_json"] = out / "report.json"
    files["report_json"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    files["report_md"] = out / "report.md"
    files["report_md"].write_text(report_markdown(report), encoding="utf-8")
    return files
