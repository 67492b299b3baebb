"""Paired significance tests for two classifiers scored on the same test images.

Two models A and B are compared image by image: ``a[i]`` / ``b[i]`` say whether each got image
``i`` right. Only the *discordant* images carry information about which model is better:

* ``n01`` = images A got wrong and B got right,
* ``n10`` = images A got right and B got wrong.

:func:`mcnemar` gives McNemar's test on those counts, in two versions:

* ``exact`` — under H0 (both models equally accurate) each discordant image is a fair coin, so
  ``n01 ~ Binomial(n01 + n10, 1/2)``; the two-sided p-value is
  ``min(1, 2 · P(X ≤ min(n01, n10)))`` (the doubled smaller tail, as in most textbooks and
  statsmodels' ``mcnemar(exact=True)``). Recommended when ``n01 + n10 < 25``.
* ``chi2`` — Edwards' continuity-corrected statistic ``(|n01 − n10| − 1)² / (n01 + n10)``,
  referred to a χ² distribution with one degree of freedom (``p = erfc(√(x/2))``).

:func:`paired_bootstrap` resamples test images with replacement (the same resample for A and B)
to give a confidence interval for the accuracy difference ``acc(B) − acc(A)`` and a two-sided
p-value by the *shift* method: the bootstrap distribution of the difference is centred on 0 and
``p = (1 + #{|d*ᵢ − d| ≥ |d|}) / (B + 1)``. It also accepts per-image *fractions* of correct
predictions (e.g. the mean over several seeds), which McNemar cannot.

Only the standard library and numpy are needed (the binomial tail is summed exactly with
:func:`math.comb`; χ²₁'s survival function is ``erfc``), so this module adds no dependency.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's test of two paired classifiers (A = baseline, B = candidate)."""

    n: int                 # images compared
    n01: int               # A wrong, B right
    n10: int               # A right, B wrong
    accuracy_a: float
    accuracy_b: float
    statistic: float       # exact: min(n01, n10); chi2: the continuity-corrected χ² value
    p_value: float
    method: str            # "exact" or "chi2"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of the accuracy difference ``B − A``."""

    n: int
    difference: float      # observed acc(B) − acc(A)
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    n_boot: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_correct(x: Sequence[Any], name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one value per test image (1-D), got shape {a.shape}")
    if a.dtype == bool:
        return a.astype(np.float64)
    a = a.astype(np.float64)
    if a.size and (np.isnan(a).any() or a.min() < 0 or a.max() > 1):
        raise ValueError(f"{name} must hold booleans or fractions of correct predictions in [0, 1]")
    return a


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair-coin trials:
    ``min(1, 2 · P(X ≤ min(k, n − k)))``."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 1.0
    m = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(m + 1))
    # exact rational arithmetic until the final division: no underflow for large n
    return min(1.0, float(2 * tail) / float(2 ** n)) if n < 1000 else min(1.0, math.exp(
        math.log(2 * tail) - n * math.log(2)))


def chi2_sf_1df(x: float) -> float:
    """Survival function of χ² with one degree of freedom: ``P(X > x) = erfc(√(x/2))``."""
    if x <= 0:
        return 1.0
    return math.erfc(math.sqrt(x / 2.0))


def mcnemar(a_correct: Sequence[Any], b_correct: Sequence[Any], method: str = "exact") -> McNemarResult:
    """McNemar's test of baseline A against candidate B on the same images (see module doc)."""
    a = np.asarray(a_correct)
    b = np.asarray(b_correct)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a_correct {a.shape} and b_correct {b.shape} must be 1-D and of equal length")
    if a.size == 0:
        raise ValueError("no test images to compare")
    for arr, name in ((a, "a_correct"), (b, "b_correct")):
        if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be booleans (or 0/1) for McNemar's test; use "
                             f"paired_bootstrap for fractions")
    a = a.astype(bool)
    b = b.astype(bool)
    n01 = int(np.sum(~a & b))
    n10 = int(np.sum(a & ~b))
    d = n01 + n10
    if method == "exact":
        stat = float(min(n01, n10))
        p = binomial_two_sided_p(n01, d)
    elif method == "chi2":
        stat = (abs(n01 - n10) - 1.0) ** 2 / d if d else 0.0
        if d and abs(n01 - n10) < 1:  # |n01 − n10| = 0: the corrected statistic would be (−1)²
            stat = 0.0
        p = chi2_sf_1df(stat)
    else:
        raise ValueError(f"method must be 'exact' or 'chi2', got {method!r}")
    return McNemarResult(n=int(a.size), n01=n01, n10=n10, accuracy_a=float(a.mean()),
                         accuracy_b=float(b.mean()), statistic=stat, p_value=p, method=method)


def _check_bootstrap(a: np.ndarray, b: np.ndarray, names: str, confidence: float, n_boot: int) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} differ: {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("no test images to compare")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot}")


def _bootstrap_result(boots: np.ndarray, obs: float, n: int, confidence: float, seed: int) -> BootstrapResult:
    """Percentile CI and shift-method p-value (how often a resample is at least as far from the
    observed difference as the observed difference is from 0) of the resampled differences."""
    alpha = 1.0 - confidence
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    n_boot = len(boots)
    extreme = int(np.sum(np.abs(boots - obs) >= abs(obs) - 1e-12)) if obs != 0 else n_boot
    p = min(1.0, (1 + extreme) / (n_boot + 1))
    return BootstrapResult(n=int(n), difference=obs, ci_low=float(lo), ci_high=float(hi),
                           confidence=confidence, p_value=float(p), n_boot=int(n_boot), seed=int(seed))


def paired_bootstrap(a_correct: Sequence[Any], b_correct: Sequence[Any], *, n_boot: int = 10000,
                     confidence: float = 0.95, seed: int = 0) -> BootstrapResult:
    """Percentile CI and shift-method p-value of ``mean(b) − mean(a)`` by resampling images.

    ``a_correct`` / ``b_correct``: per test image, True/False or the fraction of runs (seeds) that
    got it right. The same bootstrap resample of images is applied to both (paired)."""
    a = _as_correct(a_correct, "a_correct")
    b = _as_correct(b_correct, "b_correct")
    _check_bootstrap(a, b, "a_correct and b_correct", confidence, n_boot)
    d = b - a
    rng = np.random.default_rng(seed)
    n = d.size
    boots = np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)
    for s in range(0, n_boot, chunk):
        e = min(n_boot, s + chunk)
        idx = rng.integers(0, n, size=(e - s, n))
        boots[s:e] = d[idx].mean(axis=1)
    return _bootstrap_result(boots, float(d.mean()), n, confidence, seed)


def seed_image_bootstrap(a_runs: Sequence[Sequence[Any]], b_runs: Sequence[Sequence[Any]], *,
                         n_boot: int = 10000, confidence: float = 0.95, seed: int = 0) -> BootstrapResult:
    """Two-stage paired bootstrap of ``mean(b) − mean(a)`` over seeds *and* test images.

    ``a_runs`` / ``b_runs``: one row per seed (run ``i`` of ``a`` and of ``b`` share seed ``i``),
    one column per test image, True/False. Each resample draws the seeds with replacement (the
    same draw for both arms) and then the images with replacement (the same for every run), so a
    difference that one lucky or unlucky seed carries gets a wide interval — unlike
    :func:`paired_bootstrap` on the per-image mean over seeds, which treats the seeds as fixed.
    With few seeds the seed draw is coarse (3 seeds give 10 distinct draws); that coarseness is
    the honest uncertainty. Percentile CI and shift-method p-value as in :func:`paired_bootstrap`."""
    a = np.stack([_as_correct(r, "a_runs") for r in a_runs]) if len(a_runs) else np.zeros((0, 0))
    b = np.stack([_as_correct(r, "b_runs") for r in b_runs]) if len(b_runs) else np.zeros((0, 0))
    _check_bootstrap(a, b, "a_runs and b_runs (seeds × images)", confidence, n_boot)
    d = b - a
    n_seeds, n = d.shape
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    chunk = max(1, 2_000_000 // (n * n_seeds))
    for s in range(0, n_boot, chunk):
        e = min(n_boot, s + chunk)
        rows = rng.integers(0, n_seeds, size=(e - s, n_seeds))
        cols = rng.integers(0, n, size=(e - s, n))
        boots[s:e] = d[rows[:, :, None], cols[:, None, :]].mean(axis=(1, 2))
    return _bootstrap_result(boots, float(d.mean()), n, confidence, seed)


def compare_paired(a_correct: Sequence[Any], b_correct: Sequence[Any], *, n_boot: int = 10000,
                   seed: int = 0) -> dict[str, Any]:
    """Both McNemar versions and the bootstrap in one JSON-ready dict (booleans only)."""
    return {"mcnemar_exact": mcnemar(a_correct, b_correct, "exact").to_dict(),
            "mcnemar_chi2": mcnemar(a_correct, b_correct, "chi2").to_dict(),
            "bootstrap": paired_bootstrap(a_correct, b_correct, n_boot=n_boot, seed=seed).to_dict()}


__all__ = ["McNemarResult", "BootstrapResult", "binomial_two_sided_p", "chi2_sf_1df", "mcnemar", "paired_bootstrap",
           "seed_image_bootstrap", "compare_paired"]
