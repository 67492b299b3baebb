"""Robustness benchmark: held-out test faces re-rendered the way real photos differ, run through
``analyze`` end to end.

**Conditions.** Each :class:`Condition` is named, has three severities (1 mild … 3 harsh; the
detector swaps have one variant each) whose parameters are fixed in :data:`CONDITIONS`, and is a
pure function ``(image, face, severity, seed) → (image, record)``: the same pixels, face and seed
always give the same output, and per-image random choices (rotation sign, colour-cast hue, hand
pose, …) are drawn from a generator seeded by ``(seed, condition, pixel hash)``, so
they do not depend on the order the images are processed in. ``record`` holds what was drawn
and what was achieved (e.g. the occluded share of the face box).

``face`` is the face YuNet finds in the *clean* image. Its box sets the scale of every
condition — blur and motion lengths are given for a 112-px-wide face and scaled to the face's
width, the resolution condition brings the *face* to a given width — and its five landmarks
place the occluders (sunglasses on the eyes, a mask over nose and mouth, a hand) and the centre
of rotation and yaw. Photometric conditions act on the whole frame, as a camera would; the
Analyzer's detector (by default what ``auto`` runs with YuNet installed, ``yunet+blazeface``;
``detector="yunet"`` for YuNet alone, as in reports before session 10) then runs on the changed
image, end to end.

**Framing** conditions change what the Analyzer is given rather than the pixels: the crop margin
(effective margin ``m`` is realised by scaling the clean detection's box about its centre by
``(1 + m) / (1 + m_model)`` before :func:`salface.crop.crop_face` adds the model's own margin,
which gives the same square as ``ClassifierConfig.margin = m`` and also allows ``m < 0``, a crop
inside the box), an off-centre box (shifted by a share of its size in a seeded direction) and
another detector (dlib HOG, ``whole``). Boxes are not clipped to the image: ``crop_face`` pads.

**Scoring.** Only faces YuNet finds in the clean image take part (the count left out is
reported). In each condition the face whose box overlaps the clean box most (IoU ≥ ``MIN_IOU``)
is scored; no such face counts as an error (and as a changed prediction). Accuracy is over the
faces with a label for the task. *Consistency* is the share of faces whose prediction equals
their clean prediction. The *mean over conditions* averages each condition's mean over its
severities; the *worst* condition is the lowest accuracy at the middle severity (a one-variant
condition counts its variant as its middle).

Keep :data:`CONDITIONS` fixed once results are published: :data:`CONDITIONS_VERSION` goes into
every report and the resumable work folder's key, so runs stay comparable.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from ..detect.base import Detector
from ..labels import labels_for
from ..types import Box, Face

CONDITIONS_VERSION = 1
"""Bump when any condition's definition or parameters change (results are then not comparable)."""

REFERENCE_FACE_WIDTH = 112.0
"""Blur and motion lengths are stated for a face this many pixels wide and scaled to the face."""

MIN_IOU = 0.1
"""A detection overlapping the clean face box less than this is not that face."""

RACE_NAMES = ("White", "Black", "Asian", "Indian", "Other")
"""UTKFace race labels 0–4."""

SUPERSAMPLE = 4
"""Occluder shapes are drawn at this many times the image resolution and area-averaged, so their
edges are anti-aliased and the occluded share is exact to well under 1 %."""


# ============================================================================ condition helpers

def _pixel_digest(image: np.ndarray) -> int:
    a = np.ascontiguousarray(image)
    h = hashlib.sha1(f"{a.shape}".encode())
    h.update(a.tobytes())
    return int.from_bytes(h.digest()[:4], "little")


def condition_rng(seed: int, name: str, image: np.ndarray) -> np.random.Generator:
    """The generator a condition draws its per-image choices from. It depends on the seed, the
    condition and the image's pixels only: not on the processing order, and not on the severity,
    so a face turns the same way and gets the same cast hue or hand pose at every severity."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode()), _pixel_digest(image)])


def _face_width(face: Face) -> float:
    return max(1.0, float(face.box.width))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = x / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(y: np.ndarray) -> np.ndarray:
    y = np.clip(y, 0.0, 1.0)
    return 255.0 * np.where(y <= 0.0031308, 12.92 * y, 1.055 * np.power(y, 1 / 2.4) - 0.055)


def landmarks_or_canonical(face: Face) -> np.ndarray:
    """The face's five landmarks, or typical frontal positions inside its box when it has none."""
    if face.landmarks is not None:
        return np.asarray(face.landmarks, dtype=np.float64)
    b = face.box
    rel = np.array([[0.32, 0.40], [0.68, 0.40], [0.50, 0.58], [0.36, 0.76], [0.64, 0.76]])
    return np.column_stack([b.x1 + rel[:, 0] * b.width, b.y1 + rel[:, 1] * b.height])


# ---------------------------------------------------------------------------- photometric

def resolution(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Shrink the frame so the face is ``face_width`` px wide (area averaging, as a sensor bins),
    then enlarge it back to its size (bicubic, as a viewer or a phone's zoom does)."""
    h, w = image.shape[:2]
    factor = min(1.0, p["face_width"] / _face_width(face))
    if factor >= 1.0:
        return image.copy(), {"factor": 1.0, "effective_face_width": _face_width(face)}
    small = downscale(image, factor)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return out, {"factor": factor, "small_size": [small.shape[1], small.shape[0]],
                 "effective_face_width": _face_width(face) * small.shape[1] / w}


def downscale(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` shrunk by ``factor`` (≤ 1) with area averaging, at least 1 × 1 px."""
    h, w = image.shape[:2]
    size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def jpeg(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A JPEG round trip at ``quality`` (OpenCV/libjpeg, 4:2:0 chroma)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(p["quality"])])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out, {"bytes": int(buf.size)}


def gaussian_blur(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Gaussian blur, σ given for a 112-px face and scaled to this face's width (defocus)."""
    sigma = p["sigma_112"] * _face_width(face) / REFERENCE_FACE_WIDTH
    out = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return out, {"sigma_px": sigma}


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised line kernel ``length`` px long at ``angle_deg`` (anti-aliased, odd size)."""
    length = max(1.0, float(length))
    size = int(math.ceil(length)) | 1
    size += 2
    k = np.zeros((size, size), np.float64)
    c = (size - 1) / 2.0
    t = np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, max(2, int(math.ceil(length * 8))))
    a = math.radians(angle_deg)
    xs, ys = c + t * math.cos(a), c - t * math.sin(a)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                        (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + dy, x0 + dx), wgt)
    return (k / k.sum()).astype(np.float32)


def motion_blur(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Linear camera shake: a line kernel of ``length_112`` px (for a 112-px face) at a seeded angle."""
    length = p["length_112"] * _face_width(face) / REFERENCE_FACE_WIDTH
    angle = float(rng.uniform(0.0, 180.0))
    out = cv2.filter2D(image, -1, motion_kernel(length, angle), borderType=cv2.BORDER_REFLECT_101)
    return out, {"length_px": length, "angle_deg": angle}


def noise(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Sensor noise: independent Gaussian noise of σ grey levels on every pixel and channel."""
    out = _to_uint8(image.astype(np.float64) + rng.normal(0.0, p["sigma"], image.shape))
    return out, {}


def exposure(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Exposure error: linear light (sRGB decoded) times ``gain`` (0.6 = −40 %), clipped, re-encoded."""
    return _to_uint8(_linear_to_srgb(_srgb_to_linear(image.astype(np.float64)) * p["gain"])), {}


def low_contrast(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Haze / flat light: every pixel pulled toward the image's mean grey by ``1 − factor``."""
    x = image.astype(np.float64)
    m = float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean())
    return _to_uint8(m + p["factor"] * (x - m)), {"mean_grey": m}


_CHROMA_U = np.array([1.0, -0.5, -0.5]) / math.sqrt(1.5)
_CHROMA_V = np.array([0.0, 1.0, -1.0]) / math.sqrt(2.0)
_LUMA = np.array([0.2126, 0.7152, 0.0722])


def colour_cast(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Wrong white balance: per-channel gains in linear light along a seeded hue, of size
    ``strength``, normalised so a grey of any level keeps its luminance."""
    hue = float(rng.uniform(0.0, 360.0))
    d = math.cos(math.radians(hue)) * _CHROMA_U + math.sin(math.radians(hue)) * _CHROMA_V
    gains = 1.0 + p["strength"] * d
    gains = gains / float(_LUMA @ gains)
    out = _to_uint8(_linear_to_srgb(_srgb_to_linear(image.astype(np.float64)) * gains))
    return out, {"hue_deg": hue, "gains_rgb": [round(float(g), 4) for g in gains]}


def grayscale(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Desaturation toward luma (ITU-R BT.601, as OpenCV): ``saturation`` 0 is a grey photo."""
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)[..., None]
    return _to_uint8(g + p["saturation"] * (image.astype(np.float64) - g)), {}


# ---------------------------------------------------------------------------- occlusion

def _local_frame(face: Face) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """(landmarks, eye distance, unit vector along the eyes, unit vector down the face)."""
    lm = landmarks_or_canonical(face)
    ex = lm[1] - lm[0]
    d = float(np.hypot(*ex))
    if d < 1e-6:
        d = 0.36 * _face_width(face)
        ex = np.array([d, 0.0])
    u = ex / np.hypot(*ex)
    v = np.array([-u[1], u[0]])   # eyes left→right in the image, so this points down the face
    return lm, d, u, v


def _ellipse_poly(c: np.ndarray, a: float, b: float, u: np.ndarray, v: np.ndarray,
                  t0: float = 0.0, t1: float = 2 * math.pi, n: int = 48) -> np.ndarray:
    t = np.linspace(t0, t1, n)
    return c + np.outer(a * np.cos(t), u) + np.outer(b * np.sin(t), v)


def _capsule(p0: np.ndarray, p1: np.ndarray, r: float, n: int = 16) -> np.ndarray:
    ax = p1 - p0
    L = float(np.hypot(*ax)) or 1e-6
    e = ax / L
    nrm = np.array([-e[1], e[0]])
    half1 = _ellipse_poly(p1, r, r, e, nrm, -math.pi / 2, math.pi / 2, n)
    half0 = _ellipse_poly(p0, r, r, e, nrm, math.pi / 2, 3 * math.pi / 2, n)
    return np.vstack([half1, half0])


def _sunglasses_polys(face: Face, k: float, pose: dict) -> list[np.ndarray]:
    lm, d, u, v = _local_frame(face)
    mid = (lm[0] + lm[1]) / 2
    a, b = 0.42 * d * k, 0.32 * d * k
    polys = [_ellipse_poly(lm[0] + 0.04 * d * k * v, a, b, u, v),
             _ellipse_poly(lm[1] + 0.04 * d * k * v, a, b, u, v)]
    bh = 0.05 * d * k   # bridge
    polys.append(np.array([mid - 0.5 * d * u - bh * v - 0.03 * d * v, mid + 0.5 * d * u - bh * v - 0.03 * d * v,
                           mid + 0.5 * d * u + bh * v - 0.03 * d * v, mid - 0.5 * d * u + bh * v - 0.03 * d * v]))
    reach = 0.55 * _face_width(face)   # temples, out to about the sides of the head
    for s, eye in ((-1, lm[0]), (1, lm[1])):
        p0, p1 = eye + s * 0.3 * d * k * u - 0.08 * d * k * v, mid + s * reach * u - 0.12 * d * v
        polys.append(_capsule(p0, p1, 0.035 * d * k + 0.3, 6))
    return polys


def _mask_polys(face: Face, k: float, pose: dict) -> list[np.ndarray]:
    lm, d, u, v = _local_frame(face)
    anchor = (lm[2] + (lm[3] + lm[4]) / 2) / 2
    w, top, side = 0.95 * d * k, 0.45 * d * k, 0.5 * d * k
    bottom = _ellipse_poly(anchor + side * v, w, 0.55 * d * k, u, v, 0.0, math.pi, 32)
    return [np.vstack([anchor - w * u - top * v, anchor + w * u - top * v, bottom])]


def _hand_polys(face: Face, k: float, pose: dict) -> list[np.ndarray]:
    lm, d, u, v = _local_frame(face)
    anchors = {"mouth": (lm[3] + lm[4]) / 2 + 0.15 * d * v,
               "right_cheek": (lm[0] + lm[3]) / 2 - 0.25 * d * u,
               "left_cheek": (lm[1] + lm[4]) / 2 + 0.25 * d * u}
    c = anchors[pose["anchor"]]
    ang = math.radians(pose["angle_deg"])
    up = -(math.cos(ang) * v) + math.sin(ang) * u           # fingers point up the face, tilted
    across = np.array([-up[1], up[0]])
    s = d * k
    polys = [_ellipse_poly(c, 0.45 * s, 0.5 * s, across, up)]
    for off, length in ((-0.3, 0.65), (-0.1, 0.78), (0.1, 0.74), (0.3, 0.58)):
        base = c + off * s * across + 0.35 * s * up
        polys.append(_capsule(base, base + length * s * up, 0.1 * s))
    tb = c + 0.4 * s * across
    polys.append(_capsule(tb, tb + 0.5 * s * (0.7 * across + 0.7 * up), 0.11 * s))
    return polys


def _draw_alpha(shape: tuple[int, int], polys: list[np.ndarray]) -> np.ndarray:
    """Coverage in [0, 1] of the union of ``polys`` on an ``H × W`` grid (supersampled)."""
    h, w = shape
    big = np.zeros((h * SUPERSAMPLE, w * SUPERSAMPLE), np.uint8)
    for p in polys:   # one at a time: fillPoly of several overlapping contours leaves holes
        cv2.fillPoly(big, [np.rint((p + 0.5) * SUPERSAMPLE - 0.5).astype(np.int32)], 255, lineType=cv2.LINE_8)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def box_share(alpha: np.ndarray, box: Box) -> float:
    """Covered share of ``box`` (the part of it inside the image counts; fractional edges too)."""
    h, w = alpha.shape
    x1, y1, x2, y2 = box.as_tuple()
    xs = np.clip(np.minimum(np.arange(w) + 1, x2) - np.maximum(np.arange(w), x1), 0, 1)
    ys = np.clip(np.minimum(np.arange(h) + 1, y2) - np.maximum(np.arange(h), y1), 0, 1)
    weight = np.outer(ys, xs)
    area = float(weight.sum())
    return float((alpha * weight).sum() / area) if area > 0 else 0.0


def fit_occluder(shape: tuple[int, int], face: Face, polys_fn: Callable[[Face, float, dict], list[np.ndarray]],
                 pose: dict, share: float, k_max: float = 4.0, iters: int = 22) -> tuple[np.ndarray, float, float]:
    """Scale ``k`` of the occluder by bisection so it covers ``share`` of the face box.
    Returns ``(alpha, k, achieved share)``; a shape that cannot reach the share stops at ``k_max``."""
    def cover(k: float) -> tuple[np.ndarray, float]:
        a = _draw_alpha(shape, polys_fn(face, k, pose))
        return a, box_share(a, face.box)

    a_hi, s_hi = cover(k_max)
    if s_hi <= share:
        return a_hi, k_max, s_hi
    lo, hi = 0.0, k_max
    for _ in range(iters):
        mid = (lo + hi) / 2
        if cover(mid)[1] < share:
            lo = mid
        else:
            hi = mid
    a, s = cover(hi)
    return a, hi, s


_SKIN = ((241, 194, 167), (224, 172, 138), (198, 134, 103), (160, 104, 72), (118, 74, 50), (86, 54, 38))
_MASK_COLOURS = ((168, 200, 226), (236, 236, 236), (40, 40, 44))


def occlusion(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """An occluder placed by the landmarks and scaled to cover ``share`` of the face box:
    sunglasses on the eyes, a face mask over nose and mouth, or a hand (palm, four fingers and a
    thumb) over the mouth or a cheek, with seeded colour and pose. Shaded, anti-aliased fill."""
    shape = p["shape"]
    pose: dict = {}
    if shape == "sunglasses":
        fn, base = _sunglasses_polys, np.array([28.0, 28.0, 32.0]) + rng.uniform(-8, 8)
    elif shape == "mask":
        fn, base = _mask_polys, np.array(_MASK_COLOURS[int(rng.integers(len(_MASK_COLOURS)))], float)
    elif shape == "hand":
        fn, base = _hand_polys, np.array(_SKIN[int(rng.integers(len(_SKIN)))], float)
        pose = {"anchor": str(rng.choice(["mouth", "right_cheek", "left_cheek"])),
                "angle_deg": float(rng.uniform(-35.0, 35.0))}
    else:
        raise ValueError(f"unknown occluder shape {shape!r}")
    h, w = image.shape[:2]
    alpha, k, got = fit_occluder((h, w), face, fn, pose, p["share"])
    _, _, _, v = _local_frame(face)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = face.box.center
    shade = 1.0 + 0.12 * ((xx - cx) * v[0] + (yy - cy) * v[1]) / max(face.box.height, 1.0)
    fill = base[None, None, :] * shade[..., None] + rng.normal(0.0, 2.0, (h, w, 1))
    out = image.astype(np.float64) * (1 - alpha[..., None]) + fill * alpha[..., None]
    return _to_uint8(out), {"scale": round(k, 4), "achieved_share": round(got, 4), "colour": base.round(1).tolist(), **pose}


# ---------------------------------------------------------------------------- geometry

def _signed(rng: np.random.Generator) -> int:
    return 1 if rng.random() < 0.5 else -1


def rotation(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """In-plane rotation by ±``angle`` degrees (seeded sign; positive = counter-clockwise on
    screen) about the face box centre; the frame keeps its size, borders reflect the scene."""
    angle = _signed(rng) * p["angle"]
    m = cv2.getRotationMatrix2D(face.box.center, angle, 1.0)
    h, w = image.shape[:2]
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return out, {"angle_deg": angle, "matrix": m.round(6).tolist()}


def yaw_homography(face: Face, angle_deg: float) -> np.ndarray:
    """The homography that turns the face plane by ``angle_deg`` about the vertical axis through
    its centre, seen by a pinhole camera of focal length 2 × face width at the distance that
    keeps the unturned face its size."""
    cx, cy = face.box.center
    f = 2.0 * _face_width(face)
    b = face.box
    src = np.array([[b.x1, b.y1], [b.x2, b.y1], [b.x2, b.y2], [b.x1, b.y2]], np.float64)
    a = math.radians(angle_deg)
    X, Y = src[:, 0] - cx, src[:, 1] - cy
    Xr, Zr = X * math.cos(a), X * math.sin(a)
    dst = np.column_stack([cx + f * Xr / (f + Zr), cy + f * Y / (f + Zr)])
    return cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))


def yaw(image: np.ndarray, face: Face, p: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Mild head turn by ±``angle`` degrees (seeded sign), a perspective warp of the face plane."""
    angle = _signed(rng) * p["angle"]
    hm = yaw_homography(face, angle)
    h, w = image.shape[:2]
    out = cv2.warpPerspective(image, hm, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return out, {"angle_deg": angle, "homography": hm.round(6).tolist()}


# ============================================================================ the conditions

@dataclass(frozen=True)
class Condition:
    """A named change to the input with its parameters per severity (``levels[0]`` is severity 1).

    ``kind`` is ``"photometric"``, ``"occlusion"``, ``"geometric"`` (a pixel function ``fn``) or
    ``"framing"`` (``fn`` is None; the runner changes the Analyzer's detector / boxes)."""

    name: str
    kind: str
    description: str
    levels: tuple[dict[str, Any], ...]
    fn: Callable[[np.ndarray, Face, dict, np.random.Generator], tuple[np.ndarray, dict]] | None = None

    @property
    def severities(self) -> tuple[int, ...]:
        return tuple(range(1, len(self.levels) + 1))

    @property
    def middle(self) -> int:
        return (len(self.levels) + 1) // 2

    def params(self, severity: int) -> dict[str, Any]:
        if severity not in self.severities:
            raise ValueError(f"condition {self.name!r} has severities {list(self.severities)}, got {severity}")
        return dict(self.levels[severity - 1])

    def apply(self, image: np.ndarray, face: Face, severity: int, seed: int = 0) -> tuple[np.ndarray, dict]:
        """The changed image (same size, uint8 RGB) and a record of the parameters and draws."""
        if self.fn is None:
            raise ValueError(f"condition {self.name!r} is a framing condition: it changes the "
                             "Analyzer's boxes or detector, not the pixels")
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"condition {self.name!r} expects an H×W×3 uint8 image, got {img.shape} {img.dtype}")
        p = self.params(severity)
        out, rec = self.fn(img, face, p, condition_rng(seed, self.name, img))
        return np.ascontiguousarray(out, dtype=np.uint8), {**p, **rec}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "description": self.description,
                "levels": [dict(lv) for lv in self.levels], "middle": self.middle}


def _c(name, kind, desc, key, values, fn=None, **fixed) -> Condition:
    return Condition(name, kind, desc, tuple({**fixed, key: v} for v in values), fn)


CONDITIONS: tuple[Condition, ...] = (
    _c("resolution", "photometric", "face brought to N px wide (area), upscaled back (bicubic)",
       "face_width", (64, 32, 16), resolution),
    _c("jpeg", "photometric", "JPEG round trip at quality q", "quality", (50, 20, 10), jpeg),
    _c("gaussian-blur", "photometric", "Gaussian blur, σ in px for a 112-px face", "sigma_112",
       (0.75, 1.5, 3.0), gaussian_blur),
    _c("motion-blur", "photometric", "linear motion blur, length in px for a 112-px face, seeded angle",
       "length_112", (5.0, 9.0, 15.0), motion_blur),
    _c("noise", "photometric", "Gaussian sensor noise, σ in grey levels", "sigma", (5.0, 10.0, 20.0), noise),
    _c("underexposure", "photometric", "linear-light gain (0.6 = −40 %)", "gain", (0.8, 0.6, 0.4), exposure),
    _c("overexposure", "photometric", "linear-light gain (1.4 = +40 %), clipped", "gain", (1.2, 1.4, 1.6), exposure),
    _c("low-contrast", "photometric", "contrast about the mean grey scaled by a factor", "factor",
       (0.7, 0.5, 0.3), low_contrast),
    _c("colour-cast", "photometric", "white-balance error: linear gains along a seeded hue", "strength",
       (0.15, 0.3, 0.45), colour_cast),
    _c("grayscale", "photometric", "saturation kept (0 = grey photo)", "saturation", (0.5, 0.25, 0.0), grayscale),
    _c("sunglasses", "occlusion", "dark glasses on the eyes, share of the face box", "share",
       (0.10, 0.20, 0.30), occlusion, shape="sunglasses"),
    _c("mask", "occlusion", "face mask over nose and mouth, share of the face box", "share",
       (0.10, 0.20, 0.30), occlusion, shape="mask"),
    _c("hand", "occlusion", "hand over mouth or a cheek (seeded), share of the face box", "share",
       (0.10, 0.20, 0.30), occlusion, shape="hand"),
    _c("rotation", "geometric", "in-plane rotation about the face centre, ± degrees (seeded sign)",
       "angle", (10.0, 20.0, 30.0), rotation),
    _c("yaw", "geometric", "head turn by perspective warp of the face plane, ± degrees (seeded sign)",
       "angle", (10.0, 20.0, 30.0), yaw),
    _c("margin-tight", "framing", "crop margin (model: 30 %); negative = crop inside the box",
       "margin", (0.15, 0.0, -0.10)),
    _c("margin-loose", "framing", "crop margin (model: 30 %)", "margin", (0.45, 0.60, 0.80)),
    _c("off-centre", "framing", "box shifted by a share of its size in a seeded direction", "shift",
       (0.10, 0.20, 0.30)),
    _c("detector-dlib-hog", "framing", "dlib HOG detector instead of YuNet (no landmarks)", "detector",
       ("dlib-hog",)),
    _c("detector-whole", "framing", "no detector: the whole image is the face", "detector", ("whole",)),
)

_BY_NAME = {c.name: c for c in CONDITIONS}


def get_conditions(names: str | Sequence[str] | None = None) -> list[Condition]:
    """Conditions by name (comma-separated string or list); ``None``/``"all"`` gives all, in order."""
    if names is None or names == "all" or names == ["all"]:
        return list(CONDITIONS)
    if isinstance(names, str):
        names = [n for n in (s.strip() for s in names.split(",")) if n]
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown:
        raise ValueError(f"unknown condition(s) {unknown}; known: {', '.join(_BY_NAME)}")
    return [_BY_NAME[n] for n in dict.fromkeys(names)]


# ============================================================================ framing detectors

class CachedFaces(Detector):
    """Faces known in advance for each image (keyed by pixel content), optionally reframed.

    ``transform(face, rng) → face`` changes each known face (scale its box, shift it); the
    generator is seeded by the image's pixels, so the change is the same on every run. Boxes are
    *not* clipped to the image: :func:`salface.crop.crop_face` pads what falls outside."""

    name = "cached"

    def __init__(self, faces: dict[int, list[Face]], transform: Callable[[Face, np.random.Generator], Face] | None = None,
                 *, seed: int = 0, label: str = "cached") -> None:
        self.faces = faces
        self.transform = transform
        self.seed = seed
        self.label = label

    def detect(self, image: np.ndarray) -> list[Face]:
        img = np.asarray(image)
        key = _pixel_digest(img)
        if key not in self.faces:
            raise KeyError("image not among the cached clean images (framing conditions use the clean pixels)")
        if self.transform is None:
            return list(self.faces[key])
        rng = condition_rng(self.seed, self.label, img)
        return [self.transform(f, rng) for f in self.faces[key]]


def scale_face(face: Face, s: float) -> Face:
    """``face`` with its box scaled by ``s`` about its centre (landmarks unchanged)."""
    cx, cy = face.box.center
    hw, hh = face.box.width * s / 2, face.box.height * s / 2
    return Face(Box(cx - hw, cy - hh, cx + hw, cy + hh), face.score, face.landmarks, face.eyes)


def shift_face(face: Face, dx: float, dy: float) -> Face:
    b = face.box
    d = np.array([dx, dy], np.float32)
    lm = None if face.landmarks is None else face.landmarks + d
    eyes = None if face.eyes is None else face.eyes + d
    return Face(Box(b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy), face.score, lm, eyes)


def margin_transform(margin: float, model_margin: float) -> Callable[[Face, np.random.Generator], Face]:
    """Box scaling that makes ``crop_face(..., margin=model_margin)`` cut the square of ``margin``."""
    if margin <= -1.0:
        raise ValueError(f"margin must be > -1, got {margin}")
    s = (1.0 + margin) / (1.0 + model_margin)
    return lambda f, rng: scale_face(f, s)


def offcentre_transform(shift: float) -> Callable[[Face, np.random.Generator], Face]:
    """Shift each box by ``shift`` of its width/height along a seeded direction."""
    def move(f: Face, rng: np.random.Generator) -> Face:
        a = rng.uniform(0.0, 2 * math.pi)
        return shift_face(f, shift * f.box.width * math.cos(a), shift * f.box.height * math.sin(a))
    return move


# ============================================================================ subset

def stratified_subset(samples: Sequence[Any], limit: int | None, seed: int,
                      key: Callable[[Any], Any]) -> list[Any]:
    """A seeded subset of ``limit`` samples keeping each stratum's share (largest remainders;
    ties broken by the seeded draw), returned in the input order. ``None`` or ``limit ≥ n``: all."""
    n = len(samples)
    if limit is None or limit >= n:
        return list(samples)
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    rng = np.random.default_rng(seed)
    strata: dict[Any, list[int]] = {}
    for i, s in enumerate(samples):
        strata.setdefault(key(s), []).append(i)
    keys = sorted(strata, key=repr)
    quota = {k: limit * len(strata[k]) / n for k in keys}
    take = {k: int(math.floor(q)) for k, q in quota.items()}
    order = sorted(keys, key=lambda k: (-(quota[k] - take[k]), rng.random()))
    for k in order[: limit - sum(take.values())]:
        take[k] += 1
    chosen: list[int] = []
    for k in keys:
        idx = np.array(strata[k])
        chosen += idx[rng.permutation(len(idx))[: take[k]]].tolist()
    return [samples[i] for i in sorted(chosen)]


# ============================================================================ aggregation

def _acc(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float | None:
    """Share of ``pred == truth`` over the faces with ``truth ≥ 0`` (in ``mask``). With the clean
    predictions as ``truth`` this is the consistency (faces without a clean face left out)."""
    m = truth >= 0
    if mask is not None:
        m = m & mask
    n = int(m.sum())
    return None if n == 0 else float((pred[m] == truth[m]).mean())


def _mean(vals: Iterable[float | None]) -> float | None:
    v = [x for x in vals if x is not None]
    return float(np.mean(v)) if v else None


def summarize(truth: dict[str, np.ndarray], clean: dict[str, np.ndarray],
              cells: dict[str, dict[int, dict[str, np.ndarray]]], middle: dict[str, int],
              groups: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, Any]:
    """Aggregate predictions into the report's numbers.

    ``truth[task]`` true class per face (−1: no label); ``clean[task]`` the clean prediction
    (−1: no face); ``cells[condition][severity][task]`` the prediction under each condition
    (−1: face not found); ``middle[condition]`` its middle severity; ``groups[grouping][group]`` a
    boolean mask over faces. Accuracies are fractions; drops are ``clean − condition`` in points
    (×100). Per task: clean accuracy, per condition and severity accuracy and consistency, each
    condition's mean over severities, the mean over conditions (of those means) and at the middle
    severity, the worst condition at the middle severity, overall consistency, and the same per
    group."""
    groups = groups or {}

    def block(task: str, mask: np.ndarray | None) -> dict[str, Any]:
        y, c = truth[task], clean[task]
        clean_acc = _acc(c, y, mask)
        conds: dict[str, Any] = {}
        for name, sevs in cells.items():
            by = {int(s): _acc(p[task], y, mask) for s, p in sorted(sevs.items())}
            cons = {int(s): _acc(p[task], c, mask) for s, p in sorted(sevs.items())}
            mid = middle[name]
            conds[name] = {"accuracy": by, "mean": _mean(by.values()), "middle": by.get(mid),
                           "drop_middle": None if by.get(mid) is None or clean_acc is None
                           else 100 * (clean_acc - by[mid]),
                           "consistency": cons, "consistency_mean": _mean(cons.values())}
        mean_all = _mean(c_["mean"] for c_ in conds.values())
        mids = {n: c_["middle"] for n, c_ in conds.items() if c_["middle"] is not None}
        worst = min(mids, key=lambda n: (mids[n], n)) if mids else None
        all_cons = [v for c_ in conds.values() for v in c_["consistency"].values()]
        return {"n": int(((y >= 0) & (mask if mask is not None else True)).sum()),
                "clean": clean_acc, "conditions": conds,
                "mean_over_conditions": mean_all,
                "mean_drop": None if mean_all is None or clean_acc is None else 100 * (clean_acc - mean_all),
                "mean_middle": _mean(mids.values()),
                "worst_middle": None if worst is None else {
                    "condition": worst, "accuracy": mids[worst],
                    "drop": None if clean_acc is None else 100 * (clean_acc - mids[worst])},
                "consistency_overall": _mean(all_cons)}

    out: dict[str, Any] = {}
    for task in truth:
        t = block(task, None)
        mids = [cells[n][middle[n]][task] for n in cells if middle[n] in cells[n]]
        if mids:   # faces whose prediction is the clean one in every condition at the middle severity
            stable = np.all([m == clean[task] for m in mids], axis=0) & (clean[task] >= 0)
            t["stable_all_middle"] = float(stable[clean[task] >= 0].mean()) if (clean[task] >= 0).any() else None
        t["groups"] = {}
        for gname, members in groups.items():
            g = {}
            for label, mask in members.items():
                b = block(task, np.asarray(mask, bool))
                if b["n"] == 0:
                    continue
                g[label] = {k: b[k] for k in ("n", "clean", "mean_over_conditions", "mean_drop",
                                              "worst_middle", "consistency_overall")}
            if g:
                t["groups"][gname] = g
        out[task] = t
    return out


def done_when_checks(summary: dict[str, Any], *, mean_points: float = 4.0, worst_points: float = 12.0,
                     gender_gap: float = 2.0, minor_gap: float = 5.0) -> list[dict[str, Any]]:
    """The issue's acceptance lines, each ``{"check", "value", "limit", "passed"}`` (points)."""
    out = []
    for task, t in summary.items():
        if t.get("mean_drop") is not None:
            out.append({"check": f"{task}: mean over conditions within {mean_points:g} points of clean",
                        "value": t["mean_drop"], "limit": mean_points, "passed": t["mean_drop"] <= mean_points})
        if t.get("worst_middle") and t["worst_middle"]["drop"] is not None:
            w = t["worst_middle"]
            out.append({"check": f"{task}: no condition more than {worst_points:g} points below clean at its "
                                 f"middle severity (worst: {w['condition']})",
                        "value": w["drop"], "limit": worst_points, "passed": w["drop"] <= worst_points})
    g = summary.get("gender", {}).get("groups", {})
    pairs = [("gender", "women", "men", gender_gap, "gender accuracy: women within {:g} points of men"),
             ("age band", "0-19", "20+", minor_gap, "gender accuracy: ages 0–19 within {:g} points of adults (20+)")]
    for grouping, a, b, limit, text in pairs:
        ga, gb = g.get(grouping, {}).get(a), g.get(grouping, {}).get(b)
        if not ga or not gb:
            continue
        for what, key in (("clean", "clean"), ("mean over conditions", "mean_over_conditions")):
            if ga[key] is None or gb[key] is None:
                continue
            gap = 100 * (gb[key] - ga[key])
            # sampling error of the gap between two independent groups (binomial, in points)
            se = 100 * math.sqrt(ga[key] * (1 - ga[key]) / ga["n"] + gb[key] * (1 - gb[key]) / gb["n"])
            out.append({"check": text.format(limit) + f" ({what}; gap = {b} − {a})",
                        "value": gap, "limit": limit, "passed": abs(gap) <= limit, "standard_error": se})
    return out


# ============================================================================ runner

@dataclass
class FaceItem:
    """One test face that takes part: its sample, clean pixels, clean face and pixel key."""

    sample: Any
    image: np.ndarray
    face: Face
    key: int


@dataclass
class BenchmarkResult:
    tasks: tuple[str, ...]
    items: list[FaceItem]
    truth: dict[str, np.ndarray]
    clean: dict[str, np.ndarray]
    cells: dict[str, dict[int, dict[str, np.ndarray]]]
    found: dict[str, dict[int, float]]
    records: dict[str, dict[int, dict[str, Any]]]
    seconds: dict[str, float]
    skipped: list[dict[str, str]] = field(default_factory=list)


def _face_json(f: Face) -> dict[str, Any]:
    return {"box": list(f.box.as_tuple()), "score": float(f.score),
            "landmarks": None if f.landmarks is None else np.asarray(f.landmarks).tolist(),
            "eyes": None if f.eyes is None else np.asarray(f.eyes).tolist()}


def _face_from_json(d: dict[str, Any]) -> Face:
    lm, eyes = d.get("landmarks"), d.get("eyes")
    return Face(Box(*d["box"]), float(d["score"]), None if lm is None else np.asarray(lm, np.float32),
                None if eyes is None else np.asarray(eyes, np.float32))


def _best_face(faces: Sequence[Any], ref: Box) -> Any | None:
    """The face (a FaceResult or Face) whose box overlaps ``ref`` most, if at least ``MIN_IOU``."""
    best, best_iou = None, MIN_IOU
    for f in faces:
        box = f.face.box if hasattr(f, "face") else f.box
        iou = box.iou(ref)
        if iou >= best_iou:
            best, best_iou = f, iou
    return best


def _encode(pred: np.ndarray) -> str:
    return "".join("." if v < 0 else str(int(v)) for v in pred)


def _decode(s: str) -> np.ndarray:
    return np.array([-1 if ch == "." else int(ch) for ch in s], np.int64)


def _model_margin(analyzer: Any) -> float:
    margins = {float(g.config.margin) for g in getattr(analyzer, "groups", [])}
    if len(margins) != 1:
        raise ValueError(f"margin conditions need one crop margin across the loaded models, got {sorted(margins)}")
    return margins.pop()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class RobustnessRunner:
    """Runs the conditions over a list of labelled samples through one :class:`Analyzer`.

    ``work_dir`` (optional) makes the run resumable: the clean detections and each finished
    condition × severity are kept there under a key of the samples, seed, settings and
    :data:`CONDITIONS_VERSION`, and reused when the key matches."""

    def __init__(self, analyzer: Any, tasks: Sequence[str], *, seed: int = 0, work_dir: str | os.PathLike | None = None,
                 run_key: str = "", verbose: bool = False, placer: Any = None) -> None:
        self.analyzer = analyzer
        # the detector whose clean-image faces place the conditions (default: the Analyzer's)
        self.placer = placer if placer is not None else analyzer.detector
        self.tasks = tuple(tasks)
        self.seed = int(seed)
        self.work = Path(work_dir) if work_dir else None
        self.run_key = run_key
        self.say = _log if verbose else (lambda m: None)

    # ---------------------------------------------------------------- cache
    def _load(self, name: str) -> dict | None:
        if self.work is None:
            return None
        p = self.work / name
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            return None
        return d if d.get("key") == self.run_key else None

    def _store(self, name: str, payload: dict) -> None:
        if self.work is None:
            return
        self.work.mkdir(parents=True, exist_ok=True)
        tmp = self.work / (name + ".tmp")
        tmp.write_text(json.dumps({"key": self.run_key, **payload}))
        os.replace(tmp, self.work / name)

    # ---------------------------------------------------------------- steps
    def clean_faces(self, samples: Sequence[Any]) -> tuple[list[FaceItem], list[dict[str, str]]]:
        """Load every sample and find its face in the clean image (cached)."""
        cached = self._load("clean_detections.json") or {}
        dets: dict[str, Any] = cached.get("faces", {})
        items, skipped = [], []
        for s in samples:
            try:
                img = s.load()
            except Exception as exc:   # a bad file is reported, never stops the benchmark
                skipped.append({"path": s.path, "reason": f"unreadable: {exc}"})
                continue
            if s.path not in dets:
                ref = s.box if getattr(s, "box", None) is not None else Box(0, 0, img.shape[1], img.shape[0])
                best = _best_face(self.placer.detect(img), ref)
                dets[s.path] = None if best is None else _face_json(best)
            if dets[s.path] is None:
                skipped.append({"path": s.path, "reason": "no face found in the clean image"})
                continue
            items.append(FaceItem(s, img, _face_from_json(dets[s.path]), _pixel_digest(img)))
        self._store("clean_detections.json", {"faces": dets})
        return items, skipped

    def _predict(self, analyzer: Any, images: Iterable[np.ndarray], refs: Sequence[Box]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        preds = {t: np.full(len(refs), -1, np.int64) for t in self.tasks}
        found = np.zeros(len(refs), bool)
        for i, res in enumerate(analyzer.analyze_batch(images)):
            if not res.ok:
                self.say(f"  face {i}: {res.error} (counted as not found)")
                continue
            f = _best_face(res.faces, refs[i])
            if f is None:
                continue
            found[i] = True
            for t, p in f.predictions().items():
                if t in preds:
                    preds[t][i] = int(p.index)
        return preds, found

    def _framing_analyzer(self, cond: Condition, severity: int, items: list[FaceItem]) -> Any:
        p = cond.params(severity)
        an = copy.copy(self.analyzer)
        if "detector" in p:
            from ..detect import get_detector
            an.detector = get_detector(p["detector"])
            return an
        faces = {it.key: [it.face] for it in items}
        if "margin" in p:
            tf = margin_transform(p["margin"], _model_margin(self.analyzer))
        elif "shift" in p:
            tf = offcentre_transform(p["shift"])
        else:
            raise ValueError(f"framing condition {cond.name!r} has no margin, shift or detector")
        an.detector = CachedFaces(faces, tf, seed=self.seed, label=cond.name)
        return an

    def run(self, samples: Sequence[Any], conditions: Sequence[Condition]) -> BenchmarkResult:
        items, skipped = self.clean_faces(samples)
        refs = [it.face.box for it in items]
        truth = {t: np.array([int(it.sample.labels.get(t, -1)) for it in items], np.int64) for t in self.tasks}
        seconds: dict[str, float] = {}
        got = self._load("cell_clean.json")
        if got is None:
            t0 = time.perf_counter()
            preds, found = self._predict(self.analyzer, (it.image for it in items), refs)
            seconds["clean"] = time.perf_counter() - t0
            self._store("cell_clean.json", {"preds": {t: _encode(v) for t, v in preds.items()},
                                            "found": _encode(found.astype(int)), "seconds": seconds["clean"]})
        else:
            preds = {t: _decode(got["preds"][t]) for t in self.tasks}
            seconds["clean"] = got.get("seconds", 0.0)
        clean = preds
        self.say(f"clean: {len(items)} faces, " + ", ".join(f"{t} {100 * (_acc(clean[t], truth[t]) or 0):.2f} %"
                                                             for t in self.tasks))
        cells: dict[str, dict[int, dict[str, np.ndarray]]] = {}
        found_rate: dict[str, dict[int, float]] = {}
        records: dict[str, dict[int, dict[str, Any]]] = {}
        for cond in conditions:
            for sev in cond.severities:
                fname = f"cell_{cond.name}_s{sev}.json"
                got = self._load(fname)
                if got is None:
                    t0 = time.perf_counter()
                    recs: list[dict] = []
                    if cond.fn is None:
                        an = self._framing_analyzer(cond, sev, items)
                        images: Iterable[np.ndarray] = (it.image for it in items)
                    else:
                        an = self.analyzer

                        def gen(cond=cond, sev=sev) -> Iterator[np.ndarray]:
                            for it in items:
                                out, rec = cond.apply(it.image, it.face, sev, self.seed)
                                recs.append(rec)
                                yield out
                        images = gen()
                    p, f = self._predict(an, images, refs)
                    secs = time.perf_counter() - t0
                    got = {"preds": {t: _encode(v) for t, v in p.items()}, "found": _encode(f.astype(int)),
                           "seconds": secs, "record": summarize_records(cond.params(sev), recs)}
                    self._store(fname, got)
                cells.setdefault(cond.name, {})[sev] = {t: _decode(got["preds"][t]) for t in self.tasks}
                found_rate.setdefault(cond.name, {})[sev] = float(_decode(got["found"]).mean()) if items else 0.0
                records.setdefault(cond.name, {})[sev] = got["record"]
                seconds[f"{cond.name}/{sev}"] = got["seconds"]
                self.say(f"{cond.name} s{sev}: found {100 * found_rate[cond.name][sev]:.1f} %, "
                         + ", ".join(f"{t} {100 * (_acc(cells[cond.name][sev][t], truth[t]) or 0):.2f} %"
                                     for t in self.tasks) + f" ({got['seconds']:.0f} s)")
        return BenchmarkResult(self.tasks, items, truth, clean, cells, found_rate, records, seconds, skipped)


def summarize_records(params: dict[str, Any], records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The level's parameters plus the mean (and range) of every numeric per-image record."""
    out: dict[str, Any] = {"params": dict(params)}
    keys = sorted({k for r in records for k, v in r.items()
                   if k not in params and isinstance(v, (int, float)) and not isinstance(v, bool)})
    for k in keys:
        v = np.array([r[k] for r in records if k in r], float)
        out[k] = {"mean": round(float(v.mean()), 4), "min": round(float(v.min()), 4), "max": round(float(v.max()), 4)}
    return out


# ============================================================================ groups

def face_groups(items: Sequence[FaceItem], dataset: str) -> dict[str, dict[str, np.ndarray]]:
    """Boolean masks per group: gender, age group, age band (0–19 / 20+ years), UTKFace race;
    for FER+ the expression classes."""
    n = len(items)
    out: dict[str, dict[str, np.ndarray]] = {}

    def add(grouping: str, label: str, i: int) -> None:
        out.setdefault(grouping, {}).setdefault(label, np.zeros(n, bool))[i] = True

    for i, it in enumerate(items):
        lab, meta = it.sample.labels, it.sample.meta
        if "gender" in lab:
            add("gender", ("men", "women")[lab["gender"]], i)
        if "age" in lab:
            add("age group", labels_for("age")[lab["age"]], i)
        years = meta.get("age_years")
        if years is not None:
            add("age band", "0-19" if int(years) < 20 else "20+", i)
        if dataset == "utkface" and meta.get("race") is not None:
            add("race", RACE_NAMES[int(meta["race"])], i)
        if "expression" in lab:
            add("expression", labels_for("expression")[lab["expression"]], i)
    order = {"gender": ["women", "men"], "age group": list(labels_for("age")), "age band": ["0-19", "20+"],
             "race": list(RACE_NAMES), "expression": list(labels_for("expression"))}
    return {g: {k: out[g][k] for k in order.get(g, sorted(out[g])) if k in out[g]} for g in out}


# ============================================================================ report

def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _pts(v: float | None) -> str:
    return "–" if v is None else f"{v + 0.0:+.1f}".replace("-0.0", "+0.0")


def _delta(drop: float | None) -> str:
    """A drop (clean − condition, points) written as the change from clean, e.g. "−3.1"."""
    return "–" if drop is None else _pts(-drop).replace("-", "−")


def build_report(result: BenchmarkResult, conditions: Sequence[Condition], *, dataset: str,
                 meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON payload: settings, summary, checks, per-face predictions (one character per face)."""
    groups = face_groups(result.items, dataset)
    middle = {c.name: c.middle for c in conditions}
    summary = summarize(result.truth, result.clean, result.cells, middle, groups)
    for task, t in summary.items():
        if task == "age":   # the Adience convention: within one group of the truth
            y = result.truth[task]
            t["one_off"] = {"clean": _one_off(result.clean[task], y),
                            "conditions": {n: {s: _one_off(p[task], y) for s, p in sev.items()}
                                           for n, sev in result.cells.items()}}
    return {
        **meta,
        "conditions_version": CONDITIONS_VERSION,
        "conditions": [c.to_dict() for c in conditions],
        "faces": len(result.items), "skipped": result.skipped,
        "summary": summary,
        "checks": done_when_checks(summary),
        "detection_rate": result.found,
        "records": result.records,
        "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
        "group_sizes": {g: {k: int(m.sum()) for k, m in members.items()} for g, members in groups.items()},
        "per_face": {"paths": [os.path.basename(it.sample.path) if dataset == "utkface"
                               else "/".join(Path(it.sample.path).parts[-2:]) for it in result.items],
                     "truth": {t: _encode(v) for t, v in result.truth.items()},
                     "clean": {t: _encode(v) for t, v in result.clean.items()},
                     "conditions": {n: {str(s): {t: _encode(v) for t, v in p.items()} for s, p in sev.items()}
                                    for n, sev in result.cells.items()}},
    }


def _one_off(pred: np.ndarray, truth: np.ndarray) -> float | None:
    m = (truth >= 0)
    if not m.any():
        return None
    return float(((pred[m] >= 0) & (np.abs(pred[m] - truth[m]) <= 1)).mean())


def _levels_text(c: Condition) -> str:
    vals = [next(v for k, v in lv.items() if k != "shape") for lv in c.levels]
    return " / ".join(f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in vals)


def markdown(report: dict[str, Any]) -> str:
    """The Markdown version of :func:`build_report`'s payload."""
    L = [f"# Robustness: {report['dataset']} {report.get('split', 'test')} subset through `analyze` end to end", "",
         f"- date: {report['date']}", f"- commit: `{report['commit']}`", f"- machine: {report['machine']}",
         f"- command: `{report['command']}`",
         f"- data: {report['data_description']}",
         f"- faces: {report['faces']} (of {report['subset_size']} sampled; {len(report['skipped'])} left out: "
         "no face found by YuNet in the clean image or unreadable)",
         f"- backend: {report['backend']}, detector: {report.get('detector', 'yunet')} (YuNet's clean boxes and "
         "landmarks place the conditions)",
         f"- seed: {report['seed']}, conditions version {report['conditions_version']}",
         "- models: " + "; ".join(f"`{m['name']}` sha256 `{m['sha256']}`" for m in report["models"]), ""]
    summ = report["summary"]
    tasks = list(summ)
    L += ["## Done-when checks", ""]
    for c in report["checks"]:
        se = f"; standard error of the gap {c['standard_error']:.2f}" if "standard_error" in c else ""
        L.append(f"- **{'PASS' if c['passed'] else 'FAIL'}** — {c['check']}: {c['value'] + 0.0:.2f} points "
                 f"(limit {c['limit']:g}{se})")
    L += ["", "## Summary", "",
          "| task | clean | mean over conditions (Δ) | mean at middle severity | worst at middle severity (Δ) | consistency with clean |",
          "|---|---|---|---|---|---|"]
    for t in tasks:
        s = summ[t]
        w = s["worst_middle"] or {}
        L.append(f"| {t} | {_pct(s['clean'])} | {_pct(s['mean_over_conditions'])} ({_delta(s['mean_drop'])}) | "
                 f"{_pct(s['mean_middle'])} | {w.get('condition', '–')}: {_pct(w.get('accuracy'))} ({_delta(w.get('drop'))}) | "
                 f"{_pct(s['consistency_overall'])} % (same as clean in every middle-severity condition: {_pct(s.get('stable_all_middle'))} %) |")
    L += ["", "Accuracy in %; Δ = condition − clean, in points. Consistency: share of faces whose prediction equals the clean one "
          "(a face not found counts as changed).", ""]
    conds = {c["name"]: c for c in report["conditions"]}
    L += ["## Accuracy per condition and severity", "",
          "Severity 1 / 2 / 3 (middle = 2; one-variant conditions have severity 1 only). "
          "`found`: faces the detector found (IoU ≥ 0.1 with the clean box) at each severity.", "",
          "| condition | parameter 1 / 2 / 3 | found % | " + " | ".join(f"{t} 1 / 2 / 3 | {t} Δ at middle" for t in tasks) + " |",
          "|---|---|---|" + "---|---|" * len(tasks)]
    for name, c in conds.items():
        cond_obj = Condition(name, c["kind"], c["description"], tuple(c["levels"]))
        found = " / ".join(_pct(report["detection_rate"][name][s]) for s in sorted(report["detection_rate"][name]))
        row = [f"{name}", f"{_levels_text(cond_obj)} ({c['description']})", found]
        for t in tasks:
            cc = summ[t]["conditions"][name]
            row.append(" / ".join(_pct(cc["accuracy"][s]) for s in sorted(cc["accuracy"])))
            row.append(_delta(cc["drop_middle"]))
        L.append("| " + " | ".join(row) + " |")
    if "age" in summ and "one_off" in summ["age"]:
        oo = summ["age"]["one_off"]
        L += ["", f"Age 1-off (within one group): clean {_pct(oo['clean'])} %; at the middle severity: "
              + ", ".join(f"{n} {_pct(v.get(conds[n]['middle']))}" for n, v in oo["conditions"].items()) + "."]
    L += ["", "## Consistency with the clean prediction (%, severity 1 / 2 / 3)", "",
          "| condition | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for name in conds:
        L.append(f"| {name} | " + " | ".join(" / ".join(_pct(v) for _, v in sorted(summ[t]["conditions"][name]["consistency"].items()))
                                          for t in tasks) + " |")
    L += ["", "## Per group", "",
          "Accuracy (%) clean, mean over conditions, and the worst condition at the middle severity, per group. "
          "Gaps between groups of a few hundred faces carry a sampling error of several points "
          "(binomial standard error √(p(1−p)/n)).", ""]
    for t in tasks:
        for gname, members in summ[t]["groups"].items():
            L += [f"### {t} by {gname}", "",
                  "| group | n | clean | mean over conditions (Δ) | worst at middle (Δ) | consistency |",
                  "|---|---|---|---|---|---|"]
            for label, g in members.items():
                w = g["worst_middle"] or {}
                L.append(f"| {label} | {g['n']} | {_pct(g['clean'])} | {_pct(g['mean_over_conditions'])} "
                         f"({_delta(g['mean_drop'])}) | "
                         f"{w.get('condition', '–')}: {_pct(w.get('accuracy'))} ({_delta(w.get('drop'))}) | "
                         f"{_pct(g['consistency_overall'])} |")
            L.append("")
    L += ["## What each condition did (means over faces)", ""]
    for name, sev in report["records"].items():
        parts = []
        for s, r in sorted(sev.items(), key=lambda kv: int(kv[0])):
            extra = ", ".join(f"{k} {v['mean']:g} [{v['min']:g}, {v['max']:g}]" for k, v in r.items() if k != "params")
            parts.append(f"s{s}: {json.dumps(r['params'])}" + (f" → {extra}" if extra else ""))
        L.append(f"- **{name}** — " + "; ".join(parts))
    total = sum(report["seconds"].values())
    L += ["", f"Run time: {total / 60:.1f} min of network and transform time "
          f"(clean pass {report['seconds'].get('clean', 0):.0f} s).", ""]
    return "\n".join(L)


def write_report(report: dict[str, Any], out_dir: str | os.PathLike, stem: str) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    md = out / f"{stem}.md"
    md.write_text(markdown(report))
    return md


# ============================================================================ provenance

def model_info(analyzer: Any) -> list[dict[str, Any]]:
    """Name, role, the SHA-256 of the model's manifest entry and the file that actually ran (the
    ONNX / INT8 file on the ONNX backend) with its SHA-256, for every model the Analyzer runs."""
    from ..hub import bundled_entry, sha256_file

    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for g in getattr(analyzer, "groups", []):
        cfg = g.config
        parts = [(cfg.name, "classifier: " + ", ".join(g.tasks), g.classifier.network)]
        if g.saliency is not None and getattr(g.saliency, "model_name", None):
            parts.append((g.saliency.model_name, "saliency", getattr(g.saliency, "network", None)))
        for name, role, net in parts:
            if name in seen:
                continue
            seen.add(name)
            try:
                sha = bundled_entry(name).get("sha256", "unknown")
            except Exception as exc:   # provenance must not stop a finished benchmark
                sha = f"unknown ({exc})"
            rec = {"name": name, "role": role, "sha256": sha}
            ran = getattr(net, "path", None)
            if ran is not None:
                rec.update(file=Path(ran).name, file_sha256=sha256_file(ran))
            out.append(rec)
    path = getattr(analyzer.detector, "model_path", None)
    if path is not None:
        out.append({"name": Path(path).name, "role": f"detector ({analyzer.detector.name})",
                    "sha256": sha256_file(path)})
    return out


def run_key(payload: dict[str, Any]) -> str:
    """A short hash of the settings that must match for cached cells to be reused."""
    return hashlib.sha256(json.dumps({**payload, "conditions_version": CONDITIONS_VERSION},
                                     sort_keys=True).encode()).hexdigest()[:16]


# ============================================================================ the whole benchmark

DATASETS: dict[str, dict[str, Any]] = {
    "utkface": {"tasks": ("age", "gender"), "stratify": ("age", "gender")},
    "ferplus": {"tasks": ("expression",), "stratify": ("expression",)},
}


def rebase_paths(samples: Sequence[Any], all_paths: Sequence[str], data: str | os.PathLike | None) -> list[Any]:
    """Samples with their paths moved from the split file's dataset root (the common folder of
    ``all_paths``) to ``data``; unchanged when ``data`` is None or already that root."""
    if data is None:
        return list(samples)
    root = os.path.commonpath([os.path.dirname(p) for p in all_paths])
    data = Path(data)
    if Path(root).resolve() == data.resolve():
        return list(samples)
    from dataclasses import replace
    return [replace(s, path=str(data / os.path.relpath(s.path, root))) for s in samples]


def benchmark(dataset: str, *, split_file: str | os.PathLike, data: str | os.PathLike | None = None,
              limit: int | None = 400, seed: int = 0, conditions: str | Sequence[str] | None = None,
              backend: str = "onnx", model: str = "default", out_dir: str | os.PathLike = "docs/benchmarks/robustness",
              work_dir: str | os.PathLike | None = None, detector_model: str | os.PathLike | None = None,
              batch_size: int = 64, command: str = "", verbose: bool = True,
              source_frame: bool = False, detector: str = "auto", split: str = "test") -> Path:
    """Run the robustness benchmark on ``dataset``'s ``split`` (``"test"``; ``"val"`` to choose
    between candidates without reading test) of ``split_file`` and write ``<dataset>.json`` and
    ``<dataset>.md`` into ``out_dir`` (``source_frame``: ``Analyzer(source_frame=...)``).
    ``detector`` is the Analyzer's detector on every rendered image (``"auto"``: what ``auto``
    runs with YuNet installed, which the benchmark needs anyway: ``yunet+blazeface``); YuNet's
    faces on the clean images place the conditions and pick the faces whatever it is, so reports
    with different detectors compare face by face. Returns the Markdown path. Finished cells in
    ``work_dir`` are reused only for the same subset, seed, backend, models, detector and commit."""
    from ..data.splits import read_split
    from ..utils import git_commit, machine
    from ..pipeline import Analyzer

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(DATASETS)}")
    spec = DATASETS[dataset]
    conds = get_conditions(conditions)
    splits = read_split(split_file)
    if split not in splits:
        raise ValueError(f"{split_file}: no {split} split")
    all_paths = [s.path for ss in splits.values() for s in ss]
    pool = rebase_paths(splits[split], all_paths, data)  # the requested split's faces
    strat = spec["stratify"]
    subset = stratified_subset(pool, limit, seed, key=lambda s: tuple(s.labels.get(t, -1) for t in strat))
    tasks = spec["tasks"]
    det_opts = {"model_path": str(detector_model)} if detector_model else None
    from ..detect import get_detector

    placer = get_detector("yunet", **(det_opts or {}))
    if detector == "auto":
        detector = "yunet+blazeface"
    analyzer = Analyzer(detector=placer if detector == "yunet" else detector, model=model, tasks=tasks,
                        backend=backend, batch_size=batch_size, detector_options=det_opts,
                        source_frame=source_frame)
    models = model_info(analyzer)
    # the commit is part of the key: a runtime change can flip borderline predictions, so cells
    # cached by other code are never mixed into a report
    key = run_key({"dataset": dataset, "paths": [os.path.basename(s.path) for s in subset], "seed": seed,
                   "backend": backend, "models": models, "tasks": list(tasks), "commit": git_commit(),
                   **({"source_frame": True} if source_frame else {}),
                   **({} if detector == "yunet" else {"detector": detector})})
    work = Path(work_dir) if work_dir else Path("cache") / "robustness" / f"{dataset}-n{len(subset)}-seed{seed}"
    runner = RobustnessRunner(analyzer, tasks, seed=seed, work_dir=work, run_key=key, verbose=verbose,
                              placer=placer)
    t0 = time.perf_counter()
    result = runner.run(subset, conds)
    meta = {"dataset": dataset, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "commit": git_commit(), "machine": machine(), "command": command, "backend": backend, "seed": seed,
            "split_file": str(split_file), "subset_size": len(subset), "test_size": len(pool),
            "split": split,
            "data_description": f"{len(subset)} of the {len(pool)} {split} faces of `salface splits {dataset}` "
                                f"(seeded, stratified on {' × '.join(strat)})",
            "models": models, "source_frame": source_frame, "detector": analyzer.detector.name,
            "wall_seconds": round(time.perf_counter() - t0, 1), "work_dir": str(work)}
    report = build_report(result, conds, dataset=dataset, meta=meta)
    return write_report(report, out_dir, dataset)
