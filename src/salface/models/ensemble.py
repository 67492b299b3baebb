"""Several trained networks answering as one (``ClassifierConfig.backbone == "ensemble"``).

Networks of different families make different mistakes, so the average of their answers is
usually better than either (issue 12, session 8: an ImageNet MobileNetV2 and a face-pretrained
EdgeFace-XS on the same crop). The members must share the crop (``color``, ``crop_mode``,
``margin``, ``align``) and the saliency reweighting (``saliency``, ``ratio``), so at run time the
crop and the ML-Net map are computed once and only the networks add up. Each member may expect
its own input normalisation: the ensemble takes inputs normalised as its first member expects
(its config's ``mean``/``std``) and converts them for the others inside the graph. Members may
also differ in ``input_size``: the ensemble's crop is the largest member's unless another size is
asked for, and a member that wants another size gets the reweighted crop resized inside the graph
(bilinear, antialiased when shrinking; an ONNX ``Resize``), so a 128-px network and a 96-px one
still share one crop and one map.

The answer of each task is the mean of the members' log-softmax (a geometric mean of their
probabilities, renormalised by the softmax that follows), optionally weighted; the ensemble's own
temperature is then fitted on val like any model's. It is one ``nn.Module``, so training runs
(:func:`ensemble_runs`), ``salface evaluate``, ``ship`` and the ONNX export treat it like any
network: the shipped file is one ONNX graph.

``config.extra["members"]`` holds the members' classifier configs (dicts) and
``config.extra["member_weights"]`` their weights (default: equal); the weights file holds each
member's tensors under ``members.<i>.``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import ClassifierConfig

SHARED_FIELDS = ("color", "crop_mode", "margin", "align", "align_min_tilt", "max_crop_px", "saliency", "ratio")
"""Config fields every member must share with the ensemble (the crop and its reweighting); a
member's ``input_size`` may differ from the ensemble's (its input is resized in the graph)."""


class Ensemble(nn.Module):
    """Members' log-softmax averaged per task; ``forward`` returns ``{task: log-probabilities}``
    (valid logits: the softmax of the output is the renormalised geometric mean)."""

    def __init__(self, members: Sequence[nn.Module], tasks: Sequence[str],
                 norms: Sequence[tuple[torch.Tensor, torch.Tensor]],
                 weights: Sequence[float] | None = None,
                 sizes: Sequence[int | None] | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self._tasks = tuple(tasks)
        w = torch.tensor(list(weights) if weights is not None else [1.0] * len(members), dtype=torch.float32)
        if len(w) != len(members) or (w <= 0).any():
            raise ValueError(f"member weights must be {len(members)} positive numbers, got {list(w.tolist())}")
        self.register_buffer("member_weights", w / w.sum(), persistent=False)
        # None: the member takes the ensemble's crop as it is; an int: resized to that many pixels
        self._sizes = tuple(sizes) if sizes is not None else (None,) * len(members)
        if len(self._sizes) != len(members):
            raise ValueError(f"{len(self._sizes)} input sizes for {len(members)} members")
        # x_k = x * scale_k + shift_k turns the ensemble's normalised input into member k's.
        for i, (scale, shift) in enumerate(norms):
            self.register_buffer(f"scale{i}", scale.view(1, 3, 1, 1).float(), persistent=False)
            self.register_buffer(f"shift{i}", shift.view(1, 3, 1, 1).float(), persistent=False)

    @property
    def tasks(self) -> tuple[str, ...]:
        return self._tasks

    @property
    def has_gap(self) -> bool:
        """Whether class activation maps exist: every member pools its last maps globally. There is
        no single set of maps; an ensemble's CAM is its members' CAMs averaged (:meth:`member_inputs`)."""
        return all(getattr(m, "has_gap", False) for m in self.members)

    def member_inputs(self, x: torch.Tensor) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
        """``(member, its input, its weight as a 0-d tensor)`` for the ensemble's input ``x``: what
        ``forward`` and an ensemble's class activation maps (``salface.explain``,
        ``salface.serve.cams``) combine. No Python numbers here: the ONNX export traces it."""
        out = []
        for i, m in enumerate(self.members):
            xi = x * getattr(self, f"scale{i}") + getattr(self, f"shift{i}")
            if self._sizes[i] is not None:  # antialiasing matters when shrinking only
                xi = F.interpolate(xi, size=(self._sizes[i], self._sizes[i]), mode="bilinear",
                                   align_corners=False, antialias=self._sizes[i] < x.shape[-1])
            out.append((m, xi, self.member_weights[i]))
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for m, xi, w in self.member_inputs(x):
            logits = m(xi)
            for t in self._tasks:
                lp = torch.log_softmax(logits[t].float(), dim=1) * w
                out[t] = lp if t not in out else out[t] + lp
        return out


def member_configs(config: ClassifierConfig) -> list[ClassifierConfig]:
    """The members' configs recorded in an ensemble's config."""
    members = config.extra.get("members")
    if not members:
        raise ValueError(f"ensemble {config.name!r} lists no members (config.extra['members'])")
    return [ClassifierConfig.from_dict(m) for m in members]


def check_members(config: ClassifierConfig, members: Sequence[ClassifierConfig]) -> None:
    """Raise ``ValueError`` when a member does not share the ensemble's crop, reweighting or tasks."""
    for m in members:
        if m.backbone == "ensemble":
            raise ValueError(f"member {m.name!r} is itself an ensemble; list its members instead")
        for f in SHARED_FIELDS:
            if getattr(m, f) != getattr(config, f):
                raise ValueError(f"member {m.name!r} has {f} = {getattr(m, f)!r}, the ensemble "
                                 f"{getattr(config, f)!r}: members must share the crop and its reweighting")
        missing = [t for t in config.tasks if t not in m.tasks]
        if missing:
            raise ValueError(f"member {m.name!r} does not answer {missing}")


def build_ensemble(config: ClassifierConfig, pretrained: bool = False) -> Ensemble:
    """The :class:`Ensemble` ``config`` describes (members built by ``build_classifier``)."""
    from .backbones import build_classifier

    members = member_configs(config)
    check_members(config, members)
    mean0, std0 = torch.tensor(config.mean), torch.tensor(config.std)
    norms = []
    for m in members:
        mean, std = torch.tensor(m.mean), torch.tensor(m.std)
        norms.append((std0 / std, (mean0 - mean) / std))
    sizes = [None if m.input_size == config.input_size else m.input_size for m in members]
    return Ensemble([build_classifier(m, pretrained=pretrained) for m in members], config.tasks,
                    norms, config.extra.get("member_weights"), sizes)


def ensemble_config(name: str, members: Sequence[ClassifierConfig], tasks: Sequence[str] | None = None,
                    weights: Sequence[float] | None = None, extra: dict[str, Any] | None = None,
                    input_size: int | None = None) -> ClassifierConfig:
    """An ensemble's config: the first member's crop, reweighting and normalisation at the
    largest member's input size (or ``input_size``), the tasks all members answer (or
    ``tasks``), the members' configs in ``extra["members"]``."""
    first = members[0]
    common = [t for t in first.tasks if all(t in m.tasks for m in members)]
    tasks = tuple(tasks) if tasks else tuple(common)
    d = {k: v for k, v in first.to_dict().items() if k != "labels"}
    size = int(input_size or max(m.input_size for m in members))
    d.update(name=name, backbone="ensemble", tasks=list(tasks), input_size=size,
             extra={**(extra or {}), "members": [m.to_dict() for m in members]})
    if weights is not None:
        d["extra"]["member_weights"] = [float(w) for w in weights]
    config = ClassifierConfig.from_dict(d)
    check_members(config, members)
    return config


__all__ = ["Ensemble", "SHARED_FIELDS", "build_ensemble", "check_members", "ensemble_config",
           "member_configs"]
