"""salface: saliency-guided age group, gender and expression classification.

    from salface import Analyzer
    faces = Analyzer().analyze("photo.jpg")

Heavy parts (torch, OpenCV models) load on first use, so ``import salface`` stays quick.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from .labels import AGE_GROUPS, EXPRESSIONS, GENDERS
from .types import Box, Crop, Face, FaceResult, ImageResult, Prediction

_LAZY = {
    "Analyzer": ("pipeline", "Analyzer"),
    "analyze": ("pipeline", "analyze"),
    "load_image": ("io", "load_image"),
    "ImageError": ("io", "ImageError"),
    "get_detector": ("detect", "get_detector"),
    "get_saliency": ("saliency", "get_saliency"),
    "crop_face": ("crop", "crop_face"),
    "reweight": ("reweight", "reweight"),
    "load_classifier": ("models.registry", "load_classifier"),
    "to_frame": ("frames", "to_frame"),
}

__all__ = ["AGE_GROUPS", "EXPRESSIONS", "GENDERS", "Box", "Crop", "Face", "FaceResult",
           "ImageResult", "Prediction", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'salface' has no attribute {name!r}")
