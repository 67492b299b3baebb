"""ML-Net (Cornia, Baraldi, Serra & Cucchiara, "A Deep Multi-Level Network for Saliency
Prediction", ICPR 2016), with a MobileNetV2 or VGG-16 feature extractor.

The architecture as published:

1. **Feature extraction**: feature maps from three depths of an ImageNet CNN, all at 1/8 of the
   input resolution, concatenated along the channels. In VGG-16 these are the outputs of pool3
   (256 ch), of pool4 with its stride set to 1 (512 ch) and of conv5_3 (512 ch); pool5 is
   removed, so conv5 stays at stride 8 (1,280 channels in all).
2. **Encoding network**: dropout (p = 0.5) on the concatenated features, a 3×3 convolution to 64
   maps (ReLU), a 1×1 convolution to one map (ReLU).
3. **Learned prior**: a small ``ph × pw`` map of weights (initialised to 1), upsampled
   bilinearly to the output size and multiplied element-wise with the encoder's map.
4. **Loss**: with ``φ`` the prediction scaled by its maximum and ``y`` the fixation map in
   [0, 1], ``mean((φ − y)² / (α − y)) + λ‖1 − w‖²`` with α = 1.1 and ``w`` the prior.

Choices made here (see ``docs/saliency.md``):

* **MobileNetV2** (the default backbone, ImageNet weights from torchvision): the three depths
  are the ends of its stride-8, stride-16 and stride-32 stages — ``features[6]`` (32 ch),
  ``features[13]`` (96 ch) and ``features[17]`` (320 ch, the last inverted-residual block;
  the 1×1 expansion to 1,280 channels is left out). The stride-16 and stride-32 maps are
  upsampled bilinearly to stride 8 (rather than dilating the network, which would cost 4–16×
  more compute in the deep blocks), giving 448 channels at 1/8 resolution.
* **VGG-16** is supported for users who have its ImageNet weights (``torchvision``'s
  ``IMAGENET1K_V1``): pool4 becomes a 2×2 max-pool with stride 1 (padded by one pixel at the
  right/bottom so the size is kept) and pool5 is dropped, as in the paper.
* The backbone is **frozen** (ImageNet weights, BatchNorm in eval mode): only the encoder and
  the prior are trained (the paper fine-tunes everything on SALICON's 10,000 images; NUS has
  350 training images and 2 CPU cores here).
* Output: the map at stride 8 is upsampled (bilinear) to the input size, each map is scaled
  to [0, 1] (min → 0, max → 1), then optionally blurred and lifted by a floor
  (:func:`postprocess`; the bundled model's values, chosen on the val split, are in its
  manifest ``config.postprocess``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import SaliencyModel, normalize_map, postprocess  # noqa: F401 (postprocess re-exported)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONES = ("mobilenet_v2", "vgg16")
DEFAULT_MODEL_NAME = "mlnet-mobilenetv2-nus"


@dataclass(frozen=True)
class MLNetConfig:
    """Everything needed to rebuild an ML-Net; stored in the manifest beside its weights."""

    backbone: str = "mobilenet_v2"
    prior_size: tuple[int, int] = (6, 6)
    encoder_channels: int = 64
    dropout: float = 0.5
    alpha: float = 1.1
    prior_weight: float = 1e-3
    train_size: tuple[int, int] = (256, 256)
    """(H, W) the training scenes were resized to."""

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {BACKBONES}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prior_size"] = list(self.prior_size)
        d["train_size"] = list(self.train_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MLNetConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for k in ("prior_size", "train_size"):
            if k in known:
                known[k] = tuple(int(v) for v in known[k])
        return cls(**known)


# ------------------------------------------------------------------------------- backbones


class MobileNetV2Levels(nn.Module):
    """Frozen MobileNetV2 trunk returning the stride-8, -16 and -32 stage outputs."""

    channels = (32, 96, 320)
    taps = (6, 13, 17)

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        import torchvision

        net = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1" if pretrained else None)
        self.features = net.features[: self.taps[-1] + 1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in self.taps:
                out.append(x)
        return out


class _Pool4Stride1(nn.Module):
    """2×2 max-pool with stride 1 that keeps the size (one replicated pixel right/bottom)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), kernel_size=2, stride=1)


class VGG16Levels(nn.Module):
    """Frozen VGG-16 trunk as in ML-Net: pool3, pool4 (stride 1) and conv5_3, all at stride 8."""

    channels = (256, 512, 512)

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        import torchvision

        net = torchvision.models.vgg16(weights="IMAGENET1K_V1" if pretrained else None)
        f = net.features
        self.to_pool3 = f[:17]     # conv1_1 … pool3
        self.to_pool4 = nn.Sequential(*f[17:23], _Pool4Stride1())  # conv4_1 … pool4 (stride 1)
        self.to_conv5 = f[24:30]   # conv5_1 … conv5_3 + ReLU (pool5 dropped)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        p3 = self.to_pool3(x)
        p4 = self.to_pool4(p3)
        c5 = self.to_conv5(p4)
        return [p3, p4, c5]


_WEIGHT_FILES = {"mobilenet_v2": "mobilenet_v2-b0353104.pth", "vgg16": "vgg16-397923af.pth"}


def build_backbone(name: str, pretrained: bool = True) -> nn.Module:
    """The frozen feature extractor; ImageNet weights come the standard torchvision way
    (``$TORCH_HOME/hub/checkpoints/`` or a download). Missing weights raise
    :class:`~salface.hub.MissingModelError` with the file name to install."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")
    try:
        m: nn.Module = MobileNetV2Levels(pretrained) if name == "mobilenet_v2" else VGG16Levels(pretrained)
    except (OSError, RuntimeError) as exc:  # no network and no cached ImageNet weights
        from ..hub import MissingModelError

        raise MissingModelError(
            f"ML-Net's {name} backbone needs torchvision's ImageNet weights, which could not be "
            f"loaded ({exc}); put {_WEIGHT_FILES[name]} in $TORCH_HOME/hub/checkpoints/ or allow "
            "torchvision to download it") from exc
    for p in m.parameters():
        p.requires_grad_(False)
    return m.eval()


def fuse_levels(levels: list[torch.Tensor]) -> torch.Tensor:
    """Upsample every level to the first (stride-8) level's size and concatenate."""
    size = levels[0].shape[-2:]
    ups = [levels[0]] + [lv if lv.shape[-2:] == size else
                         F.interpolate(lv, size=size, mode="bilinear", align_corners=False)
                         for lv in levels[1:]]
    return torch.cat(ups, dim=1)


# ------------------------------------------------------------------------------ the network


class MLNetHead(nn.Module):
    """The trainable part: encoding network + learned prior (input: fused features)."""

    def __init__(self, in_channels: int, config: MLNetConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(config.dropout)
        self.conv1 = nn.Conv2d(in_channels, config.encoder_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(config.encoder_channels, 1, 1)
        self.prior = nn.Parameter(torch.ones(1, 1, *config.prior_size))
        nn.init.constant_(self.conv2.bias, 0.1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(self.dropout(feats)))
        x = F.relu(self.conv2(x))
        prior = F.interpolate(self.prior, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * prior


class MLNet(nn.Module):
    """Backbone (frozen) + head. ``forward`` takes ImageNet-normalised ``(N, 3, H, W)`` and
    returns the raw ``(N, 1, H/8, W/8)`` map."""

    def __init__(self, config: MLNetConfig, pretrained_backbone: bool = True) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, pretrained_backbone)
        self.head = MLNetHead(sum(self.backbone.channels), config)

    def train(self, mode: bool = True) -> "MLNet":
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm statistics never change
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats = fuse_levels(self.backbone(x))
        return self.head(feats)


def mlnet_loss(pred: torch.Tensor, target: torch.Tensor, prior: torch.Tensor,
               alpha: float = 1.1, prior_weight: float = 1e-3) -> torch.Tensor:
    """The ML-Net loss: ``mean((pred/max(pred) − y)² / (α − y)) + λ‖1 − prior‖²``.

    ``pred`` and ``target`` are ``(N, 1, h, w)``; ``target`` in [0, 1]. The maximum is taken per
    map (a map that is all zero stays zero).
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    mx = pred.flatten(1).amax(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)
    phi = pred / mx
    data = ((phi - target) ** 2 / (alpha - target)).mean()
    return data + prior_weight * ((1.0 - prior) ** 2).sum()


def to_input(crops: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 → ImageNet-normalised float ``(N, 3, H, W)`` (channels_last)."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------ SaliencyModel


def MLNetSaliency(net: MLNet, input_size: int | tuple[int, int] | None = None, device: str = "cpu",
                  batch_size: int = 64, model_name: str = DEFAULT_MODEL_NAME, blur: float = 0.0,
                  floor: float = 0.0) -> SaliencyModel:
    """A torch ML-Net (e.g. a training checkpoint) as a :class:`SaliencyModel`: the runtime's own
    :class:`~salface.saliency.mlnet_runtime.MLNetRuntime` (NumPy pre/post-processing, one path for
    every backend) over the network on ``device``."""
    from ..backends.torch import TorchNetwork
    from .mlnet_runtime import MLNetRuntime

    return MLNetRuntime(TorchNetwork(net, str(device), "saliency"), model_name=model_name,
                        blur=blur, floor=floor, input_size=input_size, batch_size=batch_size,
                        backend="torch", device=str(device))


def bundle_state(net: MLNet) -> dict[str, torch.Tensor]:
    """Everything the shipped model needs: the trained head *and* the frozen backbone, so the
    bundled file loads offline without torchvision's ImageNet download."""
    return {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}


def load_mlnet(name: str = DEFAULT_MODEL_NAME, device: str = "cpu",
               input_size: int | tuple[int, int] | None = None, blur: float | None = None,
               floor: float | None = None) -> SaliencyModel:
    """Load bundled ML-Net ``name`` (checksum-verified via the manifest) as a torch
    :class:`SaliencyModel` (its network: ``.network.module``).

    Raises :class:`salface.hub.MissingModelError` when the weights have not been
    trained/shipped (never a randomly initialised network) and
    :class:`salface.hub.ChecksumError` when the file is corrupt.
    """
    from ..models.bundle import load_state_dict

    tensors, entry = load_state_dict(name)
    if entry.get("kind") != "saliency":
        raise ValueError(f"bundled model {name!r} is a {entry.get('kind')!r} model, not saliency")
    config = MLNetConfig.from_dict(entry.get("config", {}))
    if any(k.startswith("backbone.") for k in tensors):
        # self-contained file (backbone included): no torchvision download needed
        net = MLNet(config, pretrained_backbone=False)
        missing, unexpected = net.load_state_dict(tensors, strict=False)
    else:  # head-only file: the frozen backbone comes from torchvision's ImageNet weights
        net = MLNet(config, pretrained_backbone=True)  # MissingModelError without them
        head = {k[len("head."):]: v for k, v in tensors.items() if k.startswith("head.")}
        missing, unexpected = net.head.load_state_dict(head, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"bundled model {name!r} does not match ML-Net/{config.backbone}: "
                           f"missing {missing}, unexpected {unexpected}")
    post = entry.get("config", {}).get("postprocess", {})
    return MLNetSaliency(net, input_size=input_size, device=device, model_name=name,
                         blur=float(post.get("blur", 0.0)) if blur is None else blur,
                         floor=float(post.get("floor", 0.0)) if floor is None else floor)
