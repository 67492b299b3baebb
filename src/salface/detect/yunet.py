"""YuNet (OpenCV ``cv2.FaceDetectorYN``): a small, fast CNN face detector with five landmarks.

Model: ``face_detection_yunet_2023mar.onnx`` from opencv_zoo (MIT; the training code,
libfacedetection.train, is Apache-2.0), installed into the salface cache with ``salface fetch
yunet --from FILE`` or downloaded on first use, and checksum-verified on load
(:func:`salface.hub.detector_file`); ``model_path`` uses any other file.

Rescaling (choices of this package, not of YuNet):

* Images whose longer side exceeds ``max_side`` (default 640, InsightFace's usual detection size)
  are shrunk to it before detection, and boxes and landmarks are mapped back. YuNet sees faces
  down to about 10 px, so 640 px keeps faces of ~2 % of the image width (about 25 px in a
  1280-px photo); measured on 30 1280×960 photos with 111 faces: the same 111 faces found at 640
  as at 1280, for 0.4× the CPU time and 45 MB instead of 118 MB of detector memory. Pass
  ``max_side=1280`` (``salface analyze --detect-size 1280``) for crowds of small faces.
* ``min_face`` (default ``None``: detect at full size): the smallest face worth finding. YuNet
  finds faces from about :data:`SMALLEST_FACE` (10) px at its input, so with ``min_face`` set
  images are detected at ``10 / min_face`` of their size (within ``max_side`` and ``min_side``):
  ``min_face=20`` halves the image side and makes detection of a 448-px photo 3× cheaper. It is not
  the default: boxes found at half size differ a little (median IoU 0.92 with full-size boxes), and
  on 1,200 UTKFace val images age / gender accuracy went from 75.0 / 92.6 % to 74.0 / 91.8 %
  (McNemar p = 0.23 / 0.11; `benchmarks/detect_scale_check.py`) — not significant, but the
  classifiers were trained on full-size boxes, and accuracy comes first.
* Images whose shorter side is below ``min_side`` are enlarged to it (bilinear). Tight face crops
  such as 48×48 FER images are otherwise too small for the detector's anchors.
* Every box and landmark is mapped back to the original image's pixels; boxes are clipped to the
  image, landmarks are left unclipped.

YuNet's landmark order (right eye, left eye, nose tip, right mouth corner, left mouth corner, from
the subject's view) is already :data:`salface.types.LANDMARK_NAMES`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from ..types import Box, Face
from .base import Detector


@contextlib.contextmanager
def _quiet_opencv():
    """Silence OpenCV's log below ERROR while the network is built.

    OpenCV 5 prints a harmless "Targets are not supported by the new graph engine" warning when
    FaceDetectorYN sets its target; the previous log level is restored right after.
    """
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None or not hasattr(log, "setLogLevel"):
        yield
        return
    old = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        log.setLogLevel(old)


SMALLEST_FACE = 10.0
"""About the smallest face (px, at the detector's input) YuNet finds reliably."""


class YuNetDetector(Detector):
    """YuNet face detector. ``detect(rgb_uint8)`` → faces sorted by score, highest first."""

    name = "yunet"

    def __init__(self, model_path: str | os.PathLike | None = None, *,
                 score_threshold: float = 0.6, nms_threshold: float = 0.3, top_k: int = 5000,
                 max_side: int | None = 640, min_side: int | None = 128,
                 min_face: float | None = None) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 <= nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in [0, 1], got {nms_threshold}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if max_side is not None and max_side < 32:
            raise ValueError(f"max_side must be >= 32 or None, got {max_side}")
        if min_face is not None and min_face <= 0:
            raise ValueError(f"min_face must be > 0 or None, got {min_face}")
        if min_side is not None and max_side is not None and min_side > max_side:
            raise ValueError(f"min_side ({min_side}) must not exceed max_side ({max_side})")
        if model_path is None:
            from ..hub import detector_file

            model_path = detector_file("yunet")
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"YuNet model file not found: {model_path}")
        self.model_path = model_path
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self.max_side = max_side
        self.min_side = min_side
        self.min_face = min_face
        try:
            with _quiet_opencv():
                self._net = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320),
                                                      self.score_threshold, self.nms_threshold,
                                                      self.top_k)
        except cv2.error as exc:
            raise RuntimeError(f"OpenCV could not load the YuNet model {model_path}: {exc}") from exc
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"YuNetDetector(model_path={str(self.model_path)!r}, score_threshold="
                f"{self.score_threshold}, nms_threshold={self.nms_threshold}, top_k={self.top_k}, "
                f"max_side={self.max_side}, min_side={self.min_side}, min_face={self.min_face})")

    def _scale_for(self, h: int, w: int) -> float:
        # faces of min_face px need only reach YuNet's ~10 px at the detection scale
        s = min(1.0, SMALLEST_FACE / self.min_face) if self.min_face else 1.0
        if self.max_side is not None and max(h, w) * s > self.max_side:
            s = self.max_side / max(h, w)
        elif self.min_side is not None and min(h, w) * s < self.min_side:
            s = self.min_side / min(h, w)
            if self.max_side is not None:
                s = min(s, self.max_side / max(h, w))
        return s

    def detect(self, image: np.ndarray) -> list[Face]:
        img = self._checked(image)
        if img is None:
            return []
        h, w = img.shape[:2]
        s = self._scale_for(h, w)
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if s != 1.0:
            nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
            interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
            bgr = cv2.resize(bgr, (nw, nh), interpolation=interp)
        else:
            nw, nh = w, h
        sx, sy = w / nw, h / nh
        with self._lock:
            self._net.setInputSize((nw, nh))
            _, raw = self._net.detect(bgr)
        if raw is None or len(raw) == 0:
            return []
        faces = []
        for row in np.asarray(raw, dtype=np.float64):
            x, y, bw, bh = row[:4]
            x1 = min(max(x * sx, 0.0), float(w))
            y1 = min(max(y * sy, 0.0), float(h))
            x2 = min(max((x + bw) * sx, 0.0), float(w))
            y2 = min(max((y + bh) * sy, 0.0), float(h))
            if x2 <= x1 or y2 <= y1:
                continue
            lm = row[4:14].reshape(5, 2) * np.array([sx, sy])
            faces.append(Face(Box(x1, y1, x2, y2), float(row[14]), lm.astype(np.float32)))
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces
