"""Classifier backbones and :func:`build_classifier`.

Every classifier is a :class:`Classifier`: ``features`` (convolutional trunk, whose output are
the last conv maps), ``pool`` + ``neck`` (global pooling, or AdaptiveAvgPool + the fully
connected fc6/fc7 layers of AlexNet/VGG/Levi–Hassner), and ``heads`` (one linear layer per task,
see :mod:`salface.models.heads`). ``forward(x)`` returns ``{task: logits}``.

Backbones (``ClassifierConfig.backbone``):

``mobilenet_v2``
    torchvision MobileNetV2 trunk → global average pooling → dropout → heads. With
    ``pretrained=True`` it loads torchvision's ``IMAGENET1K_V1`` weights; they must already sit in
    ``$TORCH_HOME/hub/checkpoints`` when there is no network (a clear error says where).
``alexnet`` / ``vgg16``
    torchvision trunk → AdaptiveAvgPool (6×6 / 7×7) → fc6 → fc7 (ReLU + dropout each) → heads (fc8).
    ImageNet weights through torchvision's weights API when the user has (or can download) them;
    otherwise the network is built from scratch and a warning says so.
``alexnet_gap``
    SAF-BAGE's class-activation-map variant: the AlexNet conv layers → global average pooling →
    linear heads, so a class's CAM is the head-weighted sum of the last conv maps.
``edgeface_xs`` / ``edgeface_xxs``
    EdgeFace face-recognition networks (timm EdgeNeXt, :mod:`salface.models.edgeface`): stem +
    stages → GAP → LayerNorm → the pretrained 512-d embedding layer → heads. ``pretrained=True``
    reads the authors' int8 checkpoint by path (``config.extra["weights"]``, else
    ``$EDGEFACE_WEIGHTS``, else ``../shared/weights/edgeface``), dequantised into float32;
    a clear error when it is absent. Inputs: mean = std = 0.5 (:data:`INPUT_NORM`), 112 px
    ArcFace-aligned crops. CAMs: ``features`` are the last stage's maps and ``head_weight``
    folds the neck into the head (exact up to a positive per-sample factor and a constant).
``ensemble``
    several of the above on the same crop, their log-softmax averaged per task
    (:mod:`salface.models.ensemble`; the members' configs travel in ``config.extra["members"]``).
``gilnet``
    Levi & Hassner (2015): 96×7×7 stride 4, max-pool 3/2, LRN; 256×5×5, max-pool, LRN; 384×3×3,
    max-pool; fc512, dropout; fc512, dropout; heads. Always from scratch. The paper fixes the input
    at 227 px; here an AdaptiveAvgPool to 6×6 after the last pool lets it take any input from
    96 px up with the same fc sizes (a choice of this implementation).

For CAMs: ``model.features(x)`` gives the last conv maps, and for GAP backbones
(``model.has_gap``) ``model.head_weight(task)`` gives the linear weights that map pooled
features to class scores.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .config import ClassifierConfig
from .heads import MultiHead

BACKBONES: tuple[str, ...] = ("mobilenet_v2", "alexnet", "alexnet_gap", "vgg16", "gilnet",
                               "edgeface_xs", "edgeface_xxs")

# Input normalisation (mean, std) a backbone's pretrained weights expect, where it is not ImageNet's.
INPUT_NORM: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "edgeface_xs": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "edgeface_xxs": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}

_WEIGHT_FILES = {
    "mobilenet_v2": "mobilenet_v2-b0353104.pth",
    "alexnet": "alexnet-owt-7be5be79.pth",
    "vgg16": "vgg16-397923af.pth",
}


def input_norm(backbone: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """``(mean, std)`` of the inputs ``backbone``'s pretrained weights expect (ImageNet's by default)."""
    from .config import IMAGENET_MEAN, IMAGENET_STD
    return INPUT_NORM.get(backbone, (IMAGENET_MEAN, IMAGENET_STD))


class Classifier(nn.Module):
    """Trunk + neck + per-task heads; ``forward`` returns ``{task: logits}``."""

    def __init__(self, features: nn.Module, pool: nn.Module, neck: nn.Module, heads: MultiHead,
                 has_gap: bool) -> None:
        super().__init__()
        self.features = features
        self.pool = pool
        self.neck = neck
        self.heads = heads
        self.has_gap = has_gap

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.heads.tasks

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The shared feature vector the heads read."""
        return self.neck(torch.flatten(self.pool(self.features(x)), 1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.embed(x))

    def head_weight(self, task: str) -> torch.Tensor:
        """``(n_classes, C)`` weights of ``task``'s head over the last conv channels (GAP backbones only)."""
        if not self.has_gap:
            raise ValueError("class activation maps need a backbone with global average pooling "
                             "(mobilenet_v2 or alexnet_gap)")
        return self.heads.weight(task)

    def feature_layers(self) -> list[nn.Module]:
        """The trunk's layers in order (conv layers for AlexNet/VGG/GilNet, inverted-residual
        blocks for MobileNetV2); :func:`freeze_first` freezes a prefix of them."""
        layers = []
        for m in self.features.children():
            if isinstance(m, (nn.ReLU, nn.MaxPool2d, nn.LocalResponseNorm, nn.Dropout)):
                continue
            layers.append(m)
        return layers


class EdgeFaceClassifier(Classifier):
    """An EdgeFace trunk: its neck (LayerNorm + embedding) is folded into the CAM weights."""

    def head_weight(self, task: str) -> torch.Tensor:
        from .edgeface import cam_weight
        return cam_weight(self.heads.weight(task), self.neck)


def freeze_first(model: Classifier, n: int, *, freeze_neck: bool = False) -> int:
    """Freeze the first ``n`` trunk layers (``n < 0``: the whole trunk). Returns how many were frozen.

    The heads always stay trainable; ``freeze_neck`` also freezes fc6/fc7 (AlexNet/VGG/GilNet).
    SAF-BAGE trains fc6–fc8 for age and gender: ``n=-1``, neck trainable."""
    layers = model.feature_layers()
    k = len(layers) if n < 0 else min(n, len(layers))
    for layer in layers[:k]:
        for p in layer.parameters():
            p.requires_grad_(False)
    if freeze_neck:
        for p in model.neck.parameters():
            p.requires_grad_(False)
    model._frozen_layers = layers[:k]  # type: ignore[attr-defined]
    return k


def set_frozen_eval(model: nn.Module) -> None:
    """Keep BatchNorm statistics of frozen layers fixed while the rest of the model trains."""
    for layer in getattr(model, "_frozen_layers", []):
        layer.eval()


def _torch_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _have_weights(backbone: str) -> bool:
    f = _WEIGHT_FILES.get(backbone)
    return f is not None and (_torch_checkpoint_dir() / f).exists()


def _tv_model(fn, backbone: str, pretrained: bool, required: bool):
    """Call a torchvision constructor with ImageNet weights when asked and obtainable."""
    if not pretrained:
        return fn(weights=None)
    try:
        return fn(weights="IMAGENET1K_V1")
    except Exception as exc:  # no network and no local copy
        where = _torch_checkpoint_dir() / _WEIGHT_FILES[backbone]
        if required:
            raise RuntimeError(
                f"ImageNet weights for {backbone} are not available offline: expected {where} "
                f"(set TORCH_HOME or copy torchvision's file there). Cause: {exc}") from exc
        warnings.warn(f"ImageNet weights for {backbone} are not available ({where} missing, "
                      f"download failed: {exc}); building it from scratch (random initialisation)",
                      RuntimeWarning, stacklevel=3)
        return fn(weights=None)


def _fc_neck(in_features: int, width: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(in_features, width), nn.ReLU(inplace=True),
        nn.Dropout(dropout), nn.Linear(width, width), nn.ReLU(inplace=True),
    )


def _gilnet_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 96, kernel_size=7, stride=4), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True),
    )


def build_classifier(config: ClassifierConfig, pretrained: bool = False) -> Classifier:
    """Build the network that ``config`` describes. ``pretrained`` loads ImageNet weights into the
    trunk (and AlexNet/VGG fc6/fc7) where the backbone has them; heads are always new."""
    b = config.backbone
    if b == "ensemble":  # several trained networks answering as one (salface.models.ensemble)
        from .ensemble import build_ensemble
        return build_ensemble(config, pretrained)
    import torchvision.models as tvm

    nc = config.num_classes
    if b == "mobilenet_v2":
        net = _tv_model(tvm.mobilenet_v2, b, pretrained, required=True)
        return Classifier(net.features, nn.AdaptiveAvgPool2d(1), nn.Identity(),
                          MultiHead(net.last_channel, nc, config.dropout), has_gap=True)
    if b in ("alexnet", "alexnet_gap"):
        net = _tv_model(tvm.alexnet, "alexnet", pretrained, required=False)
        if b == "alexnet_gap":
            return Classifier(net.features, nn.AdaptiveAvgPool2d(1), nn.Identity(),
                              MultiHead(256, nc, config.dropout), has_gap=True)
        neck = _fc_neck(256 * 6 * 6, 4096, config.dropout)
        if pretrained:  # torchvision's classifier: Dropout, fc6, ReLU, Dropout, fc7, ReLU, fc8
            neck[1].load_state_dict(net.classifier[1].state_dict())
            neck[4].load_state_dict(net.classifier[4].state_dict())
        return Classifier(net.features, nn.AdaptiveAvgPool2d((6, 6)), neck,
                          MultiHead(4096, nc, 0.0), has_gap=False)
    if b == "vgg16":
        net = _tv_model(tvm.vgg16, b, pretrained, required=False)
        neck = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(config.dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(config.dropout),
        )
        if pretrained:
            neck[0].load_state_dict(net.classifier[0].state_dict())
            neck[3].load_state_dict(net.classifier[3].state_dict())
        return Classifier(net.features, nn.AdaptiveAvgPool2d((7, 7)), neck,
                          MultiHead(4096, nc, 0.0), has_gap=False)
    if b == "gilnet":
        if pretrained:
            warnings.warn("gilnet has no pretrained weights; building it from scratch",
                          RuntimeWarning, stacklevel=2)
        return Classifier(_gilnet_features(), nn.AdaptiveAvgPool2d((6, 6)),
                          _fc_neck(384 * 6 * 6, 512, config.dropout),
                          MultiHead(512, nc, 0.0), has_gap=False)
    if b in ("edgeface_xs", "edgeface_xxs"):
        from .edgeface import classifier_parts
        features, neck, width = classifier_parts(b, pretrained, config.extra.get("weights"))
        return EdgeFaceClassifier(features, nn.AdaptiveAvgPool2d(1), neck,
                                  MultiHead(width, nc, config.dropout), has_gap=True)
    raise ValueError(f"unknown backbone {b!r}; expected one of {list(BACKBONES)}")


def default_torch_home() -> str:
    """Where torchvision looks for ImageNet weights (``$TORCH_HOME``, else torch's default)."""
    return os.environ.get("TORCH_HOME", torch.hub.get_dir())
