"""The MIT saliency benchmark metrics (Bylinskii et al., "What do different evaluation metrics
tell us about saliency models?", TPAMI 2019), written from their definitions.

Arguments: ``sal`` is a predicted map (any non-negative scale), ``fix`` a binary fixation map of
the same shape (1 at fixated pixels), ``dens`` a continuous fixation map (the blurred fixations,
:func:`salface.saliency.fixations.fixation_density`). Choices where implementations differ:

* **NSS** standardises ``sal`` with the population standard deviation (ddof = 0) and averages
  the standardised values at fixated pixels. A constant map gives 0.
* **CC** is Pearson's correlation of ``sal`` and ``dens``; 0 when either is constant.
* **KL** is ``Σ d · log(ε + d / (s + ε))`` with ``s`` and ``d`` the maps scaled to sum 1 and
  ``ε = 2.2204e-16`` (MATLAB's ``eps``, as in the MIT code): KL(fixations ‖ prediction).
* **SIM** is ``Σ min(s, d)`` with both maps scaled to sum 1.
* **AUC-Judd** thresholds ``sal`` at each distinct value it takes at fixated pixels. At a
  threshold ``t``: TPR = share of fixated pixels with ``sal ≥ t``, FPR = share of the other
  pixels with ``sal ≥ t``; the curve runs from (0, 0) to (1, 1) and the area is the trapezoid
  sum. Ties are handled exactly (no random jitter, unlike the MIT code), so a constant map
  scores exactly 0.5.
* **Shuffled AUC** takes as positives the map's values at this image's fixated pixels and as
  negatives its values at the fixation locations of *other* images (mapped to this image's
  size). Instead of the MIT code's 100 random draws of as many negatives as positives, it
  computes the exact area under the ROC curve of all positives against all negatives — the
  Mann–Whitney probability ``P(pos > neg) + ½ P(pos = neg)`` — which is what those draws
  estimate. A pure centre-bias map scores near 0.5.
"""

from __future__ import annotations

import numpy as np

EPS = 2.2204e-16


def _check(sal: np.ndarray, other: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(sal, dtype=np.float64)
    o = np.asarray(other, dtype=np.float64)
    if s.shape != o.shape:
        raise ValueError(f"saliency map shape {s.shape} differs from {what} shape {o.shape}")
    if s.ndim != 2:
        raise ValueError(f"expected 2-D maps, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("saliency map holds NaN or infinite values")
    return s, o


def _fixated(fix: np.ndarray) -> np.ndarray:
    mask = np.asarray(fix) > 0
    if not mask.any():
        raise ValueError("the fixation map holds no fixations")
    return mask


def nss(sal: np.ndarray, fix: np.ndarray) -> float:
    """Normalized scanpath saliency: mean of the standardised map at fixated pixels."""
    s, f = _check(sal, fix, "fixation map")
    mask = _fixated(f)
    sd = s.std()
    if sd == 0:
        return 0.0
    return float(((s - s.mean()) / sd)[mask].mean())


def cc(sal: np.ndarray, dens: np.ndarray) -> float:
    """Pearson's linear correlation coefficient between the map and the fixation density."""
    s, d = _check(sal, dens, "density map")
    s = s - s.mean()
    d = d - d.mean()
    den = np.sqrt((s * s).sum() * (d * d).sum())
    return float((s * d).sum() / den) if den > 0 else 0.0


def _as_distribution(m: np.ndarray, what: str) -> np.ndarray:
    if (m < 0).any():
        raise ValueError(f"{what} has negative values")
    total = m.sum()
    if total <= 0:
        raise ValueError(f"{what} sums to zero")
    return m / total


def kld(sal: np.ndarray, dens: np.ndarray) -> float:
    """KL divergence of the prediction from the fixation density (lower is better)."""
    s, d = _check(sal, dens, "density map")
    s = _as_distribution(s, "saliency map")
    d = _as_distribution(d, "density map")
    return float((d * np.log(EPS + d / (s + EPS))).sum())


def sim(sal: np.ndarray, dens: np.ndarray) -> float:
    """Similarity (histogram intersection) of the two maps as distributions."""
    s, d = _check(sal, dens, "density map")
    s = _as_distribution(s, "saliency map")
    d = _as_distribution(d, "density map")
    return float(np.minimum(s, d).sum())


def auc_judd(sal: np.ndarray, fix: np.ndarray) -> float:
    """AUC-Judd: ROC area with fixated pixels as positives and all other pixels as negatives,
    thresholds at the map's values on fixated pixels."""
    s, f = _check(sal, fix, "fixation map")
    mask = _fixated(f)
    pos = np.sort(s[mask])[::-1]
    n_pos, n_pix = pos.size, s.size
    if n_pix == n_pos:
        raise ValueError("every pixel is fixated: AUC is undefined")
    all_sorted = np.sort(s.ravel())
    thresholds = np.unique(pos)[::-1]  # descending, distinct
    # pixels with value >= t (all / fixated), for each threshold
    above_all = all_sorted.size - np.searchsorted(all_sorted, thresholds, side="left")
    pos_sorted = pos[::-1]
    above_pos = pos_sorted.size - np.searchsorted(pos_sorted, thresholds, side="left")
    tpr = np.concatenate([[0.0], above_pos / n_pos, [1.0]])
    fpr = np.concatenate([[0.0], (above_all - above_pos) / (n_pix - n_pos), [1.0]])
    return float((np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0).sum())  # trapezoid rule


def auc_from_scores(pos: np.ndarray, neg: np.ndarray) -> float:
    """Exact ROC area of ``pos`` against ``neg`` scores: P(pos > neg) + ½ P(pos = neg)."""
    pos = np.asarray(pos, dtype=np.float64).ravel()
    neg = np.asarray(neg, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError("AUC needs at least one positive and one negative")
    neg_sorted = np.sort(neg)
    below = np.searchsorted(neg_sorted, pos, side="left")
    below_or_eq = np.searchsorted(neg_sorted, pos, side="right")
    return float((below + 0.5 * (below_or_eq - below)).sum() / (pos.size * neg.size))


def auc_shuffled(sal: np.ndarray, fix: np.ndarray, other_fix: np.ndarray) -> float:
    """Shuffled AUC: this image's fixated pixels against ``other_fix`` (a binary map of other
    images' fixation locations at this image's size; pixels also fixated here are kept)."""
    s, f = _check(sal, fix, "fixation map")
    _, o = _check(sal, other_fix, "other-fixation map")
    mask = _fixated(f)
    neg_mask = np.asarray(o) > 0
    if not neg_mask.any():
        raise ValueError("the other-images fixation map holds no fixations")
    return auc_from_scores(s[mask], s[neg_mask])


METRICS: dict[str, str] = {
    "auc_judd": "AUC-Judd (↑)",
    "sauc": "shuffled AUC (↑)",
    "nss": "NSS (↑)",
    "cc": "CC (↑)",
    "kld": "KL divergence (↓)",
    "sim": "SIM (↑)",
}
"""Metric keys, in report order, with display names (↑ higher is better, ↓ lower)."""


def all_metrics(sal: np.ndarray, fix: np.ndarray, dens: np.ndarray,
                other_fix: np.ndarray | None) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one image (``sauc`` is NaN without ``other_fix``)."""
    return {
        "auc_judd": auc_judd(sal, fix),
        "sauc": auc_shuffled(sal, fix, other_fix) if other_fix is not None else float("nan"),
        "nss": nss(sal, fix),
        "cc": cc(sal, dens),
        "kld": kld(sal, dens),
        "sim": sim(sal, dens),
    }
