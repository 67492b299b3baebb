"""An optional ONNX Runtime backend for the bundled classifiers and the ML-Net saliency model.

:func:`export_onnx` turns a bundled model into an ONNX file with ``torch.onnx.export`` (the
``torch.export``-based exporter, which needs ``onnxscript``); the batch dimension is dynamic, and
for ML-Net also the height and width (it runs at each crop's own resolution). A classifier gets
one named output per task (its forward returns ``{task: logits}``); ML-Net has one output,
``saliency``, its raw ``(N, 1, H/8, W/8)`` map. Everything around the network — crop
preparation, reweighting, ML-Net's upsampling and post-processing — stays where it is, so both
backends share it.

Exports live in ``<cache_dir()>/onnx/<name>-<sha256 of the source safetensors>.onnx``, with a
JSON file of the same stem beside them (the model's config, the source's SHA-256 and the ONNX
file's own SHA-256). New weights get a new name, so a stale export is never used; an export
whose JSON is missing or whose checksum does not match is exported again.

:class:`OnnxModel` wraps an ``onnxruntime.InferenceSession`` (CPU provider, as many intra-op
threads as torch uses) and is called like the torch module: a ``(N, 3, H, W)`` float tensor or
array in, ``{output name: tensor}`` out. :class:`OnnxMLNet` returns the bare map tensor, as
:class:`~salface.saliency.mlnet.MLNet` does.

Installed by ``pip install salface[onnx]`` (onnxruntime, onnxscript).
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from ..saliency.base import SaliencyModel
from .config import ClassifierConfig
from ..hub import bundled_entry, bundled_model_path, cache_dir, sha256_file

INPUT_NAME = "input"
SALIENCY_OUTPUT = "saliency"
INSTALL_HINT = "pip install salface[onnx]"


def require(module: str) -> ModuleType:
    """Import ``module`` (``onnxruntime``, ``onnxscript``) or explain how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"the ONNX Runtime backend needs {module}, which is not installed; "
                          f"install it with `{INSTALL_HINT}`") from exc


# ------------------------------------------------------------------------------------ export


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


def _source_sha256(name: str, directory: str | os.PathLike | None) -> str:
    """SHA-256 of bundled model ``name``'s safetensors (checked against the manifest)."""
    bundled_model_path(name, directory)
    return str(bundled_entry(name, directory)["sha256"]).lower()


def export_path(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Where the export of bundled model ``name``'s current weights lives in the cache."""
    return _cached(name, _source_sha256(name, directory))


def _cached(name: str, source_sha256: str) -> Path:
    return cache_dir() / "onnx" / f"{name}-{source_sha256}.onnx"


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _is_current(path: Path, source_sha256: str) -> bool:
    """Whether ``path`` is an intact export of the weights with SHA-256 ``source_sha256``."""
    try:
        meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        return (path.is_file() and meta.get("source_sha256") == source_sha256
                and meta.get("onnx_sha256") == sha256_file(path))
    except (OSError, ValueError, AttributeError):
        return False


def _source(name: str, directory: str | os.PathLike | None,
            module: nn.Module | None) -> tuple[nn.Module, torch.Tensor, dict[int, str], list[str], dict]:
    """``(module, example input, dynamic input dims, output names, config)`` of bundled model
    ``name``; ``module`` is the already loaded network, if the caller has it."""
    entry = bundled_entry(name, directory)
    kind = entry.get("kind")
    if kind == "classifier":
        from .registry import load_classifier

        cfg = ClassifierConfig.from_dict(entry["config"])
        net = module if module is not None else load_classifier(name, directory=directory)[0]
        s = cfg.input_size
        return (_TaskOutputs(net, cfg.tasks), torch.zeros(2, 3, s, s), {0: "batch"},
                list(cfg.tasks), cfg.to_dict())
    if kind == "saliency":
        if module is None:
            if directory is not None:
                raise ValueError("ML-Net is loaded from the bundled folder only "
                                 "(set SALFACE_BUNDLED_DIR to use another)")
            from ..saliency.mlnet import load_mlnet

            module = load_mlnet(name).net
        return (module, torch.zeros(2, 3, 96, 96), {0: "batch", 2: "height", 3: "width"},
                [SALIENCY_OUTPUT], dict(entry.get("config", {})))
    raise ValueError(f"bundled model {name!r} is a {kind!r} model; only classifiers and "
                     "saliency models can be exported")


def export_onnx(name: str, out_path: str | os.PathLike | None = None, *,
                directory: str | os.PathLike | None = None, module: nn.Module | None = None,
                force: bool = False) -> Path:
    """Export bundled model ``name`` (a classifier or ML-Net) to ONNX; returns the ``.onnx`` path.

    ``out_path`` defaults to :func:`export_path` in the cache. An intact export of the same
    weights already there is reused unless ``force``. The model's config, the source's SHA-256
    and the ONNX file's SHA-256 are written to a ``.json`` file of the same stem. ``module`` is
    the loaded torch network of ``name`` (saves loading it again); ``directory`` is the bundled
    folder (default :func:`~salface.hub.bundled_dir`).
    """
    source_sha256 = _source_sha256(name, directory)
    path = Path(out_path) if out_path is not None else _cached(name, source_sha256)
    if not force and _is_current(path, source_sha256):
        return path
    require("onnxscript")
    net, example, dims, outputs, config = _source(name, directory, module)
    shapes = {axis: torch.export.Dim(label, min=1 if axis == 0 else 16)
              for axis, label in dims.items()}  # ML-Net needs crops of at least 16 px
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f"{path.name}.{os.getpid()}.part")  # exports racing never mix bytes
    program = torch.onnx.export(net.eval(), (example,), dynamo=True, verbose=False,
                                input_names=[INPUT_NAME], output_names=outputs,
                                dynamic_shapes=(shapes,))
    program.save(part, external_data=False)
    os.replace(part, path)
    meta = {"model": name, "kind": bundled_entry(name, directory).get("kind"),
            "source_sha256": source_sha256, "onnx_sha256": sha256_file(path),
            "input": INPUT_NAME, "outputs": outputs, "dynamic_axes": dims,
            "torch": torch.__version__, "config": config}
    tmp = _sidecar(path).with_name(f"{_sidecar(path).name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, _sidecar(path))
    return path


# ------------------------------------------------------------------------------------ runners


class OnnxModel:
    """An ONNX Runtime session called like the torch module it was exported from.

    ``model(x)`` takes a ``(N, 3, H, W)`` float tensor or array (any memory format) and returns
    ``{output name: CPU float tensor}`` — for a classifier ``{task: logits}``. ``threads``
    defaults to ``torch.get_num_threads()``.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        ort = require("onnxruntime")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: torch.Tensor | np.ndarray) -> dict[str, torch.Tensor]:
        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu", torch.float32).contiguous().numpy()
        arr = np.ascontiguousarray(x, dtype=np.float32)
        outs = self.session.run(self.output_names, {self.input_name: arr})
        return {n: torch.from_numpy(o) for n, o in zip(self.output_names, outs)}


class OnnxMLNet(OnnxModel):
    """An exported ML-Net: returns the raw ``(N, 1, H/8, W/8)`` map tensor, like
    :class:`~salface.saliency.mlnet.MLNet`, and keeps its ``config``."""

    def __init__(self, path: str | os.PathLike, config: Any, threads: int | None = None) -> None:
        super().__init__(path, threads)
        self.config = config

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:  # type: ignore[override]
        return super().__call__(x)[SALIENCY_OUTPUT]


def load_classifier_onnx(name: str, directory: str | os.PathLike | None = None,
                         threads: int | None = None) -> tuple[OnnxModel, ClassifierConfig]:
    """``(ONNX Runtime model, config)`` of bundled classifier ``name``, exported on first use."""
    require("onnxruntime")
    entry = bundled_entry(name, directory)
    if entry.get("kind") != "classifier":
        raise ValueError(f"bundled model {name!r} is a {entry.get('kind')!r} model, not a classifier")
    return OnnxModel(export_onnx(name, directory=directory), threads), \
        ClassifierConfig.from_dict(entry["config"])


def onnx_saliency(model: SaliencyModel, threads: int | None = None) -> SaliencyModel:
    """Run an ML-Net saliency model through ONNX Runtime (its network is exported on first use
    and replaced by an :class:`OnnxMLNet`; pre- and post-processing are unchanged). Other
    saliency models are returned as they are."""
    from ..saliency.mlnet import MLNetSaliency

    if not isinstance(model, MLNetSaliency) or isinstance(model.net, OnnxMLNet):
        return model
    require("onnxruntime")
    path = export_onnx(model.model_name, module=model.net)
    model.net = OnnxMLNet(path, model.net.config, threads)  # type: ignore[assignment]
    model.device = torch.device("cpu")
    return model


__all__ = ["INSTALL_HINT", "OnnxMLNet", "OnnxModel", "export_onnx", "export_path",
           "load_classifier_onnx", "onnx_saliency", "require"]
