"""The Analyzer: wires detect → crop → saliency → reweight → classify.

Faces from many images are pushed through the networks together, ``batch_size`` at a time, and
each :class:`~salface.types.ImageResult` is yielded as soon as all of its faces are classified, in
input order. A file that cannot be read gives an ``ImageResult`` with ``error`` set and never stops
the batch. An image without faces is a normal result with ``faces == []``.

Every model's preprocessing (crop size, margin, alignment, colour, saliency model, ratio, mean/std)
comes from its :class:`~salface.models.config.ClassifierConfig`; nothing is hard-coded here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Union

import numpy as np

from .crop import DEFAULT_MARGIN, crop_face
from .detect import get_detector
from .detect.base import Detector
from .io import ImageError, load_image
from .labels import TASKS
from .saliency import get_saliency
from .saliency.base import SaliencyModel
from .types import Face, FaceResult, ImageResult, Prediction

ImageInput = Union[str, "os.PathLike[str]", np.ndarray, Any]

DISPLAY_SIZE = 224
"""Crop size used for the saliency map returned to users when no classifier is loaded
(the papers' 224 × 224)."""


def _resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was requested but torch sees no CUDA device")
    return device


def _check_backend(backend: str, device: str) -> str:
    """``backend`` after checking it is known, and that ONNX Runtime is installed for "onnx"."""
    if backend not in ("torch", "onnx"):
        raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
    if backend == "onnx":
        from .models.onnx import require

        if device not in ("cpu", "auto"):
            raise ValueError(f"backend 'onnx' runs on the CPU only; got device {device!r}")
        require("onnxruntime")
    return backend


@dataclass
class _Group:
    """One loaded classifier and the tasks it answers."""

    model: Any
    config: Any
    tasks: tuple[str, ...]
    saliency: SaliencyModel | None


@dataclass
class _Pending:
    index: int
    source: str
    width: int
    height: int
    image: np.ndarray | None
    faces: list[Face]
    error: str | None = None
    results: list[FaceResult] = field(default_factory=list)


def _source_name(src: ImageInput, index: int) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    name = getattr(src, "filename", None)  # PIL images opened from files
    return str(name) if name else f"<image {index}>"


class Analyzer:
    """Find every face in an image and classify its age group, gender and expression.

    Parameters
    ----------
    detector:
        A detector name (``"yunet"``, ``"dlib-hog"``, ``"mediapipe"``, ``"whole"``) or a
        :class:`~salface.detect.base.Detector` instance.
    model:
        ``"default"`` loads the shipped model of each requested task; a bundled model name loads that
        one; ``None`` skips classification (detection, crop and saliency only).
    tasks:
        Which of ``"age"``, ``"gender"``, ``"expression"`` to answer.
    saliency:
        Overrides the saliency model the classifiers were trained with (an ablation: accuracy is
        only known for the trained pairing). ``None`` keeps each model's own; it is also the model
        used for returned maps when ``model=None`` (default ``"mlnet"``).
    ratio:
        Overrides the reweighted ratio (same caveat); ``None`` keeps each model's own.
    return_saliency:
        Attach the crop and its saliency map to each :class:`FaceResult`.
    keep_images:
        Attach the decoded pixels to each :class:`ImageResult` (``image``), so a caller can draw on
        them without decoding the file again.
    backend:
        ``"torch"`` (default) runs the networks in PyTorch; ``"onnx"`` runs the classifiers and
        ML-Net (when it is the saliency model named) through ONNX Runtime on the CPU (``device``
        ``"cpu"`` or ``"auto"``), exporting them to the cache on first use
        (:mod:`salface.models.onnx`; ``pip install salface[onnx]``).
    """

    def __init__(
        self,
        detector: str | Detector = "yunet",
        model: str | None = "default",
        *,
        tasks: Sequence[str] = ("age", "gender", "expression"),
        saliency: str | SaliencyModel | None = None,
        ratio: float | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        return_saliency: bool = False,
        keep_images: bool = False,
        max_faces: int | None = None,
        detector_options: dict[str, Any] | None = None,
        backend: str = "torch",
    ) -> None:
        for t in tasks:
            if t not in TASKS:
                raise ValueError(f"unknown task {t!r}; expected some of {list(TASKS)}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.backend = _check_backend(backend, device)
        self.device = "cpu" if backend == "onnx" else _resolve_device(device)
        self.detector = detector if isinstance(detector, Detector) else get_detector(
            detector, **(detector_options or {}))
        self.tasks = tuple(tasks)
        self.batch_size = batch_size
        self.return_saliency = return_saliency
        self.keep_images = keep_images
        self.max_faces = max_faces
        self.ratio_override = ratio
        self._saliency_models: dict[str, SaliencyModel] = {}
        self._saliency_override = saliency
        self.groups: list[_Group] = self._load_groups(model) if model is not None else []
        self.display_saliency: SaliencyModel | None = None
        if not self.groups and return_saliency:
            self.display_saliency = self._saliency(saliency if saliency is not None else "mlnet")

    # ------------------------------------------------------------------ set-up
    def _saliency(self, spec: str | SaliencyModel) -> SaliencyModel:
        if isinstance(spec, SaliencyModel):
            return spec
        if spec not in self._saliency_models:
            model = get_saliency(spec, device=self.device)
            if self.backend == "onnx":
                from .models.onnx import onnx_saliency

                model = onnx_saliency(model)
            self._saliency_models[spec] = model
        return self._saliency_models[spec]

    def _load_classifier(self, name: str) -> tuple[Any, Any]:
        """``(network, config)`` of bundled classifier ``name`` for this Analyzer's backend."""
        if self.backend == "onnx":
            from .models.onnx import load_classifier_onnx

            return load_classifier_onnx(name)
        from .models.registry import load_classifier

        return load_classifier(name, device=self.device)

    def _load_groups(self, model: str) -> list[_Group]:
        from .models.registry import DEFAULT_MODELS

        if model == "default":
            names: dict[str, list[str]] = {}
            for t in self.tasks:
                names.setdefault(DEFAULT_MODELS[t], []).append(t)
        else:
            names = {model: list(self.tasks)}
        groups = []
        for name, wanted in names.items():
            net, cfg = self._load_classifier(name)
            tasks = tuple(t for t in wanted if t in cfg.tasks)
            if not tasks:
                raise ValueError(f"model {name!r} answers {list(cfg.tasks)}, none of {wanted}")
            sal_spec = self._saliency_override if self._saliency_override is not None else cfg.saliency
            sal = None if sal_spec == "none" else self._saliency(sal_spec)
            groups.append(_Group(model=net, config=cfg, tasks=tasks, saliency=sal))
        return groups

    # ------------------------------------------------------------------ stages
    def _detect(self, index: int, src: ImageInput) -> _Pending:
        source = _source_name(src, index)
        try:
            image = load_image(src)
        except ImageError as exc:
            return _Pending(index, source, 0, 0, None, [], error=exc.reason)
        h, w = image.shape[:2]
        try:
            faces = self.detector.detect(image)
        except Exception as exc:  # a detector failure is this image's error, not the batch's
            return _Pending(index, source, w, h, None, [], error=f"detection failed: {exc}")
        if self.max_faces is not None:
            faces = faces[: self.max_faces]
        return _Pending(index, source, w, h, image, faces)

    def _classify(self, items: list[tuple[_Pending, Face]]) -> list[FaceResult]:
        """Run every model over a batch of faces; returns one FaceResult per item."""
        from .models.preprocess import forward_logits, prepare_crops, to_input_tensor
        import torch

        preds: list[dict[str, Prediction]] = [{} for _ in items]
        shown_crop: list[np.ndarray | None] = [None] * len(items)
        shown_map: list[np.ndarray | None] = [None] * len(items)
        crop_boxes = [None] * len(items)
        for gi, g in enumerate(self.groups):
            cfg = g.config
            crops = [crop_face(p.image, f, size=cfg.input_size, margin=cfg.margin, align=cfg.align)
                     for p, f in items]
            pixels = prepare_crops(np.stack([c.pixels for c in crops]), cfg)
            maps = g.saliency(pixels) if g.saliency is not None else None  # None: no reweighting
            if self.ratio_override is not None:
                cfg = replace(cfg, ratio=self.ratio_override)
            x = to_input_tensor(pixels, maps, cfg, self.device)
            # g.model: a torch module, or an OnnxModel taking the same tensor (backend="onnx");
            # flip TTA when the model was evaluated (and shipped) with it; its temperatures (fitted on val)
            with torch.inference_mode():
                out = forward_logits(g.model, x, tta_flip=bool(cfg.extra.get("tta_flip")),
                                     temperature=cfg.extra.get("temperature"))
            for t in g.tasks:
                probs = torch.softmax(out[t].float(), dim=1).cpu().numpy()
                names = g.config.labels[t]
                for i, pr in enumerate(probs):
                    k = int(pr.argmax())
                    preds[i][t] = Prediction(task=t, label=names[k], index=k,
                                             probabilities={n: float(v) for n, v in zip(names, pr)})
            if gi == 0:
                crop_boxes = [c.box for c in crops]
                if self.return_saliency:
                    shown_crop = list(pixels)
                    shown_map = list(maps) if maps is not None else [None] * len(items)
        return [FaceResult(face=f, crop_box=crop_boxes[i], age=preds[i].get("age"),
                           gender=preds[i].get("gender"), expression=preds[i].get("expression"),
                           saliency=shown_map[i], crop=shown_crop[i])
                for i, (_, f) in enumerate(items)]

    def _crop_only(self, items: list[tuple[_Pending, Face]]) -> list[FaceResult]:
        crops = [crop_face(p.image, f, size=DISPLAY_SIZE, margin=DEFAULT_MARGIN) for p, f in items]
        maps: list[np.ndarray | None] = [None] * len(items)
        if self.display_saliency is not None and crops:
            maps = list(self.display_saliency(np.stack([c.pixels for c in crops])))
        return [FaceResult(face=f, crop_box=c.box, saliency=m,
                           crop=c.pixels if self.return_saliency else None)
                for (_, f), c, m in zip(items, crops, maps)]

    def _run_batch(self, items: list[tuple[_Pending, Face]]) -> None:
        if not items:
            return
        try:
            results = self._classify(items) if self.groups else self._crop_only(items)
        except Exception as exc:  # keep the batch going: mark the images involved as failed
            for p, _ in items:
                p.error = p.error or f"classification failed: {exc}"
            return
        for (p, _), r in zip(items, results):
            p.results.append(r)

    # ------------------------------------------------------------------ API
    def analyze_batch(self, inputs: Iterable[ImageInput]) -> Iterator[ImageResult]:
        """Yield one :class:`ImageResult` per input, in input order, as soon as each is done."""
        waiting: list[_Pending] = []
        queue: list[tuple[_Pending, Face]] = []

        def finished(flush: bool) -> Iterator[ImageResult]:
            nonlocal queue
            while len(queue) >= self.batch_size or (flush and queue):
                chunk, queue = queue[: self.batch_size], queue[self.batch_size:]
                self._run_batch(chunk)
            queued = {id(p) for p, _ in queue}
            while waiting and id(waiting[0]) not in queued:
                p = waiting.pop(0)
                yield self._result(p)

        for i, src in enumerate(inputs):
            p = self._detect(i, src)
            waiting.append(p)
            queue.extend((p, f) for f in p.faces)
            yield from finished(flush=False)
        yield from finished(flush=True)

    def analyze(self, image: ImageInput) -> list[FaceResult]:
        """Analyse one image; returns its faces (``[]`` if none). Raises ImageError for bad input."""
        result = next(self.analyze_batch([image]))
        if result.error is not None:
            raise ImageError(result.source, result.error)
        return result.faces

    __call__ = analyze

    def _result(self, p: _Pending) -> ImageResult:
        if p.error is not None:
            return ImageResult(source=p.source, width=p.width, height=p.height, faces=[], error=p.error)
        return ImageResult(source=p.source, width=p.width, height=p.height, faces=list(p.results),
                           image=p.image if self.keep_images else None)


_DEFAULT: Analyzer | None = None


def analyze(image: ImageInput, **kwargs: Any) -> list[FaceResult]:
    """One-call convenience: ``salface.analyze("photo.jpg")`` with the default Analyzer."""
    global _DEFAULT
    if kwargs:
        return Analyzer(**kwargs).analyze(image)
    if _DEFAULT is None:
        _DEFAULT = Analyzer()
    return _DEFAULT.analyze(image)
