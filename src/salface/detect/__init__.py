"""Face detectors: ``get_detector(name, **kwargs)`` builds one, ``available_detectors()`` lists them.

Every detector takes an ``H×W×3`` uint8 RGB image (see :func:`salface.io.load_image`) and returns
:class:`salface.types.Face` objects sorted by score; an image without faces gives ``[]``.
Implementations are imported lazily, so optional dependencies (dlib, mediapipe) are only needed
for the detector that uses them.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from typing import Any, Callable

from .base import Detector

# name -> (module, class, one-line description)
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "auto": ("", "", "the default: yunet+blazeface when YuNet's model is installed, else "
                     "blazeface; never downloads"),
    "yunet": ("yunet", "YuNetDetector",
              "OpenCV YuNet CNN (ONNX, 5 landmarks); model via `salface fetch yunet`"),
    "blazeface": ("blazeface", "BlazeFaceDetector",
                  "MediaPipe BlazeFace short+full range (ONNX, bundled in the package; no landmarks)"),
    "yunet+blazeface": ("cascade", "yunet_second_look",
                        "YuNet; where it finds no face, YuNet again at score 0.2, kept where "
                        "BlazeFace agrees (hidden or frame-filling faces)"),
    "dlib-hog": ("dlib_hog", "DlibHogDetector",
                 "dlib HOG + linear SVM frontal detector (no landmarks); needs salface[dlib]"),
    "mediapipe": ("mediapipe", "MediaPipeDetector",
                  "MediaPipe BlazeFace short/full range (5 landmarks); needs salface[mediapipe]"),
    "given": ("given", "GivenBoxes",
              "user-supplied boxes (x1, y1, x2, y2) or Face objects; no detection"),
    "whole": ("given", "WholeImage",
              "the whole image is one face (for already-cropped faces)"),
}
_ALIASES = {"full-image": "whole", "dlib": "dlib-hog", "hog": "dlib-hog", "boxes": "given"}

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


def _blazeface_status() -> str:
    from ..hub import bundled_status

    states = {bundled_status("blazeface"), bundled_status("blazeface", variant="short_range")}
    if states == {"ok"}:
        return "installed"
    return ("a bundled model file fails its checksum" if "mismatch" in states
            else "bundled model file missing")


_AVAILABILITY["yunet"] = _yunet_status
_AVAILABILITY["blazeface"] = _blazeface_status
_AVAILABILITY["yunet+blazeface"] = lambda: _yunet_status() if _blazeface_status() == "installed" else _blazeface_status()
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


_auto_noted = False


def auto_choice() -> str:
    """What ``auto`` runs: ``"yunet+blazeface"`` (YuNet, with a second look confirmed by the
    bundled BlazeFace on pictures where YuNet finds no face; :mod:`salface.detect.cascade`) when
    YuNet's model file is installed and intact (in the bundle or the cache; see ``salface fetch
    yunet``), else the bundled ``"blazeface"``. Looks at local files only, never the network."""
    from ..hub import bundled_status, verify_remote

    if "ok" not in (bundled_status("yunet"), verify_remote("yunet")):
        return "blazeface"
    return "yunet+blazeface" if _blazeface_status() == "installed" else "yunet"


def _auto_detector(**kwargs: Any) -> Detector:
    """The detector :func:`auto_choice` picks; options the chosen one does not take (YuNet's
    ``max_side``, ``min_face`` ... when BlazeFace runs) are dropped. The first time BlazeFace is
    picked in a process, one line on stderr says how to get YuNet."""
    global _auto_noted
    key = auto_choice()
    module, cls, _ = _REGISTRY[key]
    klass = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    params = dict(inspect.signature(klass).parameters)
    if key == "yunet+blazeface":  # its YuNet takes YuNet's options
        from .yunet import YuNetDetector
        params.update(inspect.signature(YuNetDetector).parameters)
    if key == "blazeface" and not _auto_noted:
        _auto_noted = True
        print("salface: YuNet is not installed, so faces are found with the bundled BlazeFace "
              "detector; YuNet is the stronger detector (the shipped classifiers were trained on "
              "its boxes): install it with `salface fetch yunet` (offline: `salface fetch yunet "
              "--from FILE`)", file=sys.stderr)
    return klass(**{k: v for k, v in kwargs.items() if k in params and k != "model_path"})


def get_detector(name: str, **kwargs: Any) -> Detector:
    """Build detector ``name`` (``auto``, ``yunet``, ``blazeface``, ``dlib-hog``, ``mediapipe``,
    ``given``, ``whole``).

    Keyword arguments go to the detector's constructor, e.g.
    ``get_detector("yunet", score_threshold=0.8, min_side=160)`` or
    ``get_detector("given", boxes=[(10, 10, 90, 90)])``. ``auto`` (see :func:`auto_choice`)
    passes on the options its choice accepts.
    """
    key = canonical_name(name)
    if key == "auto":
        return _auto_detector(**kwargs)
    module, cls, _ = _REGISTRY[key]
    mod = importlib.import_module(f"{__name__}.{module}")
    return getattr(mod, cls)(**kwargs)


def available_detectors() -> dict[str, str]:
    """``name → one-line description`` with whether it can run here (``[ok]`` / ``[missing: …]``)."""
    out = {}
    for key, (_, _, desc) in _REGISTRY.items():
        check = _AVAILABILITY.get(key)
        if key == "auto":
            try:
                out[key] = f"{desc} [ok: {auto_choice()}]"
            except Exception as exc:  # availability must never crash a listing
                out[key] = f"{desc} [unknown ({exc})]"
            continue
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


__all__ = ["Detector", "auto_choice", "available_detectors", "canonical_name", "get_detector"]
