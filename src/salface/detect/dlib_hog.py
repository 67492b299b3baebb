"""dlib's frontal face detector: HOG features + linear SVM (5 pose-specific filters).

Source: ``dlib.get_frontal_face_detector()`` (dlib, Boost Software License; trained on
dlib's labelled faces). Installed with ``pip install salface[dlib]`` (the prebuilt ``dlib-bin``
wheel). It finds roughly frontal faces of at least ~80×80 px (~40 px with ``upsample=1``).

Returned scores are the SVM margins from ``detector.run`` (not probabilities: 0 is the decision
threshold, typical faces score 0.5–3); ``adjust_threshold`` shifts the threshold. dlib's boxes
are tight around eyebrows-to-chin, a little smaller than YuNet's. No landmarks are returned.
"""

from __future__ import annotations

import threading

import numpy as np

from ..types import Box, Face
from .base import Detector

INSTALL_HINT = "pip install salface[dlib]  (installs the prebuilt dlib-bin wheel)"


def _import_dlib():
    try:
        import dlib  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(f"the 'dlib-hog' detector needs dlib, which is not installed: "
                          f"{INSTALL_HINT}") from exc
    return dlib


class DlibHogDetector(Detector):
    """dlib HOG frontal face detector.

    ``upsample``: how many times dlib doubles the image before scanning (0 = none; 1 finds
    faces down to ~40 px at 4× the cost). ``adjust_threshold``: added to dlib's 0 threshold
    (negative finds more, weaker faces).
    """

    name = "dlib-hog"

    def __init__(self, upsample: int = 1, adjust_threshold: float = 0.0) -> None:
        if int(upsample) < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        dlib = _import_dlib()
        self.upsample = int(upsample)
        self.adjust_threshold = float(adjust_threshold)
        self._det = dlib.get_frontal_face_detector()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DlibHogDetector(upsample={self.upsample}, adjust_threshold={self.adjust_threshold})"

    def detect(self, image: np.ndarray) -> list[Face]:
        img = self._checked(image)
        if img is None:
            return []
        h, w = img.shape[:2]
        with self._lock:
            rects, scores, _ = self._det.run(img, self.upsample, self.adjust_threshold)
        faces = []
        for r, s in zip(rects, scores):
            # dlib rectangles are inclusive (right/bottom are the last pixel): +1 for exclusive
            x1 = min(max(float(r.left()), 0.0), float(w))
            y1 = min(max(float(r.top()), 0.0), float(h))
            x2 = min(max(float(r.right() + 1), 0.0), float(w))
            y2 = min(max(float(r.bottom() + 1), 0.0), float(h))
            if x2 <= x1 or y2 <= y1:
                continue
            faces.append(Face(Box(x1, y1, x2, y2), float(s), None))
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces
