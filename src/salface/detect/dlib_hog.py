"""dlib's frontal face detector: HOG features + linear SVM (5 pose-specific filters).

Source: ``dlib.get_frontal_face_detector()`` (dlib, Boost Software License; trained on
dlib's labelled faces). Installed with ``pip install salface[dlib]`` (the prebuilt ``dlib-bin``
wheel). It finds roughly frontal faces of at least ~80×80 px (~40 px with ``upsample=1``).

dlib's scanning window needs some background around a face, so a face that fills the picture
(a cropped head shot, a FER-style 48-px crop) is often missed. By default the picture is framed
with a black border of ``pad`` × its longer side before scanning (0.2: on 800 FER+ val crops 80.6 %
found instead of 68.9 %, on 800 UTKFace val chips 97.5 % instead of 96.1 %;
``benchmarks/dlib_pad.py``, ``docs/detectors.md``);
boxes come back in the picture's own coordinates, clipped to it. The border costs about twice the
scanning time; ``pad=0`` scans the picture as it is.

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
    (negative finds more, weaker faces). ``pad``: a black border of this share of the longer side
    on each side before scanning, so faces that fill the picture are found (0 = none).
    """

    name = "dlib-hog"

    def __init__(self, upsample: int = 1, adjust_threshold: float = 0.0, pad: float = 0.2) -> None:
        if int(upsample) < 0:
            raise ValueError(f"upsample must be >= 0, got {upsample}")
        if not 0.0 <= float(pad) <= 1.0:
            raise ValueError(f"pad must be between 0 and 1 (a share of the longer side), got {pad}")
        dlib = _import_dlib()
        self.upsample = int(upsample)
        self.adjust_threshold = float(adjust_threshold)
        self.pad = float(pad)
        self._det = dlib.get_frontal_face_detector()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"DlibHogDetector(upsample={self.upsample}, adjust_threshold={self.adjust_threshold}, "
                f"pad={self.pad})")

    def detect(self, image: np.ndarray) -> list[Face]:
        img = self._checked(image)
        if img is None:
            return []
        h, w = img.shape[:2]
        p = int(round(self.pad * max(h, w)))
        if p:
            framed = np.zeros((h + 2 * p, w + 2 * p, 3), np.uint8)
            framed[p:p + h, p:p + w] = img
            img = framed
        with self._lock:
            rects, scores, _ = self._det.run(img, self.upsample, self.adjust_threshold)
        faces = []
        for r, s in zip(rects, scores):
            # dlib rectangles are inclusive (right/bottom are the last pixel): +1 for exclusive;
            # back to the picture's coordinates, clipped to it
            x1 = min(max(float(r.left() - p), 0.0), float(w))
            y1 = min(max(float(r.top() - p), 0.0), float(h))
            x2 = min(max(float(r.right() + 1 - p), 0.0), float(w))
            y2 = min(max(float(r.bottom() + 1 - p), 0.0), float(h))
            if x2 <= x1 or y2 <= y1:
                continue
            faces.append(Face(Box(x1, y1, x2, y2), float(s), None))
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces
