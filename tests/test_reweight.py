import numpy as np
import pytest
import torch

from salface.reweight import reweight, reweight_tensor, weight_map


def test_formula_known_values():
    crop = np.full((2, 2, 3), 100, np.uint8)
    sal = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    out = reweight(crop, sal, 0.3)
    # 100*(0.7+0.3*S): S=0 -> 70, S=1 -> 100, S=0.5 -> 85, S=0.25 -> 77.5 -> rint -> 78 (half to even)
    assert out[..., 0].tolist() == [[70, 100], [85, 78]]
    assert out.dtype == np.uint8


def test_ratio_extremes():
    crop = np.full((1, 2, 3), 200, np.uint8)
    sal = np.array([[0.0, 0.5]], np.float32)
    np.testing.assert_array_equal(reweight(crop, sal, 0.0), crop)                 # r=0: identity
    assert reweight(crop, sal, 1.0)[..., 0].tolist() == [[0, 100]]                  # r=1: crop*S
    assert reweight(crop, sal, 0.7)[..., 0].tolist() == [[60, 130]]                 # VEGAC 0.7


def test_float_and_batch():
    crops = np.ones((3, 4, 4, 3), np.float32)
    maps = np.zeros((3, 4, 4), np.float32)
    out = reweight(crops, maps, 0.3)
    assert out.dtype == np.float32 and np.allclose(out, 0.7)


def test_torch_matches_numpy():
    rng = np.random.default_rng(1)
    crops = rng.random((2, 5, 5, 3)).astype(np.float32)
    maps = rng.random((2, 5, 5)).astype(np.float32)
    ref = reweight(crops, maps, 0.3)
    t = reweight_tensor(torch.from_numpy(crops).permute(0, 3, 1, 2), torch.from_numpy(maps), 0.3)
    np.testing.assert_allclose(t.permute(0, 2, 3, 1).numpy(), ref, rtol=1e-6)


def test_rejects_bad_ratio_and_maps():
    with pytest.raises(ValueError):
        weight_map(np.zeros((2, 2)), 1.5)
    with pytest.raises(ValueError):
        reweight(np.zeros((2, 2, 3), np.uint8), np.full((2, 2), 2.0), 0.3)
    with pytest.raises(ValueError):
        reweight(np.zeros((2, 2, 3), np.uint8), np.zeros((3, 3)), 0.3)
