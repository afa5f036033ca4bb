"""``suite embed`` and ``suite explore``: pretrained embeddings of unlabelled data, and what is in it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from suite.cli import command


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="a folder of images (flat, or one sub-folder per class), a .zip "
                   "of one, a .txt of one text per line, a text or image-path CSV/JSON, or a MedMNIST .npz")
    p.add_argument("--label-sep", help="a .txt line ends with SEP + label (e.g. @ for Financial PhraseBank)")
    p.add_argument("--split", action="append", help="split(s) of a .npz to use (default: all)")
    p.add_argument("--text-col", help="column holding the text (or image path) in a CSV/JSON")
    p.add_argument("--max-items", type=int, help="use a random subset of this many items (seeded)")
    p.add_argument("--cache-dir", help="feature cache folder (default: $SUITE_CACHE_DIR or ~/.cache/suite/features); "
                   "pass the same folder to training (TrainConfig.cache_dir / --cache-dir) to reuse the features")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, help="embed images at this square size instead of the backbone's")
    p.add_argument("--slices", type=int, default=8, help="axial slices per volume for 2D backbones (default 8)")
    p.add_argument("--seed", type=int, default=0)


def _load(args: argparse.Namespace, out: Path):
    from suite.core.explore import load_items, safe_extract_zip, subsample

    source = Path(args.data)
    if source.suffix.lower() == ".zip" and source.is_file():
        source = safe_extract_zip(source, out / "data")
    data = subsample(load_items(source, label_sep=args.label_sep, split=args.split, text_col=args.text_col),
                     args.max_items, args.seed)
    for warning in data.warnings:
        print(f"warning: {warning}")
    return data


def _embed(args: argparse.Namespace, data, backbone: str):
    from suite.core.explore import default_cache_dir, embed

    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    emb = embed(data, backbone, cache_dir=cache, batch_size=args.batch_size, image_size=args.image_size,
                slices=args.slices, progress=True)
    print(f"{len(data)} {data.modality} items from {data.source}: {emb.vectors.shape[1]}-d embeddings with "
          f"{emb.backbone} in {emb.seconds:.1f} s (cache: {cache})")
    return emb


@command("embed", "embed images, volumes or texts with a pretrained backbone (cached, reusable by training)")
def _embed_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--backbone", help="model spec (default: embedded:efficientnet_lite0 for images and volumes, "
                   "embedded:minilm_l6 for text)")
    p.add_argument("--out", default="embeddings", help="folder for embeddings.safetensors and items.csv")


@_embed_args.bind
def _embed_run(args: argparse.Namespace) -> int:
    from suite.core.explore import default_backbone, save_embeddings

    out = Path(args.out)
    data = _load(args, out)
    files = save_embeddings(_embed(args, data, args.backbone or default_backbone(data)), out)
    print("\n".join(f"{name}: {path}" for name, path in files.items()))
    return 0


@command("explore", "cluster, map, de-duplicate and rank unlabelled data, and list what to label first")
def _explore_args(p: argparse.ArgumentParser) -> None:
    _data_args(p)
    p.add_argument("--backbone", action="append", help="model spec; repeat to compare backbones on labelled data "
                   "(the first drives the map); default: the embedded backbone for the data")
    p.add_argument("--out", default="explore", help="output folder (default: explore)")
    p.add_argument("--k", type=int, help="number of k-means clusters (default: chosen by silhouette)")
    p.add_argument("--k-max", type=int, default=15, help="largest k tried when choosing k (default 15)")
    p.add_argument("--clusters", choices=["kmeans", "density"], default="kmeans",
                   help="clusters that colour the map and drive the label-first list (default kmeans)")
    p.add_argument("--map", choices=["auto", "umap", "tsne", "pca"], default="auto",
                   help="2D map method (auto: UMAP if installed, else t-SNE)")
    p.add_argument("--label-first", type=int, default=20, help="length of the label-first list (default 20)")
    p.add_argument("--duplicate-cosine", type=float, default=0.98,
                   help="embedding cosine similarity at which two items count as near duplicates (default 0.98)")


@_explore_args.bind
def _explore_run(args: argparse.Namespace) -> int:
    import time

    from suite.core.explore import default_backbone, explore

    start = time.perf_counter()
    out = Path(args.out)
    data = _load(args, out)
    specs = args.backbone or [default_backbone(data)]
    embeddings = [_embed(args, data, spec) for spec in specs]
    result = explore(embeddings[0], k=args.k, k_range=(2, args.k_max), clusters=args.clusters, map_method=args.map,
                     budget=args.label_first, min_cosine=args.duplicate_cosine, compare=embeddings[1:],
                     seed=args.seed)
    files = result.write(out)
    report = json.loads(files["report_json"].read_text())
    print(f"clusters: {report['clusters']['used']}, k = {result.k} ({result.k_how}); map: {result.map_method}")
    print(f"near-duplicate groups: {len(result.duplicates)}; outliers: {len(result.outliers)}; "
          f"label first: {len(result.picks)} items")
    for row in result.compared:
        if "ari" in row:
            knn = "n/a" if row["knn_accuracy"] is None else f"{row['knn_accuracy']:.3f}"
            print(f"{row['backbone']}: ARI {row['ari']:.3f} (k = classes: {row['ari_k_classes']:.3f}), "
                  f"k-NN accuracy {knn} (majority class {row['majority_baseline']:.3f})")
    print(f"total {time.perf_counter() - start:.1f} s")
    print("\n".join(f"{name}: {path}" for name, path in files.items()))
    return 0
