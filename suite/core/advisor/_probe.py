"""How close a data set is to a backbone's source domain, and how fast the backbone runs here.

- linear probe: a ridge classifier on the pooled (cached) features, stratified k-fold, balanced
  accuracy; the same on raw inputs (32x32 pixels, or TF-IDF for text) is the no-transfer reference;
- k-NN accuracy (cosine, k = 5) of the same features (``suite.core.explore.knn_accuracy``);
- source gap: for BatchNorm networks, how far this data's activation statistics lie from the
  running statistics stored from the source data (symmetric KL per channel, median over channels,
  mean over layers: 0 = like the source); for text encoders, sub-word fragmentation (tokens per
  word) and the unknown-token rate;
- domain gap to unlabelled target data: the same probe telling the two domains apart;
- throughput: measured items/s of an inference forward pass and of training steps with the last
  groups or everything trainable, at the working input size.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from ..data import LabeledData

RAW_SIDE = 32  # raw-pixel reference resolution
THROUGHPUT_BATCH = 16
SHIFT_BATCH = 32
PARTIAL_GROUPS = 2


def has_source_domain(spec: str) -> bool:
    """False for backbones that start from random weights (no source domain to be close to)."""
    return not spec.startswith(("small:", "monai:")) or "weights=" in spec


def _folds(labels: np.ndarray, most: int = 5) -> int:
    counts = np.bincount(labels)
    return int(min(most, counts[counts > 0].min()))


def one_thread(fn):
    """Run ``fn`` with every native thread pool (BLAS, OpenMP) on one thread: on a small busy machine
    a 480x480 eigen-decomposition ran 50x slower with threads contending for the cores."""
    import functools

    @functools.wraps(fn)
    def run(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return run


@one_thread
def linear_probe(x, labels: np.ndarray, seed: int = 0) -> dict | None:
    """Stratified k-fold balanced accuracy of a linear classifier on ``x`` ``(N, D)`` (dense or
    sparse): a ridge classifier on standardised features, its regularisation chosen by efficient
    leave-one-out inside each training fold (closed form: seconds even on a busy CPU). None when a
    class has fewer than 2 items."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.metrics import accuracy_score, balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = _folds(labels)
    if folds < 2 or len(np.unique(labels)) < 2:
        return None
    sparse = hasattr(x, "tocsr")
    clf = make_pipeline(StandardScaler(with_mean=not sparse, with_std=not sparse),
                        RidgeClassifierCV(alphas=np.logspace(-2, 4, 13)))
    predicted = cross_val_predict(clf, x, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return {"balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
            "accuracy": float(accuracy_score(labels, predicted)), "folds": folds}


def domain_gap(f_s: np.ndarray, f_t: np.ndarray, seed: int = 0) -> dict:
    """How well :func:`linear_probe` tells two feature sets apart, and the proxy A-distance
    ``2 (1 - 2 err)`` (Ben-David et al.): 0 = indistinguishable, 2 = separable."""
    n = min(len(f_s), len(f_t))
    rng = np.random.default_rng(seed)
    x = np.concatenate([f_s[rng.permutation(len(f_s))[:n]], f_t[rng.permutation(len(f_t))[:n]]])
    y = np.repeat([0, 1], n)
    acc = linear_probe(x, y, seed)["balanced_accuracy"]
    return {"domain_accuracy": acc, "proxy_a_distance": float(2 * (1 - 2 * min(1 - acc, 0.5))), "per_domain": n}


def raw_inputs(data: LabeledData):
    """The no-transfer representation: 32x32 pixels in [0, 1] ``(N, 32*32*C)``, or TF-IDF for text."""
    if data.modality == "text":
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True).fit_transform(
            [str(t) for t in data.items]), "TF-IDF (word 1-2 grams)"
    if data.modality == "volume":
        from PIL import Image

        rows = [np.asarray(Image.fromarray(np.asarray(v, np.float32).mean(axis=0)).resize((RAW_SIDE, RAW_SIDE)))
                for v in data.items]
        return np.stack(rows).reshape(len(rows), -1), f"axial mean, {RAW_SIDE}x{RAW_SIDE}"
    rows = [np.asarray(data.load(i).convert("RGB").resize((RAW_SIDE, RAW_SIDE)), np.float32).ravel() / 255
            for i in range(len(data))]
    return np.stack(rows), f"raw pixels {RAW_SIDE}x{RAW_SIDE}"


@one_thread
def raw_probe(data: LabeledData, seed: int = 0) -> dict | None:
    """:func:`linear_probe` on raw inputs (pixels or TF-IDF)."""
    if data.labels.ndim != 1:
        return None
    x, how = raw_inputs(data)
    result = linear_probe(x, data.labels, seed)
    return None if result is None else {**result, "representation": how}


def _first_batch(model, data: LabeledData, n: int):
    from ..features import input_loader

    return next(iter(input_loader(model, data.subset(range(min(n, len(data)))), n)))[0]


@torch.no_grad()
def batchnorm_shift(model, x) -> float | None:
    """Mean over BatchNorm layers of the median over channels of the symmetric KL divergence between
    the batch's activation statistics and the layer's stored (source) running statistics."""
    layers = [m for m in model.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
              and m.running_mean is not None]
    if not layers:
        return None
    shifts: list[float] = []

    def hook(module, inputs, _):
        a = inputs[0].float()
        dims = [0] + list(range(2, a.ndim))
        mu_t, var_t = a.mean(dims), a.var(dims) + module.eps
        mu_s, var_s = module.running_mean.float(), module.running_var.float() + module.eps
        kl = 0.5 * (var_t / var_s + var_s / var_t) - 1 + 0.5 * (mu_t - mu_s) ** 2 * (1 / var_s + 1 / var_t)
        shifts.append(float(kl.median()))

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        model.eval()
        model.forward_features(x)
    finally:
        for h in handles:
            h.remove()
    return float(np.mean(shifts))


def text_fragmentation(model, data: LabeledData, n: int = 256) -> dict | None:
    """Tokens per whitespace word and unknown-token rate of the backbone's tokenizer on ``data``."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None or data.modality != "text":
        return None
    texts = [str(t) for t in data.items[:n]]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    tokens = sum(len(i) for i in ids)
    words = max(1, sum(len(t.split()) for t in texts))
    unk = getattr(tokenizer, "unk_token_id", None)
    unknown = sum(tok == unk for i in ids for tok in i) if unk is not None else 0
    return {"tokens_per_word": tokens / words, "unknown_rate": unknown / max(1, tokens)}


def _timed(fn, repeats: int = 2) -> float:
    """Seconds of the fastest of ``repeats`` calls (the first call also warms up)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def throughput(model, data: LabeledData, batch: int = THROUGHPUT_BATCH, partial_groups: int = PARTIAL_GROUPS) -> dict:
    """Measured items/s: inference forward (``features``), a training step with the last
    ``partial_groups`` groups + head trainable (``partial``), and with everything trainable (``full``)."""
    from ..features import to_device
    from ..freezing import freeze_to, set_frozen_bn_eval, unfreeze

    x = to_device(_first_batch(model, data, batch), next(model.parameters()).device)
    n = len(x["input_ids"]) if isinstance(x, dict) else len(x)

    def forward():
        with torch.no_grad():
            model.eval()
            model.forward_features(x)

    def train_step(trainable: int | None):
        def step():
            unfreeze(model)
            if trainable is not None:
                freeze_to(model, -(trainable + 1))
            model.train()
            set_frozen_bn_eval(model)
            model(x).float().logsumexp(-1).mean().backward()
            model.zero_grad(set_to_none=True)
        return step

    try:
        rates = {"features": n / _timed(forward), "partial": n / _timed(train_step(partial_groups)),
                 "full": n / _timed(train_step(None))}
    finally:
        unfreeze(model)
        model.zero_grad(set_to_none=True)
        model.eval()
    return {**{k: round(v, 2) for k, v in rates.items()}, "batch": n, "threads": torch.get_num_threads()}


def build_model(spec: str, data: LabeledData, image_size: int | None):
    """The classifier the engine would train on ``data`` (same channels and input size as training,
    so cached features are shared with it)."""
    from ..explore import data_in_chans
    from ..hub import create_model

    n_classes = max(2, len(data.classes))
    model = create_model(spec, num_classes=n_classes, in_chans=data_in_chans(data), task=data.task)
    if image_size and model.preprocess.modality == "image":
        model.preprocess = dataclasses.replace(model.preprocess,
                                               input_size=(model.preprocess.in_chans, image_size, image_size))
    return model


def measure_backbone(spec: str, data: LabeledData, image_size: int | None = None, cache_dir=None,
                     target: LabeledData | None = None, seed: int = 0, measure_speed: bool = True) -> dict:
    """Every closeness and cost measurement of ``spec`` on ``data`` (a small labelled subset)."""
    from ..explore import embed, knn_accuracy

    start = time.perf_counter()
    model = build_model(spec, data, image_size)
    emb = embed(data, model, cache_dir=cache_dir)
    unit = emb.unit()
    single = data.labels.ndim == 1
    result = {
        "backbone": spec, "source_domain": has_source_domain(spec), "feature_dim": int(emb.vectors.shape[1]),
        "input": (list(model.preprocess.input_size) if model.preprocess.modality == "image"
                  else f"{model.preprocess.max_length} tokens" if model.preprocess.modality == "text" else None),
        "probe": linear_probe(emb.vectors, data.labels, seed) if single else None,
        "knn": knn_accuracy(unit, data.labels, seed=seed) if single else None,
        "embed_seconds": round(emb.seconds, 2),
    }
    if data.modality == "image":
        x = _first_batch(model, data, SHIFT_BATCH)
        result["source_gap"] = {"batchnorm_shift": batchnorm_shift(model, x)}
    elif data.modality == "text":
        result["source_gap"] = text_fragmentation(model, data)
    if target is not None and len(target):
        f_t = embed(target, model, cache_dir=cache_dir).vectors
        result["target_gap"] = domain_gap(emb.vectors, f_t, seed=seed)
        result["target_gap"]["target_items"] = len(target)
    if measure_speed and data.modality in ("image", "text"):
        result["throughput"] = throughput(model, data)
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["duplicates"] = _duplicates(unit, data)
    return result


def _duplicates(unit: np.ndarray, data: LabeledData) -> dict:
    """Near-duplicate groups among the probed items (``suite.core.explore.near_duplicates``)."""
    from ..explore import near_duplicates

    groups = near_duplicates(unit, data)
    return {"groups": len(groups), "items": int(sum(len(g["members"]) for g in groups)),
            "conflicting_labels": int(sum(len({int(data.labels[i]) for i in g["members"]}) > 1 for g in groups
                                          if data.labels.ndim == 1))}
