"""Where saliency falls on faces: the share of a map's mass on the eyes, nose and mouth.

Regions are built from the detector's five landmarks in crop coordinates, with
``d`` = inter-ocular distance (right eye to left eye):

* **eyes**: two discs of radius 0.25·d centred on the eye landmarks;
* **nose**: a disc of radius 0.25·d centred on the nose tip;
* **mouth**: a disc of radius 0.35·d centred on the midpoint of the mouth corners;
* **features**: the union of the three (overlaps counted once).

The *share* of a region is ``Σ S[region] / Σ S`` over the crop. Under a uniform map it is the
region's area fraction, the chance level the measured share is compared with; their ratio is the
*lift* (> 1: the model puts more than its uniform share of mass on the region).

:func:`utkface_face_shares` runs this on real photos: a fixed sample of UTKFace images, detected
by YuNet, cropped by :func:`salface.crop.crop_face` (30 % margin, 112 px) exactly as the pipeline
does. :func:`figure2` draws rows of crop | map | reweighted crop (r = 0.3), as in the papers'
Figure 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..reweight import reweight
from .base import SaliencyModel

REGIONS = ("eyes", "nose", "mouth", "features")
EYE_R, NOSE_R, MOUTH_R = 0.25, 0.25, 0.35


def _disc(hw: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    return (xx + 0.0 - centre[0]) ** 2 + (yy + 0.0 - centre[1]) ** 2 <= radius ** 2


def region_masks(landmarks: np.ndarray, hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """Boolean masks of :data:`REGIONS` for ``(5, 2)`` landmarks (crop pixels, salface order)."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    d = float(np.linalg.norm(lm[1] - lm[0]))
    if d < 1.0:
        raise ValueError(f"inter-ocular distance {d:.2f} px is too small to place face regions")
    eyes = _disc(hw, lm[0], EYE_R * d) | _disc(hw, lm[1], EYE_R * d)
    nose = _disc(hw, lm[2], NOSE_R * d)
    mouth = _disc(hw, (lm[3] + lm[4]) / 2.0, MOUTH_R * d)
    return {"eyes": eyes, "nose": nose, "mouth": mouth, "features": eyes | nose | mouth}


def mass_shares(saliency: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of the map's total mass inside each mask."""
    s = np.asarray(saliency, dtype=np.float64)
    total = s.sum()
    if total <= 0:
        raise ValueError("saliency map has no mass")
    return {k: float(s[m].sum() / total) for k, m in masks.items()}


@dataclass(frozen=True)
class FaceSample:
    """One face crop and its landmarks in crop coordinates."""

    name: str
    crop: np.ndarray
    landmarks: np.ndarray


def face_shares(samples: list[FaceSample], models: dict[str, SaliencyModel]) -> dict:
    """Mean (± std) share of each region per model, and under a uniform map, with the lift."""
    per: dict[str, dict[str, list[float]]] = {m: {r: [] for r in REGIONS} for m in ["uniform", *models]}
    crops = np.stack([s.crop for s in samples])
    maps = {name: model(crops) for name, model in models.items()}
    for i, s in enumerate(samples):
        masks = region_masks(s.landmarks, s.crop.shape[:2])
        for r, v in mass_shares(np.ones(s.crop.shape[:2]), masks).items():
            per["uniform"][r].append(v)
        for name in models:
            for r, v in mass_shares(maps[name][i], masks).items():
                per[name][r].append(v)
    out: dict = {"n_faces": len(samples), "regions": {"eyes": f"2 discs r={EYE_R}·d",
                                                     "nose": f"disc r={NOSE_R}·d",
                                                     "mouth": f"disc r={MOUTH_R}·d at corner midpoint",
                                                     "features": "union"},
                 "share": {}, "lift": {}}
    for name, regs in per.items():
        out["share"][name] = {r: {"mean": float(np.mean(v)), "std": float(np.std(v))}
                              for r, v in regs.items()}
    for name in models:
        out["lift"][name] = {r: out["share"][name][r]["mean"] / out["share"]["uniform"][r]["mean"]
                             for r in REGIONS}
    return out


def utkface_samples(data_dir: str | Path, n: int = 500, seed: int = 0, size: int = 112,
                    yunet_model: str | Path | None = None,
                    log: Callable[[str], None] = lambda s: None) -> list[FaceSample]:
    """``n`` UTKFace images drawn with ``seed`` from the sorted file list, each detected with
    YuNet (highest-scoring face) and cropped like the pipeline; images without a face are skipped
    (and counted in the log)."""
    from ..crop import crop_face
    from ..detect import get_detector
    from ..io import load_image

    files = sorted(Path(data_dir).glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no UTKFace .jpg files in {data_dir}")
    pick = np.random.default_rng(seed).choice(len(files), size=min(n, len(files)), replace=False)
    det = get_detector("yunet", model_path=yunet_model) if yunet_model else get_detector("yunet")
    out, missed = [], 0
    for i in sorted(pick.tolist()):
        img = load_image(files[i])
        faces = [f for f in det.detect(img) if f.landmarks is not None]
        if not faces:
            missed += 1
            continue
        c = crop_face(img, faces[0], size=size)
        out.append(FaceSample(files[i].name, c.pixels, c.landmarks))
    log(f"{len(out)} faces from {len(pick)} UTKFace images ({missed} without a detected face)")
    return out


def astronaut_sample(size: int = 112, yunet_model: str | Path | None = None) -> FaceSample:
    """skimage's astronaut portrait, detected with YuNet and cropped like the pipeline."""
    from skimage.data import astronaut

    from ..crop import crop_face
    from ..detect import get_detector

    img = np.ascontiguousarray(astronaut())
    det = get_detector("yunet", model_path=yunet_model) if yunet_model else get_detector("yunet")
    faces = [f for f in det.detect(img) if f.landmarks is not None]
    if not faces:
        raise RuntimeError("YuNet found no face in skimage's astronaut image")
    c = crop_face(img, faces[0], size=size)
    return FaceSample("astronaut", c.pixels, c.landmarks)


def figure2(samples: list[FaceSample], model: SaliencyModel, path: str | Path,
            ratio: float = 0.3, title: str | None = None) -> Path:
    """Save rows of crop | saliency map | reweighted crop (``ratio``) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    crops = np.stack([s.crop for s in samples])
    maps = model(crops)
    fig, axes = plt.subplots(len(samples), 3, figsize=(6, 2.1 * len(samples)), squeeze=False)
    for row, (s, m) in enumerate(zip(samples, maps)):
        for ax, im, label in zip(axes[row], (s.crop, m, reweight(s.crop, m, ratio)),
                                 ("crop", f"{getattr(model, 'name', 'saliency')} map",
                                  f"reweighted, r = {ratio}")):
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=1 if im.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p
