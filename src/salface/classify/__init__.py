"""Classification at inference time: a bundled classifier (config + network on a backend) that
turns prepared face crops and their saliency maps into calibrated class probabilities.

>>> from salface.classify import load_classifier
>>> clf = load_classifier("default-expression")            # ONNX Runtime, no torch
>>> probs = clf.predict(clf.prepare(crops), maps)          # {"expression": (N, 7) array}

:data:`DEFAULT_MODELS` says which bundled model serves each task by default.
"""

from __future__ import annotations

from .base import DEFAULT_MODELS, Classifier, load_classifier, softmax

__all__ = ["DEFAULT_MODELS", "Classifier", "load_classifier", "softmax"]
