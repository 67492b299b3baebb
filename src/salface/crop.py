"""Face module, second half: enlarge the detector's box, pad, resize.

How the margin is applied (the papers only say "increase the B-Box margin by 30 %"):

1. The box is made square around its centre, side ``s0 = max(w, h)``.
2. The side grows by the margin: ``s = s0 * (1 + margin)``, i.e. ``margin / 2`` of ``s0`` is
   added on every side (30 % → 15 % each side), keeping the centre.
3. The square is snapped to whole pixels: ``x1 = round(cx - s/2)``, ``side = max(1, round(s))``.
4. Pixels of the square that fall outside the image take the value of the nearest edge pixel
   (replicate padding, "pad with the last pixels at the border" in SAF-BAGE).
5. The square is resized to ``size × size`` (area interpolation when shrinking, bilinear when
   enlarging).

With ``align=True`` and landmarks (or BlazeFace's two eyes, ``Face.eyes``) present, the square is first rotated about the box centre
so that the eyes lie on a horizontal line (bilinear sampling, replicate borders); with
``min_tilt`` (degrees, ``ClassifierConfig.align_min_tilt``) only when the eye line tilts at least
that much, so faces about as upright as the training photos keep the upright crop. The rotated
crop samples the upright crop's pixel grid and, where it shrinks the face, a copy of the
neighbourhood box-filtered to the crop's scale (:func:`_warp`), so each crop pixel is the mean of
the image pixels under it, as in the upright area resize; bilinear sampling alone would alias.

**Source frame** (``frame=(left, top, right, bottom)``, ``ClassifierConfig.frame``): a training
set's photos end close to the face (UTKFace's 200-px chips cut at the forehead, FER's 48-px
images at the hairline and cheeks), so most of the 30 % margin the networks learned from is
replicated edge pixels, never hair, shoulders or background. A photo in the wild has all of
those. With a frame, the image is first limited to the rectangle that reaches ``left`` box widths
left of the detector's box, ``top`` box heights above it, and so on: the training set's own
framing, measured on its photos (:mod:`salface.training.framing`). Pixels outside it replicate
the nearest pixel inside, as they did in training. ``None`` (the default) keeps the whole image.

**Resolution cap** (``max_side``, ``ClassifierConfig.max_crop_px``): a network trained on small
pictures (FER's 48-px images: the margin square spans about 60 source pixels, enlarged to the
crop) never saw a face sharper than that. With a cap, a square that spans more image pixels than
``max_side`` is cut at ``round(max_side)`` pixels (steps 4–5 at that size) and then enlarged to
``size`` (bilinear), so a face in a large photo reaches the network at the resolution it learned
from. Squares of at most ``max_side`` pixels are cut as before. ``0`` (the default) is no cap.
The image-to-crop mapping is the uncapped crop's. The pipeline computes a face's saliency map
once, on the uncapped crop it shares with the other models, and caps only the classifier's input.

Crop modes (``ClassifierConfig.crop_mode``; :func:`crop_for_config` dispatches on it):

``"margin"`` (default, the papers')
    the enlarged-box crop above.
``"arcface"`` (landmark-aligned, :func:`align_face`)
    the similarity transform (rotation, uniform scale, translation) fitted by least squares over
    all five points (``cv2.estimateAffinePartial2D``, every point an inlier) that maps the face's five landmarks (eyes, nose tip, mouth corners) onto the
    ArcFace 112×112 template (:data:`ARCFACE_TEMPLATE`) scaled to the crop size, then
    ``cv2.warpAffine`` (bilinear, replicated borders). ``margin`` there is an *extra* margin: the
    template shrinks about the crop centre by ``1 / (1 + margin)`` (0 = the standard ArcFace crop,
    the framing EdgeFace was trained on). A face without (finite) landmarks falls back to the
    margin crop with the papers' 30 % (:data:`DEFAULT_MARGIN`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .types import Box, Crop, Face

DEFAULT_MARGIN = 0.30
CROP_MODES = ("margin", "arcface")

# The standard ArcFace / InsightFace five-point template for 112×112 crops, in the order of
# salface's landmarks (subject's right eye, left eye, nose tip, right and left mouth corners,
# i.e. image-left eye first): x, y in pixels.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


def enlarged_box(box: Box, margin: float = DEFAULT_MARGIN, square: bool = True) -> Box:
    """The integer-pixel region that :func:`crop_face` cuts out for ``box``."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    cx, cy = box.center
    if square:
        sw = sh = max(box.width, box.height) * (1.0 + margin)
    else:
        sw, sh = box.width * (1.0 + margin), box.height * (1.0 + margin)
    w = max(1, int(round(sw)))
    h = max(1, int(round(sh)))
    x1 = int(round(cx - sw / 2.0))
    y1 = int(round(cy - sh / 2.0))
    return Box(float(x1), float(y1), float(x1 + w), float(y1 + h))


def frame_region(box: Box, frame) -> Box:
    """The rectangle a source ``frame`` ``(left, top, right, bottom)`` (in box widths and heights
    beyond each edge of ``box``) keeps of the image, in image pixels (not yet clipped to it)."""
    left, top, right, bottom = (float(v) for v in frame)
    if min(left, top, right, bottom) < 0:
        raise ValueError(f"frame values must be >= 0, got {tuple(frame)}")
    return Box(box.x1 - left * box.width, box.y1 - top * box.height,
               box.x2 + right * box.width, box.y2 + bottom * box.height)


def _limit_to_frame(image: np.ndarray, box: Box, frame) -> tuple[np.ndarray, int, int]:
    """``image`` cut to the source frame around ``box`` (a view) and the cut's top-left corner;
    the whole image when ``frame`` is ``None``. At least one pixel always remains."""
    if frame is None:
        return image, 0, 0
    h, w = image.shape[:2]
    r = frame_region(box, frame)
    fx1 = min(max(int(math.floor(r.x1)), 0), w - 1)
    fy1 = min(max(int(math.floor(r.y1)), 0), h - 1)
    fx2 = max(min(int(math.ceil(r.x2)), w), fx1 + 1)
    fy2 = max(min(int(math.ceil(r.y2)), h), fy1 + 1)
    return image[fy1:fy2, fx1:fx2], fx1, fy1


def _cut_replicate(image: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
    """``image[y1:y2, x1:x2]`` where out-of-image pixels replicate the nearest edge pixel."""
    h, w = image.shape[:2]
    ix1, iy1, ix2, iy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if ix1 == x1 and iy1 == y1 and ix2 == x2 and iy2 == y2:
        return image[y1:y2, x1:x2]  # fully inside: a view, no copy
    if ix1 < ix2 and iy1 < iy2:  # overlaps the image: pad the overlap by replication
        return cv2.copyMakeBorder(np.ascontiguousarray(image[iy1:iy2, ix1:ix2]), iy1 - y1, y2 - iy2,
                                  ix1 - x1, x2 - ix2, cv2.BORDER_REPLICATE)
    ys = np.clip(np.arange(y1, y2), 0, h - 1)  # entirely outside: nearest edge pixels
    xs = np.clip(np.arange(x1, x2), 0, w - 1)
    return image[ys[:, None], xs[None, :]]


def _box_kernel(width: float) -> np.ndarray:
    """1-D weights of a box ``width`` pixels wide centred on a pixel: each tap is the length of
    its pixel cell ``[i - 0.5, i + 0.5]`` inside ``[-width / 2, width / 2]``, normalised."""
    half = width / 2.0
    r = int(math.ceil(half - 0.5))
    taps = np.arange(-r, r + 1, dtype=np.float64)
    w = np.clip(np.minimum(taps + 0.5, half) - np.maximum(taps - 0.5, -half), 0.0, None)
    return (w / w.sum()).astype(np.float32)


def _warp(src: np.ndarray, matrix: np.ndarray, size: int, ox: int = 0, oy: int = 0) -> np.ndarray:
    """``size``×``size`` pixels of ``matrix`` (2×3, image pixel indices → crop pixel indices) on
    ``src``, whose pixel ``(0, 0)`` is image pixel ``(ox, oy)``: bilinear, replicated borders.
    When the transform shrinks by ``k = 1 / scale`` > 1, the crop's footprint is cut out first
    (replicating beyond the image) and box-filtered ``k`` pixels wide, so each crop pixel is
    the mean of the image pixels under it, as ``cv2.INTER_AREA`` gives an unrotated resize,
    instead of a bilinear sample of four of them (aliasing)."""
    scale = math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))
    if scale < 1.0:
        k = 1.0 / scale
        inv = cv2.invertAffineTransform(matrix)
        corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inv[:, :2].T + inv[:, 2]
        pad = int(math.ceil(k)) + 1
        x1, y1 = (int(math.floor(v)) - pad for v in corners.min(0))
        x2, y2 = (int(math.ceil(v)) + pad for v in corners.max(0))
        src = _cut_replicate(src, x1 - ox, y1 - oy, x2 - ox, y2 - oy)
        kernel = _box_kernel(k)
        src = cv2.sepFilter2D(src, -1, kernel, kernel, borderType=cv2.BORDER_REPLICATE)
        ox, oy = x1, y1
    to_src = np.array([[1.0, 0.0, ox], [0.0, 1.0, oy], [0.0, 0.0, 1.0]])
    m = (np.vstack([matrix, [0.0, 0.0, 1.0]]) @ to_src)[:2]
    return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _index_matrix(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` between continuous coordinates (pixel ``i`` spans ``[i, i + 1]``, as
    ``cv2.resize`` places pixels) as a map between pixel indices (pixel ``i`` at ``i``, as
    ``cv2.warpAffine`` samples)."""
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    back = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    return (back @ np.vstack([matrix, [0.0, 0.0, 1.0]]) @ half)[:2]


def arcface_template(size: int = 112, margin: float = 0.0) -> np.ndarray:
    """The ArcFace template for a ``size``×``size`` crop: scaled by ``size / 112`` and shrunk about
    the crop centre by ``1 / (1 + margin)`` (``(5, 2)`` float64, crop pixels)."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    return (ARCFACE_TEMPLATE - 56.0) * (size / 112.0) / (1.0 + margin) + size / 2.0


def alignment_matrix(landmarks: np.ndarray, size: int = 112, margin: float = 0.0) -> np.ndarray:
    """2×3 similarity transform (image → crop pixels) taking five landmarks onto the template
    (least squares over the five points, ``cv2.estimateAffinePartial2D``)."""
    src = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.all(np.isfinite(src)):
        raise ValueError("landmarks contain NaN/inf")
    dst = arcface_template(size, margin)
    # A threshold no point can exceed keeps all five as inliers, so OpenCV's final
    # Levenberg–Marquardt refinement gives the least-squares similarity (outlier rejection makes
    # no sense with five points).
    m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=1e9,
                                       refineIters=50)
    if m is None or not np.all(np.isfinite(m)) or abs(np.linalg.det(m[:, :2])) < 1e-12:
        raise ValueError("degenerate landmarks: no similarity transform to the template")
    return m


def align_face(image: np.ndarray, face: Face, size: int = 112, margin: float = 0.0) -> Crop:
    """Landmark-aligned crop (crop mode ``"arcface"``); without finite landmarks, the 30 % margin
    crop (:func:`crop_face` with :data:`DEFAULT_MARGIN`)."""
    lm = face.landmarks
    if lm is None or not np.all(np.isfinite(lm)):
        return crop_face(image, face, size=size, margin=DEFAULT_MARGIN)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 image, got shape {image.shape}")
    try:
        m = alignment_matrix(lm, size, margin)
    except ValueError:
        return crop_face(image, face, size=size, margin=DEFAULT_MARGIN)
    pixels = _warp(image, m, size)
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inv[:, :2].T + inv[:, 2]
    region = Box(float(corners[:, 0].min()), float(corners[:, 1].min()),
                 float(corners[:, 0].max()), float(corners[:, 1].max()))
    angle = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    return Crop(pixels=np.ascontiguousarray(pixels), box=region, face=face, matrix=m, angle=-angle)


def crop_for_config(image: np.ndarray, face: Face, config, *, use_frame: bool = False,
                    use_cap: bool = True) -> Crop:
    """The crop a classifier with ``config`` (a ``ClassifierConfig``) was trained on: its
    ``crop_mode`` (default ``"margin"``), ``input_size``, ``margin``, ``align``, resolution cap
    ``max_crop_px`` (unless ``use_cap`` is false: the crop whose saliency map the pipeline
    computes and shares with the other models) and, with ``use_frame``
    (``Analyzer(source_frame=True)``), its training photos' source ``frame``."""
    mode = getattr(config, "crop_mode", "margin")
    if mode == "arcface":
        return align_face(image, face, size=config.input_size, margin=config.margin)
    if mode == "margin":
        return crop_face(image, face, size=config.input_size, margin=config.margin, align=config.align,
                         frame=getattr(config, "frame", None) if use_frame else None,
                         min_tilt=getattr(config, "align_min_tilt", 0.0),
                         max_side=getattr(config, "max_crop_px", 0.0) if use_cap else 0.0)
    raise ValueError(f"unknown crop mode {mode!r}; expected one of {list(CROP_MODES)}")


def eye_angle(face: Face) -> float:
    """Angle in degrees of the line from the subject's right eye to the left eye (0 = level), from
    the five landmarks or, without them, the detector's two eyes (``Face.eyes``, BlazeFace); 0 when
    the face has neither (or they are not finite)."""
    pts = face.landmarks if face.landmarks is not None else face.eyes
    if pts is None:
        return 0.0
    (rx, ry), (lx, ly) = pts[0], pts[1]
    angle = math.degrees(math.atan2(ly - ry, lx - rx))
    return angle if math.isfinite(angle) else 0.0


def crop_face(image: np.ndarray, face: Face, size: int = 224, margin: float = DEFAULT_MARGIN,
              align: bool = False, square: bool = True, frame=None, min_tilt: float = 0.0,
              max_side: float = 0.0) -> Crop:
    """Cut ``face`` out of ``image`` (``H×W×3`` uint8 RGB) as a :class:`~salface.types.Crop`;
    ``frame`` limits the image to a training set's framing first; with ``align``, eye lines tilted
    less than ``min_tilt`` degrees are cut upright; with ``max_side``, a square wider than that many
    image pixels is cut at ``max_side`` pixels and enlarged to ``size`` (module docstring)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 image, got shape {image.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    region = enlarged_box(face.box, margin, square)
    cap = int(round(max_side)) if max_side else 0
    if 1 <= cap < size and region.width > max_side:  # resolution cap: cut small, then enlarge
        small = crop_face(image, face, size=cap, margin=margin, align=align, square=square,
                          frame=frame, min_tilt=min_tilt)
        pixels = cv2.resize(small.pixels, (size, size), interpolation=cv2.INTER_LINEAR)
        return Crop(pixels=np.ascontiguousarray(pixels), box=small.box, face=face,
                    matrix=small.matrix * (size / cap), angle=small.angle)
    x1, y1, x2, y2 = (int(v) for v in region.as_tuple())
    rw, rh = x2 - x1, y2 - y1
    angle = eye_angle(face) if align else 0.0
    if abs(angle) < min_tilt:
        angle = 0.0
    src, ox, oy = _limit_to_frame(image, face.box, frame)
    if angle == 0.0:
        patch = _cut_replicate(src, x1 - ox, y1 - oy, x2 - ox, y2 - oy)
        interp = cv2.INTER_AREA if (rw > size or rh > size) else cv2.INTER_LINEAR
        pixels = cv2.resize(patch, (size, size), interpolation=interp)
        sx, sy = size / rw, size / rh
        matrix = np.array([[sx, 0.0, -x1 * sx], [0.0, sy, -y1 * sy]], dtype=np.float64)
    else:
        cx, cy = region.center
        sx, sy = size / rw, size / rh
        rot = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)  # rotates the eyes onto a level line
        scale = np.array([[sx, 0.0, -x1 * sx], [0.0, sy, -y1 * sy], [0, 0, 1]], dtype=np.float64)
        matrix = (scale @ np.vstack([rot, [0, 0, 1]]))[:2]
        pixels = _warp(src, _index_matrix(matrix), size, ox, oy)
    return Crop(pixels=np.ascontiguousarray(pixels), box=region, face=face, matrix=matrix, angle=angle)
