"""Saliency module: crops → maps in [0, 1] at crop resolution.

>>> from salface.saliency import get_saliency
>>> model = get_saliency("spectral-residual")
>>> maps = model(crops)            # (N, H, W, 3) uint8 → (N, H, W) float32, max 1 per map

Names (:func:`available_saliency`):

* ``mlnet`` — ML-Net (Cornia et al. 2016) with a frozen MobileNetV2, trained on the NUS eye
  fixations; the package's bundled default :data:`~salface.saliency.mlnet_runtime.DEFAULT_MODEL_NAME`
  (checksum-verified), run by :class:`~salface.saliency.mlnet_runtime.MLNetRuntime`. Raises :class:`~salface.hub.MissingModelError` when its
  weights are not installed — never a randomly initialised network.
* ``spectral-residual`` (Hou & Zhang 2007), ``frequency-tuned`` (Achanta et al. 2009).
* ``centre`` (also ``center``) — a Gaussian centre bias.
* ``none`` — all ones: reweighting is the identity.
"""

from __future__ import annotations

from .base import SaliencyModel, normalize_map
from .classical import CentreBias, FrequencyTuned, NoSaliency, SpectralResidual

_DESCRIPTIONS: dict[str, str] = {
    "mlnet": "ML-Net (Cornia et al. 2016), MobileNetV2 features, trained on NUS fixations (bundled)",
    "spectral-residual": "Spectral residual (Hou & Zhang 2007), classical, no training",
    "frequency-tuned": "Frequency-tuned (Achanta et al. 2009), classical, no training",
    "centre": "Gaussian centre bias (sigma 0.14 of height/width, fitted on NUS train)",
    "none": "All-ones map: reweighting leaves the crop unchanged",
}
_ALIASES = {"center": "centre", "ml-net": "mlnet", "sr": "spectral-residual",
            "ft": "frequency-tuned", "identity": "none"}


def available_saliency() -> dict[str, str]:
    """Saliency model names → one-line descriptions."""
    return dict(_DESCRIPTIONS)


def get_saliency(name: str, device: str = "cpu", backend: str = "auto", **options) -> SaliencyModel:
    """A saliency model by name (see the module docstring).

    ``backend`` runs ML-Net on ONNX Runtime (``"onnx"``; what ``"auto"`` picks on the CPU) or
    PyTorch (``"torch"``; what ``"auto"`` picks for a GPU ``device`` when torch is installed).
    ``options`` for ``mlnet``: ``model`` (bundled model name, default
    ``"mlnet-mobilenetv2-nus"``), ``input_size`` (resize crops to this size first; default: run
    at each crop's own resolution), ``scene=True`` (use the training size, for whole scenes),
    ``batch_size``, ``threads``, ``variant`` (ONNX file: ``"auto"``, ``"onnx"``, ``"onnx_int8"``),
    ``blur`` / ``floor`` (override the bundled post-processing).
    For ``centre``: ``sigma``.
    """
    key = _ALIASES.get(name.lower().strip(), name.lower().strip())
    if key == "mlnet":
        from ..hub import bundled_entry
        from .mlnet_runtime import DEFAULT_MODEL_NAME, load_mlnet_runtime

        if backend == "auto" and device != "cpu":
            from ..backends import _installed

            backend = "torch" if _installed("torch") else "auto"
        model_name = options.pop("model", DEFAULT_MODEL_NAME)
        input_size = options.pop("input_size", None)
        if options.pop("scene", False):
            input_size = tuple(bundled_entry(model_name).get("config", {}).get("train_size", (256, 256)))
        model = load_mlnet_runtime(model_name, backend=backend, device=device,
                                   threads=options.pop("threads", None), input_size=input_size,
                                   variant=options.pop("variant", "auto"),
                                   blur=options.pop("blur", None), floor=options.pop("floor", None))
        if "batch_size" in options:
            model.batch_size = int(options.pop("batch_size"))
    elif key == "spectral-residual":
        model = SpectralResidual(**options)
        options = {}
    elif key == "frequency-tuned":
        model = FrequencyTuned()
    elif key == "centre":
        model = CentreBias(**options)
        options = {}
    elif key == "none":
        model = NoSaliency()
    else:
        raise KeyError(f"unknown saliency model {name!r}; available: {', '.join(_DESCRIPTIONS)} "
                       "(aliases: center)")
    if options:
        raise TypeError(f"unexpected options for saliency model {key!r}: {sorted(options)}")
    return model


__all__ = ["SaliencyModel", "normalize_map", "get_saliency", "available_saliency", "CentreBias",
           "FrequencyTuned", "NoSaliency", "SpectralResidual"]
