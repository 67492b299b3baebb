"""What every dataset reader returns: a list of :class:`Sample`, and :class:`DatasetError` for a
dataset that is not in the layout its reader expects.

A sample is a reference to one face image (a path, never pixels), its labels as class indices in
the order of :mod:`salface.labels`, and what the dataset says about it (subject, face box, raw
labels). Readers never decode images; :meth:`Sample.load` does, through :func:`salface.io.load_image`.
"""

from __future__ import annotations

from ..errors import SalfaceError

import bisect
import csv
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from salface.labels import AGE_GROUPS, TASKS
from salface.types import Box

ROW_MARK = "#row="
"""Paths of the form ``"<csv path>#row=<i>"`` name row ``i`` (0-based, header excluded) of a
``fer2013.csv``-style file whose ``pixels`` column holds the image."""


class DatasetError(SalfaceError, ValueError):
    """A dataset file or folder that is not in the expected layout. ``str()`` names the file and
    what is wrong with it (missing column, bad label, missing image folder, ...)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class ReaderReport:
    """Base of the readers' count reports (dataclasses): ``to_dict()`` gives plain data."""

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Sample:
    """One labelled face image.

    ``labels`` maps a task (``"age"``, ``"gender"``, ``"expression"``) to a class index in the order
    of :data:`salface.labels.TASKS`; a task is absent when the dataset does not know it.
    ``box`` is a face box given by the dataset, in image pixels, or ``None``.
    ``meta`` carries what the dataset says beyond the labels (age in years, race, fold, the
    original label, annotator votes, hashes); it is plain JSON-serialisable data.
    """

    path: str
    labels: dict[str, int]
    subject: str | None = None
    box: Box | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for task, idx in self.labels.items():
            names = TASKS.get(task)
            if names is None:
                raise ValueError(f"{self.path}: unknown task {task!r}; expected one of {sorted(TASKS)}")
            if not isinstance(idx, (int, np.integer)) or not 0 <= int(idx) < len(names):
                raise ValueError(f"{self.path}: {task} label {idx!r} is not an index into {names}")

    def label_name(self, task: str) -> str | None:
        """The class name of ``task`` for this sample, or ``None`` when unknown."""
        idx = self.labels.get(task)
        return None if idx is None else TASKS[task][idx]

    def load(self) -> np.ndarray:
        """Decode the image as ``H×W×3`` uint8 RGB (raises :class:`salface.io.ImageError` or
        :class:`DatasetError`)."""
        if ROW_MARK in self.path:
            csv_path, _, row = self.path.rpartition(ROW_MARK)
            from salface.data.fer2013 import fer2013_csv_pixels

            return fer2013_csv_pixels(csv_path, int(row))
        from salface.io import load_image

        return load_image(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "labels": dict(self.labels),
            "subject": self.subject,
            "box": None if self.box is None else [float(v) for v in self.box.as_tuple()],
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Sample":
        box = d.get("box")
        return cls(path=str(d["path"]), labels={k: int(v) for k, v in (d.get("labels") or {}).items()},
                   subject=d.get("subject"), box=None if box is None else Box(*map(float, box)),
                   meta=dict(d.get("meta") or {}))


# ---------------------------------------------------------------------------------------------
# age groups

_AGE_SPANS: tuple[tuple[float, float], ...] = (
    (0, 2), (4, 6), (8, 13), (15, 20), (25, 32), (38, 43), (48, 53), (60, float("inf")))
"""The inclusive year spans of :data:`salface.labels.AGE_GROUPS` (Adience's ``(8, 12)`` group is
named ``8-13`` by the papers; 13 is taken as inside it)."""

_AGE_THRESHOLDS: tuple[float, ...] = (0.0, 3.0, 7.0, 14.0, 22.5, 35.0, 45.5, 56.5)
"""Lower edge of each group once the gaps between groups are split at their midpoints."""

assert len(_AGE_SPANS) == len(_AGE_THRESHOLDS) == len(AGE_GROUPS)


def age_in_group(age: float) -> int | None:
    """The group whose span contains ``age`` (years), or ``None`` for an age in a gap."""
    for i, (lo, hi) in enumerate(_AGE_SPANS):
        if lo <= age <= hi:
            return i
    return None


def age_to_group(age: float) -> int:
    """Map an age in years to one of the 8 Adience groups (index into ``AGE_GROUPS``).

    Ages inside a group's span get that group. Ages that fall in a gap between two groups
    (3, 7, 14, 21-24, 33-37, 44-47, 54-59) go to the nearer group; the gap is cut at its
    midpoint and an age exactly on the midpoint (3, 7, 14, 35) goes to the **older** group.
    So 21-22 → 15-20, 23-24 → 25-32, 33-34 → 25-32, 35-37 → 38-43, 44-45 → 38-43,
    46-47 → 48-53, 54-56 → 48-53, 57-59 → 60+.
    """
    if age is None or not np.isfinite(age) or age < 0:
        raise ValueError(f"age must be a non-negative number of years, got {age!r}")
    inside = age_in_group(age)
    if inside is not None:
        return inside
    return bisect.bisect_right(_AGE_THRESHOLDS, float(age)) - 1


# ---------------------------------------------------------------------------------------------
# small helpers shared by the readers


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    p = Path(path)
    if not p.is_file():
        raise DatasetError(p, f"{what} not found" if not p.exists() else f"{what} is not a file")
    return p


def require_dir(path: str | os.PathLike, what: str = "folder") -> Path:
    p = Path(path)
    if not p.is_dir():
        raise DatasetError(p, f"{what} not found" if not p.exists() else f"{what} is not a folder")
    return p


def read_table(path: str | os.PathLike, *, required: Iterable[str] = (), delimiter: str = ",",
               ) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Open a CSV/TSV with a header row; check the ``required`` columns are present.

    Returns the header and an iterator of ``(line number, row dict)``; values are stripped.
    """
    p = require_file(path)
    try:
        fh = open(p, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(p, f"cannot open ({exc.strerror})") from exc
    reader = csv.reader(fh, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        fh.close()
        raise DatasetError(p, "file is empty (no header row)") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        fh.close()
        raise DatasetError(p, f"not a readable text table ({exc})") from exc
    missing = [c for c in required if c not in header]
    if missing:
        fh.close()
        raise DatasetError(p, f"missing column(s) {missing}; found {header}")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with fh:
            try:
                for row in reader:
                    if not row or all(not v.strip() for v in row):
                        continue
                    if len(row) < len(header):
                        raise DatasetError(p, f"line {reader.line_num}: {len(row)} fields, "
                                              f"expected {len(header)}")
                    yield reader.line_num, {h: v.strip() for h, v in zip(header, row)}
            except (csv.Error, UnicodeDecodeError) as exc:
                raise DatasetError(p, f"line {reader.line_num}: unreadable ({exc})") from exc

    return header, rows()


def parse_int(value: str, path: str | os.PathLike, line: int, column: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            f = float(value)
        except (TypeError, ValueError):
            f = None
        if f is not None and f.is_integer():
            return int(f)
        raise DatasetError(path, f"line {line}: column {column!r} is not an integer: {value!r}") from None


def parse_float(value: str, path: str | os.PathLike, line: int, column: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DatasetError(path, f"line {line}: column {column!r} is not a number: {value!r}") from None

