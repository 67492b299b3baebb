"""Small typed result objects that flow between the pipeline stages.

All are frozen dataclasses with a ``to_dict()`` that gives plain JSON-serialisable data.
Coordinates are in pixels of the image they refer to, ``x`` to the right, ``y`` down,
boxes as ``(x1, y1, x2, y2)`` with ``x2``/``y2`` exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LANDMARK_NAMES: tuple[str, ...] = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
"""Order of the five landmarks, named from the subject's point of view (so ``right_eye`` usually
has the smaller x in a frontal photo). YuNet's native order; other detectors are mapped to it."""


@dataclass(frozen=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        if not (self.x2 >= self.x1 and self.y2 >= self.y1):
            raise ValueError(f"invalid box {self.as_tuple()}: x2 < x1 or y2 < y1")

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> "Box":
        return cls(float(x), float(y), float(x + w), float(y + h))

    def iou(self, other: "Box") -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"x1": round(float(self.x1), 2), "y1": round(float(self.y1), 2),
                "x2": round(float(self.x2), 2), "y2": round(float(self.y2), 2)}


@dataclass(frozen=True, eq=False)
class Face:
    """One detected (or given) face."""

    box: Box
    score: float = 1.0
    landmarks: np.ndarray | None = None
    """``(5, 2)`` float array in image pixels, ordered as :data:`LANDMARK_NAMES`, or ``None``."""
    eyes: np.ndarray | None = None
    """``(2, 2)`` float array in image pixels (subject's right eye, then left eye) from a detector
    that finds the eyes but not all five landmarks (BlazeFace), or ``None``. Levelling the crop
    (:func:`salface.crop.eye_angle`) uses ``landmarks`` when there are any, else these."""

    def __post_init__(self) -> None:
        if self.landmarks is not None:
            lm = np.asarray(self.landmarks, dtype=np.float32)
            if lm.shape != (5, 2):
                raise ValueError(f"landmarks must have shape (5, 2), got {lm.shape}")
            object.__setattr__(self, "landmarks", lm)
        if self.eyes is not None:
            eyes = np.asarray(self.eyes, dtype=np.float32)
            if eyes.shape != (2, 2):
                raise ValueError(f"eyes must have shape (2, 2), got {eyes.shape}")
            object.__setattr__(self, "eyes", eyes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"box": self.box.to_dict(), "score": round(float(self.score), 4)}
        if self.landmarks is not None:
            d["landmarks"] = {n: [round(float(x), 2), round(float(y), 2)]
                              for n, (x, y) in zip(LANDMARK_NAMES, self.landmarks)}
        return d


@dataclass(frozen=True, eq=False)
class Crop:
    """A face crop ready for the saliency and convolution modules.

    ``pixels`` is ``(size, size, 3)`` uint8 RGB. ``box`` is the enlarged (square) region of the
    source image the crop shows, in image pixels; it may extend past the image borders, where the
    crop holds replicated edge pixels. ``matrix`` is the 2×3 affine map from image to crop pixels.
    """

    pixels: np.ndarray
    box: Box
    face: Face
    matrix: np.ndarray
    angle: float = 0.0

    @property
    def size(self) -> int:
        return int(self.pixels.shape[0])

    def to_crop_coords(self, points: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` image points into crop pixel coordinates."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return pts @ self.matrix[:, :2].T + self.matrix[:, 2]

    @property
    def landmarks(self) -> np.ndarray | None:
        """The face's landmarks in crop coordinates, or ``None``."""
        if self.face.landmarks is None:
            return None
        return self.to_crop_coords(self.face.landmarks).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    """One task's answer for one face."""

    task: str
    label: str
    index: int
    probabilities: dict[str, float]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.label])

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": round(self.confidence, 4),
                "probabilities": {k: round(float(v), 4) for k, v in self.probabilities.items()}}


@dataclass(frozen=True, eq=False)
class FaceResult:
    face: Face
    crop_box: Box
    age: Prediction | None = None
    gender: Prediction | None = None
    expression: Prediction | None = None
    saliency: np.ndarray | None = None
    """The crop's saliency map (``(H, W)`` float32 in [0, 1]) when requested, else ``None``."""
    crop: np.ndarray | None = None
    """The face crop (``(H, W, 3)`` uint8, as fed to the saliency model) when requested."""

    def predictions(self) -> dict[str, Prediction]:
        return {p.task: p for p in (self.age, self.gender, self.expression) if p is not None}

    def to_dict(self) -> dict[str, Any]:
        d = self.face.to_dict()
        d["crop_box"] = self.crop_box.to_dict()
        for task, p in self.predictions().items():
            d[task] = p.to_dict()
        return d


@dataclass(frozen=True, eq=False)
class ImageResult:
    """Everything found in one input image. ``error`` is set (and ``faces`` empty) when the
    input could not be read or processed; an image without faces has ``faces == []`` and no error."""

    source: str
    width: int = 0
    height: int = 0
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The decoded RGB pixels (``(H, W, 3)`` uint8) when the analyzer was asked to keep them
    (``keep_images=True``), e.g. to draw on them; never part of :meth:`to_dict`."""
    detector: str | None = None
    """The name of the detector whose faces these are (``"yunet"``, ``"blazeface"``, ...; what
    ``"auto"`` chose), or ``None`` when unknown or nothing was detected (an error)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def _repr_png_(self) -> bytes | None:
        """Jupyter shows the annotated image when the pixels were kept (``keep_images=True``)."""
        if self.image is None:
            return None
        from .viz import annotate, png_bytes

        return png_bytes(annotate(self.image, self.faces))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source, "width": self.width, "height": self.height,
                             "faces": [f.to_dict() for f in self.faces]}
        if self.detector is not None:
            d["detector"] = self.detector
        if self.error is not None:
            d["error"] = self.error
        return d
