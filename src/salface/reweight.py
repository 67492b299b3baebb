"""Reweighting module: blend a face crop with its saliency map.

    reweighted = crop × ((1 − r) + r × S)

``S`` is the saliency map in [0, 1] at crop resolution and ``r`` the *reweighted ratio*:
``r = 0`` leaves the crop untouched, ``r = 1`` multiplies it by the map outright. SAF-BAGE uses
``r = 0.3`` (the default here), VEGAC ``r = 0.7``. With ``r = 0.3`` a pixel the saliency model
ignores (S = 0) keeps 70 % of its value and the most salient pixel keeps 100 %.
"""

from __future__ import annotations

import numpy as np

DEFAULT_RATIO = 0.30


def weight_map(saliency: np.ndarray, ratio: float = DEFAULT_RATIO) -> np.ndarray:
    """The per-pixel factor ``(1 − r) + r·S`` (float32, same shape as ``saliency``)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    s = np.asarray(saliency, dtype=np.float32)
    if s.size and (np.nanmin(s) < -1e-6 or np.nanmax(s) > 1 + 1e-6 or np.isnan(s).any()):
        raise ValueError("saliency map must lie in [0, 1]")
    return (1.0 - ratio) + ratio * np.clip(s, 0.0, 1.0)


def reweight(crop: np.ndarray, saliency: np.ndarray, ratio: float = DEFAULT_RATIO) -> np.ndarray:
    """Reweight ``crop`` (``H×W×C`` or ``N×H×W×C``) by ``saliency`` (``H×W`` or ``N×H×W``).

    uint8 input gives uint8 output (rounded); float input gives float32 output.
    """
    c = np.asarray(crop)
    w = weight_map(saliency, ratio)
    if w.shape != c.shape[:-1]:
        raise ValueError(f"saliency shape {w.shape} does not match crop shape {c.shape[:-1]}")
    out = c.astype(np.float32) * w[..., None]
    if c.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out


def reweight_tensor(crops, saliency, ratio: float = DEFAULT_RATIO):
    """Torch version for batches: ``crops`` ``(N, C, H, W)``, ``saliency`` ``(N, 1, H, W)`` or
    ``(N, H, W)`` in [0, 1]. Used on the fly in training so a ratio sweep reuses cached maps."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    if saliency.dim() == 3:
        saliency = saliency.unsqueeze(1)
    return crops * ((1.0 - ratio) + ratio * saliency.clamp(0, 1))
