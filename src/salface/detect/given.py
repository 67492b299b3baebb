"""Detectors that detect nothing: boxes the user already has, or the whole image as one face.

``GivenBoxes`` is for datasets that ship face boxes (Adience folds, FER+ ``label.csv``) or for a
caller with its own detector. ``WholeImage`` is for inputs that are already face crops.
Both give score 1.0 unless told otherwise; boxes are clipped to the image and boxes that fall
entirely outside it are dropped (with landmarks kept as given).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..types import Box, Face
from .base import Detector


def _as_face(item: object) -> Face:
    if isinstance(item, Face):
        return item
    if isinstance(item, Box):
        return Face(item)
    try:
        vals = [float(v) for v in item]  # type: ignore[union-attr]
    except TypeError:
        raise TypeError(f"a given box must be a Face, a Box or (x1, y1, x2, y2[, score]), "
                        f"got {item!r}") from None
    if len(vals) not in (4, 5):
        raise ValueError(f"a given box must be (x1, y1, x2, y2) or (x1, y1, x2, y2, score), "
                         f"got {len(vals)} numbers: {vals}")
    if not all(np.isfinite(vals)):
        raise ValueError(f"a given box has a non-finite coordinate: {vals}")
    x1, y1, x2, y2 = vals[:4]
    return Face(Box(x1, y1, x2, y2), vals[4] if len(vals) == 5 else 1.0)


class GivenBoxes(Detector):
    """Returns the boxes given at construction (``(x1, y1, x2, y2)`` tuples, Boxes or Faces).

    Faces come back clipped to each image and sorted by score (stable for equal scores, so
    boxes given without scores keep their order).
    """

    name = "given"

    def __init__(self, boxes: Iterable[object] | np.ndarray = ()) -> None:
        if isinstance(boxes, np.ndarray):
            if boxes.size == 0:
                boxes = []
            elif boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
                raise ValueError(f"boxes array must be N×4 or N×5, got shape {boxes.shape}")
        self.faces: list[Face] = [_as_face(b) for b in boxes]

    def __repr__(self) -> str:
        return f"GivenBoxes({len(self.faces)} boxes)"

    def detect(self, image: np.ndarray) -> list[Face]:
        img = np.asarray(image)
        if img.ndim < 2:
            raise ValueError(f"expected an H×W×3 image, got shape {img.shape}")
        h, w = img.shape[:2]
        out = []
        for f in self.faces:
            b = f.box
            x1, x2 = min(max(b.x1, 0.0), float(w)), min(max(b.x2, 0.0), float(w))
            y1, y2 = min(max(b.y1, 0.0), float(h)), min(max(b.y2, 0.0), float(h))
            if x2 <= x1 or y2 <= y1:
                continue
            if (x1, y1, x2, y2) == b.as_tuple():
                out.append(f)
            else:
                out.append(Face(Box(x1, y1, x2, y2), f.score, f.landmarks, f.eyes))
        out.sort(key=lambda f: f.score, reverse=True)
        return out


class WholeImage(Detector):
    """The whole image as one face with score 1.0 and no landmarks (for pre-cropped faces)."""

    name = "whole"

    def __init__(self) -> None:
        pass

    def __repr__(self) -> str:
        return "WholeImage()"

    def detect(self, image: np.ndarray) -> list[Face]:
        img = np.asarray(image)
        if img.ndim < 2:
            raise ValueError(f"expected an H×W×3 image, got shape {img.shape}")
        h, w = img.shape[:2]
        if h == 0 or w == 0:
            return []
        return [Face(Box(0.0, 0.0, float(w), float(h)), 1.0, None)]

