"""Balanced sampling, the ordinal age loss and the EMA of weights (salface.training.sampling)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from salface.training.sampling import (AGE_YEARS_BINS, AgeYearsHead, AgeYearsLoss, ModelEMA, OrdinalLoss,
                                       balance_weights, balanced_order, expected_shares, expected_years,
                                       ordinal_targets, stratum_ids, utkface_age_years, utkface_race,
                                       within_stratum_weights)


def test_utkface_race_from_file_names():
    assert utkface_race("/d/26_1_3_20170119.jpg.chip.jpg") == 3
    assert utkface_race("100_0_0_2017.jpg.chip.jpg") == 0
    assert utkface_race("39_1_20170116174525125.jpg.chip.jpg") == -1   # no race field
    assert utkface_race("61_1_7_2017.jpg.chip.jpg") == -1               # not one of the 5


def test_strata_combine_keys_and_keep_missing_apart():
    ids, n = stratum_ids([np.array([0, 0, 1, 1, 0]), np.array([2, 2, 2, -1, -1])])
    assert n == 4
    assert ids[0] == ids[1] and len({ids[0], ids[2], ids[3], ids[4]}) == 4


def test_expected_stratum_frequencies():
    strata = np.array([0] * 90 + [1] * 9 + [2] * 1)          # counts 90, 9, 1
    assert expected_shares(strata, 1.0) == pytest.approx([1 / 3] * 3)
    assert expected_shares(strata, 0.0) == pytest.approx([0.90, 0.09, 0.01])
    r = np.sqrt([90, 9, 1])
    assert expected_shares(strata, 0.5) == pytest.approx(r / r.sum())
    w = balance_weights(strata, 1.0)
    assert w.sum() == pytest.approx(1.0) and w[-1] == pytest.approx(90 * w[0])
    with pytest.raises(ValueError):
        balance_weights(strata, -1.0)


def test_sampler_draws_match_the_expected_frequencies():
    strata = np.array([0] * 900 + [1] * 90 + [2] * 10)
    cand = np.arange(1000) + 5000
    draws = balanced_order(cand, strata, 1.0, seed=1, num_samples=60000)
    got = np.bincount(strata[draws - 5000], minlength=3) / len(draws)
    assert got == pytest.approx([1 / 3] * 3, abs=0.01)
    assert np.array_equal(draws, balanced_order(cand, strata, 1.0, seed=1, num_samples=60000))
    assert not np.array_equal(draws, balanced_order(cand, strata, 1.0, seed=2, num_samples=60000))
    assert len(balanced_order(cand, strata, 0.5, seed=0)) == 1000


def test_ordinal_targets_are_gaussian_over_groups():
    q = ordinal_targets(torch.tensor([0, 3]), 8, 0.6)
    assert q.sum(1) == pytest.approx(torch.ones(2))
    e = np.exp(-0.5 / 0.36)                                  # neighbour weight at σ = 0.6
    assert float(q[1, 4] / q[1, 3]) == pytest.approx(e, rel=1e-5)
    assert float(q[1, 2]) == pytest.approx(float(q[1, 4]))
    assert int(q[0].argmax()) == 0 and int(q[1].argmax()) == 3
    sharp = ordinal_targets(torch.tensor([5]), 8, 0.05)
    assert float(sharp[0, 5]) == pytest.approx(1.0)


def test_ordinal_loss_prefers_near_misses():
    y = torch.tensor([3])
    near = torch.full((1, 8), -4.0)
    near[0, 4] = 4.0                                          # confident, one group off
    far = torch.full((1, 8), -4.0)
    far[0, 7] = 4.0                                           # confident, four groups off
    ce = nn.CrossEntropyLoss()
    assert float(ce(near, y)) == pytest.approx(float(ce(far, y)))   # plain CE cannot tell
    loss = OrdinalLoss(8, sigma=0.6)
    assert float(loss(near, y)) < float(loss(far, y))
    # expected-distance penalty: uniform logits → λ · mean |k − 3| over k = 0..7 = λ · 16/8
    pen = OrdinalLoss(8, sigma=0.6, penalty=0.5)
    u = torch.zeros(1, 8)
    assert float(pen(u, y) - loss(u, y)) == pytest.approx(0.5 * 16 / 8, rel=1e-5)
    # unlabelled rows are ignored
    both = torch.cat([near, far])
    assert float(loss(both, torch.tensor([3, -1]))) == pytest.approx(float(loss(near, y)))


def test_ema_update_arithmetic():
    m = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    with torch.no_grad():
        m[0].weight.fill_(1.0)
    ema = ModelEMA(m, decay=0.99)
    with torch.no_grad():
        m[0].weight.fill_(3.0)
        m[1].num_batches_tracked.fill_(7)
    ema.update(m)                                            # d = min(0.99, 1/10) = 0.1
    assert torch.allclose(ema.module[0].weight, torch.full((1, 2), 0.1 * 1 + 0.9 * 3))
    assert int(ema.module[1].num_batches_tracked) == 7       # integer buffers copied
    with torch.no_grad():
        m[0].weight.fill_(5.0)
    ema.update(m)                                            # d = 2/11
    assert torch.allclose(ema.module[0].weight, torch.full((1, 2), 2 / 11 * 2.8 + 9 / 11 * 5))
    ema.updates = 10_000
    assert ema.current_decay() == pytest.approx(0.99)
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(ValueError):
        ModelEMA(m, decay=1.0)


def test_gender_weights_balance_each_stratum():
    # stratum 0: 3 men (0), 1 woman (1); stratum 1: one each; stratum 2: men only; one unlabelled
    labels = np.array([0, 0, 0, 1, 0, 1, 0, 0, -1])
    strata = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    w = within_stratum_weights(labels, strata)
    raw = np.array([4 / 6, 4 / 6, 4 / 6, 2.0, 1.0, 1.0, 1.0, 1.0])
    assert w[:8] == pytest.approx(raw / raw.mean()) and w[8] == 0
    assert w[:3].sum() == pytest.approx(w[3])                # women and men weigh the same in stratum 0
    assert w[:8].mean() == pytest.approx(1.0)
    clipped = within_stratum_weights(np.array([0] * 9 + [1]), np.zeros(10, int), clip=2.0)
    assert clipped[-1] / clipped[0] == pytest.approx(2.0 / (10 / 18))   # 5.0 clipped to 2, 0.556 kept
    with pytest.raises(ValueError):
        within_stratum_weights(labels, strata[:3])


def test_age_in_years_from_utkface_names():
    assert utkface_age_years("/d/26_1_0_20170116171048641.jpg.chip.jpg") == 26
    assert utkface_age_years("39_1_20170116174525125.jpg.chip.jpg") == 39   # no race field
    assert utkface_age_years("/d/face.png") == -1


def test_age_years_loss_targets_and_expectation():
    """The loss is smallest for a distribution centred on the true age, grows with the distance,
    ignores rows without an age, and its expectation term is |E[age] − age| / 10."""
    loss = AgeYearsLoss(sigma=2.0, l1=0.0)
    k = torch.arange(AGE_YEARS_BINS, dtype=torch.float32)
    def centred(mu):  # logits of a Gaussian over years centred on mu
        return (-0.5 * ((k - mu) / 2.0) ** 2)[None, :]
    y = torch.tensor([30])
    at, near, far = (float(loss(centred(m), y)) for m in (30.0, 33.0, 50.0))
    assert at < near < far
    # the minimum is the target's entropy (cross-entropy of a distribution with itself)
    q = torch.softmax(centred(30.0), 1)
    assert at == pytest.approx(float(-torch.special.xlogy(q, q).sum()), rel=1e-5)
    assert float(expected_years(centred(30.0))) == pytest.approx(30.0, abs=1e-3)
    # the expectation term: uniform logits have mean 50; |50 − 30| / 10 = 2
    flat = torch.zeros(1, AGE_YEARS_BINS)
    with_l1 = AgeYearsLoss(sigma=2.0, l1=1.0)
    assert float(with_l1(flat, y)) - float(loss(flat, y)) == pytest.approx(2.0, rel=1e-5)
    # rows with age −1 are left out; ages past 100 fall in the last bin
    both = torch.cat([centred(30.0), centred(80.0)])
    assert float(loss(both, torch.tensor([30, -1]))) == pytest.approx(at, rel=1e-6)
    assert float(loss(centred(100.0), torch.tensor([117]))) == pytest.approx(float(loss(centred(100.0), torch.tensor([100]))))
    assert float(loss(both, torch.tensor([-1, -1]))) == 0.0
    with pytest.raises(ValueError):
        AgeYearsLoss(sigma=0.0)


def test_age_years_head_starts_uniform():
    head = AgeYearsHead(16)
    out = head(torch.randn(3, 16))
    assert out.shape == (3, AGE_YEARS_BINS) and float(out.abs().max()) == 0.0
