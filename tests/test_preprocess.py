"""The one preprocessing path: colour handling, resizing, reweighting, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from salface.models.config import ClassifierConfig
from salface.models.preprocess import prepare_crops, to_gray3, to_input_tensor


def _cfg(**kw) -> ClassifierConfig:
    base = dict(name="t", backbone="mobilenet_v2", tasks=("gender",), input_size=4,
                mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), saliency="none")
    base.update(kw)
    return ClassifierConfig(**base)


def test_gray_is_bt601_luminance_replicated():
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    g = to_gray3(px)
    # 0.299*255 = 76.245 → 76; 0.587*255 = 149.685 → 150; 0.114*255 = 29.07 → 29;
    # 0.299*10 + 0.587*20 + 0.114*30 = 2.99 + 11.74 + 3.42 = 18.15 → 18
    assert g[0, :, 0].tolist() == [76, 150, 29, 18]
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()


def test_prepare_crops_resizes_and_keeps_rgb(astronaut):
    cfg = _cfg(input_size=32)
    out = prepare_crops(astronaut[:100, :100], cfg)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    batch = prepare_crops(np.stack([astronaut[:64, :64]] * 3), _cfg(input_size=64, color="gray"))
    assert batch.shape == (3, 64, 64, 3)
    assert (batch[..., 0] == batch[..., 2]).all()


def test_prepare_crops_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        prepare_crops(np.zeros((1, 4, 4, 3), np.float32), _cfg())
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        prepare_crops(np.zeros((4, 4), np.uint8), _cfg())


def test_to_input_tensor_normalises_known_values():
    crops = np.full((1, 4, 4, 3), 255, np.uint8)
    crops[0, 0, 0] = 0
    x = to_input_tensor(crops, None, _cfg())
    assert x.shape == (1, 3, 4, 4)
    assert x.is_contiguous(memory_format=torch.channels_last)
    # (1.0 - 0.5) / 0.25 = 2 ; (0 - 0.5) / 0.25 = -2
    assert torch.allclose(x[0, :, 1, 1], torch.full((3,), 2.0))
    assert torch.allclose(x[0, :, 0, 0], torch.full((3,), -2.0))


def test_to_input_tensor_reweights_with_saliency():
    crops = np.full((1, 4, 4, 3), 200, np.uint8)
    sal = np.zeros((1, 4, 4), np.float32)
    sal[0, 2, 2] = 1.0
    cfg = _cfg(saliency="mlnet", ratio=0.3, mean=(0, 0, 0), std=(1, 1, 1))
    x = to_input_tensor(crops, sal, cfg)
    v = 200 / 255
    assert torch.allclose(x[0, 0, 2, 2], torch.tensor(v))          # S = 1 keeps the pixel
    assert torch.allclose(x[0, 0, 0, 0], torch.tensor(0.7 * v))    # S = 0 keeps 1 - r
    # uint8 maps (as cached) give the same result as float maps
    x8 = to_input_tensor(crops, (sal * 255).astype(np.uint8), cfg)
    assert torch.allclose(x, x8)


def test_saliency_model_requires_maps_and_matching_shapes():
    cfg = _cfg(saliency="mlnet")
    crops = np.zeros((2, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="saliency maps are required"):
        to_input_tensor(crops, None, cfg)
    with pytest.raises(ValueError, match="does not match"):
        to_input_tensor(crops, np.zeros((2, 3, 3), np.float32), cfg)
