"""The runtime classifier: one forward path for ``analyze``, ``explain``, the service and the
benchmarks, on either backend.

:meth:`Classifier.predict` does, in NumPy: reweight + normalise (:func:`salface.preprocess.
to_input_array`), the network, flip test-time augmentation when the model was evaluated and
shipped with it (``config.extra["tta_flip"]``: logits of the crop and its mirror averaged; both
halves go through the network as one batch), on request the shipped prior correction
(``config.extra["logit_bias"]``), temperature scaling per task (fitted on val,
``config.extra["temperature"]``) and the softmax.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np

from ..backends import Network, load_network, resolve_backend
from ..errors import MissingModelError
from ..hub import DEFAULT_MODELS
from ..models.config import ClassifierConfig
from ..preprocess import prepare_crops, to_input_array



def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (then float32), stable for large logits."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class Classifier:
    """A bundled classifier ready to run: its :class:`~salface.models.config.ClassifierConfig`
    (preprocessing, labels, temperature) and its network on a backend."""

    def __init__(self, name: str, config: ClassifierConfig, network: Network,
                 backend: str = "onnx", device: str = "cpu", prior_correction: bool = False,
                 tta: bool | None = None) -> None:
        self.name = name
        self.prior_correction = prior_correction
        self.tta = tta  # None: as shipped (config.extra["tta_flip"]); True / False overrides
        self.config = config
        self.network = network
        self.backend = backend
        self.device = device

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.config.tasks

    @property
    def labels(self) -> dict[str, tuple[str, ...]]:
        return self.config.labels

    def prepare(self, crops: np.ndarray) -> np.ndarray:
        """uint8 crops → uint8 crops at the model's input size and colour."""
        return prepare_crops(crops, self.config)

    def logits(self, pixels: np.ndarray, maps: np.ndarray | None, *,
               ratio: float | None = None, calibrated: bool = True) -> dict[str, np.ndarray]:
        """``{task: (N, C) logits}`` of prepared uint8 crops and their saliency maps (flip TTA
        when the model ships with it; when ``calibrated``, plus the task's shipped prior correction
        ``config.extra["logit_bias"]`` if this classifier was asked for it, then divided by the
        task's temperature)."""
        cfg = self.config
        x = to_input_array(pixels, maps, cfg, ratio=ratio)
        n = len(x)
        if n == 0:
            return {t: np.zeros((0, len(cfg.labels[t])), np.float32) for t in cfg.tasks}
        tta = bool(cfg.extra.get("tta_flip")) if self.tta is None else self.tta
        if tta:
            x = np.concatenate([x, x[..., ::-1]])
        out = self.network(x)
        result = {}
        temps: Mapping[str, float] = (cfg.extra.get("temperature") or {}) if calibrated else {}
        biases: Mapping[str, Sequence[float]] = ((cfg.extra.get("logit_bias") or {})
                                                 if calibrated and self.prior_correction else {})
        for t in cfg.tasks:
            z = np.asarray(out[t], dtype=np.float32)
            if tta:
                z = (z[:n] + z[n:]) / 2
            if t in biases:
                z = z + np.asarray(biases[t], np.float32)
            if t in temps:
                z = z / np.float32(temps[t])
            result[t] = z
        return result

    def predict(self, pixels: np.ndarray, maps: np.ndarray | None, *,
                ratio: float | None = None) -> dict[str, np.ndarray]:
        """``{task: (N, C) calibrated probabilities}``."""
        return {t: softmax(z) for t, z in self.logits(pixels, maps, ratio=ratio).items()}

    def with_ratio(self, ratio: float) -> "Classifier":
        """The same network with another reweighting ratio in its config (an ablation)."""
        return Classifier(self.name, replace(self.config, ratio=ratio), self.network,
                          self.backend, self.device, self.prior_correction, self.tta)

    def with_prior_correction(self, on: bool = True) -> "Classifier":
        """The same network, adding (``on``) or not its shipped ``logit_bias`` to the logits."""
        return Classifier(self.name, self.config, self.network, self.backend, self.device,
                          prior_correction=on, tta=self.tta)

    def with_tta(self, on: bool | None) -> "Classifier":
        """The same network with flip TTA forced on or off (``None``: as shipped)."""
        return Classifier(self.name, self.config, self.network, self.backend, self.device,
                          prior_correction=self.prior_correction, tta=on)

    def __repr__(self) -> str:
        return (f"Classifier({self.name!r}, tasks={list(self.tasks)}, backend={self.backend!r}, "
                f"device={self.device!r})")


def load_classifier(name: str = "default-age-gender", *, backend: str = "auto",
                    device: str = "cpu", threads: int | None = None,
                    variant: str = "auto") -> Classifier:
    """Bundled classifier ``name`` on ``backend`` (``"auto"``: ONNX Runtime). Its files are
    checked against the manifest's SHA-256; a model that was never shipped raises
    :class:`~salface.errors.MissingModelError` (salface never predicts with untrained weights)."""
    from ..hub import bundled_entry

    entry = bundled_entry(name)
    if entry.get("kind") != "classifier":
        raise MissingModelError(f"bundled model {name!r} is a {entry.get('kind')!r} model, "
                                "not a classifier")
    config = ClassifierConfig.from_dict(entry["config"])
    resolved = resolve_backend(backend)
    net, used = load_network(name, resolved, device=device, threads=threads, variant=variant)
    return Classifier(name, config, net, resolved, used)


__all__ = ["DEFAULT_MODELS", "Classifier", "load_classifier", "softmax"]
