"""The MIT saliency metrics against values computed by hand on 2×2 maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from salface.saliency.metrics import (all_metrics, auc_from_scores, auc_judd, auc_shuffled, cc, kld,
                                      nss, sim)

RAMP = np.array([[0.0, 1.0], [2.0, 3.0]])
# fixated pixels of the AUC examples: (0, 0) and (1, 1)
FIX_DIAG = np.array([[1, 0], [0, 1]])
SAL_AUC = np.array([[0.9, 0.2], [0.6, 0.4]])


def test_nss_by_hand():
    # mean 1.5; population variance ((1.5² + 0.5²) · 2) / 4 = 1.25, std √1.25 = 1.118034
    # one fixation on the 3: (3 − 1.5) / 1.118034 = 1.341641
    fix = np.array([[0, 0], [0, 1]])
    assert nss(RAMP, fix) == pytest.approx(1.5 / math.sqrt(1.25), abs=1e-9)
    # fixations on 0 and 3: (−1.341641 + 1.341641) / 2 = 0
    assert nss(RAMP, FIX_DIAG) == pytest.approx(0.0, abs=1e-12)
    # scale and offset invariant
    assert nss(10 * RAMP + 7, fix) == pytest.approx(1.5 / math.sqrt(1.25), abs=1e-9)
    assert nss(np.ones((2, 2)), fix) == 0.0  # constant map


def test_cc_by_hand():
    s = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert cc(s, s) == pytest.approx(1.0)
    assert cc(s, s[::-1, ::-1]) == pytest.approx(-1.0)
    # centred s = [−1.5, −0.5, 0.5, 1.5], centred d = [−0.25, −0.25, −0.25, 0.75]
    # Σ s·d = 0.375 + 0.125 − 0.125 + 1.125 = 1.5; Σ s² = 5; Σ d² = 3·0.0625 + 0.5625 = 0.75
    # cc = 1.5 / √(5 · 0.75) = 0.774597
    d = np.array([[0.0, 0.0], [0.0, 1.0]])
    assert cc(s, d) == pytest.approx(1.5 / math.sqrt(3.75), abs=1e-9)


def test_sim_and_kl_by_hand():
    flat = np.ones((2, 2))
    one_px = np.array([[0.0, 0.0], [0.0, 1.0]])
    # s = ¼ everywhere, d = [0, 0, 0, 1]: SIM = Σ min = ¼; KL = 1 · log(1 / ¼) = log 4
    assert sim(flat, one_px) == pytest.approx(0.25)
    assert kld(flat, one_px) == pytest.approx(math.log(4), abs=1e-9)
    # d = [½, ½, 0, 0]: KL = 2 · ½ · log(½ / ¼) = log 2; SIM = ¼ + ¼ = ½
    half = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert kld(flat, half) == pytest.approx(math.log(2), abs=1e-9)
    assert sim(flat, half) == pytest.approx(0.5)
    # identical distributions: KL 0, SIM 1
    assert kld(half, half) == pytest.approx(0.0, abs=1e-12)
    assert sim(3 * half, half) == pytest.approx(1.0)


def test_auc_judd_by_hand():
    # positives 0.9 and 0.4 (2 fixated of 4 pixels). Thresholds 0.9, 0.4:
    #   t = 0.9: 1 pixel ≥ t, 1 fixated → TPR ½, FPR (1 − 1)/2 = 0
    #   t = 0.4: 3 pixels ≥ t, 2 fixated → TPR 1, FPR (3 − 2)/2 = ½
    # curve (0,0) (0,½) (½,1) (1,1): area 0 + ½·(½+1)/2 + ½·1 = 0.375 + 0.5 = 0.875
    assert auc_judd(SAL_AUC, FIX_DIAG) == pytest.approx(0.875)
    assert auc_judd(np.full((3, 3), 0.7), np.eye(3)) == pytest.approx(0.5)  # constant: chance
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert auc_judd(perfect, FIX_DIAG) == pytest.approx(1.0)


def test_shuffled_auc_by_hand():
    # positives 0.9, 0.4; negatives from other images at (0,1) and (1,0): 0.2, 0.6
    # pairs won: 0.9>0.2, 0.9>0.6, 0.4>0.2 (0.4<0.6 lost) → 3/4
    other = np.array([[0, 1], [1, 0]])
    assert auc_shuffled(SAL_AUC, FIX_DIAG, other) == pytest.approx(0.75)
    # a negative at a fixated pixel too (0.4): 0.9 beats all 3; 0.4 beats 0.2, ties 0.4 (½),
    # loses to 0.6 → (3 + 1.5) / 6 = 0.75
    other2 = np.array([[0, 1], [1, 1]])
    assert auc_shuffled(SAL_AUC, FIX_DIAG, other2) == pytest.approx(0.75)
    assert auc_from_scores([1, 1], [1, 1, 1]) == pytest.approx(0.5)


def test_errors_are_clear():
    with pytest.raises(ValueError, match="shape"):
        nss(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="no fixations"):
        auc_judd(RAMP, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="sums to zero"):
        kld(np.zeros((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        cc(np.array([[np.nan, 1.0], [0.0, 0.0]]), np.ones((2, 2)))


def test_all_metrics_keys():
    m = all_metrics(SAL_AUC, FIX_DIAG, FIX_DIAG.astype(float), None)
    assert set(m) == {"auc_judd", "sauc", "nss", "cc", "kld", "sim"}
    assert math.isnan(m["sauc"])
