"""Input guard: does an input look like what a Solution was trained on?

The guard models the L2-normalised backbone features of the training data as a Gaussian with a probabilistic-PCA
covariance (top ``k`` principal directions plus isotropic noise), so it stays small (``k x D``
floats) and well conditioned with few samples. An input's score is its Mahalanobis distance under
that model divided by a threshold: the ``quantile`` of the distances of held-out items. A score
above 1 means "not like the training data". Those items should be ones the network never trained
on (``calibration``: a validation or calibration split): a fine-tuned network pulls its own
training items together, so a threshold set on them flags far more new in-domain inputs than the
quantile promises (14% instead of 1% for a 20-epoch tomato model). Without them, a held-out part
of the training features sets it. Normalising the features first matters: on
PneumoniaMNIST it took the share of leaf and everyday photos flagged from about 0.6 to 1.0 while
flagging under 1% of real test X-rays (see tests/test_ood.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import SuiteError

GUARD_READS = ("model", "pretrained")  # the Solution's own backbone, or its untouched pretrained backbone


@dataclass
class InputGuard:
    """Mean, principal directions, their variances, residual variance and the distance threshold."""

    mean: torch.Tensor  # (D,)
    components: torch.Tensor  # (k, D), orthonormal rows
    variances: torch.Tensor  # (k,)
    noise: float  # variance of each remaining direction
    threshold: float  # distance at the calibration quantile
    quantile: float = 0.99
    calibrated_on: int = 0  # never-trained items that set the threshold (0: held-out training items)
    reads: str = "model"  # which backbone's features it models: one of GUARD_READS

    @classmethod
    def fit(cls, features, quantile: float = 0.99, max_components: int = 32, holdout: float = 0.2,
            seed: int = 0, calibration=None) -> "InputGuard":
        """Fit on training features ``(N, D)``.

        The threshold is the conformal ``quantile`` of the distances of ``calibration`` features
        (items the network never trained on) when given, else of a held-out part of ``features``.
        """
        f = _checked(features, "training", minimum=10)
        if calibration is not None:
            guard, held = cls._gaussian(f, max_components, quantile), _checked(calibration, "calibration", minimum=1)
        else:
            order = torch.randperm(len(f), generator=torch.Generator().manual_seed(seed))
            n_hold = max(2, int(round(holdout * len(f))))
            guard, held = cls._gaussian(f[order[n_hold:]], max_components, quantile), f[order[:n_hold]]
        guard.threshold = _conformal_threshold(guard.distance(held).numpy(), quantile)
        guard.calibrated_on = len(held) if calibration is not None else 0
        return guard

    @classmethod
    def _gaussian(cls, f: torch.Tensor, max_components: int, quantile: float) -> "InputGuard":
        mean = f.mean(0)
        centred = f - mean
        n, d = centred.shape
        k = max(1, min(max_components, n - 1, d - 1))
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
        eig = s ** 2 / max(n - 1, 1)
        rest = eig[k:]
        noise = float(rest.sum()) / max(d - k, 1) if len(rest) else float(eig[-1])
        noise = max(noise, 1e-6 * float(eig[0]) + 1e-12)
        return cls(mean.float(), vh[:k].float(), torch.clamp(eig[:k], min=noise).float(), float(noise),
                   threshold=float("inf"), quantile=quantile)

    def distance(self, features) -> torch.Tensor:
        """Mahalanobis distance ``(N,)`` of features ``(N, D)`` (normalised here) under the fitted model."""
        f = torch.as_tensor(np.asarray(features) if not torch.is_tensor(features) else features)
        f = f.detach().to(torch.float64).reshape(len(f), -1)
        if f.shape[1] != self.mean.numel():
            raise SuiteError(f"input guard expects {self.mean.numel()} features, got {f.shape[1]}")
        f = torch.nn.functional.normalize(f, dim=1)
        c = f - self.mean.double()
        proj = c @ self.components.double().T
        resid = (c * c).sum(1) - (proj * proj).sum(1)
        d2 = (proj * proj / self.variances.double()).sum(1) + resid.clamp(min=0) / self.noise
        return d2.sqrt()

    def score(self, features) -> np.ndarray:
        """Distance / threshold ``(N,)``: above 1 means the input is unlike the training data."""
        return (self.distance(features) / self.threshold).float().numpy()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "components": self.components, "variances": self.variances,
                "scalars": torch.tensor([self.noise, self.threshold, self.quantile, self.calibrated_on],
                                        dtype=torch.float64)}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "InputGuard":
        try:
            noise, threshold, quantile, *calibrated = (float(v) for v in state["scalars"])
            return cls(state["mean"].float(), state["components"].float(), state["variances"].float(),
                       noise, threshold, quantile, int(calibrated[0]) if calibrated else 0)
        except (KeyError, ValueError) as e:
            raise SuiteError(f"input guard file is incomplete or malformed ({e})") from e


def check_reads(reads) -> str:
    """``reads`` when it names a backbone the guard can read (``GUARD_READS``), else a SuiteError."""
    if reads not in GUARD_READS:
        raise SuiteError(f"an input guard reads one of {', '.join(GUARD_READS)}, not {reads!r}")
    return reads


def _conformal_threshold(distances: np.ndarray, quantile: float) -> float:
    """The split-conformal ``quantile`` of held-out distances: rank ceil((n+1)q), capped at the largest."""
    d = np.sort(distances)
    return float(d[min(len(d), int(np.ceil((len(d) + 1) * quantile))) - 1])


def _checked(features, what: str, minimum: int) -> torch.Tensor:
    """L2-normalised float64 ``(N, D)`` features, or a SuiteError."""
    f = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    if f.ndim != 2 or len(f) < minimum:
        raise SuiteError(f"the input guard needs at least {minimum} {what} feature vectors (N, D), "
                         f"got {tuple(f.shape)}")
    if not torch.isfinite(f).all():
        raise SuiteError(f"the input guard got non-finite {what} features")
    return torch.nn.functional.normalize(f, dim=1)
