"""Crop preparation shared by inference and training, in NumPy/OpenCV (no torch).

:func:`prepare_crops` turns uint8 face crops into the uint8 crops a classifier sees: resized to
``config.input_size`` (area interpolation when shrinking, bilinear when enlarging) and, for
``config.color == "gray"``, converted to luminance (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B,
rounded) replicated to three channels. :func:`to_input_array` does the rest of a classifier's
input: reweighting by the saliency map at ``config.ratio``, scaling to [0, 1] and normalising by
``config.mean``/``config.std``, as ``(N, 3, S, S)`` float32. Training's torch version
(:func:`salface.models.preprocess.to_input_tensor`) computes the same numbers.
"""

from __future__ import annotations

import cv2
import numpy as np

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_gray3(pixels: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 RGB → luminance replicated to 3 channels (uint8)."""
    y = np.rint(pixels.astype(np.float32) @ _LUMA)
    y = np.clip(y, 0, 255).astype(np.uint8)
    return np.repeat(y[..., None], 3, axis=-1)


def resize_square(pixels: np.ndarray, size: int, interp_map: bool = False) -> np.ndarray:
    """Resize one ``H×W[×C]`` array to ``size×size`` (area when shrinking, bilinear when enlarging)."""
    h, w = pixels.shape[:2]
    if (h, w) == (size, size):
        return pixels
    interp = cv2.INTER_AREA if (h > size or w > size) else cv2.INTER_LINEAR
    return cv2.resize(pixels, (size, size), interpolation=interp)


def prepare_crops(pixels: np.ndarray, config) -> np.ndarray:
    """``(N, H, W, 3)`` (or one ``(H, W, 3)``) uint8 RGB crops → uint8 crops at
    ``config.input_size`` in the model's colour handling."""
    arr = np.asarray(pixels)
    single = arr.ndim == 3
    if single:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) crops, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 crops, got {arr.dtype}")
    s = config.input_size
    if arr.shape[1:3] != (s, s):
        arr = np.stack([resize_square(a, s) for a in arr]) if len(arr) else np.zeros((0, s, s, 3), np.uint8)
    if config.color == "gray":
        arr = to_gray3(arr)
    arr = np.ascontiguousarray(arr)
    return arr[0] if single else arr


def to_input_array(crops: np.ndarray, saliency_maps: np.ndarray | None, config,
                   ratio: float | None = None) -> np.ndarray:
    """uint8 crops ``(N, S, S, 3)`` and saliency maps ``(N, S, S)`` in [0, 1] → the model's float32
    input ``(N, 3, S, S)``: ``crop/255 × ((1 − r) + r·S)``, then ``(x − mean) / std``.

    ``saliency_maps`` must be given unless ``config.saliency == "none"``; ``ratio`` overrides
    ``config.ratio`` (an ablation)."""
    c = np.asarray(crops)
    if c.ndim != 4 or c.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) crops, got shape {c.shape}")
    x = c.astype(np.float32) * np.float32(1.0 / 255.0)
    if config.saliency != "none":
        if saliency_maps is None:
            raise ValueError(f"model {config.name!r} was trained with saliency {config.saliency!r} "
                             f"at ratio {config.ratio}; saliency maps are required")
        m = np.asarray(saliency_maps, dtype=np.float32)
        if m.shape != c.shape[:3]:
            raise ValueError(f"saliency maps shape {m.shape} does not match crops {c.shape[:3]}")
        r = np.float32(config.ratio if ratio is None else ratio)
        x *= ((np.float32(1.0) - r) + r * np.clip(m, 0.0, 1.0))[..., None]
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


__all__ = ["prepare_crops", "resize_square", "to_gray3", "to_input_array"]
