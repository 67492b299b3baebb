"""Pictures for people: annotated images and the papers' Figure-2 triplet
(crop | saliency map | reweighted crop)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .reweight import DEFAULT_RATIO, reweight
from .types import FaceResult

_BOX = (40, 220, 60)
_LANDMARK = (255, 80, 40)


def face_label(r: FaceResult) -> str:
    """Short text like ``"25-32 female 0.97 happy"`` for one face."""
    parts = []
    if r.age is not None:
        parts.append(r.age.label)
    if r.gender is not None:
        parts.append(f"{r.gender.label} {r.gender.confidence:.2f}")
    if r.expression is not None:
        parts.append(r.expression.label)
    return " ".join(parts)


def annotate(image: np.ndarray, faces: Sequence[FaceResult],
             labels: Sequence[str] | None = None) -> np.ndarray:
    """A copy of ``image`` (RGB uint8) with each face's box, landmarks and labels drawn on it.
    ``labels`` replaces the default text (:func:`face_label`) of each face."""
    if labels is not None and len(labels) != len(faces):
        raise ValueError(f"{len(labels)} labels for {len(faces)} faces")
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 400))
    scale = max(0.4, max(h, w) / 1200)
    for i, r in enumerate(faces):
        x1, y1, x2, y2 = (int(round(v)) for v in r.face.box.as_tuple())
        cv2.rectangle(out, (x1, y1), (x2, y2), _BOX, thick, cv2.LINE_AA)
        if r.face.landmarks is not None:
            for x, y in r.face.landmarks:
                cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, _LANDMARK, -1, cv2.LINE_AA)
        text = face_label(r) if labels is None else labels[i]
        if text:
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(h - 1, y2 + th + 4)
            cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 2, ty + base // 2), _BOX, -1)
            cv2.putText(out, text, (x1 + 1, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (0, 0, 0), thick, cv2.LINE_AA)
    return out


def saliency_triplet(crop: np.ndarray, saliency: np.ndarray, ratio: float = DEFAULT_RATIO,
                     gap: int = 4) -> np.ndarray:
    """``crop | map | reweighted`` side by side (RGB uint8), as in the papers' Figure 2.
    The map is shown in grey levels (white = most salient)."""
    if saliency.shape != crop.shape[:2]:
        raise ValueError(f"map shape {saliency.shape} does not match crop {crop.shape[:2]}")
    grey = np.clip(np.rint(saliency * 255), 0, 255).astype(np.uint8)
    grey3 = np.repeat(grey[..., None], 3, axis=2)
    weighted = reweight(crop, saliency, ratio)
    sep = np.full((crop.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([crop, sep, grey3, sep, weighted], axis=1)


def save_rgb(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB uint8 image (format from the suffix), creating the folder."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(p), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{p}: could not write image")
    return p


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 image encoded as PNG (e.g. for Jupyter's ``_repr_png_``)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode an image of shape {image.shape} as PNG")
    return buf.tobytes()


def cam_overlay(crop: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The crop (RGB uint8) with a class activation map (``[0, 1]``, resized to the crop if
    needed) drawn on top as a JET heat map at weight ``alpha``."""
    if cam.shape != crop.shape[:2]:
        cam = cv2.resize(cam.astype(np.float32), (crop.shape[1], crop.shape[0]),
                         interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap(np.clip(np.rint(cam * 255), 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB).astype(np.float32)
    return np.clip(np.rint((1 - alpha) * crop.astype(np.float32) + alpha * heat), 0, 255).astype(np.uint8)
