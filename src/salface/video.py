"""Video files and cameras: analyse sampled frames, follow each face with a track id, smooth its
answers over time, and summarise every track.

    from salface.video import analyze_video

    run = analyze_video("clip.mp4", every=5)          # or analyze_video(0) for camera 0
    for fr in run:                                    # one FrameResult per analysed frame
        print(fr.frame, fr.time, [(t, f.expression.label) for t, f in zip(fr.tracks, fr.smoothed)])
    print(run.summary())                              # per-track summary (also after an error)

Frames are read with OpenCV (``cv2.VideoCapture``, FFmpeg for files). Faces of many frames of a
file share network batches (the Analyzer's ``batch_size``); camera frames are analysed one at a time
so answers come without delay. Timestamps are the container's presentation times (seconds from
the start) for files, and seconds since the first frame for cameras.

A file that cannot be opened, or that ends before the frame count its header announces
(truncated or corrupt), raises :class:`VideoError` naming the file and the reason, after every
frame read before the problem has been yielded; :meth:`VideoRun.summary` still covers them.
"""

from __future__ import annotations

import math
import os
import time as _time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import cv2
import numpy as np

from .errors import ImageError
from .track import IoUTracker, Track
from .types import FaceResult
from .utils import optional_import

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".m2v", ".ts", ".mts",
     ".m2ts", ".wmv", ".asf", ".flv", ".3gp", ".3g2", ".ogv", ".mxf", ".vob"})
"""File name endings (lower case) taken as video without looking inside the file."""

VideoSource = Union[str, "os.PathLike[str]", int]

_TRUNCATION_SLACK = 0.01
"""A file may end this share of its announced frame count (at least 2 frames) early without
being called truncated: some containers only estimate the count from duration × frame rate."""


class VideoError(ImageError):
    """A video file or camera that could not be opened or read to its end (an input error like
    :class:`~salface.errors.ImageError`). ``str()`` is ``"<source>: <reason>"``."""


def _has_video_signature(head: bytes) -> bool:
    """Whether the first bytes of a file look like a video container."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return head[8:12] not in (b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis")  # images
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):          # QuickTime without ftyp
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if head[:4] in (b"\x1aE\xdf\xa3", b"OggS", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return True
    if head[:3] == b"FLV" or head[:8] == b"0&\xb2u\x8ef\xcf\x11":  # Flash, ASF / WMV
        return True
    return len(head) > 188 and head[0] == 0x47 and head[188] == 0x47  # MPEG transport stream


def is_video_path(path: str | os.PathLike) -> bool:
    """True for a video file: by its ending (:data:`VIDEO_EXTENSIONS`), else, for endings that are
    not image endings, by the container signature in its first bytes."""
    from .io import IMAGE_EXTENSIONS

    p = Path(path)
    ext = p.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return True
    if ext in IMAGE_EXTENSIONS or not p.is_file():
        return False
    try:
        with open(p, "rb") as fh:
            return _has_video_signature(fh.read(189))
    except OSError:
        return False


@dataclass(frozen=True)
class VideoInfo:
    """What the container (or camera) says about itself; ``frame_count`` is 0 when unknown."""

    source: str
    fps: float
    frame_count: int
    width: int
    height: int
    live: bool

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "fps": round(self.fps, 3), "frame_count": self.frame_count,
                "width": self.width, "height": self.height, "live": self.live}


def open_video(source: VideoSource) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open a file path or camera index; raises :class:`VideoError` if it cannot be opened."""
    # FFmpeg's own decoder messages would interleave with the output; the reason is in our error.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    live = isinstance(source, int)
    name = f"camera {source}" if live else os.fspath(source)
    if not live:
        p = Path(name)
        if not p.exists():
            raise VideoError(name, "file not found")
        if p.is_dir():
            raise VideoError(name, "is a directory, not a video file")
        if p.stat().st_size == 0:
            raise VideoError(name, "empty file (0 bytes)")
    from .detect.yunet import _quiet_opencv

    with _quiet_opencv():   # OpenCV warns on stderr for a missing camera; our error says it
        cap = cv2.VideoCapture(source if live else name)
    if not cap.isOpened():
        cap.release()
        if live:
            raise VideoError(name, "could not open the camera (no such device, or it is busy)")
        raise VideoError(name, "could not open as a video: not a format OpenCV/FFmpeg reads, or "
                               "the file is truncated or corrupt (an MP4 cut short loses its "
                               "index, the 'moov' atom written at the end)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    info = VideoInfo(source=name, fps=float(fps) if fps and fps > 0 and math.isfinite(fps) else 0.0,
                     frame_count=int(count) if not live and count and count > 0 else 0,
                     width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), live=live)
    return cap, info


class FrameSampler:
    """Which frames to analyse: every ``every``-th frame, or (``fps``) the first frame of each
    ``1/fps``-second slot of the timeline. ``output_fps`` is the resulting rate."""

    def __init__(self, every: int = 1, fps: float | None = None) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if fps is not None and every != 1:
            raise ValueError("give either every or fps, not both")
        self.every, self.fps = every, fps
        self._slot = -1

    def take(self, index: int, t: float) -> bool:
        if self.fps is None:
            return index % self.every == 0
        slot = math.floor(t * self.fps + 1e-6)
        if slot > self._slot:
            self._slot = slot
            return True
        return False

    def output_fps(self, source_fps: float) -> float:
        if self.fps is not None:
            return min(self.fps, source_fps) if source_fps > 0 else self.fps
        return (source_fps or 30.0) / self.every

    def expected(self, info: VideoInfo) -> int | None:
        """How many frames will be analysed, when the container says how many it has."""
        if not info.frame_count:
            return None
        if self.fps is None or not info.fps:
            return -(-info.frame_count // self.every)
        return min(info.frame_count, math.ceil(info.frame_count / info.fps * self.fps))


def iter_frames(source: VideoSource, *, every: int = 1, fps: float | None = None,
                max_frames: int | None = None, duration: float | None = None,
                ) -> Iterator[tuple[int, float, np.ndarray]]:
    """``(frame index, time in s, RGB uint8 frame)`` for each sampled frame of a file or camera.

    Frames that are not sampled are skipped without being converted. Stops after ``max_frames``
    analysed frames or ``duration`` seconds. Raises :class:`VideoError` when the file cannot be
    opened, a frame cannot be decoded, or the file ends well before the frame count in its header.
    """
    sampler = FrameSampler(every, fps)
    cap, info = open_video(source)
    yield from _read_frames(cap, info, sampler, max_frames, duration)


def _read_frames(cap: cv2.VideoCapture, info: VideoInfo, sampler: FrameSampler,
                 max_frames: int | None, duration: float | None,
                 ) -> Iterator[tuple[int, float, np.ndarray]]:
    """:func:`iter_frames` on an opened capture, which it releases when done."""
    index, taken, start = -1, 0, None
    try:
        while max_frames is None or taken < max_frames:
            if not cap.grab():
                break
            index += 1
            if info.live:
                now = _time.monotonic()
                start = now if start is None else start
                t = now - start
            else:
                msec = cap.get(cv2.CAP_PROP_POS_MSEC)
                t = msec / 1000.0 if (msec > 0 or index == 0) else (
                    index / info.fps if info.fps else 0.0)
            if duration is not None and t > duration:
                return
            if not sampler.take(index, t):
                continue
            ok, bgr = cap.retrieve()
            if not ok or bgr is None:
                raise VideoError(info.source, f"could not decode frame {index}")
            taken += 1
            yield index, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        else:
            return   # max_frames reached: the rest of the file was not read
        # grab() failed: the end of the file, or of its readable part
        expected = info.frame_count
        if expected and index + 1 < expected - max(2, round(_TRUNCATION_SLACK * expected)):
            raise VideoError(info.source, f"video ended after frame {index + 1} of the {expected} "
                                          "its header announces (truncated or corrupt file)")
    finally:
        cap.release()


@dataclass(frozen=True, eq=False)
class FrameResult:
    """One analysed frame: its faces as classified in this frame alone (``faces``), the track id of
    each (``tracks``), and the same faces with their tracks' smoothed predictions (``smoothed``).
    ``image`` holds the RGB frame when asked for (``keep_images=True``)."""

    source: str
    frame: int
    time: float
    width: int
    height: int
    faces: list[FaceResult] = field(default_factory=list)
    tracks: list[int] = field(default_factory=list)
    smoothed: list[FaceResult] = field(default_factory=list)
    error: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        faces = []
        for f, tid, s in zip(self.faces, self.tracks, self.smoothed):
            d = f.to_dict()
            d["track"] = tid
            d["smoothed"] = {task: p.to_dict() for task, p in s.predictions().items()}
            faces.append(d)
        d = {"source": self.source, "frame": self.frame, "time": round(self.time, 3),
             "width": self.width, "height": self.height, "faces": faces}
        if self.error is not None:
            d["error"] = self.error
        return d

    def annotated(self) -> np.ndarray:
        """The frame with each face's box, track id and smoothed labels drawn on it."""
        if self.image is None:
            raise ValueError("this FrameResult holds no pixels (analyze with keep_images=True)")
        from .viz import annotate, face_label

        labels = [f"#{t} {face_label(s)}".strip() for t, s in zip(self.tracks, self.smoothed)]
        return annotate(self.image, self.smoothed, labels=labels)

    def _repr_png_(self) -> bytes | None:
        if self.image is None:
            return None
        from .viz import png_bytes

        return png_bytes(self.annotated())


class VideoRun:
    """Iterate it once for the :class:`FrameResult` of each analysed frame; then (or after a
    :class:`VideoError`) ``summary()`` describes every track. Made by :func:`analyze_video`."""

    def __init__(self, source: VideoSource, analyzer: Any = None, *, every: int = 1,
                 fps: float | None = None, tracker: IoUTracker | None = None,
                 max_frames: int | None = None, duration: float | None = None,
                 keep_images: bool = False, progress: bool = False) -> None:
        FrameSampler(every, fps)  # validate now, not at the first frame
        if analyzer is None:
            from .pipeline import Analyzer

            analyzer = Analyzer()
        self.source = source
        self.name = f"camera {source}" if isinstance(source, int) else os.fspath(source)
        self.analyzer = analyzer
        self.tracker = tracker if tracker is not None else IoUTracker()
        self.every, self.fps = every, fps
        self.max_frames, self.duration = max_frames, duration
        self.keep_images, self.progress = keep_images, progress
        self.info: VideoInfo | None = None
        self.frames_analysed = 0
        self.error: str | None = None
        self._started = False

    def _frames(self, cap: cv2.VideoCapture, meta: deque, failure: list, bar: Any,
                ) -> Iterator[np.ndarray]:
        """Frames for the analyzer; their index and time go to ``meta``. A VideoError ends the
        stream (so the frames already queued still get analysed) and is kept in ``failure``.
        The bar counts frames as they are read and detected (classification follows in batches)."""
        try:
            for index, t, rgb in _read_frames(cap, self.info, FrameSampler(self.every, self.fps),
                                              self.max_frames, self.duration):
                meta.append((index, t, rgb))
                yield rgb
                if bar is not None:
                    bar.update(1)
        except VideoError as exc:
            failure.append(exc)

    def _results(self, frames: Iterator[np.ndarray]):
        if isinstance(self.source, int):   # live: no waiting for a batch to fill
            for rgb in frames:
                yield next(iter(self.analyzer.analyze_batch([rgb])))
        else:
            yield from self.analyzer.analyze_batch(frames)

    def __iter__(self) -> Iterator[FrameResult]:
        if self._started:
            raise RuntimeError("a VideoRun can be iterated only once; call analyze_video again")
        self._started = True
        try:
            cap, self.info = open_video(self.source)
        except VideoError as exc:
            self.error = exc.reason
            raise
        meta: deque = deque()
        failure: list[VideoError] = []
        bar = self._bar()
        frames = self._frames(cap, meta, failure, bar)
        try:
            for res in self._results(frames):
                index, t, rgb = meta.popleft()
                tracks: list[Track] = self.tracker.update(res.faces, index, t) if res.ok else []
                self.frames_analysed += 1
                yield FrameResult(source=self.name, frame=index, time=t, width=rgb.shape[1],
                                  height=rgb.shape[0], faces=list(res.faces),
                                  tracks=[tr.id for tr in tracks],
                                  smoothed=self.tracker.smoothed_faces(res.faces, tracks),
                                  error=res.error, image=rgb if self.keep_images else None)
        finally:
            frames.close()   # releases the capture when the caller stops early
            if bar is not None:
                bar.close()
        if failure:
            self.error = failure[0].reason
            raise failure[0]

    def _bar(self):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        total = FrameSampler(self.every, self.fps).expected(self.info)
        if self.max_frames is not None:
            total = min(total, self.max_frames) if total is not None else self.max_frames
        return tqdm(total=total, desc=Path(self.name).name, unit="frame", dynamic_ncols=True,
                    leave=False)

    def output_fps(self) -> float:
        """The rate of the analysed frames (for writing them as a video)."""
        return FrameSampler(self.every, self.fps).output_fps(self.info.fps if self.info else 0.0)

    def summary(self) -> dict[str, Any]:
        """The video (info, frames analysed, error if any) and :meth:`Track.summary` per track."""
        return {"source": self.name, **({"info": self.info.to_dict()} if self.info else {}),
                "frames_analysed": self.frames_analysed,
                "sampling": {"every": self.every, "fps": self.fps},
                "smoothing": self.tracker.smoothing, "error": self.error,
                "tracks": self.tracker.summary()}


def analyze_video(path_or_index: VideoSource, analyzer: Any = None, every: int = 1,
                  fps: float | None = None, *, tracker: IoUTracker | None = None,
                  max_frames: int | None = None, duration: float | None = None,
                  keep_images: bool = False, progress: bool = False) -> VideoRun:
    """Analyse a video file (path) or camera (integer index), frame by frame.

    Returns a :class:`VideoRun`: iterate it for one :class:`FrameResult` per analysed frame, then
    call ``summary()``. ``analyzer`` defaults to ``Analyzer()`` (the shipped models); ``every``
    analyses every N-th frame, ``fps`` about F frames per second instead (not both);
    ``tracker`` sets the IoU threshold, track ending and smoothing (default :class:`IoUTracker()`);
    ``max_frames`` / ``duration`` (seconds) stop early (a camera runs until then, or until the loop
    is broken); ``keep_images`` keeps each frame's pixels (``FrameResult.image``, ``annotated()``);
    ``progress`` shows a bar with ETA (``tqdm.auto``: terminals and notebooks).
    """
    return VideoRun(path_or_index, analyzer, every=every, fps=fps, tracker=tracker,
                    max_frames=max_frames, duration=duration, keep_images=keep_images,
                    progress=progress)


class AnnotatedVideoWriter:
    """Writes annotated frames (:meth:`FrameResult.annotated`) to an MP4 file (codec ``mp4v``).
    The frame size is taken from the first frame."""

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps if fps > 0 else 30.0
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        img = result.annotated()
        h, w = img.shape[:2]
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"),
                                           self.fps, (w, h))
            if not self._writer.isOpened():
                raise VideoError(str(self.path), "could not open for writing (codec mp4v)")
            self._size = (w, h)
        elif (w, h) != self._size:
            img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> "AnnotatedVideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def plot_tracks(tracker: IoUTracker, path: str | os.PathLike, task: str = "expression",
                max_tracks: int = 12, title: str | None = None) -> Path:
    """One panel per track (the ``max_tracks`` longest): the smoothed probability of each class of
    ``task`` over time. Needs matplotlib."""
    Figure = optional_import("matplotlib.figure", "notebook", "plotting tracks").Figure
    tracks = [t for t in tracker.tracks if task in t.history]
    if not tracks:
        raise ValueError(f"no track has {task!r} predictions to plot")
    shown = sorted(tracks, key=lambda t: -t.hits)[:max_tracks]
    shown.sort(key=lambda t: t.id)
    fig = Figure(figsize=(10, 1.0 + 1.9 * len(shown)))   # no pyplot: no global backend state
    axes = fig.subplots(len(shown), 1, squeeze=False, sharex=True)
    for ax, t in zip(axes[:, 0], shown):
        series = np.stack(t.history[task])
        for k, name in enumerate(t.labels[task]):
            ax.plot(t.times, series[:, k], label=name, lw=1.4,
                    marker="." if len(t.times) < 40 else None)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("probability")
        ax.set_title(f"track {t.id}: {t.hits} frames, {t.times[0]:.2f}–{t.times[-1]:.2f} s",
                     fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[-1, 0].set_xlabel("time (s)")
    note = f" ({len(shown)} longest of {len(tracks)} tracks)" if len(tracks) > len(shown) else ""
    fig.suptitle((title or f"{task} over time (smoothed)") + note, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out
