"""Classical saliency models: the interface contract and known answers on synthetic scenes."""

from __future__ import annotations

import numpy as np
import pytest

from salface.reweight import reweight
from salface.saliency import available_saliency, get_saliency
from salface.saliency.classical import CentreBias, centre_map


def _contract(maps: np.ndarray, n: int, h: int, w: int) -> None:
    assert maps.shape == (n, h, w) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    np.testing.assert_allclose(maps.reshape(n, -1).max(axis=1), 1.0)


@pytest.mark.parametrize("name", ["spectral-residual", "frequency-tuned", "centre", "center", "none"])
def test_interface_contract(name, astronaut):
    crops = np.stack([astronaut[:112, 150:262], astronaut[100:212, 200:312]])
    model = get_saliency(name)
    maps = model(crops)
    _contract(maps, 2, 112, 112)
    one = model(crops[0])
    assert one.shape == (112, 112)
    np.testing.assert_allclose(one, maps[0], atol=1e-6)


def test_names_and_errors():
    assert {"mlnet", "spectral-residual", "frequency-tuned", "centre", "none"} <= set(available_saliency())
    with pytest.raises(KeyError, match="unknown saliency model 'itti'"):
        get_saliency("itti")
    with pytest.raises(ValueError, match="uint8"):
        get_saliency("frequency-tuned")(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        get_saliency("none")(np.zeros((8, 8), np.uint8))


def test_none_makes_reweighting_the_identity(astronaut):
    crop = astronaut[:96, :96]
    s = get_saliency("none")(crop)
    assert (s == 1).all()
    assert np.array_equal(reweight(crop, s, 0.7), crop)


def test_centre_map_shape():
    m = centre_map(21, 41, sigma=0.2)
    assert m[10, 20] == pytest.approx(1.0)
    # σ_x = 0.2 · 41 = 8.2 px: 8 px right of the centre the value is exp(−½ · (8 / 8.2)²) = 0.6213
    assert m[10, 20 + 8] == pytest.approx(np.exp(-0.5 * (8 / (0.2 * 41)) ** 2), rel=1e-5)
    np.testing.assert_allclose(m, m[::-1, ::-1], atol=1e-7)  # symmetric
    with pytest.raises(ValueError):
        CentreBias(sigma=0)


def _scene_with_square(colour=(200, 40, 40)) -> np.ndarray:
    img = np.full((128, 128, 3), 128, np.uint8)
    img[80:104, 24:48] = colour  # an odd one out, off centre
    return img


def test_frequency_tuned_finds_the_coloured_square():
    m = get_saliency("frequency-tuned")(_scene_with_square())
    inside, outside = m[84:100, 28:44].mean(), m[:60, 60:].mean()
    assert inside > 0.9 and outside < 0.1


def test_spectral_residual_finds_the_odd_blob():
    rng = np.random.default_rng(0)
    # a regular texture (the spectral redundancy the method removes) plus one blob
    yy, xx = np.mgrid[:128, :128]
    tex = 128 + 40 * np.sin(xx * 2 * np.pi / 8) * np.sin(yy * 2 * np.pi / 8)
    img = np.repeat(tex[..., None], 3, axis=2)
    img[24:40, 88:104] = 255
    img = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
    m = get_saliency("spectral-residual")(img)
    y, x = np.unravel_index(np.argmax(m), m.shape)
    assert 14 <= y <= 50 and 78 <= x <= 114
    assert m[24:40, 88:104].mean() > 3 * m[80:, :48].mean()
