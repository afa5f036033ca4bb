"""Unsupervised transfer: embed unlabelled data with a pretrained backbone, then cluster it, map it
in 2D, find near duplicates and outliers, and pick the items to label first.

Each step states its criterion in the report (``Exploration.methods``):
- embeddings are the backbone's pooled features, L2-normalised, so distances are cosine distances;
  volumes with a 2D backbone are the mean of the features of ``slices`` evenly spaced axial slices;
- clustering runs on the first 50 principal components of the normalised embeddings: k-means
  (k-means++, 4 restarts) with k chosen by the highest mean silhouette over a range of k, fitted
  without the outliers (then joined to their nearest centre), or, as the density option, HDBSCAN;
- the 2D map is UMAP when ``umap-learn`` is installed, else t-SNE, else (fewer than 10 items) PCA;
- near duplicates: identical or perceptually equal pixels (``find_leakage``'s hashing) or an
  embedding cosine similarity of at least ``DUPLICATE_COSINE``;
- outliers: cosine distance to the 5th nearest neighbour above the Tukey fence Q3 + 1.5 IQR;
- label first: every cluster gets a pick, the rest in proportion to cluster size; inside a cluster
  k-means with that many centres, and the item nearest each centre; ordered round-robin across
  clusters, outliers and repeated near duplicates skipped;
- label agreement (when labels exist): adjusted Rand index of the clusters, and k-NN accuracy
  (k=5, cosine, stratified 5-fold cross-validation) of the embeddings.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import LabeledData
from .errors import SuiteError
from .explore_data import item_names, load_items, safe_extract_zip, subsample, unlabelled, with_label_names

__all__ = [
    "Embeddings", "Exploration", "choose_k", "compare_backbone", "data_in_chans", "default_backbone",
    "default_cache_dir", "density_clusters", "embed", "embedding_model", "explore", "item_names", "kmeans",
    "knn_accuracy", "label_agreement", "label_first", "load_items", "map_2d", "near_duplicates", "outlier_scores",
    "reduce", "safe_extract_zip", "save_embeddings", "subsample", "unlabelled", "volume_slices", "with_label_names",
]

DUPLICATE_COSINE = 0.98
OUTLIER_NEIGHBOUR = 5
KNN_NEIGHBOURS = 5
KNN_FOLDS = 5
K_RANGE = (2, 15)
DEFAULT_SLICES = 8


def default_cache_dir() -> Path:
    """Where embeddings are cached between runs: ``$SUITE_CACHE_DIR`` or ``~/.cache/suite/features``."""
    return Path(os.environ.get("SUITE_CACHE_DIR") or Path.home() / ".cache" / "suite" / "features")


def default_backbone(data: LabeledData) -> str:
    """The embedded backbone for the data's modality (works offline)."""
    return "embedded:minilm_l6" if data.modality == "text" else "embedded:efficientnet_lite0"


# ----------------------------------------------------------------------------- embedding


@dataclass
class Embeddings:
    """Pooled backbone features of every item: ``vectors`` ``(N, D)`` float32, with the data."""

    vectors: np.ndarray
    data: LabeledData
    backbone: str
    seconds: float
    how: str

    @property
    def names(self) -> list[str]:
        return item_names(self.data)

    def unit(self) -> np.ndarray:
        """L2-normalised vectors ``(N, D)``: Euclidean distances on them order like cosine distances."""
        return self.vectors / (np.linalg.norm(self.vectors, axis=1, keepdims=True) + 1e-12)


def volume_slices(data: LabeledData, n_slices: int = DEFAULT_SLICES) -> LabeledData:
    """``n_slices`` evenly spaced axial slices of every volume ``(D, H, W[, C])`` as images,
    volume by volume (item ``i * n_slices + s``)."""
    items = []
    for i in range(len(data)):
        volume = np.asarray(data.items[i])
        picks = np.unique(np.linspace(0, volume.shape[0] - 1, n_slices).round().astype(int))
        picks = np.resize(picks, n_slices)  # thin volumes repeat slices, so every volume has n_slices
        items += [np.ascontiguousarray(volume[s]) for s in picks]
    return LabeledData(items=items, labels=np.repeat(data.labels, n_slices, axis=0), classes=data.classes,
                       modality="image", source=f"{data.source} ({n_slices} axial slices per volume)")


def data_in_chans(data: LabeledData) -> int | None:
    """Input channels the fine-tuning engine picks for ``data``: 1 for grayscale images or volumes,
    3 for colour, None for text."""
    from .finetune import infer_in_chans

    if data.modality == "text":
        return None
    return infer_in_chans(volume_slices(data.subset(range(min(len(data), 8))), 1) if data.modality == "volume"
                          else data)


def embedding_model(backbone: str, data: LabeledData, image_size: int | None = None):
    """The feature extractor the fine-tuning engine would build for ``data`` (same channels, so the
    same feature-cache key)."""
    import dataclasses

    from .hub import create_model

    model = create_model(backbone, num_classes=0, in_chans=data_in_chans(data))
    if image_size and model.preprocess.modality == "image":
        model.preprocess = dataclasses.replace(
            model.preprocess, input_size=(model.preprocess.in_chans, image_size, image_size))
    return model


def embed(data: LabeledData, backbone="embedded:efficientnet_lite0", cache_dir=None, batch_size: int = 64,
          image_size: int | None = None, slices: int = DEFAULT_SLICES, progress: bool = False) -> Embeddings:
    """Embeddings of ``data`` with ``backbone`` (a spec or a built model), cached by
    ``suite.core.features.extract_features`` (memory, and ``cache_dir`` on disk)."""
    from .features import extract_features

    start = time.perf_counter()
    model = embedding_model(backbone, data, image_size) if isinstance(backbone, str) else backbone
    wants = model.preprocess.modality
    if wants == "text" and data.modality != "text" or wants != "text" and data.modality == "text":
        raise SuiteError(f"{model.spec}: takes {wants} input but {data.source} holds {data.modality} items; "
                         f"choose a {'text' if data.modality == 'text' else 'vision'} backbone "
                         f"(e.g. {default_backbone(data)})")
    inputs, how = data, f"{model.spec}, pooled features"
    if data.modality == "volume" and wants == "image":
        inputs = volume_slices(data, slices)
        how = f"{model.spec}, mean of the pooled features of {slices} evenly spaced axial slices"
    vectors = extract_features(model, inputs, batch_size, cache_dir, progress=progress).numpy()
    if inputs is not data:
        vectors = vectors.reshape(len(data), slices, -1).mean(axis=1)
    return Embeddings(vectors.astype(np.float32), data, model.spec, time.perf_counter() - start, how)


def save_embeddings(emb: Embeddings, out_dir, columns: dict[str, list] | None = None) -> dict[str, Path]:
    """``embeddings.safetensors`` (tensor ``embeddings`` ``(N, D)``) and ``items.csv`` (index, item,
    label and any extra ``columns``, one value per item) in ``out_dir``."""
    import torch

    from .weights import save_state_dict

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_state_dict({"embeddings": torch.from_numpy(emb.vectors)}, out / "embeddings.safetensors",
                    metadata={"backbone": emb.backbone, "how": emb.how, "source": emb.data.source,
                              "n": str(len(emb.vectors))})
    columns = columns or {}
    write_csv(out / "items.csv", [{"index": i, "item": name, "label": _label_name(emb.data, i),
                                   **{key: values[i] for key, values in columns.items()}}
                                  for i, name in enumerate(emb.names)])
    return {"embeddings": out / "embeddings.safetensors", "items": out / "items.csv"}


def write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["index"])
        writer.writeheader()
        writer.writerows(rows)


def _label_name(data: LabeledData, i: int) -> str:
    label = data.labels[i]
    if np.ndim(label) or label < 0:
        return ""
    return data.classes[int(label)]


# ----------------------------------------------------------------------------- analysis


def choose_k(points: np.ndarray, k_range: tuple[int, int] = K_RANGE, seed: int = 0) -> tuple[int, dict[int, float]]:
    """The k in ``k_range`` (inclusive) with the highest mean silhouette (Euclidean) of k-means on
    ``points`` ``(N, D)``; silhouettes use at most 2,000 sampled items. Returns k and all scores."""
    from sklearn.metrics import silhouette_score

    lo, hi = max(2, k_range[0]), min(k_range[1], len(points) - 1)
    if len(points) < 3 or hi < lo:
        raise SuiteError(f"choosing k needs at least 3 items and a k range inside 2..N-1; got {len(points)} "
                         f"item(s) and k range {k_range}")
    scores = {}
    for k in range(lo, hi + 1):
        labels = kmeans(points, k, seed)
        if len(np.unique(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(points, labels, sample_size=min(len(points), 2000), random_state=seed))
    if not scores:
        return 1, scores
    return max(scores, key=scores.get), scores


def kmeans(points: np.ndarray, k: int, seed: int = 0, fit_on: np.ndarray | None = None) -> np.ndarray:
    """Cluster indices ``(N,)`` of k-means (k-means++, 4 restarts) on ``points`` ``(N, D)``, fitted
    on the rows selected by ``fit_on`` (default all) and assigning every row to its nearest centre."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    fit = points if fit_on is None else points[fit_on]
    with warnings.catch_warnings():  # fewer distinct points than k (exact duplicates) is not an error here
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters=max(1, min(k, len(fit))), n_init=4, random_state=seed).fit(fit)
    return model.predict(points).astype(np.int64)


def reduce(unit: np.ndarray, dims: int = 50, seed: int = 0) -> np.ndarray:
    """The first ``dims`` principal components ``(N, min(dims, N, D))``."""
    from sklearn.decomposition import PCA

    dims = min(dims, unit.shape[0], unit.shape[1])
    return PCA(n_components=dims, random_state=seed).fit_transform(unit) if dims < unit.shape[1] else unit


def density_clusters(points: np.ndarray, min_cluster_size: int | None = None) -> np.ndarray:
    """HDBSCAN cluster indices ``(N,)`` (``-1`` = noise) of ``points`` ``(N, D)``, with 5 neighbours
    for the core distance; ``min_cluster_size`` defaults to 2% of the items, at least 5."""
    from sklearn.cluster import HDBSCAN

    size = min_cluster_size or max(5, round(0.02 * len(points)))
    if len(points) < size:
        return np.full(len(points), -1, dtype=np.int64)
    return HDBSCAN(min_cluster_size=size, min_samples=min(5, size), copy=True).fit_predict(points).astype(np.int64)


def map_2d(unit: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """2D coordinates ``(N, 2)`` and the method used: UMAP when installed, else t-SNE, else PCA."""
    import importlib.util

    if method == "auto":
        method = "pca" if len(unit) < 10 else "umap" if importlib.util.find_spec("umap") else "tsne"
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise SuiteError("map 'umap' needs umap-learn (pip install umap-learn); or use tsne or pca") from None
        coords = umap.UMAP(n_neighbors=min(15, len(unit) - 1), metric="cosine", random_state=seed).fit_transform(unit)
        return np.asarray(coords, dtype=np.float32), "UMAP (cosine, 15 neighbours)"
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(unit) - 1) / 3)))
        coords = TSNE(perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduce(unit, seed=seed))
        return coords.astype(np.float32), f"t-SNE (perplexity {perplexity:g}, on 50 principal components)"
    if method == "pca":
        from sklearn.decomposition import PCA

        coords = PCA(n_components=2, random_state=seed).fit_transform(unit) if len(unit) > 1 else np.zeros((1, 2))
        return np.asarray(coords, dtype=np.float32), "PCA (first two components)"
    raise SuiteError(f"unknown map method {method!r}; choose auto, umap, tsne or pca")


def _similar_pairs(unit: np.ndarray, min_cosine: float, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """All ``(a, b)`` with ``a < b`` and cosine similarity >= ``min_cosine``."""
    found_a, found_b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for start in range(0, len(unit), block):
        sims = unit[start:start + block] @ unit[start:].T
        a, b = np.nonzero(np.triu(sims >= min_cosine, k=1))
        found_a.append(a + start)
        found_b.append(b + start)
    return np.concatenate(found_a), np.concatenate(found_b)


def _union_groups(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components with two or more members, largest first."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))


def near_duplicates(unit: np.ndarray, data: LabeledData, min_cosine: float = DUPLICATE_COSINE,
                    pixels: bool = True) -> list[dict]:
    """Groups of near-identical items: embeddings with cosine >= ``min_cosine``, or (``pixels``)
    identical or perceptually equal pixels / equal normalised texts per ``find_leakage``.
    Each group: ``members`` (indices), ``min_cosine`` among them and ``found_by``."""
    from .data import find_leakage

    a, b = _similar_pairs(unit, min_cosine)
    pairs = {(int(x), int(y)): "embedding" for x, y in zip(a, b)}
    if pixels and len(data) > 1:
        kind = "text" if data.modality == "text" else "pixels"
        report = find_leakage(data, {"train": np.arange(len(data))}, max_pairs=len(data) ** 2)
        for pair in report["exact"] + report["near"]:
            key = (min(pair["a"], pair["b"]), max(pair["a"], pair["b"]))
            pairs[key] = f"{pairs[key]}+{kind}" if key in pairs else kind
    groups = []
    for members in _union_groups(len(unit), list(pairs)):
        sims = unit[members] @ unit[members].T
        found = sorted({how for (x, y), how in pairs.items() if x in members for how in how.split("+")})
        groups.append({"members": members, "min_cosine": round(float(sims.min()), 4), "found_by": found})
    return groups


def outlier_scores(unit: np.ndarray, k: int = OUTLIER_NEIGHBOUR) -> tuple[np.ndarray, float]:
    """Cosine distance of every item to its ``k``-th nearest neighbour ``(N,)``, and the Tukey fence
    Q3 + 1.5 IQR above which an item counts as an outlier."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(unit) - 1)
    if k < 1:
        return np.zeros(len(unit)), float("inf")
    distances, _ = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(unit).kneighbors(unit)
    scores = distances[:, k]
    q1, q3 = np.percentile(scores, [25, 75])
    return scores.astype(np.float64), float(q3 + 1.5 * (q3 - q1))


def _allocate(sizes: dict[int, int], budget: int) -> dict[int, int]:
    """Picks per cluster: one each (largest clusters first when the budget is short), the rest in
    proportion to size (largest remainder), never more than a cluster holds."""
    order = sorted(sizes, key=lambda c: -sizes[c])
    picks = {c: 0 for c in order}
    for c in order[:budget]:
        picks[c] = 1
    left = budget - sum(picks.values())
    while left > 0:
        room = {c: sizes[c] - picks[c] for c in order if sizes[c] > picks[c]}
        if not room:
            break
        total = sum(sizes[c] for c in room)
        quota = {c: left * sizes[c] / total for c in room}
        extra = {c: min(int(quota[c]), room[c]) for c in room}
        if not any(extra.values()):
            extra[max(room, key=lambda c: (quota[c], -c))] = 1
        for c, n in extra.items():
            picks[c] += n
        left = budget - sum(picks.values())
    return picks


def label_first(unit: np.ndarray, clusters: np.ndarray, budget: int = 20, skip=(), seed: int = 0) -> list[dict]:
    """Items to label first, in order: each ``{"index", "cluster", "reason"}``.

    Every cluster gets a pick, the rest in proportion to cluster size; inside a cluster, k-means with
    that many centres and the item nearest each centre (representative); picks alternate across
    clusters (diverse). Items in ``skip`` (outliers, repeated duplicates) are avoided when possible;
    noise (cluster -1) is used only when there is nothing else.
    """
    usable = clusters >= 0 if (clusters >= 0).any() else np.ones(len(clusters), bool)
    sizes = {int(c): int(n) for c, n in zip(*np.unique(clusters[usable], return_counts=True))}
    skip = set(int(i) for i in skip)
    per_cluster: dict[int, list[dict]] = {}
    for c, n_picks in _allocate(sizes, min(budget, int(usable.sum()))).items():
        if n_picks == 0:
            continue
        members = np.flatnonzero((clusters == c) & usable)
        candidates = np.array([i for i in members if i not in skip], dtype=np.int64)
        if len(candidates) < n_picks:
            candidates = members
        centres = kmeans(unit[candidates], n_picks, seed) if n_picks > 1 else np.zeros(len(candidates), np.int64)
        picks = []
        for sub in sorted(np.unique(centres), key=lambda s: -(centres == s).sum()):
            inside = candidates[centres == sub]
            centre = unit[inside].mean(axis=0)
            best = int(inside[np.argmax(unit[inside] @ centre)])
            picks.append({"index": best, "cluster": c,
                          "reason": f"most central of {len(inside)} similar item(s) in cluster {c} "
                                    f"({sizes[c]} items)"})
        per_cluster[c] = picks
    ordered = []
    for r in range(max((len(p) for p in per_cluster.values()), default=0)):
        ordered += [p[r] for c, p in sorted(per_cluster.items(), key=lambda kv: -sizes[kv[0]]) if r < len(p)]
    return ordered


def _wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95% interval of a proportion."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def knn_accuracy(unit: np.ndarray, labels: np.ndarray, k: int = KNN_NEIGHBOURS, folds: int = KNN_FOLDS,
                 seed: int = 0) -> dict | None:
    """Stratified-k-fold accuracy of a k-NN classifier (cosine) on ``unit`` ``(N, D)`` with class
    indices ``labels`` ``(N,)``; None when a class has fewer than two items."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    counts = np.bincount(labels)
    folds = min(folds, int(counts[counts > 0].min()))
    if folds < 2:
        return None
    predicted = np.empty_like(labels)
    fold_acc = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(unit, labels):
        clf = KNeighborsClassifier(n_neighbors=min(k, len(train)), metric="cosine").fit(unit[train], labels[train])
        predicted[test] = clf.predict(unit[test])
        fold_acc.append(float((predicted[test] == labels[test]).mean()))
    correct = int((predicted == labels).sum())
    return {"accuracy": correct / len(labels), "ci95": _wilson(correct, len(labels)),
            "fold_std": float(np.std(fold_acc)), "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
            "k": k, "folds": folds}


def label_agreement(unit: np.ndarray, data: LabeledData, clusters: np.ndarray, density: np.ndarray | None = None,
                    seed: int = 0) -> dict:
    """How well the embeddings already separate the known labels (labelled items only): ARI of the
    clusters, ARI of k-means with k = number of classes, k-NN accuracy, majority-class baseline."""
    from sklearn.metrics import adjusted_rand_score

    if data.labels.ndim != 1:
        return {"available": False, "why": "multilabel labels: agreement is measured for single labels only"}
    known = data.labels >= 0
    y = data.labels[known]
    n_classes = len(np.unique(y))
    if known.sum() < 4 or n_classes < 2:
        return {"available": False, "why": f"{int(known.sum())} labelled item(s) in {n_classes} class(es); "
                                           "need at least 4 in 2 classes"}
    by_classes = kmeans(reduce(unit[known], seed=seed), n_classes, seed)
    result = {
        "available": True, "n_labelled": int(known.sum()), "n_classes": n_classes,
        "ari": float(adjusted_rand_score(y, clusters[known])),
        "ari_k_classes": float(adjusted_rand_score(y, by_classes)),
        "majority_baseline": float(np.bincount(y).max() / len(y)),
        "knn": knn_accuracy(unit[known], y, seed=seed),
    }
    if density is not None:
        result["ari_density"] = float(adjusted_rand_score(y, density[known]))
    return result


# ----------------------------------------------------------------------------- the whole exploration


@dataclass
class Exploration:
    """Everything ``explore`` found; ``write`` turns it into the ``explore/`` output folder."""

    embeddings: Embeddings
    clusters: np.ndarray
    kmeans_clusters: np.ndarray
    density: np.ndarray
    k: int
    k_scores: dict[int, float]
    k_how: str
    coords: np.ndarray
    map_method: str
    duplicates: list[dict]
    outlier_score: np.ndarray
    outlier_fence: float
    picks: list[dict]
    agreement: dict
    compared: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)
    cluster_source: str = "kmeans"

    @property
    def outliers(self) -> np.ndarray:
        """Indices of flagged outliers, most isolated first."""
        flagged = np.flatnonzero(self.outlier_score > self.outlier_fence)
        return flagged[np.argsort(-self.outlier_score[flagged])]

    def central_items(self, cluster: int, n: int = 6) -> list[int]:
        """The ``n`` items of ``cluster`` nearest its mean embedding (its most typical members)."""
        members = np.flatnonzero(self.clusters == cluster)
        unit = self.embeddings.unit()[members]
        return [int(i) for i in members[np.argsort(-(unit @ unit.mean(axis=0)))[:n]]]

    def report(self) -> dict:
        from .explore_report import build_report

        return build_report(self)

    def write(self, out_dir) -> dict[str, Path]:
        """Write embeddings, items.csv, report.json/.md, map.html/.png and label_first.csv."""
        from .explore_report import write_outputs

        return write_outputs(self, out_dir)


def one_openmp_thread(fn):
    """Run ``fn`` with scikit-learn's OpenMP steps on one thread. OpenMP threads shared with torch
    spin while waiting; on a small machine with other work running, two of them made t-SNE 2x
    (PhraseBank, 4,846 items) to 50x (38 items) slower than one."""
    import functools

    @functools.wraps(fn)
    def run(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="openmp"):
            return fn(*args, **kwargs)

    return run


@one_openmp_thread
def explore(emb: Embeddings, k: int | None = None, k_range: tuple[int, int] = K_RANGE, clusters: str = "kmeans",
            map_method: str = "auto", budget: int = 20, min_cosine: float = DUPLICATE_COSINE,
            compare: list[Embeddings] = (), seed: int = 0) -> Exploration:
    """Cluster, map, de-duplicate, rank outliers and pick items to label first from ``emb``;
    ``compare`` adds label-agreement rows for other backbones' embeddings of the same data."""
    if clusters not in ("kmeans", "density"):
        raise SuiteError(f"unknown clustering {clusters!r}; choose kmeans or density")
    if len(emb.vectors) < 3:
        raise SuiteError(f"{emb.data.source}: {len(emb.vectors)} item(s); exploring needs at least 3")
    timings = {"embed": emb.seconds}
    unit = emb.unit()
    tick = time.perf_counter()
    scores_out, fence = outlier_scores(unit)
    inliers = scores_out <= fence if (scores_out <= fence).sum() >= 3 else np.ones(len(unit), bool)
    space = reduce(unit, seed=seed)
    if k:
        chosen, scores, k_how = min(k, int(inliers.sum())), {}, "given"
    else:
        chosen, scores = choose_k(space[inliers], k_range, seed)
        k_how = (f"highest mean silhouette over k = {max(2, k_range[0])}..{min(k_range[1], int(inliers.sum()) - 1)}, "
                 f"outliers left out, then joined to their nearest centre")
    by_kmeans = kmeans(space, chosen, seed, fit_on=inliers)
    density = density_clusters(space)
    timings["cluster"] = time.perf_counter() - tick
    tick = time.perf_counter()
    coords, map_used = map_2d(unit, map_method, seed)
    timings["map"] = time.perf_counter() - tick
    tick = time.perf_counter()
    duplicates = near_duplicates(unit, emb.data, min_cosine)
    timings["duplicates"] = time.perf_counter() - tick
    tick = time.perf_counter()
    primary = density if clusters == "density" and (density >= 0).any() else by_kmeans
    repeated = {i for g in duplicates for i in g["members"][1:]}
    picks = label_first(unit, primary, budget, skip=set(np.flatnonzero(scores_out > fence)) | repeated, seed=seed)
    agreement = label_agreement(unit, emb.data, primary, density, seed)
    compared = [_compare_row(emb, agreement, chosen)]
    for other in compare:
        compared.append(compare_backbone(other, k_range, seed))
    timings["outliers_label_first_agreement"] = time.perf_counter() - tick
    methods = {
        "embedding": f"{emb.how}; L2-normalised (cosine geometry)",
        "clusters": ("HDBSCAN" if primary is density else "k-means") + " drives the map colours and label-first list",
        "kmeans": f"k-means (k-means++, 4 restarts) on the first 50 principal components of the normalised "
                  f"embeddings; k = {chosen} ({k_how}; Euclidean, same space)",
        "density": "HDBSCAN on the same 50 principal components, min cluster size = max(5, 2% of items), "
                   "5 neighbours for core distances; -1 = noise",
        "map": map_used,
        "near_duplicates": f"embedding cosine similarity >= {min_cosine}, or identical / perceptually equal "
                           "pixels (pHash within 4 bits and thumbnail correlation >= 0.95; texts: equal after "
                           "lower-casing and collapsing spaces), grouped transitively",
        "outliers": f"cosine distance to the {OUTLIER_NEIGHBOUR}th nearest neighbour above Q3 + 1.5 IQR "
                    f"({fence:.4f})",
        "label_first": "every cluster gets a pick, the rest in proportion to cluster size; inside a cluster "
                       "k-means with that many centres and the item nearest each centre; ordered round-robin "
                       "across clusters; outliers and repeated near duplicates skipped",
        "agreement": f"labelled items only: adjusted Rand index of the clusters with the labels; k-NN accuracy "
                     f"(k={KNN_NEIGHBOURS}, cosine, stratified {KNN_FOLDS}-fold cross-validation, Wilson 95% "
                     f"interval, std over folds)",
    }
    return Exploration(emb, primary, by_kmeans, density, chosen, scores, k_how, coords, map_used, duplicates,
                       scores_out, fence, picks, agreement, compared, timings, methods,
                       "density" if primary is density else "kmeans")


def _compare_row(emb: Embeddings, agreement: dict, k: int) -> dict:
    row = {"backbone": emb.backbone, "n": len(emb.vectors), "dim": int(emb.vectors.shape[1]), "k": k,
           "embed_seconds": round(emb.seconds, 2)}
    if agreement.get("available"):
        knn = agreement["knn"] or {}
        row.update(ari=agreement["ari"], ari_k_classes=agreement["ari_k_classes"],
                   knn_accuracy=knn.get("accuracy"), knn_ci95=knn.get("ci95"), knn_fold_std=knn.get("fold_std"),
                   majority_baseline=agreement["majority_baseline"])
    return row


@one_openmp_thread
def compare_backbone(emb: Embeddings, k_range: tuple[int, int] = K_RANGE, seed: int = 0) -> dict:
    """One row of the backbone comparison: k chosen, ARI and k-NN accuracy for ``emb``."""
    unit = emb.unit()
    space = reduce(unit, seed=seed)
    k, _ = choose_k(space, k_range, seed)
    return _compare_row(emb, label_agreement(unit, emb.data, kmeans(space, k, seed), seed=seed), k)
