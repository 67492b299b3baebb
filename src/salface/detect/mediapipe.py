"""MediaPipe Face Detection (BlazeFace), through the legacy ``mediapipe.solutions`` API.

Source: ``mediapipe==0.10.21`` (Apache-2.0), the last release that still ships the BlazeFace
tflite models inside the wheel; it needs ``numpy<2``, so it is an optional extra
(``pip install salface[mediapipe]``) kept out of the default environment.

``model_selection``: 0 = short-range model (faces within ~2 m, 128×128 input), 1 = full-range
sparse model (faces within ~5 m, 192×192 input). The default is 0: on face crops and portraits
the full-range model misses most faces (measured in ``docs/detectors.md``: 157/500 UTKFace chips
found against 493/500 for the short-range model). ``min_detection_confidence`` is MediaPipe's
score threshold.

Landmarks. BlazeFace gives six keypoints: right eye, left eye, nose tip, mouth *centre*, right
and left ear tragion (eye/ear sides from the subject's view, as MediaPipe's ``FaceKeyPoint``
enum names them). salface's five landmarks need the two mouth *corners*, which BlazeFace does not
predict, so by default this detector returns ``landmarks=None`` rather than invent them. With
``approximate_landmarks=True`` it returns eyes and nose as given and puts **both** mouth corners
at the mouth centre: enough for eye-based alignment (the only use :func:`salface.crop.crop_face`
makes of landmarks), not a real mouth-corner estimate.
"""

from __future__ import annotations

import threading

import numpy as np

from ..types import Box, Face
from .base import Detector

INSTALL_HINT = ("pip install salface[mediapipe]  (mediapipe==0.10.21, which needs numpy<2; "
                "use a separate environment if other packages need numpy 2)")


def _import_face_detection():
    try:
        from mediapipe.python.solutions import face_detection  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(f"the 'mediapipe' detector needs mediapipe 0.10.21 with its legacy "
                          f"solutions API, which is not available ({exc}): {INSTALL_HINT}") from exc
    return face_detection


class MediaPipeDetector(Detector):
    """BlazeFace via ``mediapipe.solutions.face_detection.FaceDetection``."""

    name = "mediapipe"

    def __init__(self, model_selection: int = 0, min_detection_confidence: float = 0.5,
                 approximate_landmarks: bool = False) -> None:
        if model_selection not in (0, 1):
            raise ValueError(f"model_selection must be 0 (short range) or 1 (full range), "
                             f"got {model_selection}")
        if not 0.0 <= min_detection_confidence <= 1.0:
            raise ValueError(f"min_detection_confidence must be in [0, 1], "
                             f"got {min_detection_confidence}")
        fd = _import_face_detection()
        self.model_selection = int(model_selection)
        self.min_detection_confidence = float(min_detection_confidence)
        self.approximate_landmarks = bool(approximate_landmarks)
        self._fd = fd.FaceDetection(model_selection=self.model_selection,
                                    min_detection_confidence=self.min_detection_confidence)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"MediaPipeDetector(model_selection={self.model_selection}, "
                f"min_detection_confidence={self.min_detection_confidence}, "
                f"approximate_landmarks={self.approximate_landmarks})")

    def close(self) -> None:
        self._fd.close()

    def detect(self, image: np.ndarray) -> list[Face]:
        img = self._checked(image)
        if img is None:
            return []
        h, w = img.shape[:2]
        with self._lock:
            res = self._fd.process(img)
        faces = []
        for det in res.detections or []:
            loc = det.location_data
            rb = loc.relative_bounding_box
            x1 = min(max(rb.xmin * w, 0.0), float(w))
            y1 = min(max(rb.ymin * h, 0.0), float(h))
            x2 = min(max((rb.xmin + rb.width) * w, 0.0), float(w))
            y2 = min(max((rb.ymin + rb.height) * h, 0.0), float(h))
            if x2 <= x1 or y2 <= y1:
                continue
            lm = None
            kps = list(loc.relative_keypoints)
            if self.approximate_landmarks and len(kps) >= 4:
                pts = np.array([[k.x * w, k.y * h] for k in kps[:4]], dtype=np.float32)
                # right_eye, left_eye, nose, mouth_right ≈ mouth_left ≈ mouth centre
                lm = np.stack([pts[0], pts[1], pts[2], pts[3], pts[3]])
            score = float(det.score[0]) if len(det.score) else 0.0
            faces.append(Face(Box(float(x1), float(y1), float(x2), float(y2)), score, lm))
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces
