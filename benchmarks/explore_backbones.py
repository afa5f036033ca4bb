"""Which pretrained backbone already separates the classes before any training, and how long an
exploration takes on this CPU: k chosen, adjusted Rand index and k-NN accuracy of the embeddings of
the real sets, next to a no-model baseline (raw pixels or TF-IDF).

    .venv/bin/python benchmarks/explore_backbones.py [--out DIR]   # DIR keeps each explore/ folder
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import DATA, PNEUMONIA, TOMATO, publish, require, set_threads  # first: sets OMP_WAIT_POLICY

import numpy as np

PHRASEBANK = DATA / "finance" / "financial_phrasebank" / "Sentences_50Agree.txt"
CAMVID = DATA / "driving" / "camvid"
ADRENAL = DATA / "medical" / "adrenalmnist3d.npz"


def camvid_frames():
    """CamVid val (480x360) and train_240x180 frames, labelled with their recording sequence (file
    name prefix): CamVid frames carry no image-level class, the sequence is what tells them apart."""
    from suite.core.explore import with_label_names

    files = sorted(require(CAMVID / "val").glob("*.png")) + sorted((CAMVID / "train_240x180").glob("*.png"))
    data = with_label_names([str(f) for f in files], [f.name.split("_")[0] for f in files], "image",
                        f"CamVid frames {CAMVID} (val + train_240x180; label = recording sequence)")
    return data


def data_sets() -> list[tuple[str, object, str]]:
    """``(name, LabeledData, note)`` for each real set."""
    from suite.core.explore import load_items

    return [
        ("PlantVillage tomato", load_items(require(TOMATO)), "10 disease classes, all 1,200 photos"),
        ("PneumoniaMNIST", load_items(require(PNEUMONIA), split=["val", "test"]),
         "official val + test splits (1,148 of 5,030 images), 28x28 grayscale, normal vs pneumonia"),
        ("PhraseBank 50Agree", load_items(require(PHRASEBANK), label_sep="@"),
         "all 4,846 sentences, negative / neutral / positive"),
        ("CamVid frames", camvid_frames(), "468 frames; label = recording sequence (0001TP, 0006R0, 0016E5)"),
        ("AdrenalMNIST3D", load_items(require(ADRENAL), split=["test"]),
         "official test split, 298 volumes 28^3, 8 axial slices each, mean-pooled"),
    ]


def baseline_vectors(data) -> tuple[np.ndarray, str]:
    """No-model features ``(N, D)``: TF-IDF (word 1-2 grams, 256 SVD components) for text, else raw
    pixels (images resized to 32x32, volumes flattened)."""
    if data.modality == "text":
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(data.items)
        return TruncatedSVD(256, random_state=0).fit_transform(tfidf), "TF-IDF + SVD-256 (no model)"
    if data.modality == "volume":
        return np.stack([np.asarray(v, np.float32).ravel() for v in data.items]), "raw voxels (no model)"
    from PIL import Image

    pixels = [np.asarray(data.load(i).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR), np.float32).ravel()
              for i in range(len(data))]
    return np.stack(pixels) - 127.5, "raw pixels 32x32 (no model)"


def measure(name: str, data, note: str, out: Path | None) -> list[dict]:
    """The backbone row (full exploration, timed) and the baseline row for one data set."""
    from suite.core.explore import Embeddings, compare_backbone, default_backbone, embed, explore
    from suite.core.features import clear_memory_cache

    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as tmp:
        clear_memory_cache()
        start = time.perf_counter()
        emb = embed(data, default_backbone(data), cache_dir=cache)  # cold: empty caches
        result = explore(emb)
        result.write(out / name.replace(" ", "_") if out else tmp)
        total = time.perf_counter() - start
        clear_memory_cache()
        cached = embed(data, default_backbone(data), cache_dir=cache).seconds
    row = {"data": name, "note": note, **result.compared[0], **label_first_coverage(data, result),
           "silhouette": result.k_scores.get(result.k),
           "total_seconds": round(total, 1), "cached_embed_seconds": round(cached, 2), "map": result.map_method,
           "timings": {k: round(v, 2) for k, v in result.timings.items()}}
    tick = time.perf_counter()
    vectors, how = baseline_vectors(data)
    seconds = time.perf_counter() - tick
    base = compare_backbone(Embeddings(vectors.astype(np.float32), data, how, seconds, how))
    return [row, {"data": name, "note": note, **base}]


def label_first_coverage(data, result, draws: int = 1000) -> dict:
    """Classes among the label-first picks, and the mean among as many random picks."""
    n = len(result.picks)
    rng = np.random.default_rng(0)
    random = np.mean([len(np.unique(data.labels[rng.choice(len(data), n, replace=False)])) for _ in range(draws)])
    return {"first_n": n, "first_classes": len({int(data.labels[p["index"]]) for p in result.picks}),
            "random_classes": round(float(random), 1)}


def cell(value, pattern="{:.3f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def table(rows: list[dict], machine: str) -> str:
    lines = [
        "# Explore: label agreement of pretrained embeddings, before any training", "",
        f"`.venv/bin/python benchmarks/explore_backbones.py` on {machine}.", "",
        "k chosen: highest mean silhouette of k-means (k = 2..15) on the first 50 principal components of the "
        "L2-normalised embeddings, outliers left out. ARI: adjusted Rand index of those clusters, and of k-means "
        "with k = number of classes, against the labels. k-NN: 5 neighbours, cosine, stratified 5-fold "
        "cross-validation, Wilson 95% interval, std over folds. Embedding s: cold (no cache); cached s: the same "
        "embeddings read back from the disk cache; total s: embedding, clustering, t-SNE map, near duplicates, "
        "outliers, label-first list and writing the explore/ folder (map.html with thumbnails, map.png). "
        "Classes in label-first 20: classes among the 20 suggested items (in brackets: mean over 1,000 random draws "
        "of 20). Baseline rows: k and agreement only.", "",
        "| data | items | representation | k chosen | ARI (k chosen) | ARI (k = classes) | k-NN accuracy [95% CI] "
        "| fold std | majority class | classes in label-first 20 (random 20) | embedding s | cached s | total s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = r.get("knn_ci95") or [None, None]
        knn = "n/a" if r.get("knn_accuracy") is None else f"{r['knn_accuracy']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
        coverage = f"{r['first_classes']} ({r['random_classes']})" if "first_classes" in r else ""
        lines.append(f"| {r['data']} | {r['n']} | `{r['backbone']}` | {r['k']} | {cell(r.get('ari'))} | "
                     f"{cell(r.get('ari_k_classes'))} | {knn} | {cell(r.get('knn_fold_std'))} | "
                     f"{cell(r.get('majority_baseline'))} | {coverage} | {r['embed_seconds']:.1f} | "
                     f"{cell(r.get('cached_embed_seconds'), '{:.2f}')} | {cell(r.get('total_seconds'), '{:.1f}')} |")
    lines += ["", "Data:"] + [f"- {r['data']}: {r['note']}." for r in rows[::2]]
    lines += ["", "Where the time goes (seconds, backbone rows):"]
    lines += [f"- {r['data']}: " + ", ".join(f"{k} {v}" for k, v in r["timings"].items()) + f"; map: {r['map']}"
              for r in rows[::2]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep each data set's explore/ folder under this folder")
    args = parser.parse_args()
    machine = set_threads(2)
    rows = []
    for name, data, note in data_sets():
        rows += measure(name, data, note, args.out)
        print(f"{name}: done", flush=True)
    publish("explore_backbones", table(rows, machine), {"machine": machine, "rows": rows})


if __name__ == "__main__":
    main()
