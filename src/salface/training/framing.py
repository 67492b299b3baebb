"""How a training set's photos are framed around the face, measured on the photos themselves.

A crop cache records the face box in crop pixels, not where the source photo ended. This module
runs the cache's detector again on every cached photo and measures, for each detected face, how
far the photo reaches beyond the box on each side, in box widths (left, right) and box heights
(top, bottom). Its median is the **source frame** that :func:`salface.crop.crop_face` can
reproduce on a photo in the wild (``ClassifierConfig.frame``): the network then sees the
replicated edges it was trained on instead of hair, shoulders and background it never saw.

UTKFace's chips, for instance, end about at the forehead: with the papers' 30 % margin the top of
nearly every training crop is replicated pixels (see docs/training.md, "Source frame").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..types import Box, Face
from .cache import _pick_face  # the face the crop cache keeps: the one overlapping the photo most

SIDES = ("left", "top", "right", "bottom")


@dataclass
class FrameStats:
    """Per-photo frames (``(n, 4)``, NaN where no face was found) and their summary."""

    frames: np.ndarray
    paths: list[str]

    @property
    def found(self) -> np.ndarray:
        return np.all(np.isfinite(self.frames), axis=1)

    def quantiles(self, q: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9)) -> dict[str, list[float]]:
        f = self.frames[self.found]
        return {s: [round(float(v), 4) for v in np.quantile(f[:, j], q)] for j, s in enumerate(SIDES)}

    @property
    def median(self) -> tuple[float, float, float, float]:
        f = self.frames[self.found]
        if len(f) == 0:
            raise ValueError("no face found on any photo: no frame to measure")
        return tuple(round(float(v), 4) for v in np.median(f, axis=0))

    def to_dict(self) -> dict:
        return {"frame": list(self.median), "sides": list(SIDES), "n_photos": len(self.paths),
                "n_found": int(self.found.sum()), "quantiles_10_25_50_75_90": self.quantiles()}


def photo_frame(box: Box, width: int, height: int) -> np.ndarray:
    """How far a ``width``×``height`` photo reaches beyond ``box`` on each side, in box units
    (negative where the box itself sticks out of the photo)."""
    bw, bh = max(box.width, 1e-6), max(box.height, 1e-6)
    return np.array([box.x1 / bw, box.y1 / bh, (width - box.x2) / bw, (height - box.y2) / bh], np.float64)


def measure_frames(paths: Sequence[str], detector: Callable[[np.ndarray], list[Face]], *,
                   load: Callable[[str], np.ndarray], min_iou: float = 0.1,
                   progress: bool = True) -> FrameStats:
    """Detect the face on each photo (the one overlapping the whole photo most, as the crop
    cache picks it) and record its :func:`photo_frame`; photos that cannot be read or have no
    face get NaN and are left out of the summary."""
    frames = np.full((len(paths), 4), np.nan)
    it = paths
    if progress:
        from tqdm import tqdm
        it = tqdm(paths, desc="frames", unit="img", mininterval=5)
    for i, p in enumerate(it):
        try:
            img = load(p)
        except Exception:  # unreadable photos are counted as not found
            continue
        h, w = img.shape[:2]
        face = _pick_face(detector(img), Box(0.0, 0.0, float(w), float(h)), min_iou)
        if face is not None:
            frames[i] = photo_frame(face.box, w, h)
    return FrameStats(frames=frames, paths=list(paths))


def measure_cache_frames(cache_dir: str | Path, *, limit: int = 0, seed: int = 0,
                         split: str | None = "train", progress: bool = True) -> FrameStats:
    """:func:`measure_frames` over a crop cache's photos (``paths.json``) with the cache's own
    detector; ``split`` picks one split (``None``: all), ``limit`` a seeded random subset."""
    from ..detect import get_detector
    from ..io import load_image
    from .cache import SPLITS

    root = Path(cache_dir)
    meta = json.loads((root / "meta.json").read_text())
    paths = json.loads((root / "paths.json").read_text())
    idx = np.arange(len(paths))
    if split is not None:
        idx = idx[np.load(root / "split.npy") == SPLITS[split]]
    if limit and limit < len(idx):
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    if meta.get("upscale_to"):
        raise ValueError("caches built with upscale_to are not supported: their boxes are in enlarged pixels")
    det = get_detector(meta.get("detector", "yunet"))
    return measure_frames([paths[i] for i in idx], det, load=load_image,
                          min_iou=float(meta.get("min_iou", 0.1)), progress=progress)
