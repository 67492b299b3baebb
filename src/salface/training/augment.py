"""Photo-like ("in the wild") training augmentation of cached uint8 face crops.

:func:`degrade_batch` applies, per sample and at random, the kinds of damage that real photos
show and that ``salface robustness`` re-renders test faces with: low resolution, JPEG
compression, Gaussian or motion blur, sensor noise, exposure (brightness, contrast, gamma),
colour casts, grayscale, occluding patches. Rotation, shift and zoom are the geometric part of
:func:`salface.train.augment_batch` (preset ``Augment.rotate/shift/scale``), which runs first and
warps the crop and its saliency map together.

Saliency maps. The cache holds one ML-Net map per *clean* crop (``saliency_mlnet.npy``).
Recomputing ML-Net for every augmented crop would cost about as much as the training step itself
on two CPU cores, so the map follows the crop **geometrically** (the same affine warp and flip)
and is kept **unchanged for photometric damage** (everything here). The classifier therefore
learns from degraded pixels reweighted by the clean face's map — at inference ML-Net sees the
degraded face; at r = 0.3 the map changes the input by at most 30 %, and ML-Net's maps on faces
are smooth, centre-heavy blobs that change little with blur, noise or exposure.

Every random number comes from the ``numpy.random.Generator`` passed in, so a batch is the same
under the same seed (training seeds each epoch as ``seed * 1000 + epoch``).

The settings (:class:`WildAugment`) are probabilities per sample and ranges; the defaults follow
issue 12 (downscale to a 16–64 px wide face and back, JPEG quality 10–90, …). Each family fires
independently, so about a fifth of the samples (∏(1 − p)) stay undamaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class WildAugment:
    """Per-sample probabilities (``p_*``) and ranges of the photo-like damage."""

    p_lowres: float = 0.30
    face_width: tuple[float, float] = (16.0, 64.0)   # face width in px after downscaling
    p_blur: float = 0.20                             # Gaussian (2/3) or motion (1/3) blur
    blur_sigma: tuple[float, float] = (0.5, 2.0)
    motion_len: tuple[int, int] = (3, 9)
    p_noise: float = 0.20
    noise_sigma: tuple[float, float] = (2.0, 12.0)   # grey levels
    p_exposure: float = 0.50
    brightness: float = 0.30                         # × (1 ± brightness)
    contrast: float = 0.35                           # about the mean, × (1 ± contrast)
    gamma: tuple[float, float] = (0.6, 1.6)
    p_cast: float = 0.25
    cast: float = 0.15                               # per-channel gain 1 ± cast
    p_gray: float = 0.08
    p_jpeg: float = 0.35
    jpeg_quality: tuple[int, int] = (10, 90)
    p_occlude: float = 0.20
    occlude_side: tuple[float, float] = (0.15, 0.40)  # patch side as a fraction of the crop side

    def __post_init__(self) -> None:
        for k, v in self.__dict__.items():
            if k.startswith("p_") and not 0.0 <= v <= 1.0:
                raise ValueError(f"{k} must be a probability in [0, 1], got {v}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"jpeg_quality must be 1 ≤ lo ≤ hi ≤ 100, got {self.jpeg_quality}")
        if not 0 < self.face_width[0] <= self.face_width[1]:
            raise ValueError(f"face_width must be 0 < lo ≤ hi, got {self.face_width}")


DEFAULT_WILD = WildAugment()


def _lowres(img: np.ndarray, face_w: float, cfg: WildAugment, rng: np.random.Generator) -> np.ndarray:
    s = img.shape[0]
    target = rng.uniform(*cfg.face_width)
    f = target / max(face_w, 1.0)
    if f >= 1.0:
        return img
    small = max(4, int(round(s * f)))
    down = cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA)
    up = cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC
    return cv2.resize(down, (s, s), interpolation=up)


def _blur(img: np.ndarray, cfg: WildAugment, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 2.0 / 3.0:
        sigma = rng.uniform(*cfg.blur_sigma)
        return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)
    n = int(rng.integers(cfg.motion_len[0], cfg.motion_len[1] + 1))
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((n - 1) / 2.0, (n - 1) / 2.0), rng.uniform(0.0, 180.0), 1.0)
    k = cv2.warpAffine(k, rot, (n, n), flags=cv2.INTER_LINEAR)
    k /= max(float(k.sum()), 1e-6)
    return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REPLICATE)


def _exposure(x: np.ndarray, cfg: WildAugment, rng: np.random.Generator) -> np.ndarray:
    """``x`` float32 in [0, 255]."""
    x = x * (1.0 + rng.uniform(-cfg.brightness, cfg.brightness))
    m = float(x.mean())
    x = (x - m) * (1.0 + rng.uniform(-cfg.contrast, cfg.contrast)) + m
    x = np.clip(x, 0.0, 255.0)
    g = float(np.exp(rng.uniform(np.log(cfg.gamma[0]), np.log(cfg.gamma[1]))))
    return 255.0 * (x / 255.0) ** g


def _occlude(img: np.ndarray, cfg: WildAugment, rng: np.random.Generator) -> np.ndarray:
    s = img.shape[0]
    h = max(1, int(round(s * rng.uniform(*cfg.occlude_side))))
    w = max(1, int(round(s * rng.uniform(*cfg.occlude_side))))
    y, x = int(rng.integers(0, s - h + 1)), int(rng.integers(0, s - w + 1))
    out = img.copy()
    if rng.random() < 0.5:
        out[y:y + h, x:x + w] = rng.integers(0, 256, size=3, dtype=np.uint8)
    else:
        out[y:y + h, x:x + w] = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return out


def degrade(img: np.ndarray, rng: np.random.Generator, cfg: WildAugment = DEFAULT_WILD,
            face_width: float | None = None) -> np.ndarray:
    """One ``(S, S, 3)`` uint8 crop with random photo-like damage (a new array; ``img`` untouched).

    ``face_width``: the face's width in crop pixels (for the low-resolution step; default 0.8 S).
    Order: occlusion → exposure → colour cast → grayscale → blur → low resolution → noise → JPEG
    (scene, then camera, then file)."""
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an (S, S, 3) uint8 crop, got {img.shape} {img.dtype}")
    s = img.shape[0]
    fw = float(face_width) if face_width is not None and np.isfinite(face_width) and face_width > 0 else 0.8 * s
    # one draw per family, always in the same order, so the stream of random numbers does not
    # depend on which families fired before
    fire = rng.random(8) < np.array([cfg.p_occlude, cfg.p_exposure, cfg.p_cast, cfg.p_gray,
                                     cfg.p_blur, cfg.p_lowres, cfg.p_noise, cfg.p_jpeg])
    out = img
    if fire[0]:
        out = _occlude(out, cfg, rng)
    if fire[1] or fire[2]:
        x = out.astype(np.float32)
        if fire[1]:
            x = _exposure(x, cfg, rng)
        if fire[2]:
            x = x * rng.uniform(1.0 - cfg.cast, 1.0 + cfg.cast, size=3).astype(np.float32)
        out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if fire[3]:
        y = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        out = np.repeat(y[..., None], 3, axis=2)
    if fire[4]:
        out = _blur(out, cfg, rng)
    if fire[5]:
        out = _lowres(out, fw, cfg, rng)
    if fire[6]:
        sigma = rng.uniform(*cfg.noise_sigma)
        noise = rng.normal(0.0, sigma, size=out.shape if rng.random() < 0.5 else out.shape[:2] + (1,))
        out = np.clip(np.rint(out.astype(np.float32) + noise.astype(np.float32)), 0, 255).astype(np.uint8)
    if fire[7]:
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(out[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(out) if out is not img else img.copy()


def degrade_batch(crops: np.ndarray, rng: np.random.Generator, cfg: WildAugment = DEFAULT_WILD,
                  face_widths: np.ndarray | None = None) -> np.ndarray:
    """:func:`degrade` applied to each crop of an ``(N, S, S, 3)`` uint8 batch."""
    out = np.empty_like(crops)
    for i in range(len(crops)):
        out[i] = degrade(crops[i], rng, cfg, None if face_widths is None else float(face_widths[i]))
    return out


# ------------------------------------------------------------------------------------ context

def replicated_margin(crop: np.ndarray, tol: int = 1) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the part of a cached crop that holds real image pixels.

    A margin crop that reaches past the photo's edge is filled by replicating the edge pixels
    (``salface.crop``), so every padded column (row) equals its neighbour in every row (column).
    The rectangle excludes the leading and trailing runs of such columns and rows; a crop with
    no padding gives the whole crop. (A flat, uniform background along a whole edge reads as
    padding too, which is harmless: it is replaced by other background.)"""
    g = crop.astype(np.int16)
    if g.ndim == 3:
        g = g.max(axis=2) if g.shape[2] > 1 else g[..., 0]
    same_col = np.all(np.abs(np.diff(g, axis=1)) <= tol, axis=0)  # column j equals column j+1
    same_row = np.all(np.abs(np.diff(g, axis=0)) <= tol, axis=1)

    def runs(same: np.ndarray) -> tuple[int, int]:
        n = len(same) + 1
        lead = int(np.argmin(same)) if not same.all() else n - 1
        trail = int(np.argmin(same[::-1])) if not same.all() else 0
        return lead, n - trail

    x0, x1 = runs(same_col)
    y0, y1 = runs(same_row)
    if x1 - x0 < 2 or y1 - y0 < 2:  # a flat crop: keep it whole
        return 0, 0, crop.shape[1], crop.shape[0]
    return x0, y0, x1, y1


class BackgroundBank:
    """Scene photos to put behind a face whose crop was padded, downscaled once and held in memory.

    ``paths`` are read with OpenCV (RGB); unreadable files are skipped with a note. Each
    :meth:`patch` is a random square region of a random photo (a tenth to the whole of its short
    side), resized to the crop size, optionally grey."""

    def __init__(self, paths, max_side: int = 256, gray: bool = False, log=print) -> None:
        self.images: list[np.ndarray] = []
        for p in paths:
            im = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if im is None:
                log(f"note: background {p} could not be read; skipped")
                continue
            k = max_side / max(im.shape[:2])
            if k < 1:
                im = cv2.resize(im, (max(1, round(im.shape[1] * k)), max(1, round(im.shape[0] * k))),
                                interpolation=cv2.INTER_AREA)
            im = im[..., ::-1]
            if gray:
                im = np.repeat(cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
            self.images.append(np.ascontiguousarray(im))
        if not self.images:
            raise ValueError("no readable background photos")

    def __len__(self) -> int:
        return len(self.images)

    def patch(self, size: int, rng: np.random.Generator) -> np.ndarray:
        im = self.images[int(rng.integers(len(self.images)))]
        h, w = im.shape[:2]
        side = max(8, int(round(min(h, w) * rng.uniform(0.1, 1.0))))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        return cv2.resize(im[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_LINEAR)


def paste_context(crop: np.ndarray, bank: BackgroundBank, rng: np.random.Generator,
                  rect: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """The crop with its replicated padding (outside ``rect``, default :func:`replicated_margin`)
    replaced by a background patch, as if the face had been photographed in a scene."""
    x0, y0, x1, y1 = rect if rect is not None else replicated_margin(crop)
    s = crop.shape[0]
    if (x0, y0, x1, y1) == (0, 0, s, s):
        return crop
    inside = np.zeros((s, s), np.float32)
    inside[y0:y1, x0:x1] = 1.0
    # a soft seam (σ 1.5 px) rather than a hard frame; the face's own pixels stay untouched
    alpha = np.maximum(cv2.GaussianBlur(inside, (0, 0), 1.5), inside)[..., None]
    out = alpha * crop.astype(np.float32) + (1.0 - alpha) * bank.patch(s, rng).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def context_paths(folder: str | Path, held_out: bool = False) -> list[Path]:
    """The scene photos of ``folder`` (sorted): every fifth one (index % 5 == 0) is held out for
    evaluation (``held_out=True`` gives those), training uses the others."""
    exts = {".jpg", ".jpeg", ".png", ".bmp"}
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in exts)
    if not files:
        raise FileNotFoundError(f"no photos (.jpg/.png/.bmp) in {folder}")
    return [p for i, p in enumerate(files) if (i % 5 == 0) == held_out]


# ------------------------------------------------------------------------------------ face parts

PART_KINDS = ("eyes", "lower", "side")


def occlude_part(crop: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                 kind: str | None = None) -> np.ndarray:
    """Cover a part of the face, placed by its five landmarks (crop pixels), with a solid,
    slightly textured shape: ``eyes`` (a dark or coloured band over both eyes, like glasses or a
    visor), ``lower`` (nose tip to chin, like a scarf or a mask), ``side`` (an ellipse over a
    cheek or the mouth, like a hand or a cup). Sizes, angles and colours are drawn from
    ``rng``; the edge is soft (σ 1 px). A crop without landmarks (NaN) is returned unchanged."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (5, 2) or not np.all(np.isfinite(lm)):
        return crop
    kind = kind or PART_KINDS[int(rng.integers(len(PART_KINDS)))]
    eye_r, eye_l, nose, m_r, m_l = lm
    iod = float(np.linalg.norm(eye_l - eye_r))
    if iod < 2:
        return crop
    angle = float(np.degrees(np.arctan2(eye_l[1] - eye_r[1], eye_l[0] - eye_r[0])))
    mouth = (m_r + m_l) / 2
    s = crop.shape[0]
    alpha = np.zeros(crop.shape[:2], np.float32)
    if kind == "eyes":
        c = (eye_r + eye_l) / 2
        size = (iod * rng.uniform(1.7, 2.3), iod * rng.uniform(0.35, 0.65))
        box = cv2.boxPoints(((float(c[0]), float(c[1])), size, angle))
        cv2.fillConvexPoly(alpha, np.round(box * 4).astype(np.int32), 1.0, lineType=cv2.LINE_AA, shift=2)
        colour = rng.uniform(0, 60, 3) if rng.random() < 0.7 else rng.uniform(0, 255, 3)
    elif kind == "lower":
        top = nose + (nose - (eye_r + eye_l) / 2) * rng.uniform(-0.3, 0.1)
        bottom = mouth + (mouth - nose) * rng.uniform(1.2, 2.0)
        half = iod * rng.uniform(0.9, 1.3)
        u = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
        poly = np.array([top - u * half, top + u * half, bottom + u * half * 0.8, bottom - u * half * 0.8])
        cv2.fillConvexPoly(alpha, np.round(poly * 4).astype(np.int32), 1.0, lineType=cv2.LINE_AA, shift=2)
        colour = rng.uniform(60, 255, 3)
    elif kind == "side":
        centre = [m_r, m_l, mouth, (m_r + eye_r) / 2, (m_l + eye_l) / 2][int(rng.integers(5))]
        axes = (iod * rng.uniform(0.4, 0.8), iod * rng.uniform(0.3, 0.6))
        cv2.ellipse(alpha, (int(round(centre[0] * 4)), int(round(centre[1] * 4))),
                    (int(round(axes[0] * 4)), int(round(axes[1] * 4))), rng.uniform(0, 180), 0, 360,
                    1.0, -1, lineType=cv2.LINE_AA, shift=2)
        skin = np.array([224.0, 172.0, 140.0]) * rng.uniform(0.35, 1.1)
        colour = np.clip(skin + rng.normal(0, 12, 3), 0, 255)
    else:
        raise ValueError(f"unknown part {kind!r}; expected one of {PART_KINDS}")
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)[..., None]
    texture = rng.normal(0, rng.uniform(0, 12), (s, s, 1)).astype(np.float32)
    fill = np.clip(np.asarray(colour, np.float32)[None, None, :] + texture, 0, 255)
    if crop.ndim == 3 and np.array_equal(crop[..., 0], crop[..., 1]) and np.array_equal(crop[..., 1], crop[..., 2]):
        fill = np.repeat(fill.mean(axis=2, keepdims=True), 3, axis=2)  # a grey crop stays grey
    out = alpha * fill + (1.0 - alpha) * crop.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
