"""The one preprocessing path shared by training, evaluation and inference.

Two steps, both driven by the model's :class:`~salface.models.config.ClassifierConfig`:

1. :func:`prepare_crops` — uint8 face crops → uint8 crops as the model sees them: resized to
   ``config.input_size`` (area interpolation when shrinking, bilinear when enlarging) and, for
   ``config.color == "gray"``, converted to luminance (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B,
   rounded) replicated to three channels. This happens *before* saliency, so saliency maps are
   computed on exactly the pixels the classifier gets.
2. :func:`to_input_tensor` — uint8 crops (+ saliency maps) → normalised float tensor: reweighted
   with :func:`salface.reweight.reweight_tensor` at ``config.ratio`` (unless ``config.saliency ==
   "none"``), scaled to [0, 1], normalised by ``config.mean``/``config.std``, channels_last.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from ..preprocess import prepare_crops, resize_square, to_gray3  # noqa: F401 (re-exported)
from ..reweight import reweight_tensor
from .config import ClassifierConfig


def _as_tensor(x, device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


def to_input_tensor(crops, saliency_maps, config: ClassifierConfig,
                    device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 crops ``(N, S, S, 3)`` and saliency maps ``(N, S, S)`` (float in [0, 1], or uint8
    0–255) → the model's float input ``(N, 3, S, S)`` (channels_last memory format).

    ``saliency_maps`` must be given unless ``config.saliency == "none"`` (then it is ignored)."""
    c = _as_tensor(crops, device)
    if c.dim() != 4 or c.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) crops, got shape {tuple(c.shape)}")
    x = c.permute(0, 3, 1, 2).float().div_(255.0)
    if config.saliency != "none":
        if saliency_maps is None:
            raise ValueError(f"model {config.name!r} was trained with saliency {config.saliency!r} "
                             f"at ratio {config.ratio}; saliency maps are required")
        m = _as_tensor(saliency_maps, device)
        if m.dtype == torch.uint8:
            m = m.float().div_(255.0)
        else:
            m = m.float()
        if tuple(m.shape) != (x.shape[0], x.shape[2], x.shape[3]):
            raise ValueError(f"saliency maps shape {tuple(m.shape)} does not match crops "
                             f"{(x.shape[0], x.shape[2], x.shape[3])}")
        x = reweight_tensor(x, m, config.ratio)
    mean = torch.tensor(config.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(config.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last)


def forward_logits(model, x: torch.Tensor, *, tta_flip: bool = False,
                   temperature: Mapping[str, float] | None = None) -> dict[str, torch.Tensor]:
    """``{task: logits}`` of ``model`` (a torch classifier, or anything called the same way, e.g.
    :class:`salface.models.onnx.OnnxModel`) on the input tensor ``x``. With ``tta_flip`` the logits
    of ``x`` and its horizontal mirror are averaged; a task with a ``temperature`` has its logits
    divided by it (temperature scaling: the softmax gets calibrated, the argmax stays). The one
    forward pass shared by evaluation, ``analyze`` and the benchmarks; the caller chooses the grad
    mode."""
    out = model(x)
    if tta_flip:
        mirrored = model(torch.flip(x, dims=[3]))
        out = {t: (out[t] + mirrored[t]) / 2 for t in out}
    if temperature:
        out = {t: (v / float(temperature[t]) if t in temperature else v) for t, v in out.items()}
    return out
