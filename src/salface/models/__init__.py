"""Classifiers: backbones + heads (:func:`build_classifier`), the shared preprocessing
(:mod:`.preprocess`), bundled weights (:mod:`.weights`) and named models (:mod:`.registry`).

Imports are lazy so that ``import salface.models.config`` does not pull in torch."""

from __future__ import annotations

from typing import Any

__all__ = ["build_classifier", "load_classifier", "list_classifiers", "DEFAULT_MODELS",
           "prepare_crops", "to_input_tensor", "ClassifierConfig"]

_WHERE = {
    "build_classifier": "backbones", "load_classifier": "registry", "list_classifiers": "registry",
    "DEFAULT_MODELS": "registry", "prepare_crops": "preprocess", "to_input_tensor": "preprocess",
    "ClassifierConfig": "config",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
