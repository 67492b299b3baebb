"""The NUS scene-saliency eye-tracking data: raw fixations, fixation maps, and the fixed split.

The NUS-VIP release (Liang et al., MIT licence) gives 500 SUN2012 images in ``stimuli/NNN.jpg``,
``fixations.mat`` (a 500×12 MATLAB cell array, one cell per image and observer, each ``N×4``) and
``imgInfo.mat`` (a struct whose ``size`` field is a ``500×2`` array of ``[height, width]``).

Choices made here, where the release is silent or misleading:

* **Column order.** The dataset's README calls the columns ``[x, y, onset_s, duration_s]``, but
  on every one of the 188 non-square images the first column stays below the image *height* and
  the second below the *width* (on 182 of them the reverse order would put fixations outside the
  image). The first two columns are therefore read as ``[row, col]`` = ``[y, x]``, 1-based
  MATLAB pixel coordinates; :func:`load_nus` converts them to 0-based ``(x, y)`` floats.
* **All fixations are kept**, including each observer's first one (the release does not mark a
  central fixation cross) and empty cells (52 of the 6,000 observer-image cells have none).
* **One degree of visual angle.** The release states no viewing distance or display size. We
  assume each image was shown scaled to the screen with its longer side spanning
  :data:`DEGREES_PER_LONG_SIDE` = 32 degrees (the MIT1003 geometry: 1024 px at ~30 px/degree
  ≈ 34°; a 22-inch 16:10 screen viewed from ~75 cm spans ~36° × 23°). One degree is then
  ``max(H, W) / 32`` pixels of the image, at whatever resolution it is handled, and the fixation
  map is the sum of Gaussians with **σ = one degree** centred on the fixations, normalised to
  max 1 (a 256×256 image: σ = 8 px; 1600×1200: σ = 50 px).
* **Split.** A fixed random permutation (seed 2016) cuts the 500 images into 350 train / 50 val /
  100 test; it is stored in ``nus_split.json`` beside this file and read back by training and
  evaluation, never regenerated implicitly.
"""

from __future__ import annotations

from ..errors import SalfaceError

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEGREES_PER_LONG_SIDE = 32.0
"""Assumed visual angle (degrees) spanned by an image's longer side on the display."""

SPLIT_FILE = Path(__file__).resolve().parent / "nus_split.json"
SPLIT_SEED = 2016
SPLIT_SIZES = {"train": 350, "val": 50, "test": 100}
N_IMAGES = 500
N_OBSERVERS = 12


class NusDataError(SalfaceError, RuntimeError):
    """The NUS data folder is missing a file or holds something unexpected."""


@dataclass(frozen=True)
class FixationImage:
    """One stimulus and its pooled fixations (all observers)."""

    index: int
    """0-based image index (file ``stimuli/{index+1:03d}.jpg``)."""
    path: Path
    height: int
    width: int
    points: np.ndarray
    """``(K, 2)`` float32 ``(x, y)`` in 0-based pixels of the original image, all observers."""
    observer: np.ndarray
    """``(K,)`` int observer index (0–11) of each point."""

    @property
    def name(self) -> str:
        return self.path.name

    def load_image(self) -> np.ndarray:
        """The stimulus as ``H×W×3`` uint8 RGB."""
        bgr = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise NusDataError(f"{self.path}: cannot be read as an image")
        if bgr.shape[:2] != (self.height, self.width):
            raise NusDataError(f"{self.path}: size {bgr.shape[1]}x{bgr.shape[0]} differs from "
                               f"imgInfo.mat ({self.width}x{self.height})")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def one_degree_px(height: int, width: int) -> float:
    """Pixels per degree of visual angle for an image handled at ``height × width``."""
    return max(height, width) / DEGREES_PER_LONG_SIDE


def load_nus(data_dir: str | Path) -> list[FixationImage]:
    """Read the 500 images' fixations and sizes from a NUS folder (needs scipy)."""
    d = Path(data_dir)
    fix_path, info_path, stim = d / "fixations.mat", d / "imgInfo.mat", d / "stimuli"
    for p in (fix_path, info_path, stim):
        if not p.exists():
            raise NusDataError(f"NUS data incomplete: {p} not found (expected fixations.mat, "
                               "imgInfo.mat and stimuli/ in the data folder)")
    try:
        from scipy.io import loadmat
    except ImportError as exc:  # pragma: no cover - scipy is in the train/dev extras
        raise ImportError("reading fixations.mat needs scipy: pip install 'salface[train]'") from exc
    try:
        fix = loadmat(str(fix_path))["fixations"]
        sizes = np.asarray(loadmat(str(info_path))["imgInfo"][0, 0]["size"], dtype=np.int64)
    except (KeyError, IndexError, ValueError, OSError) as exc:
        raise NusDataError(f"{fix_path} / {info_path}: unexpected content ({exc})") from exc
    if fix.shape != (N_IMAGES, N_OBSERVERS) or sizes.shape != (N_IMAGES, 2):
        raise NusDataError(f"{fix_path}: expected a {N_IMAGES}x{N_OBSERVERS} cell array and "
                           f"{N_IMAGES}x2 sizes, got {fix.shape} and {sizes.shape}")
    out = []
    for i in range(N_IMAGES):
        h, w = int(sizes[i, 0]), int(sizes[i, 1])
        pts, obs = [], []
        for o in range(N_OBSERVERS):
            cell = np.asarray(fix[i, o], dtype=np.float64)
            if cell.size == 0:
                continue
            cell = cell.reshape(-1, cell.shape[-1])
            # columns are [row, col] in 1-based MATLAB pixels (see module docstring)
            xy = np.stack([cell[:, 1] - 1.0, cell[:, 0] - 1.0], axis=1)
            pts.append(xy)
            obs.append(np.full(len(xy), o, dtype=np.int64))
        points = np.concatenate(pts).astype(np.float32) if pts else np.zeros((0, 2), np.float32)
        observer = np.concatenate(obs) if obs else np.zeros((0,), np.int64)
        inside = ((points[:, 0] > -1) & (points[:, 0] < w) & (points[:, 1] > -1) & (points[:, 1] < h))
        out.append(FixationImage(i, stim / f"{i + 1:03d}.jpg", h, w, points[inside], observer[inside]))
    return out


def scale_points(points: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """Map ``(x, y)`` pixel points from an image of size ``src_hw`` to one resized to ``dst_hw``
    (pixel centres aligned, as cv2.resize does)."""
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return np.stack([(p[:, 0] + 0.5) * sx - 0.5, (p[:, 1] + 0.5) * sy - 0.5], axis=1)


def fixation_points_map(points: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Binary ``H×W`` map with 1 at every pixel holding at least one fixation (rounded)."""
    h, w = hw
    m = np.zeros((h, w), dtype=np.float32)
    if len(points):
        xs = np.clip(np.rint(points[:, 0]).astype(np.int64), 0, w - 1)
        ys = np.clip(np.rint(points[:, 1]).astype(np.int64), 0, h - 1)
        m[ys, xs] = 1.0
    return m


def fixation_density(points: np.ndarray, hw: tuple[int, int], sigma: float | None = None) -> np.ndarray:
    """Continuous fixation map: Gaussians of σ = ``sigma`` px (default one degree at this size)
    summed over all fixation points (each counted once per fixation), scaled to max 1."""
    h, w = hw
    if sigma is None:
        sigma = one_degree_px(h, w)
    acc = np.zeros((h, w), dtype=np.float32)
    if len(points):
        xs = np.clip(np.rint(points[:, 0]).astype(np.int64), 0, w - 1)
        ys = np.clip(np.rint(points[:, 1]).astype(np.int64), 0, h - 1)
        np.add.at(acc, (ys, xs), 1.0)
    k = int(2 * np.ceil(3 * sigma) + 1)
    blurred = cv2.GaussianBlur(acc, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    mx = float(blurred.max())
    return blurred / mx if mx > 0 else blurred


# ---------------------------------------------------------------------------------- the split


def make_split(n: int = N_IMAGES, seed: int = SPLIT_SEED,
               sizes: dict[str, int] = SPLIT_SIZES) -> dict[str, list[int]]:
    """A fixed random split of image indices ``0..n-1`` (sorted within each part)."""
    if sum(sizes.values()) != n:
        raise ValueError(f"split sizes {sizes} do not add up to {n}")
    perm = np.random.default_rng(seed).permutation(n)
    out, start = {}, 0
    for part, k in sizes.items():
        out[part] = sorted(int(i) for i in perm[start:start + k])
        start += k
    return out


def write_split(path: str | Path = SPLIT_FILE) -> Path:
    """Write :func:`make_split` to ``path`` as JSON (image indices and file names)."""
    split = make_split()
    doc = {"dataset": "NUS-VIP scene saliency (500 images, 12 observers)", "seed": SPLIT_SEED,
           "indices_are": "0-based; image file stimuli/{index+1:03d}.jpg",
           **{k: v for k, v in split.items()}}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return Path(path)


def load_split(path: str | Path = SPLIT_FILE) -> dict[str, list[int]]:
    """The stored split: ``{"train": [...], "val": [...], "test": [...]}`` (0-based indices)."""
    p = Path(path)
    if not p.is_file():
        raise NusDataError(f"split file {p} not found")
    doc = json.loads(p.read_text(encoding="utf-8"))
    split = {k: [int(i) for i in doc[k]] for k in SPLIT_SIZES}
    seen = [i for v in split.values() for i in v]
    if len(seen) != len(set(seen)):
        raise NusDataError(f"{p}: the split's parts overlap")
    return split
