"""Face detectors: ``get_detector(name, **kwargs)`` builds one, ``available_detectors()`` lists them.

Every detector takes an ``H×W×3`` uint8 RGB image (see :func:`salface.io.load_image`) and returns
:class:`salface.types.Face` objects sorted by score; an image without faces gives ``[]``.
Implementations are imported lazily, so optional dependencies (dlib, mediapipe) are only needed
for the detector that uses them.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Callable

from .base import Detector

# name -> (module, class, one-line description)
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "yunet": ("yunet", "YuNetDetector",
              "OpenCV YuNet CNN (ONNX, 5 landmarks); model via `salface fetch yunet`"),
    "dlib-hog": ("dlib_hog", "DlibHogDetector",
                 "dlib HOG + linear SVM frontal detector (no landmarks); needs salface[dlib]"),
    "mediapipe": ("mediapipe", "MediaPipeDetector",
                  "MediaPipe BlazeFace short/full range (5 landmarks); needs salface[mediapipe]"),
    "given": ("given", "GivenBoxes",
              "user-supplied boxes (x1, y1, x2, y2) or Face objects; no detection"),
    "whole": ("given", "WholeImage",
              "the whole image is one face (for already-cropped faces)"),
}
_ALIASES = {"full-image": "whole", "dlib": "dlib-hog", "hog": "dlib-hog", "blazeface": "mediapipe",
            "boxes": "given"}

_AVAILABILITY: dict[str, Callable[[], str]] = {}


def _yunet_status() -> str:
    from ..hub import remote_path, verify_remote

    st = verify_remote("yunet")
    if st == "ok":
        return "model installed"
    if st == "mismatch":
        return f"model file corrupt ({remote_path('yunet')}); reinstall with `salface fetch yunet`"
    return "model not installed: `salface fetch yunet [--from FILE]` (or downloaded on first use)"


def _module_status(module: str, extra: str) -> Callable[[], str]:
    def check() -> str:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        return "installed" if found else f"not installed: pip install salface[{extra}]"
    return check


_AVAILABILITY["yunet"] = _yunet_status
_AVAILABILITY["dlib-hog"] = _module_status("dlib", "dlib")
_AVAILABILITY["mediapipe"] = _module_status("mediapipe", "mediapipe")


def canonical_name(name: str) -> str:
    """The registry name for ``name`` (aliases such as ``"full-image"`` resolved)."""
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        known = ", ".join(list(_REGISTRY) + list(_ALIASES))
        raise ValueError(f"unknown detector {name!r}; known: {known}")
    return key


def get_detector(name: str, **kwargs: Any) -> Detector:
    """Build detector ``name`` (``yunet``, ``dlib-hog``, ``mediapipe``, ``given``, ``whole``).

    Keyword arguments go to the detector's constructor, e.g.
    ``get_detector("yunet", score_threshold=0.8, min_side=160)`` or
    ``get_detector("given", boxes=[(10, 10, 90, 90)])``.
    """
    key = canonical_name(name)
    module, cls, _ = _REGISTRY[key]
    mod = importlib.import_module(f"{__name__}.{module}")
    return getattr(mod, cls)(**kwargs)


def available_detectors() -> dict[str, str]:
    """``name → one-line description`` with whether it can run here (``[ok]`` / ``[missing: …]``)."""
    out = {}
    for key, (_, _, desc) in _REGISTRY.items():
        check = _AVAILABILITY.get(key)
        if check is None:
            out[key] = f"{desc} [ok]"
            continue
        try:
            st = check()
        except Exception as exc:  # availability must never crash a listing
            st = f"unknown ({exc})"
        ok = st in ("installed", "model installed")
        out[key] = f"{desc} [{'ok' if ok else st}]"
    return out


__all__ = ["Detector", "available_detectors", "canonical_name", "get_detector"]
