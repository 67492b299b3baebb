"""How well predicted probabilities match outcomes, and temperature scaling to improve it.

* :func:`calibration_metrics` — expected calibration error, negative log-likelihood, Brier score
  and mean confidence over the labelled rows;
* :func:`fit_temperature` — the temperature ``T`` of ``softmax(z / T)`` that minimises the NLL on
  validation data (Guo et al. 2017; needs scipy, in the ``train`` extra).
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


__all__ = ["calibration_metrics", "fit_temperature", "softmax"]
