"""Results as tables: one row per face, for pandas and notebooks.

    from salface.frames import to_frame

    df = to_frame(analyzer.analyze_batch(paths), progress=True)   # a pandas DataFrame
    df.groupby("expression").size()

Columns: ``source``; for video frames ``frame``, ``time`` (s) and ``track``; ``face`` (index in its
image); the box ``x1 y1 x2 y2`` and detector ``score``; per task answered ``<task>``,
``<task>_confidence`` and one ``<task>_p_<class>`` column per class (e.g. ``age_p_25-32``,
``expression_p_happy``); for video frames also the track's smoothed answer
``<task>_smoothed`` and ``<task>_smoothed_confidence``; then ``width``, ``height`` and ``error``.
An image without a face, or one that failed (``error`` set), still gets one row, with no face.

pandas is optional (``pip install salface[notebook]``, or just pandas); :func:`result_rows` gives
the same rows as plain dicts without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Union

from .types import ImageResult
from .utils import optional_import

FIXED_COLUMNS = ("source", "frame", "time", "track", "face", "x1", "y1", "x2", "y2", "score")
TAIL_COLUMNS = ("width", "height", "error")
INT_COLUMNS = ("frame", "track", "face")

Result = Union[ImageResult, Any]   # ImageResult or salface.video.FrameResult


def result_rows(result: Result, probabilities: bool = True) -> list[dict[str, Any]]:
    """One dict per face of an :class:`~salface.types.ImageResult` or a video
    :class:`~salface.video.FrameResult` (one dict with no face when it has none, or failed).
    Values are not rounded; ``probabilities=False`` leaves out the ``<task>_p_<class>`` columns."""
    base: dict[str, Any] = {"source": result.source}
    tracks = getattr(result, "tracks", None)
    smoothed = getattr(result, "smoothed", None)
    if tracks is not None:   # a video frame
        base.update(frame=result.frame, time=result.time)
    tail = {"width": result.width, "height": result.height, "error": result.error}
    if not result.faces:
        return [{**base, **tail}]
    rows = []
    for i, f in enumerate(result.faces):
        row = dict(base)
        if tracks is not None:
            row["track"] = tracks[i]
        row["face"] = i
        row.update(zip(("x1", "y1", "x2", "y2"), (float(v) for v in f.face.box.as_tuple())))
        row["score"] = float(f.face.score)
        smooth = smoothed[i].predictions() if smoothed is not None else {}
        for task, p in f.predictions().items():
            row[task] = p.label
            row[f"{task}_confidence"] = p.confidence
            if probabilities:
                row.update({f"{task}_p_{c}": float(v) for c, v in p.probabilities.items()})
            if task in smooth:
                row[f"{task}_smoothed"] = smooth[task].label
                row[f"{task}_smoothed_confidence"] = smooth[task].confidence
        rows.append({**row, **tail})
    return rows


def _column_order(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        seen.update(dict.fromkeys(r))
    middle = [c for c in seen if c not in FIXED_COLUMNS and c not in TAIL_COLUMNS]
    return ([c for c in FIXED_COLUMNS if c in seen] + middle
            + [c for c in TAIL_COLUMNS if c in seen or c == "error"])


def to_frame(results: Result | Iterable[Result], *, probabilities: bool = True,
             progress: bool = False, total: int | None = None):
    """A pandas DataFrame with one row per face of ``results`` (see the module doc for columns).

    ``results`` is one result or any iterable of them: a list, ``Analyzer.analyze_batch(...)``, or
    a :class:`~salface.video.VideoRun`. ``progress`` shows a bar (``tqdm.auto``, which draws a
    widget in notebooks) while the iterable is consumed; ``total`` sets its length when the
    iterable has none. ``frame``, ``track`` and ``face`` are nullable integers (``Int64``).
    """
    pd = optional_import("pandas", "notebook", "to_frame")
    if isinstance(results, ImageResult) or hasattr(results, "tracks"):
        results = [results]
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=total, unit="image", leave=False)
    rows = [row for r in results for row in result_rows(r, probabilities)]
    df = pd.DataFrame(rows, columns=_column_order(rows) if rows else
                      [*FIXED_COLUMNS[:1], "face", *TAIL_COLUMNS])
    for c in INT_COLUMNS:
        if c in df:
            df[c] = df[c].astype("Int64")
    return df
