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
