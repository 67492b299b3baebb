"""The optional PyTorch backend (``pip install salface[torch]``): the bundled safetensors
weights in their torch networks, called like :class:`~salface.backends.onnxrt.OrtNetwork`."""

from __future__ import annotations

import numpy as np

from ..errors import DependencyError


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise DependencyError("backend 'torch' needs PyTorch: pip install salface[torch]") from exc
    return torch


def resolve_device(device: str) -> str:
    """The torch device name for ``device`` (the one device choice of training, evaluation and
    the torch backend): ``"auto"`` is ``"cuda"`` when torch sees a CUDA device, else ``"cpu"``;
    ``"cpu"``, ``"cuda"`` and ``"cuda:N"`` are checked and returned as they are. Raises
    ``ValueError`` for any other name and ``RuntimeError`` when CUDA is asked for but torch sees
    none. torch is imported only when CUDA has to be looked for."""
    if device == "cpu":
        return device
    if device != "auto" and device != "cuda" and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    torch = _torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but torch sees no CUDA device")
    return device


class TorchNetwork:
    """A torch module called with NumPy: ``net(x)`` → ``{output: float32 array}``."""

    def __init__(self, module, device: str, single_output: str | None = None) -> None:
        self.torch = _torch()
        self.module = module.to(device).eval()
        self.device = device
        self.single_output = single_output

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
            out = self.module(t.contiguous(memory_format=torch.channels_last))
        if self.single_output is not None:
            out = {self.single_output: out}
        return {k: v.float().cpu().numpy() for k, v in out.items()}


def load_torch_network(name: str, device: str = "cpu", threads: int | None = None):
    """``(TorchNetwork, device)`` of bundled classifier or saliency model ``name``."""
    torch = _torch()
    if threads:
        torch.set_num_threads(int(threads))
    device = resolve_device(device)
    from ..hub import bundled_entry

    kind = bundled_entry(name).get("kind")
    if kind == "classifier":
        from ..models.registry import load_classifier

        module, _ = load_classifier(name, device=device)
        return TorchNetwork(module, device), device
    if kind == "saliency":
        from ..saliency.mlnet import load_mlnet

        return load_mlnet(name, device=device).network, device
    raise ValueError(f"bundled model {name!r} is a {kind!r} model, not a network")


__all__ = ["TorchNetwork", "load_torch_network", "resolve_device"]
