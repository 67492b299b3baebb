"""The work behind each endpoint of ``salface serve``, free of any web framework.

One :class:`Service` per server process holds one :class:`~salface.pipeline.Analyzer` (models
loaded once, at start-up) and the detectors built so far. Its methods run in the server's thread
pool and raise :class:`~salface.serve.limits.ApiError` for anything a client got wrong.

Per request a client may choose the detector, the tasks and a smaller face limit. The request's
detector runs first (its faces capped at the request's limit) and
:meth:`~salface.pipeline.Analyzer.analyze_faces` classifies those faces, so concurrent requests
never share per-request state. Tasks the client did not ask for
are dropped from the answer (the loaded models answer them anyway; results are identical to an
Analyzer built with only those tasks, since each task's head is independent of the others).

Uploads are decoded by :func:`salface.io.load_image` from a temporary file, so its checks apply
unchanged: the pixel limit read from the header before any pixel is decoded (decompression
bombs), truncated and corrupt files, EXIF orientation, alpha, 16-bit.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..detect.base import Detector
from ..io import ImageError, load_image
from ..labels import TASKS
from ..types import FaceResult, ImageResult
from ..viz import saliency_triplet
from .limits import DETECTORS, ApiError, Settings, upload_too_large

try:  # the model store (salface.hub; salface.models.weights before it moved)
    from .. import hub as _store
except ImportError:  # pragma: no cover - older tree
    from ..models import weights as _store

PANEL_GAP = 4
"""White pixels between the tiles of a panel (as in :func:`salface.viz.saliency_triplet`)."""


@dataclass(frozen=True)
class Upload:
    """An uploaded file: its bytes and the name the client gave it."""

    data: bytes
    filename: str = "upload"


@dataclass(frozen=True)
class Options:
    """What one request asked for (validated by :meth:`Service.options`)."""

    detector: str
    tasks: tuple[str, ...]
    max_faces: int


def _reason_status(reason: str) -> tuple[int, str]:
    """HTTP status and error code for a :class:`~salface.io.ImageError` reason."""
    r = reason.lower()
    if r.startswith("empty file"):
        return 400, "empty_upload"
    if r.startswith("image too large"):
        return 413, "image_too_large"
    if "not a recognised image format" in r:
        return 422, "not_an_image"
    if "truncated" in r:
        return 422, "truncated_image"
    if "no pixels" in r:
        return 422, "empty_image"
    return 422, "corrupt_image"


def png_data_url(rgb: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(rgb)).decode("ascii")


def encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("could not encode a PNG")
    return buf.tobytes()


def hstack_tiles(tiles: list[np.ndarray], gap: int = PANEL_GAP) -> np.ndarray:
    """Equal-height RGB tiles side by side with white gaps."""
    parts: list[np.ndarray] = []
    for i, t in enumerate(tiles):
        if i:
            parts.append(np.full((t.shape[0], gap, 3), 255, np.uint8))
        parts.append(t)
    return np.concatenate(parts, axis=1)


def _sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Service:
    """Decode, detect, analyse and explain, under the limits of ``settings``.

    ``analyzer`` may be given (an :class:`~salface.pipeline.Analyzer` built with
    ``detector=service.handover``); otherwise :meth:`load` builds the default one.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.analyzer: Any = None
        self._detectors: dict[str, Detector] = {}
        self._detector_locks: dict[str, threading.Lock] = {}
        self._build_lock = threading.Lock()
        self._models: dict[str, Any] | None = None
        self._file_sha: dict[str, str] = {}
        self._cams: Any = None

    # ------------------------------------------------------------------ start-up
    def load(self) -> "Service":
        """Build the Analyzer (loads every model) and the default detector; idempotent."""
        if self.analyzer is None:
            from ..pipeline import Analyzer

            s = self.settings
            # the service detects itself (the request picks the detector) and hands the faces to
            # Analyzer.analyze_faces; the Analyzer's own detector is never used
            self.analyzer = Analyzer(detector="whole", model="default", tasks=s.tasks,
                                     device=s.device, backend=s.backend, batch_size=s.batch_size,
                                     return_saliency=True, prefetch=False, fast=s.fast)
            self.detector(s.detector)
            self._models = self._describe_models()
            self.models()  # checksums the default detector's file now, not on a request
        return self

    @property
    def loaded(self) -> bool:
        return self.analyzer is not None

    def detector(self, name: str) -> Detector:
        """The detector ``name``, built on first use (ApiError 422 if it cannot be built here)."""
        det = self._detectors.get(name)
        if det is not None:
            return det
        with self._build_lock:
            if name not in self._detectors:
                from ..detect import get_detector

                try:
                    self._detectors[name] = get_detector(name)
                except Exception as exc:  # a missing optional package or model file
                    raise ApiError(422, "detector_unavailable",
                                   f"detector {name!r} is not available on this server: {exc}") from exc
                self._detector_locks[name] = threading.Lock()
            return self._detectors[name]

    # ------------------------------------------------------------------ requests
    def options(self, detector: str | None = None, tasks: str | None = None,
                max_faces: Any = None) -> Options:
        """Validate a request's options (ApiError 422 naming the bad one)."""
        s = self.settings
        det = s.detector
        if detector not in (None, ""):
            from ..detect import canonical_name

            try:
                det = canonical_name(str(detector))
            except ValueError:
                det = str(detector)
            if det not in DETECTORS:
                raise ApiError(422, "invalid_parameter", f"detector must be one of "
                                                         f"{', '.join(DETECTORS)}; got {detector!r}")
        task_list = s.tasks
        if tasks not in (None, ""):
            task_list = tuple(dict.fromkeys(t.strip() for t in str(tasks).split(",") if t.strip()))
            bad = [t for t in task_list if t not in s.tasks]
            if bad or not task_list:
                raise ApiError(422, "invalid_parameter",
                               f"tasks must be a comma-separated subset of {','.join(s.tasks)} "
                               f"(the tasks this server loaded); got {tasks!r}")
        limit = s.max_faces
        if max_faces not in (None, ""):
            try:
                limit = int(max_faces)
            except (TypeError, ValueError):
                raise ApiError(422, "invalid_parameter",
                               f"max_faces must be an integer; got {max_faces!r}") from None
            if not 1 <= limit <= s.max_faces:
                raise ApiError(422, "invalid_parameter", f"max_faces must be between 1 and "
                                                         f"{s.max_faces} (the server's limit); got {limit}")
        return Options(detector=det, tasks=task_list, max_faces=limit)

    def check(self, upload: Upload) -> Upload:
        """The byte-level checks (empty, too large), cheap enough for the event loop."""
        if not upload.data:
            raise ApiError(400, "empty_upload", f"{upload.filename}: the upload is empty (0 bytes)")
        if len(upload.data) > self.settings.max_upload_bytes:
            raise upload_too_large(self.settings.max_upload_bytes, len(upload.data))
        return upload

    def decode(self, upload: Upload) -> np.ndarray:
        """The upload's RGB pixels, through :func:`salface.io.load_image` and its limits."""
        self.check(upload)
        fd, path = tempfile.mkstemp(prefix="salface-serve-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(upload.data)
            return load_image(path, max_pixels=self.settings.max_pixels)
        except ImageError as exc:
            status, code = _reason_status(exc.reason)
            raise ApiError(status, code, f"{upload.filename}: {exc.reason}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def analyze(self, upload: Upload, opts: Options) -> tuple[ImageResult, np.ndarray]:
        """``(result, pixels)``: the image's faces as ``salface analyze`` reports them."""
        if not self.loaded:
            raise ApiError(503, "not_ready", "the models are still loading",
                           headers={"Retry-After": "2"})
        image = self.decode(upload)
        det = self.detector(opts.detector)
        try:
            with self._detector_locks[opts.detector]:
                faces = det.detect(image)[: opts.max_faces]
        except Exception as exc:
            raise ApiError(500, "analysis_failed", f"{upload.filename}: detection failed: {exc}") from exc
        try:
            found = self.analyzer.analyze_faces(image, faces)
        except RuntimeError as exc:
            raise ApiError(500, "analysis_failed", f"{upload.filename}: {exc}") from exc
        drop = {t: None for t in TASKS if t not in opts.tasks}
        kept = [replace(f, **drop) for f in found] if drop else found
        h, w = image.shape[:2]
        return ImageResult(source=upload.filename, width=w, height=h, faces=kept,
                           detector=det.name), image

    def analyze_json(self, upload: Upload, opts: Options) -> dict[str, Any]:
        return self.analyze(upload, opts)[0].to_dict()

    # ------------------------------------------------------------------ explain
    @property
    def ratio(self) -> float:
        groups = self.analyzer.groups
        return float(groups[0].config.ratio) if groups and groups[0].saliency is not None else 0.0

    @property
    def saliency_name(self) -> str:
        groups = self.analyzer.groups
        return str(groups[0].config.saliency) if groups else "none"

    def triplet(self, face: FaceResult, side: int) -> np.ndarray:
        """crop | saliency | reweighted of one face, each tile ``side`` pixels square."""
        crop = face.crop
        smap = face.saliency if face.saliency is not None else np.ones(crop.shape[:2], np.float32)
        if crop.shape[0] != side:
            interp = cv2.INTER_AREA if crop.shape[0] > side else cv2.INTER_CUBIC
            crop = cv2.resize(crop, (side, side), interpolation=interp)
            smap = np.clip(cv2.resize(smap.astype(np.float32), (side, side),
                                      interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        return saliency_triplet(crop, smap, self.ratio, gap=PANEL_GAP)

    def cams(self, image: np.ndarray, faces: list[FaceResult], tasks: tuple[str, ...],
             side: int) -> tuple[list[dict[str, np.ndarray]], dict[str, Any]]:
        """Per face ``{task: CAM overlay}`` and a status; see :mod:`salface.serve.cams`."""
        with self._build_lock:
            if self._cams is None:
                from .cams import CamMaker

                self._cams = CamMaker(self.analyzer)
        return self._cams(image, faces, tasks, side)

    def explain(self, upload: Upload, opts: Options, side: int = 160,
                with_cams: bool = True) -> tuple[dict[str, Any], list[np.ndarray]]:
        """The JSON of ``/v1/explain`` (PNG panels as data URLs) and each face's full panel
        (triplet, then one CAM tile per task) as RGB arrays."""
        result, image = self.analyze(upload, opts)
        if with_cams:
            cams, status = self.cams(image, result.faces, opts.tasks, side)
        else:
            cams, status = [], {"available": False, "detail": "not requested (cams=false)"}
        faces, panels = [], []
        for i, f in enumerate(result.faces):
            trip = self.triplet(f, side)
            tiles = cams[i] if cams else {}
            panels.append(hstack_tiles([trip, *tiles.values()]))
            faces.append({
                "face": i, "box": f.face.box.to_dict(),
                "labels": {t: p.label for t, p in f.predictions().items()},
                "triplet": png_data_url(trip),
                "cams": {t: {"label": getattr(f, t).label, "image": png_data_url(tile)}
                         for t, tile in tiles.items()},
            })
        body = {"source": result.source, "width": result.width, "height": result.height,
                "saliency": self.saliency_name, "ratio": self.ratio, "panel_size": side,
                "tiles": ["crop", f"saliency ({self.saliency_name})", f"reweighted (r = {self.ratio:g})"],
                "cams": status, "faces": faces}
        return body, panels

    def explain_png(self, upload: Upload, opts: Options, side: int, with_cams: bool,
                    face: int) -> tuple[bytes, dict[str, Any]]:
        """Face ``face``'s panel as PNG bytes, and the CAM status."""
        body, panels = self.explain(upload, opts, side, with_cams)
        if not panels:
            raise ApiError(422, "no_face", f"{upload.filename}: no face found, so there is no panel")
        if face >= len(panels):
            raise ApiError(422, "no_such_face", f"{upload.filename}: face={face} asked for, but "
                                                f"the image has {len(panels)} face(s) (0-based)")
        return encode_png(panels[face]), body["cams"]

    # ------------------------------------------------------------------ models
    def models(self) -> dict[str, Any]:
        """The body of ``/v1/models``: loaded classifiers, saliency model, detectors, limits."""
        if self._models is None:
            raise ApiError(503, "not_ready", "the models are still loading",
                           headers={"Retry-After": "2"})
        loaded = {}
        for name, det in list(self._detectors.items()):
            path = getattr(det, "model_path", None)
            if path and name not in self._file_sha:
                self._file_sha[name] = _sha256_file(path)
            loaded[name] = {"name": name, "kind": "detector", "file": Path(path).name if path else None,
                            "sha256": self._file_sha.get(name)}
        return dict(self._models, detectors={"default": self.settings.detector,
                                             "choices": list(DETECTORS), "loaded": loaded})

    def _describe_models(self) -> dict[str, Any]:
        s, an = self.settings, self.analyzer
        try:
            manifest = _store.load_manifest()["models"]
        except Exception:  # the models loaded; a missing manifest only loses the checksums
            manifest = {}
        variant = None if an.backend == "torch" else getattr(an, "variant", "onnx")

        def files(name: str) -> dict[str, Any]:
            """The file that runs (ONNX export, or safetensors for torch) and its SHA-256."""
            entry = manifest.get(name, {})
            rec = entry.get(variant) if variant else None
            rec = rec if isinstance(rec, dict) else entry
            return {"file": rec.get("file"), "sha256": rec.get("sha256"),
                    "license": entry.get("license")}

        classifiers, saliency = [], {}
        for g in an.groups:
            cfg, name = g.config, g.classifier.name
            classifiers.append({
                "name": name, "kind": "classifier", "tasks": list(g.tasks),
                "labels": {t: list(cfg.labels[t]) for t in g.tasks}, **files(name),
                "backbone": cfg.backbone, "input_size": cfg.input_size, "color": cfg.color,
                "saliency": cfg.saliency, "ratio": cfg.ratio,
                "metrics": manifest.get(name, {}).get("metrics"),
            })
            sal = getattr(g.saliency, "model_name", None) or cfg.saliency
            if sal not in saliency:
                saliency[sal] = {"name": sal, "kind": "saliency", **files(sal)}
        return {
            "tasks": list(s.tasks), "backend": an.backend, "device": an.device, "fast": s.fast,
            "classifiers": classifiers, "saliency": list(saliency.values()),
            "limits": {"max_upload_bytes": s.max_upload_bytes, "max_pixels": s.max_pixels,
                       "max_faces": s.max_faces, "max_concurrent": s.max_concurrent,
                       "max_queue": s.max_queue, "timeout_s": s.timeout},
        }
