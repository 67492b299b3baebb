"""A second look where the detector finds no face at all, kept only when a second detector agrees.

YuNet at its threshold misses faces that fill a small picture and are partly hidden: on 600 FER+
val faces (48-px pictures) with dark glasses over a fifth of the face it finds 76.5 %. Looking
again at a lower threshold finds them, and also finds faces in bricks and clouds; two weak
detectors that agree on the same place rarely do. So, on a picture where the primary detector
finds nothing, :class:`SecondLook` runs the primary again at a lower score threshold and keeps a
face only where a second, different detector (the bundled BlazeFace, also at a low threshold)
reports a box overlapping it (IoU >= ``agree_iou``). The faces kept are the primary's (YuNet's
boxes and landmarks, the geometry the classifiers were trained on).

Measured with ``benchmarks/bench_fallback.py`` (``docs/benchmarks/fallback.md``): dark glasses
76.5 % → 95.1 % found, a hand over the face 88.1 → 99.0 %, sensor noise 94.0 → 96.8 %; false
faces on 500 NUS scene photos 0 → 4 (YuNet at 0.2 alone: 85; BlazeFace at 0.3 alone: 246).

Photos where the primary finds a face cost what they did: the second look runs only on pictures
with no face at all, and it never adds a face beside faces the primary found (a crowd photo with
one hidden face keeps the primary's answer).
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np

from ..types import Face
from .base import Detector

DetectorOrFactory = Union[Detector, Callable[[], Detector]]

SECOND_LOOK_SCORE = 0.2
"""YuNet's score threshold on the second look (its own default is 0.6)."""
WITNESS_SCORE = 0.3
"""BlazeFace's score threshold as the witness (its defaults: 0.6 full range, 0.5 short range)."""
AGREE_IOU = 0.3
"""How much the witness's box must overlap a second-look face (IoU) to confirm it."""


def confirmed(candidates: list[Face], seen: list[Face], agree_iou: float = AGREE_IOU) -> list[Face]:
    """The ``candidates`` that a box in ``seen`` overlaps by IoU >= ``agree_iou``."""
    return [f for f in candidates if any(f.box.iou(w.box) >= agree_iou for w in seen)]


class SecondLook(Detector):
    """``primary``'s faces; on a picture where it finds none, ``second``'s faces that ``witness``
    confirms (a witness box with IoU >= ``agree_iou``). ``second`` and ``witness`` may be given
    as factories: they are then built on the first picture that needs them, so a run whose
    pictures all show faces never loads them."""

    def __init__(self, primary: Detector, second: DetectorOrFactory, witness: DetectorOrFactory, *,
                 agree_iou: float = AGREE_IOU, name: str | None = None) -> None:
        if not 0.0 < agree_iou <= 1.0:
            raise ValueError(f"agree_iou must be in (0, 1], got {agree_iou}")
        self.primary = primary
        self._second, self._witness = second, witness
        self.agree_iou = float(agree_iou)
        self.name = name or f"{primary.name}+second-look"

    @property
    def model_path(self):
        """The primary detector's model file (what listings such as ``/v1/models`` show)."""
        return getattr(self.primary, "model_path", None)

    @staticmethod
    def _built(d: DetectorOrFactory) -> Detector:
        return d if isinstance(d, Detector) else d()

    @property
    def second(self) -> Detector:
        self._second = self._built(self._second)
        return self._second

    @property
    def witness(self) -> Detector:
        self._witness = self._built(self._witness)
        return self._witness

    def __repr__(self) -> str:
        return (f"SecondLook({self.primary!r}, second={self._second!r}, witness={self._witness!r}, "
                f"agree_iou={self.agree_iou}, name={self.name!r})")

    def detect(self, image: np.ndarray) -> list[Face]:
        faces = self.primary.detect(image)
        if faces:
            return faces
        candidates = self.second.detect(image)
        if not candidates:
            return []
        return confirmed(candidates, self.witness.detect(image), self.agree_iou)


def yunet_second_look(*, second_score: float = SECOND_LOOK_SCORE, witness_score: float = WITNESS_SCORE,
                      agree_iou: float = AGREE_IOU, **yunet_options) -> SecondLook:
    """YuNet (with ``yunet_options``); where it finds no face, YuNet at ``second_score`` confirmed
    by the bundled BlazeFace at ``witness_score``."""
    from .blazeface import BlazeFaceDetector
    from .yunet import YuNetDetector

    opts = {k: v for k, v in yunet_options.items() if k != "score_threshold"}
    return SecondLook(YuNetDetector(**yunet_options),
                      lambda: YuNetDetector(score_threshold=second_score, **opts),
                      lambda: BlazeFaceDetector(score_threshold=witness_score),
                      agree_iou=agree_iou, name="yunet+blazeface")
