"""Writing the bundled ONNX files (training side; needs torch and onnxscript).

The runtime runs the shipped networks from ONNX files inside the package (``salface/bundled/``,
listed in the manifest with their SHA-256; :mod:`salface.backends.onnxrt`). This module makes
them from the torch networks:

* :func:`export_onnx` exports a bundled classifier or ML-Net with ``torch.onnx.export`` (the
  ``torch.export``-based exporter). The batch dimension is dynamic, and for ML-Net also height and
  width (it runs at each crop's own resolution). A classifier gets one named output per task (its
  forward returns ``{task: logits}``); ML-Net one output, ``saliency``, its raw ``(N, 1, H/8,
  W/8)`` map. Pre- and post-processing stay outside the graph, in NumPy, shared by both backends.
* :func:`check_parity` runs the torch network and the exported file on the same inputs (real face
  crops and random pixels) and reports the largest logit / map difference and whether every
  argmax agrees.
* :func:`bundle_onnx` exports, checks parity (refusing a file that disagrees) and records the file
  as the model's ``onnx`` variant in the manifest (``salface models bundle-onnx NAME``; ``salface
  ship`` calls it for every model it ships).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import DependencyError
from ..hub import bundled_entry, register_bundled_file
from .config import ClassifierConfig

INPUT_NAME = "input"
SALIENCY_OUTPUT = "saliency"
PARITY_TOL = 1e-3
"""Largest absolute difference of logits (classifiers) or of raw maps relative to their maximum
(ML-Net) that :func:`bundle_onnx` accepts; measured differences are about 1e-6."""


def require(module: str):
    """Import ``module`` (``onnxruntime``, ``onnxscript``) or explain how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(f"writing ONNX files needs {module}: pip install salface[train]") from exc


class _TaskOutputs(nn.Module):
    """A classifier whose ``{task: logits}`` becomes a tuple in ``tasks`` order (one ONNX output
    per task)."""

    def __init__(self, net: nn.Module, tasks: tuple[str, ...]) -> None:
        super().__init__()
        self.net = net
        self.tasks = tasks

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net(x)
        return tuple(out[t] for t in self.tasks)


def _torch_network(name: str, directory: str | os.PathLike | None = None
                   ) -> tuple[nn.Module, str, dict[str, Any]]:
    """``(torch module in eval mode, kind, manifest entry)`` of bundled model ``name``."""
    entry = bundled_entry(name, directory)
    kind = entry.get("kind")
    if kind == "classifier":
        from .registry import load_classifier

        return load_classifier(name, directory=str(directory) if directory else None)[0].eval(), kind, entry
    if kind == "saliency":
        if directory is not None:
            raise ValueError("ML-Net is read from the bundled folder only (set SALFACE_BUNDLED_DIR)")
        from ..saliency.mlnet import load_mlnet

        return load_mlnet(name).network.module.eval(), kind, entry
    raise ValueError(f"bundled model {name!r} is a {kind!r} model; only classifiers and "
                     "saliency models are exported")


def export_onnx(name: str, out_path: str | os.PathLike, *, module: nn.Module | None = None,
                entry: dict[str, Any] | None = None) -> Path:
    """Export bundled model ``name`` (a classifier or ML-Net) to ``out_path``; returns it.
    ``module`` / ``entry``: its loaded torch network and manifest entry, if the caller has them."""
    require("onnxscript")
    net, kind, entry = _torch_network(name) if module is None else (module, entry["kind"], entry)
    if kind == "classifier":
        cfg = ClassifierConfig.from_dict(entry["config"])
        s = cfg.input_size
        wrapped, example, outputs = _TaskOutputs(net, cfg.tasks), torch.zeros(2, 3, s, s), list(cfg.tasks)
        dims = {0: torch.export.Dim("batch", min=1)}
    else:
        wrapped, example, outputs = net, torch.zeros(2, 3, 96, 96), [SALIENCY_OUTPUT]
        dims = {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim("height", min=16),
                3: torch.export.Dim("width", min=16)}  # ML-Net needs crops of at least 16 px
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    program = torch.onnx.export(wrapped.eval(), (example,), dynamo=True, verbose=False,
                                input_names=[INPUT_NAME], output_names=outputs,
                                dynamic_shapes=(dims,))
    program.save(str(part), external_data=False)
    os.replace(part, path)
    return path


def parity_inputs(size: int, n_random: int = 8, seed: int = 0) -> np.ndarray:
    """uint8 ``(N, size, size, 3)`` crops to compare backends on: the astronaut's face (from
    scikit-image when installed), its mirror, and seeded random pixels."""
    rng = np.random.default_rng(seed)
    crops = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n_random)]
    try:
        import skimage.data

        from ..crop import crop_face
        from ..types import Box, Face

        face = crop_face(skimage.data.astronaut(), Face(Box(178, 63, 268, 176)), size=size).pixels
        crops = [face, face[:, ::-1].copy()] + crops
    except ImportError:
        pass
    return np.stack(crops)


def check_parity(name: str, onnx_path: str | os.PathLike, module: nn.Module | None = None,
                 entry: dict[str, Any] | None = None) -> dict[str, Any]:
    """Largest differences between the torch network and ``onnx_path`` on :func:`parity_inputs`
    (through the runtime's own preprocessing): ``{"max_abs_logit": ..., "argmax_agree": ...}``
    for a classifier, ``{"max_rel_map": ...}`` for ML-Net."""
    from ..backends.onnxrt import OrtNetwork
    from ..backends.torch import TorchNetwork

    net, kind, entry = _torch_network(name) if module is None else (module, entry["kind"], entry)
    ort_net = OrtNetwork(onnx_path)
    if kind == "classifier":
        from ..preprocess import prepare_crops, to_input_array

        cfg = ClassifierConfig.from_dict(entry["config"])
        pixels = prepare_crops(parity_inputs(cfg.input_size), cfg)
        maps = np.random.default_rng(1).random(pixels.shape[:3], dtype=np.float32)
        x = to_input_array(pixels, maps, cfg)
        a, b = TorchNetwork(net, "cpu")(x), ort_net(x)
        return {"inputs": int(len(x)),
                "max_abs_logit": float(max(np.abs(a[t] - b[t]).max() for t in cfg.tasks)),
                "argmax_agree": bool(all((a[t].argmax(1) == b[t].argmax(1)).all() for t in cfg.tasks))}
    from ..saliency.mlnet_runtime import imagenet_input

    x = imagenet_input(parity_inputs(96))
    a = TorchNetwork(net, "cpu", SALIENCY_OUTPUT)(x)[SALIENCY_OUTPUT]
    b = ort_net(x)[SALIENCY_OUTPUT]
    scale = np.maximum(np.abs(a).reshape(len(a), -1).max(1), 1e-8)[:, None, None, None]
    return {"inputs": int(len(x)), "max_rel_map": float((np.abs(a - b) / scale).max())}


def bundle_onnx(name: str, *, tol: float = PARITY_TOL, directory: str | os.PathLike | None = None) -> Path:
    """Export bundled model ``name``, check it against torch and record it in the manifest as its
    ``onnx`` variant (``salface/bundled/<name>.onnx``). Raises ``RuntimeError`` when the export
    disagrees with torch by more than ``tol`` or on any argmax."""
    net, kind, entry = _torch_network(name, directory)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(name, Path(tmp) / f"{name}.onnx", module=net, entry=entry)
        parity = check_parity(name, path, module=net, entry=entry)
        worst = parity.get("max_abs_logit", parity.get("max_rel_map", 0.0))
        if worst > tol or not parity.get("argmax_agree", True):
            raise RuntimeError(f"ONNX export of {name!r} disagrees with torch: {parity}")
        return register_bundled_file(name, "onnx", path, directory=directory, extra={
            "parity_vs_torch": parity, "exported_with": f"torch {torch.__version__}"})


__all__ = ["INPUT_NAME", "PARITY_TOL", "SALIENCY_OUTPUT", "bundle_onnx", "check_parity",
           "export_onnx", "parity_inputs", "require"]
