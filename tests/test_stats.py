"""Paired significance tests against worked examples computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from salface.evaluation.stats import (binomial_two_sided_p, chi2_sf_1df, compare_paired, mcnemar,
                                      paired_bootstrap)


def _pairs(n_both_right, n01, n10, n_both_wrong):
    """Correctness vectors of A and B with the given 2×2 table."""
    a = [True] * n_both_right + [False] * n01 + [True] * n10 + [False] * n_both_wrong
    b = [True] * n_both_right + [True] * n01 + [False] * n10 + [False] * n_both_wrong
    return np.array(a), np.array(b)


def test_mcnemar_exact_worked_example():
    # 100 images: 80 both right, 8 only B right (n01), 2 only A right (n10), 10 both wrong.
    a, b = _pairs(80, 8, 2, 10)
    r = mcnemar(a, b, "exact")
    assert (r.n, r.n01, r.n10) == (100, 8, 2)
    assert r.accuracy_a == pytest.approx(0.82)   # 80 + 2 right
    assert r.accuracy_b == pytest.approx(0.88)   # 80 + 8 right
    # Under H0, n01 ~ Bin(10, 1/2). P(X <= 2) = (C(10,0) + C(10,1) + C(10,2)) / 2^10
    #   = (1 + 10 + 45) / 1024 = 56 / 1024; two-sided p = 2 · 56 / 1024 = 112 / 1024 = 0.109375
    assert r.p_value == pytest.approx(0.109375, abs=1e-12)
    assert r.statistic == 2


def test_mcnemar_chi2_worked_example():
    a, b = _pairs(80, 8, 2, 10)
    r = mcnemar(a, b, "chi2")
    # (|8 − 2| − 1)² / (8 + 2) = 25 / 10 = 2.5 ;  p = erfc(√(2.5 / 2)) = erfc(1.1180) ≈ 0.113846
    assert r.statistic == pytest.approx(2.5)
    assert r.p_value == pytest.approx(0.1138463, abs=1e-6)


def test_mcnemar_symmetric_and_degenerate():
    a, b = _pairs(50, 0, 0, 5)            # no discordant images: no evidence either way
    assert mcnemar(a, b).p_value == 1.0
    assert mcnemar(a, b, "chi2").p_value == 1.0
    a, b = _pairs(10, 0, 6, 0)
    # all 6 discordant favour A: P(X <= 0 | Bin(6, 1/2)) = 1/64, two-sided 2/64 = 0.03125
    assert mcnemar(a, b).p_value == pytest.approx(0.03125)
    assert mcnemar(b, a).p_value == pytest.approx(0.03125)
    with pytest.raises(ValueError, match="equal length"):
        mcnemar([True, False], [True])
    with pytest.raises(ValueError, match="paired_bootstrap"):
        mcnemar([0.5, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="method"):
        mcnemar([True], [False], "z")


def test_binomial_and_chi2_helpers():
    assert binomial_two_sided_p(5, 10) == 1.0                   # the centre: min(1, 2·P(X<=5)) = 1
    assert binomial_two_sided_p(0, 1) == 1.0                    # 2 · 1/2
    # large n goes through logs: symmetric and tiny for a lopsided split
    assert binomial_two_sided_p(400, 2000) == pytest.approx(binomial_two_sided_p(1600, 2000))
    assert binomial_two_sided_p(400, 2000) < 1e-100
    assert chi2_sf_1df(3.841458820694124) == pytest.approx(0.05, abs=1e-9)  # the 95 % critical value
    assert chi2_sf_1df(0.0) == 1.0


def test_paired_bootstrap_matches_the_normal_approximation():
    a, b = _pairs(80, 8, 2, 10)
    r = paired_bootstrap(a, b, n_boot=20000, seed=1)
    # d = b − a per image: eight +1, two −1, ninety 0. mean d = 6/100 = 0.06.
    # var(d) (population) = E[d²] − mean² = 10/100 − 0.0036 = 0.0964; SE = √(0.0964/100) = 0.031048
    # 95 % interval ≈ 0.06 ± 1.96 · 0.031048 = [−0.00085, 0.12085]
    assert r.difference == pytest.approx(0.06)
    assert r.ci_low == pytest.approx(-0.00085, abs=0.012)
    assert r.ci_high == pytest.approx(0.12085, abs=0.012)
    # shift p-value, normal approximation: resampled means live on a lattice of step 1/100 and
    # |d* − 0.06| ≥ 0.06 includes the atom at the boundary, so with a continuity correction of half a
    # step: P(|Z| ≥ (0.06 − 0.005) / 0.031048 = 1.7714) = erfc(1.7714 / √2) ≈ 0.0765
    assert r.p_value == pytest.approx(math.erfc((0.06 - 0.005) / 0.031048 / math.sqrt(2)), abs=0.015)
    # same seed, same answer; paired: identical models give difference 0 and p = 1
    assert paired_bootstrap(a, b, n_boot=20000, seed=1) == r
    same = paired_bootstrap(a, a, n_boot=1000)
    assert (same.difference, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_bootstrap_takes_fractions_over_seeds():
    # per-image share of 3 seeds that were right; B is better on every image by 1/3
    a = np.array([0, 1 / 3, 2 / 3] * 20)
    b = a + 1 / 3
    r = paired_bootstrap(a, b, n_boot=2000)
    assert r.difference == pytest.approx(1 / 3)
    assert r.ci_low == pytest.approx(1 / 3) and r.ci_high == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        paired_bootstrap([1.5], [1.0])


def test_compare_paired_is_json_ready():
    import json

    a, b = _pairs(30, 4, 1, 5)
    d = compare_paired(a, b, n_boot=500)
    json.dumps(d)
    assert d["mcnemar_exact"]["n01"] == 4 and d["bootstrap"]["n"] == 40


def test_seed_image_bootstrap_does_not_let_one_seed_carry_a_difference():
    """Two arms agree on seeds 0 and 1; on seed 2, arm a gets every image right and arm b none.
    Per image, b's share of right seeds is always 1/3 lower, so the images-only bootstrap has no
    spread and calls it certain; resampling seeds too, the number k of times seed 2 is drawn is
    Binomial(3, 1/3), the difference is −k/3, and the known answers follow:
    P(|−k/3 − (−1/3)| ≥ 1/3) = P(k ≠ 1) = 15/27, and the 95 % interval is [−1, 0]."""
    from salface.evaluation.stats import paired_bootstrap, seed_image_bootstrap

    n = 200
    a = [np.ones(n, bool)] * 3
    b = [np.ones(n, bool), np.ones(n, bool), np.zeros(n, bool)]
    images_only = paired_bootstrap(np.mean(a, axis=0), np.mean(b, axis=0), n_boot=2000)
    assert images_only.ci_low == images_only.ci_high == pytest.approx(-1 / 3)
    assert images_only.p_value < 0.001
    r = seed_image_bootstrap(a, b, n_boot=20000, seed=1)
    assert r.difference == pytest.approx(-1 / 3)
    assert r.p_value == pytest.approx(15 / 27, abs=0.015)
    assert (r.ci_low, r.ci_high) == (pytest.approx(-1.0), pytest.approx(0.0))
    assert r.n == n


def test_seed_image_bootstrap_checks_its_input():
    from salface.evaluation.stats import seed_image_bootstrap

    with pytest.raises(ValueError, match="differ"):
        seed_image_bootstrap([[1, 0], [1, 1]], [[1, 0]])
    with pytest.raises(ValueError, match="n_boot"):
        seed_image_bootstrap([[1, 0]], [[0, 1]], n_boot=10)
