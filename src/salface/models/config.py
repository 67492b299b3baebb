"""A classifier's pretrained config: everything needed to preprocess faces exactly as in
training travels with the weights (timm-style), so no call site hard-codes sizes or stats."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..labels import labels_for

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ClassifierConfig:
    name: str
    backbone: str                      # "mobilenet_v2" | "alexnet" | "alexnet_gap" | "vgg16" | "gilnet"
    tasks: tuple[str, ...]             # heads, e.g. ("age", "gender") or ("expression",)
    input_size: int = 112
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    color: str = "rgb"                 # "rgb", or "gray" (crop → luminance, replicated to 3 channels)
    margin: float = 0.30               # crop margin (see salface.crop); with crop_mode "arcface": the extra margin
    align: bool = False                # rotate crops so the eyes are level (crop_mode "margin")
    saliency: str = "mlnet"            # saliency model name, or "none"
    ratio: float = 0.30                # reweighted ratio r
    dropout: float = 0.2
    detector: str = "yunet"            # the detector whose boxes the model was trained on
    extra: dict[str, Any] = field(default_factory=dict)
    crop_mode: str = "margin"          # "margin" (enlarged box) | "arcface" (5-landmark alignment); salface.crop.crop_for_config
    frame: tuple[float, float, float, float] | None = None  # training photos' source frame (salface.crop; margin crops)
    align_min_tilt: float = 0.0        # with align: level only eye lines tilted at least this many degrees
    max_crop_px: float = 0.0           # margin crops: the crop square's largest side in source pixels (0: no cap)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "mean", tuple(self.mean))
        object.__setattr__(self, "std", tuple(self.std))
        if self.frame is not None:
            fr = tuple(float(v) for v in self.frame)
            if len(fr) != 4 or min(fr) < 0:
                raise ValueError(f"frame must be four numbers >= 0 (left, top, right, bottom), got {self.frame!r}")
            object.__setattr__(self, "frame", fr)
        if not 0.0 <= float(self.align_min_tilt) < 90.0:
            raise ValueError(f"align_min_tilt must be in [0, 90) degrees, got {self.align_min_tilt!r}")
        object.__setattr__(self, "align_min_tilt", float(self.align_min_tilt))
        if not (0.0 <= float(self.max_crop_px) < 1e6):
            raise ValueError(f"max_crop_px must be >= 0 (0: no cap), got {self.max_crop_px!r}")
        object.__setattr__(self, "max_crop_px", float(self.max_crop_px))
        for t in self.tasks:
            labels_for(t)
        if self.color not in ("rgb", "gray"):
            raise ValueError(f"color must be 'rgb' or 'gray', got {self.color!r}")
        if self.crop_mode not in ("margin", "arcface"):
            raise ValueError(f"crop_mode must be 'margin' or 'arcface', got {self.crop_mode!r}")
        if not 0.0 <= self.ratio <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {self.ratio}")

    @property
    def labels(self) -> dict[str, tuple[str, ...]]:
        return {t: labels_for(t) for t in self.tasks}

    @property
    def num_classes(self) -> dict[str, int]:
        return {t: len(labels_for(t)) for t in self.tasks}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        if self.frame is None:
            del d["frame"]  # configs without a frame read as before
        else:
            d["frame"] = list(self.frame)
        if not self.align_min_tilt:
            del d["align_min_tilt"]  # likewise: configs that level every tilt (or none) read as before
        if not self.max_crop_px:
            del d["max_crop_px"]  # and configs without a resolution cap
        d["labels"] = {t: list(v) for t, v in self.labels.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClassifierConfig":
        d = dict(d)
        labels = d.pop("labels", None)
        cfg = cls(**d)
        if labels is not None:
            for t, names in labels.items():
                if tuple(names) != labels_for(t):
                    raise ValueError(f"model {cfg.name!r} was trained with {t} labels {names}, "
                                     f"this salface defines {list(labels_for(t))}")
        return cfg
