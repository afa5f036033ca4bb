"""Instance re-weighting and domain-distance measures from a domain classifier on features."""

from __future__ import annotations

import numpy as np


def _domain_classifier(f_s: np.ndarray, f_t: np.ndarray, seed: int = 0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([f_s, f_t])
    y = np.concatenate([np.ones(len(f_s)), np.zeros(len(f_t))])
    return x, y, make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=seed))


def importance_weights(f_s: np.ndarray, f_t: np.ndarray, clip: tuple[float, float] = (0.1, 10.0),
                       seed: int = 0) -> tuple[np.ndarray, dict]:
    """Weights ``p_t(x) / p_s(x)`` for source features ``(N_s, D)`` from a domain classifier
    (out-of-fold predictions, so a sample never rates itself), clipped to ``clip`` and normalised to
    mean 1. Returns the weights ``(N_s,)`` and stats: effective sample size
    ``(sum w)^2 / sum w^2`` and its share of ``N_s``."""
    from sklearn.model_selection import cross_val_predict

    x, y, clf = _domain_classifier(f_s, f_t, seed)
    p_source = cross_val_predict(clf, x, y, cv=5, method="predict_proba")[: len(f_s), 1]
    ratio = (1 - p_source) / np.clip(p_source, 1e-6, None) * (len(f_s) / len(f_t))
    w = np.clip(ratio, *clip)
    w = w / w.mean()
    ess = float(w.sum() ** 2 / (w ** 2).sum())
    return w, {"effective_sample_size": ess, "ess_share": ess / len(w), "clip": list(clip),
               "min": float(w.min()), "max": float(w.max())}


def domain_classifier_accuracy(f_s: np.ndarray, f_t: np.ndarray, seed: int = 0, max_per_domain: int = 2000) -> dict:
    """How well a linear classifier separates the domains (5-fold CV accuracy), and the proxy
    A-distance ``2 (1 - 2 err)`` (Ben-David et al.): 0 = indistinguishable, 2 = separable."""
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(seed)
    f_s = f_s[rng.permutation(len(f_s))[:max_per_domain]]
    f_t = f_t[rng.permutation(len(f_t))[:max_per_domain]]
    x, y, clf = _domain_classifier(f_s, f_t, seed)
    acc = float(cross_val_score(clf, x, y, cv=5, scoring="balanced_accuracy").mean())
    err = 1 - acc
    return {"domain_accuracy": acc, "proxy_a_distance": float(2 * (1 - 2 * min(err, 0.5)))}
