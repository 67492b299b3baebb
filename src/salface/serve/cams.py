"""Class activation maps for ``POST /v1/explain``, through the optional PyTorch backend.

A CAM reads a network's last feature maps, which the ONNX files the runtime runs do not expose, so
CAMs need the classifiers' torch networks: they are loaded through :mod:`salface.backends.torch`
(the runtime's one door to torch, ``pip install salface[torch]``) on the first request that asks
for CAMs, never at start-up. Without torch, :meth:`CamMaker.__call__` says so and the saliency
panels are returned alone.

The map is Zhou et al. (2016)'s, as in :func:`salface.explain.class_activation_maps` (which the
torch-free runtime may not import): ``M_c = Σ_k w_{c,k} · A_k`` for the class ``c`` the server
reported, upsampled bilinearly (half-pixel centres) to the tile and min–max normalised per face
(a flat map stays all zero), then drawn as a JET heat map over the crop. For an ensemble
(:mod:`salface.models.ensemble`) it is its members' maps so normalised, averaged with the members'
weights and normalised again.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from ..crop import crop_for_config
from ..preprocess import to_input_array
from ..types import FaceResult
from ..viz import cam_overlay

def normalise(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(m)


class CamMaker:
    """CAMs of an :class:`~salface.pipeline.Analyzer`'s classifiers (torch networks loaded once)."""

    def __init__(self, analyzer: Any) -> None:
        self.analyzer = analyzer
        self._nets: list[tuple[Any, Any]] | None = None
        self._lock = threading.Lock()

    def _networks(self) -> list[tuple[Any, Any]]:
        """``(group, TorchNetwork)`` per classifier: its own network on the torch backend, else
        the same bundled weights loaded through the torch backend."""
        with self._lock:
            if self._nets is None:
                from ..backends.torch import load_torch_network

                nets = []
                for g in self.analyzer.groups:
                    net = g.classifier.network
                    if getattr(net, "module", None) is None:
                        net, _ = load_torch_network(g.classifier.name, device=self.analyzer.device)
                    nets.append((g, net))
                self._nets = nets
            return self._nets

    def maps(self, image: np.ndarray, faces: list[FaceResult], tasks: tuple[str, ...], side: int
             ) -> tuple[list[dict[str, np.ndarray]], list[np.ndarray], list[str]]:
        """Per face ``{task: side×side CAM in [0, 1]}`` for its reported label, the crops as
        side×side tiles, and notes on classifiers without a map. Raises when torch is missing."""
        out: list[dict[str, np.ndarray]] = [{} for _ in faces]
        tiles: list[np.ndarray] = []
        notes: list[str] = []
        for g, net in self._networks():
            want = [t for t in g.tasks if t in tasks]
            module, cfg = net.module, g.config
            if not want:
                continue
            if not getattr(module, "has_gap", False):
                notes.append(f"{g.classifier.name} ({cfg.backbone}) has no global average pooling")
                continue
            rgb = np.stack([crop_for_config(image, r.face, cfg, use_cap=False).pixels for r in faces])
            maps = g.saliency(rgb) if g.saliency is not None else None
            # as the pipeline: the map of the uncapped crop, the model's input under its resolution cap
            if cfg.max_crop_px:
                rgb = np.stack([crop_for_config(image, r.face, cfg).pixels for r in faces])
            px = g.classifier.prepare(rgb)
            torch = net.torch
            with torch.inference_mode():
                x = torch.from_numpy(to_input_array(px, maps, cfg)).to(net.device)
                # an ensemble's map is its members' normalised maps, weighted as their answers are
                members = module.member_inputs(x) if hasattr(module, "member_inputs") else [(module, x, 1.0)]
                parts = [(m.features(xi).float().cpu().numpy(),                   # (N, K, h, w)
                          {t: m.head_weight(t).float().cpu().numpy() for t in want}, float(w))
                         for m, xi, w in members]
            if not tiles:
                tiles = [cv2.resize(p, (side, side), interpolation=cv2.INTER_CUBIC) for p in px]
            for t in want:
                cls = [getattr(r, t).index for r in faces]
                total = np.zeros((len(faces), side, side), np.float32)
                for feats, weights, share in parts:
                    for i, m in enumerate(np.einsum("nk,nkhw->nhw", weights[t][cls], feats)):
                        total[i] += share * normalise(cv2.resize(m, (side, side), interpolation=cv2.INTER_LINEAR))
                for i in range(len(faces)):
                    out[i][t] = normalise(total[i])
        return out, tiles, notes

    def __call__(self, image: np.ndarray, faces: list[FaceResult], tasks: tuple[str, ...],
                 side: int) -> tuple[list[dict[str, np.ndarray]], dict[str, Any]]:
        """Per face ``{task: side×side RGB overlay}`` for its reported label, and a status
        ``{"available": bool, "detail": str}`` (the list is empty when unavailable)."""
        if not faces:
            return [], {"available": True, "detail": "no face"}
        try:
            self._networks()
        except Exception as exc:  # no torch, no weights: the panels still go out
            return [], {"available": False,
                        "detail": f"class activation maps need the PyTorch backend "
                                  f"(pip install salface[torch]): {exc}"}
        try:
            cams, tiles, notes = self.maps(image, faces, tasks, side)
        except Exception as exc:  # an explanation is optional: report it, keep the panels
            return [], {"available": False, "detail": f"class activation maps failed: {exc}"}
        if not any(cams[0]):
            return [], {"available": False, "detail": "; ".join(notes) or "no task asked for"}
        out = [{t: cam_overlay(tiles[i], m) for t, m in c.items()} for i, c in enumerate(cams)]
        return out, {"available": True, "detail": "; ".join(notes) or
                     "class activation maps (Zhou et al. 2016) of each face's reported label"}
