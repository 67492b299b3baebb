"""The detector interface. One file per implementation beside this one."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..types import Face


class Detector(ABC):
    """Finds faces in an ``H×W×3`` uint8 RGB image.

    ``detect`` returns faces sorted by score, highest first; an image without a face gives ``[]``
    (a normal result, never an exception).
    """

    name: str = "base"

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Face]:
        ...

    def __call__(self, image: np.ndarray) -> list[Face]:
        return self.detect(image)

    def _checked(self, image: np.ndarray) -> np.ndarray | None:
        """``image`` as a C-contiguous ``H×W×3`` uint8 array, ``None`` when it is empty; a
        ``ValueError`` naming this detector for anything else."""
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"{self.name} expects an H×W×3 uint8 RGB image, got shape {img.shape} "
                             f"dtype {img.dtype} (use salface.io.load_image)")
        if img.shape[0] == 0 or img.shape[1] == 0:
            return None
        return np.ascontiguousarray(img)
