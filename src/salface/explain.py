"""Class activation maps (Zhou et al. 2016) and where they fall on the face.

For a backbone whose last conv maps ``A_k`` (``model.features(x)``, shape ``K×h×w``) are globally
average-pooled and fed to a linear head, the score of class ``c`` is
``y_c = Σ_k w_{c,k} · mean(A_k) + b_c``, so the map ``M_c = Σ_k w_{c,k} · A_k`` says how much each
position contributed: ``mean(M_c) + b_c = y_c`` exactly. That holds for ``mobilenet_v2`` and for
SAF-BAGE's ``alexnet_gap`` variant (AlexNet conv layers → GAP → linear); the fully connected
``alexnet`` / ``vgg16`` / ``gilnet`` have no such map and are refused.

Choices made where SAF-BAGE is vague:

* the map is computed for the **predicted** class of each task (or a given class);
* the raw map is upsampled to the model's input crop with bilinear interpolation
  (``align_corners=False``) and min–max normalised to [0, 1] per face (a flat map becomes all
  zeros and is flagged ``flat``);
* the CAM's *mass share* on the eyes, nose and mouth is measured on that normalised map with the
  regions of :mod:`salface.saliency.faces` (discs sized by the inter-ocular distance, from the
  detector's five landmarks) and compared with a uniform map (the region's area fraction).

:func:`explain_images` backs ``salface explain IMAGE...``: per face it writes a panel
``crop | saliency | reweighted | CAM(task) ...`` and a JSON with the predictions and shares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .saliency.faces import REGIONS, mass_shares, region_masks
from .viz import cam_overlay  # noqa: F401 (part of this module's API)


@dataclass(frozen=True)
class CAMBatch:
    """CAMs of one task for a batch: ``maps`` ``(N, S, S)`` in [0, 1] at input resolution,
    ``raw`` ``(N, h, w)`` at feature resolution (un-normalised), the class each map is for, its
    softmax probability and whether the raw map was flat."""

    task: str
    maps: np.ndarray
    raw: np.ndarray
    classes: np.ndarray
    probabilities: np.ndarray
    flat: np.ndarray


def _normalise(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lo = m.amin(dim=(1, 2), keepdim=True)
    hi = m.amax(dim=(1, 2), keepdim=True)
    span = hi - lo
    flat = span.flatten() <= 1e-12
    out = torch.where(span > 1e-12, (m - lo) / span.clamp_min(1e-12), torch.zeros_like(m))
    return out, flat


@torch.no_grad()
def class_activation_maps(model: torch.nn.Module, x: torch.Tensor, task: str,
                          class_index: int | Sequence[int] | None = None,
                          size: tuple[int, int] | None = None) -> CAMBatch:
    """CAMs of ``task`` for input batch ``x`` ``(N, 3, H, W)`` (already preprocessed).

    ``class_index``: None → each sample's predicted class; an int or one int per sample → that
    class. ``size``: output map size (default: ``x``'s ``H×W``)."""
    if hasattr(model, "member_inputs"):
        return _ensemble_cams(model, x, task, class_index, size)
    if not getattr(model, "has_gap", False):
        raise ValueError(f"class activation maps need a backbone with global average pooling "
                         f"(mobilenet_v2 or alexnet_gap); this {type(model).__name__} has a fully "
                         f"connected neck")
    if task not in getattr(model, "tasks", ()):
        raise ValueError(f"the model has no {task!r} head (tasks: {list(getattr(model, 'tasks', ()))})")
    model.eval()
    feats = model.features(x).float()                                   # (N, K, h, w)
    logits = model.heads(model.neck(torch.flatten(model.pool(feats), 1)))[task]
    probs = torch.softmax(logits.float(), dim=1)
    n = feats.shape[0]
    if class_index is None:
        cls = logits.argmax(dim=1)
    else:
        cls = torch.as_tensor(class_index, dtype=torch.long, device=feats.device).reshape(-1)
        if cls.numel() == 1:
            cls = cls.expand(n)
        if cls.numel() != n:
            raise ValueError(f"{cls.numel()} class indices for {n} samples")
    w = model.head_weight(task).float()[cls]                             # (N, K)
    raw = torch.einsum("nk,nkhw->nhw", w, feats)
    out_size = size or (x.shape[2], x.shape[3])
    up = F.interpolate(raw[:, None], size=out_size, mode="bilinear", align_corners=False)[:, 0]
    maps, flat = _normalise(up)
    return CAMBatch(task=task, maps=maps.cpu().numpy().astype(np.float32), raw=raw.cpu().numpy(),
                    classes=cls.cpu().numpy(), probabilities=probs.gather(1, cls[:, None])[:, 0].cpu().numpy(),
                    flat=flat.cpu().numpy())


def _ensemble_cams(model: torch.nn.Module, x: torch.Tensor, task: str,
                   class_index: int | Sequence[int] | None, size: tuple[int, int] | None) -> CAMBatch:
    """An ensemble's CAM (:mod:`salface.models.ensemble`): each member's normalised CAM of the class
    the *ensemble* predicts (or ``class_index``), averaged with the members' weights, normalised."""
    if task not in model.tasks:
        raise ValueError(f"the model has no {task!r} head (tasks: {list(model.tasks)})")
    model.eval()
    logp = model(x)[task].float()
    probs = torch.softmax(logp, dim=1)
    cls = logp.argmax(dim=1) if class_index is None else torch.as_tensor(
        class_index, dtype=torch.long, device=x.device).reshape(-1).expand(x.shape[0])
    out_size = size or (x.shape[2], x.shape[3])
    total = None
    for member, xi, w in model.member_inputs(x):
        part = torch.from_numpy(class_activation_maps(member, xi, task, cls.tolist(), out_size).maps) * float(w)
        total = part if total is None else total + part
    maps, flat = _normalise(total)
    return CAMBatch(task=task, maps=maps.numpy().astype(np.float32), raw=total.numpy(), classes=cls.cpu().numpy(),
                    probabilities=probs.gather(1, cls[:, None])[:, 0].cpu().numpy(), flat=flat.cpu().numpy())


# ------------------------------------------------------------------------------------ regions

def region_shares(cam: np.ndarray, landmarks: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
    """``(CAM share, uniform share)`` of each region of :data:`REGIONS` for one map and its
    ``(5, 2)`` landmarks in the map's pixel coordinates."""
    masks = region_masks(landmarks, cam.shape[:2])
    return mass_shares(cam, masks), mass_shares(np.ones(cam.shape[:2]), masks)


def summarize_shares(cams: np.ndarray, landmarks: np.ndarray) -> dict[str, Any]:
    """Mean/std share of CAM mass per region over faces, the uniform share, the lift (ratio of
    means) and the fraction of faces whose CAM share beats their uniform share. Faces whose
    landmarks are missing (NaN) or whose map is flat are skipped and counted."""
    per = {r: [] for r in REGIONS}
    uni = {r: [] for r in REGIONS}
    skipped = 0
    for m, lm in zip(cams, landmarks):
        lm = np.asarray(lm, dtype=np.float64)
        if not np.isfinite(lm).all() or float(np.sum(m)) <= 0:
            skipped += 1
            continue
        try:
            s, u = region_shares(m, lm)
        except ValueError:
            skipped += 1
            continue
        for r in REGIONS:
            per[r].append(s[r])
            uni[r].append(u[r])
    n = len(per["features"])
    if n == 0:
        raise ValueError("no face with landmarks and a non-flat CAM to measure")
    out: dict[str, Any] = {"n_faces": n, "skipped": skipped, "share": {}, "uniform": {}, "lift": {},
                           "above_uniform": {}}
    for r in REGIONS:
        a, b = np.asarray(per[r]), np.asarray(uni[r])
        out["share"][r] = {"mean": float(a.mean()), "std": float(a.std())}
        out["uniform"][r] = {"mean": float(b.mean()), "std": float(b.std())}
        out["lift"][r] = float(a.mean() / b.mean()) if b.mean() > 0 else None
        out["above_uniform"][r] = float(np.mean(a > b))
    return out


# ------------------------------------------------------------------------------------ pictures

def _tile(img: np.ndarray, side: int, title: str) -> np.ndarray:
    import cv2

    if img.ndim == 2:
        img = np.repeat(np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    t = cv2.resize(img, (side, side), interpolation=cv2.INTER_NEAREST if img.shape[0] < side else cv2.INTER_AREA)
    bar = np.full((18, side, 3), 255, np.uint8)
    cv2.putText(bar, title[:28], (2, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, t], axis=0)


def panel(tiles: Sequence[tuple[np.ndarray, str]], side: int = 160, gap: int = 4) -> np.ndarray:
    """Titled tiles side by side (RGB uint8)."""
    parts = []
    for i, (img, title) in enumerate(tiles):
        if i:
            parts.append(np.full((side + 18, gap, 3), 255, np.uint8))
        parts.append(_tile(img, side, title))
    return np.concatenate(parts, axis=1)


# ------------------------------------------------------------------------------------ explain

@dataclass
class ExplainModel:
    """A classifier to explain: network, its config, the tasks to answer and its saliency model."""

    model: torch.nn.Module
    config: Any
    tasks: tuple[str, ...]
    saliency: Any = None
    source: str = ""
    runtime: Any = None
    """For a shipped model, the :class:`salface.classify.Classifier` that ``analyze`` runs (its
    probabilities are reported; the torch ``model`` only draws the CAMs)."""


@dataclass
class FaceExplanation:
    source: str
    face: int
    box: dict[str, float]
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    cam_shares: dict[str, dict[str, Any]] = field(default_factory=dict)
    panel: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "face": self.face, "box": self.box, "predictions": self.predictions,
                "cam_shares": self.cam_shares, "panel": self.panel}


def shipped_models(tasks: Sequence[str] = ("age", "gender", "expression"), device: str = "cpu"
                   ) -> list[ExplainModel]:
    """The bundled default model of each task (raises MissingModelError when not shipped)."""
    from .models.registry import DEFAULT_MODELS, load_classifier
    from .saliency import get_saliency

    names: dict[str, list[str]] = {}
    for t in tasks:
        names.setdefault(DEFAULT_MODELS[t], []).append(t)
    out = []
    for name, want in names.items():
        from .classify import load_classifier as load_runtime

        net, cfg = load_classifier(name, device=device)
        sal = None if cfg.saliency == "none" else get_saliency(cfg.saliency, device=device)
        out.append(ExplainModel(net, cfg, tuple(t for t in want if t in cfg.tasks), sal, f"bundled:{name}",
                                runtime=load_runtime(name, device=device)))
    return out


def run_models(run_dirs: Sequence[str | Path], device: str = "cpu") -> list[ExplainModel]:
    """Models of training run folders (their best weights)."""
    from .saliency import get_saliency
    from .training.train import load_run

    out = []
    for r in run_dirs:
        net, cfg, _ = load_run(r, "best", device=device)
        sal = None if cfg.saliency == "none" else get_saliency(cfg.saliency, device=device)
        out.append(ExplainModel(net, cfg, tuple(cfg.tasks), sal, f"run:{Path(r).name}"))
    return out


def explain_images(images: Sequence[str | Path], out_dir: str | Path, models: Sequence[ExplainModel], *,
                   detector: Any = "yunet", detector_options: dict | None = None, device: str = "cpu",
                   side: int = 160) -> list[FaceExplanation]:
    """Detect every face of each image, classify it with ``models`` and write per face
    ``<stem>_face<k>.png`` (crop | saliency | reweighted | CAM per task) and ``<stem>_face<k>.json``;
    plus ``explain.json`` with all faces. Models without global average pooling get no CAM tile."""
    from .backends.torch import TorchNetwork
    from .classify import Classifier
    from .crop import crop_for_config
    from .detect import get_detector
    from .io import load_image
    from .models.preprocess import to_input_tensor
    from .reweight import reweight
    from .viz import save_rgb

    if not models:
        raise ValueError("no models to explain")
    det = detector if not isinstance(detector, str) else get_detector(detector, **(detector_options or {}))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: list[FaceExplanation] = []
    for src in images:
        img = load_image(src)
        stem = Path(str(src)).name.split(".")[0] or "image"
        for k, face in enumerate(det.detect(img)):
            ex = FaceExplanation(source=str(src), face=k, box=face.box.to_dict())
            tiles: list[tuple[np.ndarray, str]] = []
            for mi, em in enumerate(models):
                cfg = em.config
                crop = crop_for_config(img, face, cfg, use_cap=False)
                # the runtime's own forward path (salface.classify), so the probabilities are the
                # calibrated, flip-averaged ones `analyze` reports; the map is of the RGB crop
                # before any resolution cap, as there
                sal = em.saliency(crop.pixels[None]) if em.saliency is not None else None
                clf = em.runtime or Classifier(em.source, cfg, TorchNetwork(em.model, device))
                capped = crop_for_config(img, face, cfg) if cfg.max_crop_px else crop
                px = clf.prepare(capped.pixels[None])
                probs = clf.predict(px, sal)
                if mi == 0:
                    s_map = sal[0] if sal is not None else np.ones(px.shape[1:3], np.float32)
                    tiles += [(px[0], "crop"), (s_map, f"saliency {cfg.saliency}"),
                              (reweight(px[0], s_map, cfg.ratio if sal is not None else 0.0),
                               f"reweighted r={cfg.ratio if sal is not None else 0}")]
                x = to_input_tensor(px, sal, cfg, device)
                for t in em.tasks:
                    p = probs[t][0]
                    c = int(p.argmax())
                    label = cfg.labels[t][c]
                    ex.predictions[t] = {"label": label, "confidence": round(float(p[c]), 4),
                                         "model": em.source}
                    if getattr(em.model, "has_gap", False):
                        cam = class_activation_maps(em.model, x, t, class_index=c).maps[0]
                        tiles.append((cam_overlay(px[0], cam), f"CAM {t}: {label}"))
                        if crop.landmarks is not None:
                            s, u = region_shares(cam, crop.landmarks)
                            ex.cam_shares[t] = {"share": {r: round(v, 4) for r, v in s.items()},
                                                "uniform": {r: round(v, 4) for r, v in u.items()}}
            name = f"{stem}_face{k}"
            ex.panel = save_rgb(out / f"{name}.png", panel(tiles, side=side)).name
            (out / f"{name}.json").write_text(json.dumps(ex.to_dict(), indent=1))
            results.append(ex)
    (out / "explain.json").write_text(json.dumps([r.to_dict() for r in results], indent=1))
    return results
