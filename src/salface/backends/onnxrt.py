"""ONNX Runtime sessions for the bundled networks (the default backend; no torch)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DependencyError, ModelError


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise DependencyError("the ONNX backend needs onnxruntime: pip install onnxruntime") from exc
    return onnxruntime


def _providers(ort, device: str) -> tuple[list[str], str]:
    available = ort.get_available_providers()
    if device.startswith("cuda") or device == "auto":
        if "CUDAExecutionProvider" in available:
            idx = int(device.split(":", 1)[1]) if ":" in device else 0
            return [("CUDAExecutionProvider", {"device_id": idx}), "CPUExecutionProvider"], \
                f"cuda:{idx}"
        if device != "auto":
            raise DependencyError(f"device {device!r} needs ONNX Runtime's CUDA provider "
                                  "(pip install onnxruntime-gpu); available: "
                                  f"{', '.join(available)}")
    return ["CPUExecutionProvider"], "cpu"


def session_options(threads: int | None = None):
    """The ONNX Runtime session options every bundled network runs with: ``threads`` intra-op
    threads (``None``: ONNX Runtime's default, one per physical core), one inter-op thread, no
    memory arena and no spinning. Measured on the 2-core CPU (batch 32–64 faces): the arena kept
    ~1 GB of activation buffers alive for the whole process (peak 1.0 GB vs 0.35 GB without it)
    for no measurable speed; idle intra-op threads that spin steal the core the decode/detect
    thread needs (the bundled BlazeFace with ONNX Runtime's defaults cost the whole pipeline a
    third of its speed)."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.enable_cpu_mem_arena = False
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OrtNetwork:
    """``net(x)``: float32 ``(N, 3, H, W)`` → ``{output name: float32 array}``.

    ``threads`` sets ONNX Runtime's intra-op threads (``None``: ``$SALFACE_THREADS``, else ONNX
    Runtime's default, one per physical core). Sessions are safe to call from several threads.
    """

    def __init__(self, path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
        ort = _ort()
        opts = session_options(threads or int(os.environ.get("SALFACE_THREADS", "0") or 0))
        providers, self.device = _providers(ort, device)
        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"ONNX Runtime could not load {self.path}: {exc}") from exc
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        arr = np.ascontiguousarray(x, dtype=np.float32)
        outs = self.session.run(self.output_names, {self.input_name: arr})
        return dict(zip(self.output_names, outs))

    def __repr__(self) -> str:
        return f"OrtNetwork({self.path.name!r}, device={self.device!r})"


__all__ = ["OrtNetwork"]
