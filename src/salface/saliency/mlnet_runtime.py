"""ML-Net at inference time, without torch: the bundled network on a backend (ONNX Runtime by
default) with NumPy/OpenCV around it.

Per batch of uint8 crops: ImageNet normalisation, the network's raw ``(N, 1, H/8, W/8)`` map,
bilinear upsampling to the crop size (``cv2.INTER_LINEAR``: half-pixel centres, as torch's
``align_corners=False``), then :func:`~salface.saliency.base.postprocess` with the bundled
model's blur and floor (chosen on the NUS val split). The network definition and its training
live in :mod:`salface.saliency.mlnet` (torch).
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import SaliencyModel, postprocess

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
DEFAULT_MODEL_NAME = "mlnet-mobilenetv2-nus"
SALIENCY_OUTPUT = "saliency"


def imagenet_input(crops: np.ndarray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 → ImageNet-normalised float32 ``(N, 3, H, W)``."""
    x = (crops.astype(np.float32) * np.float32(1.0 / 255.0) - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


class MLNetRuntime(SaliencyModel):
    """A bundled ML-Net as a :class:`~salface.saliency.base.SaliencyModel` on any backend.

    ``input_size=None`` runs the network at each crop's own resolution (face crops); an integer
    or ``(H, W)`` resizes the crops first (whole scenes: the training size) and the maps back."""

    name = "mlnet"

    def __init__(self, network, *, model_name: str = DEFAULT_MODEL_NAME, blur: float = 0.0,
                 floor: float = 0.0, input_size: int | tuple[int, int] | None = None,
                 batch_size: int = 64, backend: str = "onnx", device: str = "cpu") -> None:
        self.network = network
        self.model_name = model_name
        self.blur = float(blur)
        self.floor = float(floor)
        self.input_size = (input_size, input_size) if isinstance(input_size, int) else input_size
        self.batch_size = int(batch_size)
        self.backend = backend
        self.device = device

    def raw(self, crops: np.ndarray) -> np.ndarray:
        """``(N, H, W)`` float32 raw maps upsampled to the crops' size (before postprocess)."""
        n, h, w = crops.shape[:3]
        if self.input_size is not None and (h, w) != tuple(self.input_size):
            ih, iw = self.input_size
            interp = cv2.INTER_AREA if (h > ih or w > iw) else cv2.INTER_LINEAR
            crops = np.stack([cv2.resize(c, (iw, ih), interpolation=interp) for c in crops])
        out = np.empty((n, h, w), np.float32)
        for s in range(0, n, self.batch_size):
            y = self.network(imagenet_input(crops[s:s + self.batch_size]))[SALIENCY_OUTPUT]
            for i, m in enumerate(y[:, 0]):
                out[s + i] = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
        return out

    def predict(self, crops: np.ndarray) -> np.ndarray:
        arr = np.asarray(crops)
        if arr.dtype != np.uint8:
            raise ValueError(f"expected uint8 crops, got dtype {arr.dtype}")
        if arr.shape[1] < 16 or arr.shape[2] < 16:
            raise ValueError(f"crops must be at least 16×16 px for ML-Net, got {arr.shape[1:3]}")
        if len(arr) == 0:
            return np.zeros(arr.shape[:3], np.float32)
        return np.stack([postprocess(m, self.blur, self.floor) for m in self.raw(arr)])


def load_mlnet_runtime(name: str = DEFAULT_MODEL_NAME, *, backend: str = "auto",
                       device: str = "cpu", threads: int | None = None,
                       input_size: int | tuple[int, int] | None = None, blur: float | None = None,
                       floor: float | None = None, variant: str = "auto") -> MLNetRuntime:
    """Bundled ML-Net ``name`` (checksum-verified) on ``backend`` (``"auto"``: ONNX Runtime;
    ``variant``: see :func:`salface.backends.load_network`)."""
    from ..backends import load_network, resolve_backend
    from ..hub import bundled_entry

    entry = bundled_entry(name)
    if entry.get("kind") != "saliency":
        raise ValueError(f"bundled model {name!r} is a {entry.get('kind')!r} model, not saliency")
    resolved = resolve_backend(backend)
    net, used = load_network(name, resolved, device=device, threads=threads, variant=variant)
    post = entry.get("config", {}).get("postprocess", {})
    return MLNetRuntime(net, model_name=name, input_size=input_size, backend=resolved, device=used,
                        blur=float(post.get("blur", 0.0)) if blur is None else blur,
                        floor=float(post.get("floor", 0.0)) if floor is None else floor)


__all__ = ["DEFAULT_MODEL_NAME", "MLNetRuntime", "imagenet_input", "load_mlnet_runtime"]
