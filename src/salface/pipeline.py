"""The Analyzer: wires detect → crop → saliency → reweight → classify.

Faces from many images are pushed through the networks together, ``batch_size`` at a time, and
each :class:`~salface.types.ImageResult` is yielded as soon as all of its faces are classified, in
input order. A file that cannot be read gives an ``ImageResult`` with ``error`` set and never stops
the batch. An image without faces is a normal result with ``faces == []``.

Every model's preprocessing (crop size, margin, alignment, colour, saliency model, ratio, mean/std)
comes from its :class:`~salface.models.config.ClassifierConfig`; nothing is hard-coded here. The
runtime needs no torch: the networks run in ONNX Runtime by default (:mod:`salface.backends`).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from .backends import check_device, resolve_backend
from .classify import DEFAULT_MODELS, Classifier, load_classifier
from .crop import DEFAULT_MARGIN, crop_face, crop_for_config
from .detect import get_detector
from .detect.base import Detector
from .errors import ImageError
from .hub import FAST_MODELS
from .io import load_image
from .labels import TASKS
from .saliency import get_saliency
from .saliency.base import SaliencyModel
from .types import Face, FaceResult, ImageResult, Prediction

ImageInput = Union[str, "os.PathLike[str]", np.ndarray, Any]

PREFETCH_IMAGES = 8
"""How many images the background thread decodes and detects ahead of the networks."""

DISPLAY_SIZE = 224
"""Crop size used for the saliency map returned to users when no classifier is loaded
(the papers' 224 × 224)."""


@dataclass
class _Group:
    """One loaded classifier, the tasks it answers and its saliency model (``None``: no
    reweighting). ``crop_key`` identifies its crop geometry: classifiers with the same key share
    crops and, with the same saliency model too, saliency maps."""

    classifier: Classifier
    tasks: tuple[str, ...]
    saliency: SaliencyModel | None
    saliency_spec: str
    crop_key: tuple

    @property
    def config(self):
        return self.classifier.config


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


def _crop_key(cfg, use_frame: bool = False) -> tuple:
    mode = getattr(cfg, "crop_mode", "margin")
    frame = getattr(cfg, "frame", None) if (use_frame and mode == "margin") else None
    align = bool(cfg.align) if mode == "margin" else False
    return (mode, cfg.input_size, float(cfg.margin), align,
            float(getattr(cfg, "align_min_tilt", 0.0)) if align else 0.0, frame)


class Analyzer:
    """Find every face in an image and classify its age group, gender and expression.

    Parameters
    ----------
    detector:
        A detector name (``"auto"``, the default: YuNet when its model is installed, else the
        bundled BlazeFace; ``"yunet"``, ``"blazeface"``, ``"dlib-hog"``, ``"mediapipe"``,
        ``"whole"``) or a :class:`~salface.detect.base.Detector` instance. Each result's
        ``detector`` names the one that ran.
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
        ``"auto"`` (default) runs the networks in ONNX Runtime from the ONNX files bundled with the
        package (no torch; its CUDA provider when ``device`` asks for a GPU and onnxruntime-gpu
        is installed); ``"onnx"`` insists on it; ``"torch"`` runs the same models in PyTorch
        (``pip install salface[torch]``). Both share the NumPy pre- and post-processing.
    device:
        ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    threads:
        Intra-op threads of each network (``None``: ``$SALFACE_THREADS``, else the backend's
        default).
    variant:
        Which ONNX file each network runs: ``"auto"`` (default) the one its manifest entry names
        (INT8 for the networks whose quantised copy kept val accuracy within 0.3 points,
        ``docs/benchmarks/int8_trial.md``; float otherwise), ``"onnx"`` always float,
        ``"onnx_int8"`` always INT8 (where bundled).
    prior_correction:
        Apply a model's shipped prior correction (``config.extra["logit_bias"]``: the expression
        model's logit adjustment against FER+'s class shares, so rare expressions such as fear and
        disgust are not drowned by neutral and happy; ``docs/training.md``). Off by default: it
        raises FER+'s mean per-class accuracy by 3.5 points and lowers its plain accuracy by 1.05
        (the temperature is fitted for the default decision, so probabilities are then only
        approximately calibrated).
    prefetch:
        Decode and detect the next images in a background thread while the networks run on the
        current batch (results still come in input order). ``False`` does everything in the
        calling thread.
    fast:
        The fast profile, for the default models only: age and gender from one network
        (:data:`~salface.hub.FAST_MODELS`: ``default-age-gender``, one MobileNetV2, not the ensemble), ML-Net as
        INT8 and no flip TTA: 20–60 % more faces/s in whole-process runs (session 8), for the accuracy
        measured in ``docs/pipeline.md`` ("The fast profile"). ``variant`` then applies to the classifiers only.
    source_frame:
        Crop each face as if the photo ended where the model's training photos end around the
        face (``config.frame``, measured on them; :mod:`salface.crop`): replicated edges where the
        training crops had them, instead of hair, shoulders and background the networks never saw.
        Models without a measured frame are unaffected. Off by default: in the session-10 trial
        (``docs/benchmarks/framing/``) real pixels where training had replicated ones cost
        nothing, and taking them away cost accuracy.

    Faces whose classifiers share a crop geometry and a saliency model share one saliency map:
    ML-Net runs once per face, on the RGB crop, whatever the number of classifiers (a gray-scale
    model reweights its gray crop by the map of the colour crop; on gray photos the two are
    identical).
    """

    def __init__(
        self,
        detector: str | Detector = "auto",
        model: str | None = "default",
        *,
        tasks: Sequence[str] = ("age", "gender", "expression"),
        saliency: str | SaliencyModel | None = None,
        ratio: float | None = None,
        device: str = "cpu",
        backend: str = "auto",
        threads: int | None = None,
        batch_size: int = 12,
        return_saliency: bool = False,
        keep_images: bool = False,
        max_faces: int | None = None,
        detector_options: dict[str, Any] | None = None,
        prefetch: bool = True,
        variant: str = "auto",
        prior_correction: bool = False,
        fast: bool = False,
        source_frame: bool = False,
    ) -> None:
        for t in tasks:
            if t not in TASKS:
                raise ValueError(f"unknown task {t!r}; expected some of {list(TASKS)}")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if fast and model != "default":
            raise ValueError(f"fast=True runs the default models' fast profile; got model={model!r}")
        self.device = check_device(device)
        self.backend = resolve_backend(backend)
        self.threads = threads
        self.variant = variant
        self.detector = detector if isinstance(detector, Detector) else get_detector(
            detector, **(detector_options or {}))
        self.tasks = tuple(tasks)
        self.batch_size = batch_size
        self.return_saliency = return_saliency
        self.keep_images = keep_images
        self.max_faces = max_faces
        self.prefetch = prefetch
        self.ratio_override = ratio
        self._saliency_models: dict[str, SaliencyModel] = {}
        self._saliency_override = saliency
        self.prior_correction = prior_correction
        self.fast = fast
        self.source_frame = source_frame
        self.groups: list[_Group] = self._load_groups(model) if model is not None else []
        self.display_saliency: SaliencyModel | None = None
        if not self.groups and return_saliency:
            self.display_saliency = self._saliency(saliency if saliency is not None else "mlnet")

    # ------------------------------------------------------------------ set-up
    def _saliency(self, spec: str | SaliencyModel) -> SaliencyModel:
        if isinstance(spec, SaliencyModel):
            return spec
        if spec not in self._saliency_models:
            variant = "onnx_int8" if self.fast else self.variant
            options = {"threads": self.threads, "variant": variant} if spec == "mlnet" else {}
            self._saliency_models[spec] = get_saliency(spec, device=self.device,
                                                       backend=self.backend, **options)
        return self._saliency_models[spec]

    def _load_groups(self, model: str) -> list[_Group]:
        if model == "default":
            names: dict[str, list[str]] = {}
            for t in self.tasks:
                names.setdefault((FAST_MODELS if self.fast else DEFAULT_MODELS)[t], []).append(t)
        else:
            names = {model: list(self.tasks)}
        groups = []
        for name, wanted in names.items():
            clf = load_classifier(name, backend=self.backend, device=self.device,
                                  threads=self.threads, variant=self.variant)
            if self.prior_correction:
                clf = clf.with_prior_correction()
            if self.fast:
                clf = clf.with_tta(False)
            tasks = tuple(t for t in wanted if t in clf.tasks)
            if not tasks:
                raise ValueError(f"model {name!r} answers {list(clf.tasks)}, none of {wanted}")
            spec = self._saliency_override if self._saliency_override is not None else clf.config.saliency
            sal = None if spec == "none" else self._saliency(spec)
            groups.append(_Group(classifier=clf, tasks=tasks, saliency=sal,
                                 saliency_spec=spec if isinstance(spec, str) else f"<{id(spec)}>",
                                 crop_key=_crop_key(clf.config, self.source_frame)))
        return groups

    @property
    def models(self) -> list[Classifier]:
        """The loaded classifiers."""
        return [g.classifier for g in self.groups]

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
        preds: list[dict[str, Prediction]] = [{} for _ in items]
        crops: dict[tuple, list] = {}
        rgb: dict[tuple, np.ndarray] = {}
        maps: dict[tuple, np.ndarray | None] = {}
        shown_crop: list[np.ndarray | None] = [None] * len(items)
        shown_map: list[np.ndarray | None] = [None] * len(items)
        for gi, g in enumerate(self.groups):
            cfg = g.config
            if g.crop_key not in crops:
                crops[g.crop_key] = [crop_for_config(p.image, f, cfg, use_frame=self.source_frame,
                                                     use_cap=False) for p, f in items]
                rgb[g.crop_key] = np.stack([c.pixels for c in crops[g.crop_key]])
            mkey = (g.crop_key, g.saliency_spec)
            if mkey not in maps:  # one saliency map per face and crop geometry, shared
                maps[mkey] = g.saliency(rgb[g.crop_key]) if g.saliency is not None else None
            if getattr(cfg, "max_crop_px", 0.0):  # a resolution cap changes the input, not the map
                capped = np.stack([crop_for_config(p.image, f, cfg, use_frame=self.source_frame).pixels
                                   for p, f in items])
            else:
                capped = rgb[g.crop_key]
            pixels = g.classifier.prepare(capped)
            probs = g.classifier.predict(pixels, maps[mkey], ratio=self.ratio_override)
            for t in g.tasks:
                names = cfg.labels[t]
                for i, pr in enumerate(probs[t]):
                    k = int(pr.argmax())
                    preds[i][t] = Prediction(task=t, label=names[k], index=k,
                                             probabilities={n: float(v) for n, v in zip(names, pr)})
            if gi == 0 and self.return_saliency:
                shown_crop = list(pixels)
                m = maps[mkey]
                shown_map = list(m) if m is not None else [None] * len(items)
        first = crops[self.groups[0].crop_key]
        return [FaceResult(face=f, crop_box=first[i].box, age=preds[i].get("age"),
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

    def _detected(self, inputs: Iterable[ImageInput]) -> Iterator[_Pending]:
        """Each input decoded and detected, in order; with ``prefetch``, a background thread
        works up to :data:`PREFETCH_IMAGES` images ahead of the caller (bounded: decoded photos
        are the pipeline's largest buffers)."""
        if not self.prefetch:
            for i, src in enumerate(inputs):
                yield self._detect(i, src)
            return
        ahead: deque[Future] = deque()
        source = enumerate(inputs)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="salface-detect") as pool:
            def submit() -> bool:
                for i, src in source:
                    ahead.append(pool.submit(self._detect, i, src))
                    return True
                return False

            while len(ahead) < PREFETCH_IMAGES and submit():
                pass
            try:
                while ahead:
                    p = ahead.popleft().result()
                    submit()
                    yield p
            finally:
                for fut in ahead:
                    fut.cancel()

    # ------------------------------------------------------------------ API
    def analyze_batch(self, inputs: Iterable[ImageInput]) -> Iterator[ImageResult]:
        """Yield one :class:`ImageResult` per input, in input order, as soon as each is done."""
        waiting: deque[_Pending] = deque()
        queue: list[tuple[_Pending, Face]] = []

        def finished(flush: bool) -> Iterator[ImageResult]:
            nonlocal queue
            while len(queue) >= self.batch_size or (flush and queue):
                chunk, queue = queue[: self.batch_size], queue[self.batch_size:]
                self._run_batch(chunk)
            queued = {id(p) for p, _ in queue}
            while waiting and id(waiting[0]) not in queued:
                yield self._result(waiting.popleft())

        for p in self._detected(inputs):
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

    def analyze_faces(self, image: ImageInput, faces: Sequence[Face]) -> list[FaceResult]:
        """Classify the given ``faces`` of ``image`` (no detection): for callers that find faces
        themselves (a service offering several detectors, a tracker, boxes from elsewhere).
        Raises :class:`~salface.errors.ImageError` for bad input and ``RuntimeError`` when the
        networks fail."""
        source = _source_name(image, 0)
        pixels = load_image(image)
        h, w = pixels.shape[:2]
        p = _Pending(0, source, w, h, pixels, list(faces))
        items = [(p, f) for f in p.faces]
        for i in range(0, len(items), self.batch_size):
            self._run_batch(items[i:i + self.batch_size])
        if p.error is not None:
            raise RuntimeError(f"{source}: {p.error}")
        return list(p.results)

    def _result(self, p: _Pending) -> ImageResult:
        if p.error is not None:
            return ImageResult(source=p.source, width=p.width, height=p.height, faces=[], error=p.error)
        return ImageResult(source=p.source, width=p.width, height=p.height, faces=list(p.results),
                           image=p.image if self.keep_images else None, detector=self.detector.name)


_DEFAULT: Analyzer | None = None


def analyze(image: ImageInput, **kwargs: Any) -> list[FaceResult]:
    """One-call convenience: ``salface.analyze("photo.jpg")`` with the default Analyzer."""
    global _DEFAULT
    if kwargs:
        return Analyzer(**kwargs).analyze(image)
    if _DEFAULT is None:
        _DEFAULT = Analyzer()
    return _DEFAULT.analyze(image)
