"""How well predicted probabilities match outcomes, and temperature scaling to improve it.

* :func:`calibration_metrics` — expected calibration error, negative log-likelihood, Brier score
  and mean confidence over the labelled rows;
* :func:`fit_temperature` — the temperature ``T`` of ``softmax(z / T)`` that minimises the NLL on
  validation data (Guo et al. 2017; needs scipy, in the ``train`` extra);
* :func:`fit_prior_correction` — a logit adjustment ``z − τ · log π`` against the training
  prior ``π`` (Menon et al. 2021), ``τ`` chosen on validation data: rarer classes (FER+'s fear and
  disgust) are then called more often, at a bounded cost in plain accuracy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..utils import optional_import


def _labelled(scores: np.ndarray, y: Sequence[int], what: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``scores`` (float64) and ``y`` whose label is ≥ 0; an error naming ``what`` if none."""
    yy = np.asarray(y, np.int64)
    keep = yy >= 0
    if not keep.any():
        raise ValueError(f"{what}: no labelled rows")
    return np.asarray(scores, np.float64)[keep], yy[keep]


def calibration_metrics(probs: np.ndarray, y: Sequence[int], n_bins: int = 15) -> dict[str, float]:
    """How well the probabilities match the outcomes, over the labelled rows (``y`` ≥ 0).

    ``ece``: expected calibration error, Σ_b (n_b / n) · |accuracy_b − mean confidence_b| over
    ``n_bins`` equal-width bins of the top probability (Guo et al. 2017); ``nll``: mean negative log
    probability of the true class; ``brier``: mean squared distance between the probability vector
    and the one-hot truth (summed over classes); ``mean_confidence``: mean top probability."""
    pr, yy = _labelled(probs, y, "calibration_metrics")
    conf = pr.max(1)
    right = pr.argmax(1) == yy
    bins = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)   # conf = 1.0 goes to the last bin
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.sum() / len(yy) * abs(right[m].mean() - conf[m].mean())
    onehot = np.eye(pr.shape[1])[yy]
    return {"ece": float(ece), "nll": float(-np.mean(np.log(np.clip(pr[np.arange(len(yy)), yy], 1e-300, None)))),
            "brier": float(np.mean(np.sum((pr - onehot) ** 2, axis=1))), "mean_confidence": float(conf.mean())}


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``z`` (N, C), computed stably."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(log_probs: np.ndarray, y: Sequence[int]) -> float:
    """The temperature ``T`` that minimises the negative log-likelihood of ``softmax(z / T)`` on the
    labelled rows (temperature scaling, Guo et al. 2017). ``log_probs`` may be logits or log
    probabilities (they differ by a constant per row, which the softmax ignores). The NLL is convex
    in 1/T; it is minimised over T ∈ [0.05, 20]."""
    minimize_scalar = optional_import("scipy.optimize", "train", "fitting a temperature").minimize_scalar

    z, yy = _labelled(log_probs, y, "fit_temperature")
    rows = np.arange(len(yy))

    def nll(beta: float) -> float:
        s = beta * z
        m = s.max(axis=1)
        return float(np.mean(m + np.log(np.exp(s - m[:, None]).sum(axis=1)) - s[rows, yy]))

    res = minimize_scalar(nll, bounds=(1 / 20, 1 / 0.05), method="bounded", options={"xatol": 1e-6})
    return float(1.0 / res.x)


def _accuracies(z: np.ndarray, yy: np.ndarray, n_classes: int) -> tuple[float, float]:
    pred = z.argmax(1)
    per = [float((pred[yy == c] == c).mean()) for c in range(n_classes) if (yy == c).any()]
    return float((pred == yy).mean()), float(np.mean(per))


def fit_prior_correction(log_probs: np.ndarray, y: Sequence[int], prior: Sequence[float], *,
                         max_drop: float = 0.005,
                         taus: Sequence[float] = tuple(np.round(np.arange(0.0, 1.0001, 0.05), 2))
                         ) -> dict[str, object]:
    """Choose ``τ`` of the logit adjustment ``z + b``, ``b = −τ · log prior``, on validation data.

    The chosen ``τ`` maximises the mean per-class accuracy (each class counts the same, as in a
    balanced test set) among the values whose plain accuracy is at most ``max_drop`` below the
    unadjusted one (ties: the smaller ``τ``). Returns ``tau``, ``bias`` (per class) and the
    validation accuracies before and after."""
    z, yy = _labelled(log_probs, y, "fit_prior_correction")
    pi = np.asarray(prior, np.float64)
    if pi.shape != (z.shape[1],) or np.any(pi <= 0):
        raise ValueError(f"prior must hold {z.shape[1]} positive class shares, got {list(pi)}")
    pi = pi / pi.sum()
    acc0, bal0 = _accuracies(z, yy, z.shape[1])
    best = (0.0, bal0, acc0)
    for tau in taus:
        acc, bal = _accuracies(z - tau * np.log(pi), yy, z.shape[1])
        if acc >= acc0 - max_drop and bal > best[1] + 1e-12:
            best = (float(tau), bal, acc)
    tau = best[0]
    bias = (-tau * np.log(pi)).tolist()
    return {"tau": tau, "bias": [round(float(b), 5) for b in bias], "max_drop": max_drop,
            "prior": [round(float(v), 5) for v in pi],
            "val_accuracy": {"before": acc0, "after": best[2]},
            "val_mean_class_accuracy": {"before": bal0, "after": best[1]}}


__all__ = ["calibration_metrics", "fit_prior_correction", "fit_temperature", "softmax"]
