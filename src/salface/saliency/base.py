"""The saliency interface. Implementations live beside this file."""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np


class SaliencyModel(ABC):
    """Maps a batch of crops to saliency maps.

    ``__call__`` takes ``(N, H, W, 3)`` uint8 RGB crops (or one ``(H, W, 3)`` crop) and returns
    ``(N, H, W)`` (or ``(H, W)``) float32 maps in [0, 1] at the crops' resolution, each map
    scaled so that its maximum is 1 (a constant map is all ones).
    """

    name: str = "base"

    @abstractmethod
    def predict(self, crops: np.ndarray) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 → ``(N, H, W)`` float32 in [0, 1]."""

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        arr = np.asarray(crops)
        single = arr.ndim == 3
        if single:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) crops, got shape {arr.shape}")
        maps = self.predict(arr)
        return maps[0] if single else maps


def normalize_map(m: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Scale one map to [0, 1] (min → 0, max → 1); a constant map becomes all ones."""
    m = np.asarray(m, dtype=np.float32)
    lo, hi = float(m.min()), float(m.max())
    if hi - lo < eps:
        return np.ones_like(m, dtype=np.float32)
    return (m - lo) / (hi - lo)


def postprocess(m: np.ndarray, blur: float = 0.0, floor: float = 0.0) -> np.ndarray:
    """Scale a raw map to [0, 1], blur it (Gaussian, σ = ``blur`` × longer side), rescale, and
    lift it by ``floor``: ``(m + floor) / (1 + floor)`` (max stays 1, no pixel is exactly 0)."""
    out = normalize_map(m)
    if blur > 0:
        sigma = blur * max(out.shape)
        k = int(2 * np.ceil(3 * sigma) + 1)
        out = normalize_map(cv2.GaussianBlur(out, (k, k), sigma, borderType=cv2.BORDER_REPLICATE))
    if floor > 0:
        out = (out + floor) / (1.0 + floor)
    return out.astype(np.float32)
