"""Where the networks run: ONNX Runtime (the default, no torch) or PyTorch (``pip install
salface[torch]``).

A *network* here is anything called as ``net(x)`` with a float32 ``(N, 3, H, W)`` NumPy array
that returns ``{output name: float32 array}``: a classifier gives one output per task (logits),
ML-Net one output, ``"saliency"`` (its raw ``(N, 1, H/8, W/8)`` map). Pre- and post-processing
around the networks are NumPy code shared by both backends (:mod:`salface.preprocess`,
:mod:`salface.classify`, :mod:`salface.saliency.mlnet_runtime`), so the two give the same
probabilities up to float rounding.

``backend="auto"`` picks ONNX Runtime (with its CUDA provider when ``device`` asks for a GPU and
onnxruntime-gpu offers it); PyTorch only when ONNX Runtime is not installed.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

import numpy as np

from ..errors import DependencyError

BACKENDS = ("auto", "onnx", "torch")
DEVICES = ("cpu", "cuda", "auto")

Network = Callable[[np.ndarray], dict[str, np.ndarray]]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def resolve_backend(backend: str = "auto") -> str:
    """``"onnx"`` or ``"torch"`` for ``backend`` (``"auto"``, ``"onnx"``, ``"torch"``), after
    checking that it is installed (:class:`~salface.errors.DependencyError` naming the extra)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        if _installed("onnxruntime"):
            return "onnx"
        if _installed("torch"):
            return "torch"
        raise DependencyError("no inference backend is installed: salface needs onnxruntime "
                              "(pip install salface) or torch (pip install salface[torch])")
    if backend == "onnx" and not _installed("onnxruntime"):
        raise DependencyError("backend 'onnx' needs onnxruntime: pip install onnxruntime")
    if backend == "torch" and not _installed("torch"):
        raise DependencyError("backend 'torch' needs PyTorch: pip install salface[torch]")
    return backend


def check_device(device: str) -> str:
    """``device`` after checking its spelling (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``)."""
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    return device


def load_network(name: str, backend: str, device: str = "cpu", threads: int | None = None,
                 variant: str = "auto") -> tuple[Network, str]:
    """``(network, device used)`` for bundled model ``name`` (a classifier or ML-Net) on
    ``backend`` (already resolved). ``variant`` picks the ONNX file: ``"auto"`` the one the
    manifest says the runtime runs (``runtime_variant``: INT8 where it passed its trial, see
    ``docs/benchmarks/int8_trial.md``; otherwise float), ``"onnx"`` float, ``"onnx_int8"``
    quantised."""
    if backend == "onnx":
        from ..hub import bundled_entry, bundled_file
        from .onnxrt import OrtNetwork

        if variant == "auto":
            variant = bundled_entry(name).get("runtime_variant", "onnx")
        net = OrtNetwork(bundled_file(name, variant), device=device, threads=threads)
        return net, net.device
    if backend == "torch":
        from .torch import load_torch_network

        return load_torch_network(name, device=device, threads=threads)
    raise ValueError(f"unresolved backend {backend!r}")


def describe() -> dict[str, Any]:
    """What is installed: backends and ONNX Runtime's execution providers."""
    info: dict[str, Any] = {"onnxruntime": _installed("onnxruntime"), "torch": _installed("torch")}
    if info["onnxruntime"]:
        import onnxruntime as ort

        info["onnx_providers"] = ort.get_available_providers()
    return info


__all__ = ["BACKENDS", "Network", "check_device", "describe", "load_network", "resolve_backend"]
