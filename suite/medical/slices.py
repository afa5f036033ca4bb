"""2.5D transfer for volumes: a 2D ImageNet backbone over slices, features averaged per volume.

When no 3D pretrained weights are at hand, the embedded EfficientNet-Lite0 still transfers: each
volume ``(D, H, W)`` gives a few slices per plane, the frozen backbone embeds every slice (cached by
``suite.core.features``), the slice features are averaged, and a linear head classifies the mean.
Because the head is linear, a volume's logit is the mean of its slices' logits, so per-slice
Grad-CAM (``suite.core.explain``) shows where each slice's evidence lies.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from suite.core.errors import SuiteError

BACKBONE = "embedded:efficientnet_lite0"
PLANE_AXIS = {"axial": 0, "coronal": 1, "sagittal": 2}  # axes of a (D, H, W) volume


@dataclass
class SliceSampling:
    """Which slices a volume gives: ``n_slices`` per plane, evenly spaced over the central ``span``
    of the volume, each resized to ``image_size`` for the 2D backbone."""

    n_slices: int = 5
    planes: tuple[str, ...] = ("axial", "coronal", "sagittal")
    image_size: int = 64
    span: tuple[float, float] = (0.2, 0.8)

    def __post_init__(self):
        self.planes = tuple(self.planes)
        self.span = tuple(float(s) for s in self.span)
        unknown = [p for p in self.planes if p not in PLANE_AXIS]
        if unknown or not self.planes:
            raise SuiteError(f"planes must be among {list(PLANE_AXIS)}, got {list(self.planes)}")
        if self.n_slices < 1 or not 0 <= self.span[0] <= self.span[1] <= 1:
            raise SuiteError("n_slices must be >= 1 and span a (start, end) within [0, 1]")

    @property
    def per_volume(self) -> int:
        return self.n_slices * len(self.planes)

    def describe(self) -> str:
        side = f"{self.image_size}x{self.image_size}"
        return (f"{self.n_slices} slices per plane ({', '.join(self.planes)}) evenly spaced over the central "
                f"{self.span[0]:.0%}-{self.span[1]:.0%} of the volume, each resized to {side}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "SliceSampling":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def as_uint8(volume: np.ndarray) -> np.ndarray:
    """8-bit voxels as stored (MedMNIST), or [0, 1] floats (prepared NIfTI) scaled to 0..255."""
    volume = np.asarray(volume)
    if volume.dtype == np.uint8:
        return volume
    return (np.clip(volume.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def slice_stack(volume: np.ndarray, sampling: SliceSampling) -> list[np.ndarray]:
    """The slices ``sampling`` picks from one volume ``(D, H, W)``, as uint8 images, plane by plane."""
    volume = as_uint8(volume)
    if volume.ndim == 4 and volume.shape[-1] == 1:
        volume = volume[..., 0]
    if volume.ndim != 3:
        raise SuiteError(f"expected a volume (D, H, W), got shape {volume.shape}")
    out = []
    for plane in sampling.planes:
        axis = PLANE_AXIS[plane]
        depth = volume.shape[axis]
        picks = np.linspace(sampling.span[0] * (depth - 1), sampling.span[1] * (depth - 1), sampling.n_slices)
        out += [np.ascontiguousarray(np.take(volume, int(round(k)), axis=axis)) for k in picks]
    return out


def slice_data(data, sampling: SliceSampling):
    """Volume LabeledData -> image LabeledData of their slices (item ``i * per_volume + s``)."""
    from suite.core.data import LabeledData

    items = [s for i in range(len(data)) for s in slice_stack(data.load(i), sampling)]
    return LabeledData(items=items, labels=np.repeat(data.labels, sampling.per_volume, axis=0),
                       classes=data.classes, modality="image",
                       source=f"{data.source} ({sampling.per_volume} slices per volume)")


def slice_model(num_classes: int, sampling: SliceSampling):
    """The frozen 2D backbone (one input channel) at the sampling's image size, with a fresh head."""
    from suite.core import create_model

    model = create_model(BACKBONE, num_classes=num_classes, in_chans=1,
                         task="binary" if num_classes == 2 else "multiclass")
    model.preprocess = dataclasses.replace(model.preprocess, input_size=(1, sampling.image_size, sampling.image_size))
    return model.eval()


def volume_features(model, data, sampling: SliceSampling, cache_dir=None, batch_size: int = 128) -> np.ndarray:
    """Mean slice features ``(N, D)`` of every volume of ``data`` (cached per slice)."""
    from suite.core.features import extract_features

    feats = extract_features(model, slice_data(data, sampling), batch_size, cache_dir).numpy()
    return feats.reshape(len(data), sampling.per_volume, -1).mean(axis=1)


def _set_linear_head(model, coef: np.ndarray, intercept: float, mean: np.ndarray, scale: np.ndarray) -> None:
    """Write a standardised binary logistic regression into the model's head: softmax([0, z]) = sigmoid(z)."""
    import torch

    w = coef / scale
    b = intercept - float((coef * mean / scale).sum())
    head = model.head[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.weight[1] = torch.as_tensor(w, dtype=head.weight.dtype)
        head.bias[1] = b


def train_linear(train, val, sampling: SliceSampling | None = None, grid=(0.001, 0.01, 0.1, 1.0),
                 seed: int = 0, cache_dir=None):
    """A 2.5D Solution: logistic regression on mean slice features, C chosen by validation AUROC.

    Returns ``(solution, fit)`` where ``fit`` records the grid, the chosen C and its validation AUROC.
    The solution carries an input guard fitted on the training volumes' mean features.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    from suite.core.ood import InputGuard
    from suite.core.solution import Solution

    sampling = sampling or SliceSampling()
    if len(train.classes) != 2:
        raise SuiteError(f"2.5D linear training handles two classes, got {train.classes}")
    model = slice_model(2, sampling)
    f_train = volume_features(model, train, sampling, cache_dir)
    f_val = volume_features(model, val, sampling, cache_dir)
    scaler = StandardScaler().fit(f_train)
    scores = {}
    for c in grid:
        clf = LogisticRegression(C=c, max_iter=5000, random_state=seed).fit(scaler.transform(f_train), train.labels)
        scores[c] = float(roc_auc_score(val.labels, clf.decision_function(scaler.transform(f_val))))
    best = max(grid, key=lambda c: scores[c])
    clf = LogisticRegression(C=best, max_iter=5000, random_state=seed).fit(scaler.transform(f_train), train.labels)
    _set_linear_head(model, clf.coef_[0], float(clf.intercept_[0]), scaler.mean_, scaler.scale_)
    recipe = {"backbone": BACKBONE, "strategy": "feature_extraction (frozen, mean of slice features)",
              "head": "logistic regression (scikit-learn), standardised features", "C": best, "seed": seed}
    solution = Solution(model, train.classes, recipe=recipe, name="slices25d",
                        extra={"slices25d": sampling.to_dict(), "not_for_clinical_use": True},
                        guard=InputGuard.fit(f_train, seed=seed))
    return solution, {"grid": list(grid), "val_auroc_by_C": scores, "C": best, "val_auroc": scores[best]}


def predict_volumes(solution, volumes, batch_size: int = 128) -> dict:
    """Class probabilities ``(N, K)`` of volumes ``(D, H, W)`` through a 2.5D Solution, with the
    guard's ``ood_score`` ``(N,)`` (NaN without a guard)."""
    import torch

    from suite.core.data import LabeledData

    sampling = SliceSampling.from_dict(solution.extra["slices25d"])
    volumes = list(volumes)
    data = LabeledData(items=volumes, labels=np.zeros(len(volumes), dtype=np.int64), classes=solution.labels,
                       modality="volume", source="volumes")
    feats = volume_features(solution.model, data, sampling, batch_size=batch_size)
    with torch.no_grad():
        logits = solution.model.forward_head(torch.as_tensor(feats, dtype=torch.float32))
    probs = logits.softmax(-1).numpy()
    ood = solution.guard.score(feats) if solution.guard is not None else np.full(len(feats), np.nan, np.float32)
    return {"probs": probs, "ood_score": ood, "ood": [bool(s > 1.0) for s in ood]}


def evaluate(solution, data, desc: str, n_bootstrap: int = 1000):
    """The core's evaluation report (metrics with 95% bootstrap CIs) of a 2.5D Solution on volume data."""
    from suite.core.evaluation import evaluate_predictions

    probs = predict_volumes(solution, [data.load(i) for i in range(len(data))])["probs"]
    report = evaluate_predictions(data.labels, probs, solution.labels, task="binary", n_bootstrap=n_bootstrap,
                                  data_desc=desc)
    return report, probs


def explain_slices(solution, volume: np.ndarray, class_idx: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grad-CAM of each sampled slice of one volume: ``[(slice uint8, overlay RGB uint8), ...]``."""
    from suite.core.explain import explain_image

    sampling = SliceSampling.from_dict(solution.extra["slices25d"])
    idx = len(solution.labels) - 1 if class_idx is None else class_idx
    out = []
    for image in slice_stack(volume, sampling):
        _, shown, _ = explain_image(solution, image, class_idx=idx)
        out.append((image, shown))
    return out
