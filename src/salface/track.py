"""Follow faces from frame to frame: a simple IoU tracker with per-track smoothing.

Each analysed frame's faces are matched to the live tracks by the overlap (intersection over union)
of their boxes. Matching maximises the total IoU with the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``) when scipy is installed, and otherwise takes pairs
greedily, highest IoU first; pairs below ``iou_threshold`` are never matched. A face left unmatched
starts a new track; a track unmatched for more than ``max_missed`` analysed frames in a row ends.

Each track keeps an exponential moving average of every task's class probabilities,
``s ← α·p + (1 − α)·s`` with ``α = smoothing`` (1 switches smoothing off), started from the track's
first observation. ``α`` applies per *analysed* frame, so sampling fewer frames (``--every``,
``--fps``) stretches the same ``α`` over more seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .types import Box, FaceResult, Prediction

MATCHERS = ("auto", "hungarian", "greedy")


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """``(len(a), len(b))`` intersection-over-union of every pair of boxes."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    A = np.array([x.as_tuple() for x in a], dtype=np.float64)[:, None, :]
    B = np.array([x.as_tuple() for x in b], dtype=np.float64)[None, :, :]
    iw = np.clip(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0, None)
    ih = np.clip(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0, None)
    inter = iw * ih
    area = lambda X: (X[..., 2] - X[..., 0]) * (X[..., 3] - X[..., 1])  # noqa: E731
    union = area(A) + area(B) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _hungarian_available() -> bool:
    try:
        import scipy.optimize  # noqa: F401
    except ImportError:
        return False
    return True


def match(iou: np.ndarray, threshold: float, method: str = "auto") -> list[tuple[int, int]]:
    """Pairs ``(row, column)`` of ``iou`` matched one to one, each with IoU ≥ ``threshold``.

    ``"hungarian"`` maximises the total IoU of the valid pairs (scipy); ``"greedy"`` repeatedly
    takes the highest remaining IoU (ties by row, then column); ``"auto"`` is Hungarian when scipy
    is installed, else greedy.
    """
    if method not in MATCHERS:
        raise ValueError(f"matcher must be one of {MATCHERS}, got {method!r}")
    if iou.size == 0:
        return []
    valid = iou >= threshold
    if method == "auto":
        method = "hungarian" if _hungarian_available() else "greedy"
    if method == "hungarian":
        try:
            from scipy.optimize import linear_sum_assignment
        except ImportError as exc:
            raise ImportError("the Hungarian matcher needs scipy (pip install scipy); "
                              "matcher='greedy' works without it") from exc
        rows, cols = linear_sum_assignment(np.where(valid, iou, 0.0), maximize=True)
        return sorted((int(r), int(c)) for r, c in zip(rows, cols) if valid[r, c])
    pairs = sorted(zip(*np.nonzero(valid)), key=lambda rc: (-iou[rc], rc[0], rc[1]))
    used_r: set[int] = set()
    used_c: set[int] = set()
    out = []
    for r, c in pairs:
        if r not in used_r and c not in used_c:
            used_r.add(int(r))
            used_c.add(int(c))
            out.append((int(r), int(c)))
    return sorted(out)


@dataclass
class Track:
    """One face followed over time. ``smoothed`` holds the current moving averages; ``times``,
    ``frames`` and the per-task ``raw`` / ``history`` lists hold one entry per observation."""

    id: int
    box: Box
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    smoothed: dict[str, np.ndarray] = field(default_factory=dict)
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    raw: dict[str, list[np.ndarray]] = field(default_factory=dict)
    history: dict[str, list[np.ndarray]] = field(default_factory=dict)
    missed: int = 0

    @property
    def hits(self) -> int:
        return len(self.frames)

    def observe(self, face: FaceResult, frame: int, time: float, alpha: float) -> None:
        self.box = face.face.box
        self.missed = 0
        self.frames.append(frame)
        self.times.append(time)
        for task, p in face.predictions().items():
            probs = np.array(list(p.probabilities.values()), dtype=np.float64)
            if task not in self.smoothed:
                self.labels[task] = tuple(p.probabilities)
                self.smoothed[task] = probs
            else:
                self.smoothed[task] = alpha * probs + (1.0 - alpha) * self.smoothed[task]
            self.raw.setdefault(task, []).append(probs.astype(np.float32))
            self.history.setdefault(task, []).append(self.smoothed[task].astype(np.float32))

    def predictions(self) -> dict[str, Prediction]:
        """The smoothed answer of each task, as :class:`Prediction` objects."""
        out = {}
        for task, probs in self.smoothed.items():
            names = self.labels[task]
            k = int(np.argmax(probs))
            out[task] = Prediction(task=task, label=names[k], index=k,
                                   probabilities={n: float(v) for n, v in zip(names, probs)})
        return out

    def summary(self) -> dict[str, Any]:
        """Frames seen, first/last time, and per task: the majority of the per-frame labels, the
        label of the mean probabilities, the mean probabilities, and the timeline of the
        smoothed label (runs of equal labels with their first and last time)."""
        d: dict[str, Any] = {"track": self.id, "frames": self.hits,
                             "first_frame": self.frames[0], "last_frame": self.frames[-1],
                             "first_time": round(self.times[0], 3),
                             "last_time": round(self.times[-1], 3)}
        for task, names in self.labels.items():
            raw = np.stack(self.raw[task])
            votes = Counter(names[k] for k in raw.argmax(axis=1))
            mean = raw.mean(axis=0)
            timeline: list[dict[str, Any]] = []
            for t, k in zip(self.times, np.stack(self.history[task]).argmax(axis=1)):
                if timeline and timeline[-1]["label"] == names[k]:
                    timeline[-1]["end"] = round(t, 3)
                    timeline[-1]["frames"] += 1
                else:
                    timeline.append({"label": names[k], "start": round(t, 3), "end": round(t, 3),
                                     "frames": 1})
            d[task] = {"majority": max(names, key=lambda n: (votes[n], -names.index(n))),
                       "votes": {n: votes[n] for n in names if votes[n]},
                       "mean": names[int(mean.argmax())],
                       "mean_probabilities": {n: round(float(v), 4) for n, v in zip(names, mean)},
                       "timeline": timeline}
        return d


class IoUTracker:
    """Assigns a track id to every face of each frame, in frame order.

    Parameters
    ----------
    iou_threshold:
        Smallest box IoU for a face to continue a track (default 0.3).
    max_missed:
        How many analysed frames in a row a track may go unmatched before it ends (default 5).
    smoothing:
        ``α`` of the exponential moving average of the class probabilities, in (0, 1];
        1 means no smoothing (default 0.3).
    matcher:
        ``"auto"`` (Hungarian with scipy, else greedy), ``"hungarian"`` or ``"greedy"``.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5, smoothing: float = 0.3,
                 matcher: str = "auto") -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_missed < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed}")
        if not 0.0 < smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        if matcher not in MATCHERS:
            raise ValueError(f"matcher must be one of {MATCHERS}, got {matcher!r}")
        if matcher == "hungarian" and not _hungarian_available():
            raise ImportError("the Hungarian matcher needs scipy (pip install scipy); "
                              "matcher='greedy' works without it")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.smoothing = smoothing
        self.matcher = matcher
        self.tracks: list[Track] = []
        """Every track started so far, in order of id (ended ones included)."""
        self.active: list[Track] = []

    def update(self, faces: Sequence[FaceResult], frame: int, time: float) -> list[Track]:
        """Match one frame's faces to the tracks; returns the track of each face, in order."""
        boxes = [f.face.box for f in faces]
        pairs = match(iou_matrix([t.box for t in self.active], boxes), self.iou_threshold,
                      self.matcher)
        assigned: list[Track | None] = [None] * len(faces)
        for ti, fi in pairs:
            assigned[fi] = self.active[ti]
        for t in self.active:
            t.missed += 1          # reset to 0 by observe() for the matched ones
        for fi, face in enumerate(faces):
            track = assigned[fi]
            if track is None:
                track = Track(id=len(self.tracks) + 1, box=face.face.box)
                self.tracks.append(track)
                self.active.append(track)
                assigned[fi] = track
            track.observe(face, frame, time, self.smoothing)
        self.active = [t for t in self.active if t.missed <= self.max_missed]
        return assigned  # type: ignore[return-value]

    def smoothed_faces(self, faces: Sequence[FaceResult], tracks: Sequence[Track]) -> list[FaceResult]:
        """Copies of ``faces`` whose predictions are their tracks' smoothed ones."""
        out = []
        for f, t in zip(faces, tracks):
            p = t.predictions()
            out.append(replace(f, age=p.get("age"), gender=p.get("gender"),
                               expression=p.get("expression")))
        return out

    def summary(self) -> list[dict[str, Any]]:
        """:meth:`Track.summary` of every track, by id."""
        return [t.summary() for t in self.tracks]
