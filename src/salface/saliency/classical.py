"""Classical (training-free) saliency models: spectral residual, frequency-tuned, centre bias and
``none``. Each maps ``(N, H, W, 3)`` uint8 RGB to ``(N, H, W)`` float32 in [0, 1], max 1 per map.

Details where the papers leave room:

* **Spectral residual** (Hou & Zhang, CVPR 2007). The crop is converted to grey (ITU-R 601
  luma, values in [0, 1]) and resized (area) so its longer side is 64 px, the scale the paper
  works at. With ``A`` the amplitude and ``P`` the phase of its 2-D FFT, ``L = log A``, the
  spectral residual is ``R = L − h₃ * L`` (``h₃``: 3×3 mean filter, replicated borders); the map
  is ``|IFFT(exp(R + iP))|²`` smoothed by a Gaussian of σ = 8 px at the 64-px scale (the paper's
  σ = 8) and resized back (bilinear).
* **Frequency-tuned** (Achanta et al., CVPR 2009). The crop is converted to CIE L*a*b*
  (OpenCV, sRGB D65, float); ``S = ‖I_μ − I_whc‖₂`` per pixel, with ``I_μ`` the mean Lab vector
  of the crop and ``I_whc`` the crop blurred by the paper's 5×5 separable binomial kernel
  ``[1, 4, 6, 4, 1] / 16`` (replicated borders). Computed at full crop resolution.
* **Centre bias**: an axis-aligned Gaussian at the crop centre with σ = :data:`CENTRE_SIGMA`
  × height vertically and × width horizontally. The default 0.14 was fitted on the NUS *train*
  split only (the value maximising mean NSS on a grid; see ``docs/saliency.md``).
* **none**: all ones, so reweighting ``crop × ((1 − r) + r·S)`` is the identity.
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import SaliencyModel, normalize_map

CENTRE_SIGMA = 0.14
"""Centre-bias σ as a fraction of the map's height (vertical) and width (horizontal)."""


def _as_batch(crops: np.ndarray) -> np.ndarray:
    arr = np.asarray(crops)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) crops, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 crops, got dtype {arr.dtype}")
    return arr


class NoSaliency(SaliencyModel):
    """All-ones maps: reweighting with them leaves the crop untouched."""

    name = "none"

    def predict(self, crops: np.ndarray) -> np.ndarray:
        arr = _as_batch(crops)
        return np.ones(arr.shape[:3], dtype=np.float32)


def centre_map(height: int, width: int, sigma: float = CENTRE_SIGMA) -> np.ndarray:
    """A Gaussian centre-bias map of ``height × width``, max 1 (float32)."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    y = (np.arange(height, dtype=np.float64) - (height - 1) / 2.0) / (sigma * height)
    x = (np.arange(width, dtype=np.float64) - (width - 1) / 2.0) / (sigma * width)
    g = np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))
    return (g / g.max()).astype(np.float32)  # the Gaussian itself: max 1, minimum above 0


class CentreBias(SaliencyModel):
    """A fixed Gaussian at the centre, the same for every crop (ignores the pixels)."""

    name = "centre"

    def __init__(self, sigma: float = CENTRE_SIGMA) -> None:
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)

    def predict(self, crops: np.ndarray) -> np.ndarray:
        arr = _as_batch(crops)
        n, h, w = arr.shape[:3]
        return np.repeat(centre_map(h, w, self.sigma)[None], n, axis=0)


def _grey01(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0


class SpectralResidual(SaliencyModel):
    """Hou & Zhang (2007) spectral-residual saliency (see the module docstring)."""

    name = "spectral-residual"

    def __init__(self, scale: int = 64, sigma: float = 8.0) -> None:
        if scale < 8:
            raise ValueError(f"scale must be >= 8 px, got {scale}")
        self.scale = int(scale)
        self.sigma = float(sigma)

    def one(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        f = self.scale / max(h, w)
        sw, sh = max(4, int(round(w * f))), max(4, int(round(h * f)))
        g = cv2.resize(_grey01(rgb), (sw, sh), interpolation=cv2.INTER_AREA)
        spec = np.fft.fft2(g.astype(np.float64))
        amp = np.abs(spec)
        log_amp = np.log(amp + 1e-9)
        phase = np.angle(spec)
        residual = log_amp - cv2.blur(log_amp, (3, 3), borderType=cv2.BORDER_REPLICATE)
        sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
        k = int(2 * np.ceil(3 * self.sigma) + 1)
        sal = cv2.GaussianBlur(sal.astype(np.float32), (k, k), self.sigma,
                               borderType=cv2.BORDER_REPLICATE)
        sal = cv2.resize(sal, (w, h), interpolation=cv2.INTER_LINEAR)
        return normalize_map(np.maximum(sal, 0.0))

    def predict(self, crops: np.ndarray) -> np.ndarray:
        arr = _as_batch(crops)
        return np.stack([self.one(c) for c in arr]).astype(np.float32)


_BINOMIAL5 = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16.0


class FrequencyTuned(SaliencyModel):
    """Achanta et al. (2009) frequency-tuned saliency (see the module docstring)."""

    name = "frequency-tuned"

    def one(self, rgb: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        blurred = cv2.sepFilter2D(lab, -1, _BINOMIAL5, _BINOMIAL5, borderType=cv2.BORDER_REPLICATE)
        mean = lab.reshape(-1, 3).mean(axis=0)
        sal = np.sqrt(((blurred - mean) ** 2).sum(axis=2))
        return normalize_map(sal)

    def predict(self, crops: np.ndarray) -> np.ndarray:
        arr = _as_batch(crops)
        return np.stack([self.one(c) for c in arr]).astype(np.float32)
