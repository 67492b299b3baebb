"""salface: saliency-guided age group, gender and expression classification."""

from __future__ import annotations

__version__ = "0.1.0"

from .labels import AGE_GROUPS, EXPRESSIONS, GENDERS
from .types import Box, Crop, Face, FaceResult, ImageResult, Prediction

__all__ = ["AGE_GROUPS", "EXPRESSIONS", "GENDERS", "Box", "Crop", "Face", "FaceResult",
           "ImageResult", "Prediction", "__version__"]
