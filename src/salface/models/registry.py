"""Named classifiers shipped with salface, loaded from the bundled manifest.

``DEFAULT_MODELS`` says which bundled model serves each task by default: for age and gender an
ensemble trained on UTKFace (``age-gender-ensemble``: a MobileNetV2 and an EdgeFace-XS on the same
crop, :mod:`salface.models.ensemble`), and a gray-scale MobileNetV2 expression model trained on FER+. :func:`load_classifier` builds the network from the config stored in the manifest and loads
its weights through :func:`salface.models.bundle.load_state_dict` (SHA-256 verified); a model that
has not been shipped yet raises :class:`~salface.hub.MissingModelError` — salface never
predicts with random weights.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import ClassifierConfig
from ..hub import DEFAULT_MODELS, MissingModelError, load_manifest
from .bundle import load_state_dict


def list_classifiers(directory: str | None = None) -> dict[str, dict[str, Any]]:
    """Bundled classifier entries (``kind == "classifier"``) by name."""
    models = load_manifest(directory)["models"]
    return {k: v for k, v in models.items() if v.get("kind") == "classifier"}


def model_for_task(task: str) -> str:
    try:
        return DEFAULT_MODELS[task]
    except KeyError:
        raise ValueError(f"no default model for task {task!r}; tasks: {sorted(DEFAULT_MODELS)}") from None


def load_classifier(name: str = "default-age-gender", device: str | torch.device = "cpu",
                    directory: str | None = None) -> tuple[torch.nn.Module, ClassifierConfig]:
    """``(model in eval mode on device, config)`` of bundled classifier ``name``."""
    from .backbones import build_classifier

    tensors, entry = load_state_dict(name, directory)
    if entry.get("kind") != "classifier":
        raise MissingModelError(f"bundled model {name!r} is a {entry.get('kind')!r} model, not a classifier")
    config = ClassifierConfig.from_dict(entry["config"])
    model = build_classifier(config, pretrained=False)
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"bundled model {name!r} does not match its {config.backbone} config: "
                           f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    model = model.to(device).to(memory_format=torch.channels_last).eval()
    return model, config
