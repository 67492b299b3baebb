"""Users' own data, in one of two simple layouts.

**CSV** (:func:`read_csv_dataset`): a header row with ``path`` and at least one label column:

* ``age`` — age in years (mapped to a group by :func:`salface.data.base.age_to_group`), or
  ``age_group`` — a group name (``25-32``, ``60+``), an Adience string (``(25, 32)``) or an index;
* ``gender`` — ``male``/``female`` (also ``m``/``f``) or ``0``/``1``;
* ``expression`` — a name from :data:`~salface.labels.EXPRESSIONS` (FER/AffectNet spellings such
  as ``happiness``, ``angry``, ``sadness`` accepted) or an index 0-6;
* optional ``x, y, w, h`` — a face box in image pixels (all four or none; a row may leave them empty);
* optional ``subject`` — a person id, so splits can keep a person's images together.

An empty cell means "unknown" for that task. Relative paths are taken relative to ``root`` (default:
the CSV's folder). Every image must exist (``require_images``), else :class:`DatasetError` names it.

**Folder** (:func:`read_folder_dataset`): ``<root>/<class name>/*.jpg`` for one task, class names
spelt as for the CSV.
"""

from __future__ import annotations

import os
from pathlib import Path

from salface.data.base import DatasetError, Sample, age_to_group, parse_float, read_table, require_dir
from salface.labels import TASKS, labels_for
from salface.types import Box

ALIASES: dict[str, dict[str, str]] = {
    "gender": {"m": "male", "man": "male", "f": "female", "woman": "female"},
    "expression": {"happiness": "happy", "sadness": "sad", "angry": "anger", "surprised": "surprise",
                   "fearful": "fear", "disgusted": "disgust", "neutrality": "neutral"},
    "age": {"(0, 2)": "0-2", "(4, 6)": "4-6", "(8, 12)": "8-13", "(8, 13)": "8-13", "8-12": "8-13",
            "(15, 20)": "15-20", "(25, 32)": "25-32", "(38, 43)": "38-43", "(48, 53)": "48-53",
            "(60, 100)": "60+", "60-100": "60+"},
}
"""Accepted spellings → our class names (case-insensitive)."""

_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def parse_label(task: str, value: str) -> int:
    """A class name, alias or index of ``task`` → class index (ValueError when not a class)."""
    names = labels_for(task)
    v = str(value).strip()
    if v.isdigit():
        i = int(v)
        if i < len(names):
            return i
        raise ValueError(f"{task} index {i} is not 0..{len(names) - 1}")
    key = v.lower()
    key = ALIASES.get(task, {}).get(key, key)
    lowered = [n.lower() for n in names]
    if key in lowered:
        return lowered.index(key)
    raise ValueError(f"{v!r} is not a {task} class; expected one of {list(names)} or an index")


def read_csv_dataset(csv_path: str | os.PathLike, root: str | os.PathLike | None = None, *,
                     require_images: bool = True) -> list[Sample]:
    """Read a CSV in the layout above into samples (``meta["age_years"]`` when ``age`` is given)."""
    csv_path = Path(csv_path)
    header, rows = read_table(csv_path, required=("path",))
    label_cols = [c for c in ("age", "age_group", "gender", "expression") if c in header]
    if not label_cols:
        raise DatasetError(csv_path, "no label column; expected at least one of age, age_group, "
                                     f"gender, expression (found {header})")
    if "age" in header and "age_group" in header:
        raise DatasetError(csv_path, "give either 'age' (years) or 'age_group', not both")
    box_cols = [c for c in ("x", "y", "w", "h") if c in header]
    if box_cols and len(box_cols) != 4:
        raise DatasetError(csv_path, f"a face box needs all of x, y, w, h; found only {box_cols}")
    base = Path(root) if root is not None else csv_path.parent
    out: list[Sample] = []
    for line, r in rows:
        if not r["path"]:
            raise DatasetError(csv_path, f"line {line}: empty path")
        p = Path(r["path"])
        img = p if p.is_absolute() else base / p
        if require_images and not img.is_file():
            raise DatasetError(csv_path, f"line {line}: image not found: {img}")
        labels: dict[str, int] = {}
        meta: dict = {}
        try:
            if r.get("age", ""):
                years = parse_float(r["age"], csv_path, line, "age")
                labels["age"] = age_to_group(years)
                meta["age_years"] = years
            if r.get("age_group", ""):
                labels["age"] = parse_label("age", r["age_group"])
            for task in ("gender", "expression"):
                if r.get(task, ""):
                    labels[task] = parse_label(task, r[task])
        except ValueError as exc:
            if isinstance(exc, DatasetError):
                raise
            raise DatasetError(csv_path, f"line {line}: {exc}") from None
        box = None
        if box_cols and any(r[c] for c in box_cols):
            x, y, w, h = (parse_float(r[c], csv_path, line, c) for c in ("x", "y", "w", "h"))
            if w <= 0 or h <= 0:
                raise DatasetError(csv_path, f"line {line}: face box width/height must be positive")
            box = Box.from_xywh(x, y, w, h)
        subject = r.get("subject") or None
        out.append(Sample(path=str(img), labels=labels, subject=subject, box=box, meta=meta))
    return out


def read_folder_dataset(root: str | os.PathLike, task: str) -> list[Sample]:
    """``<root>/<class name>/*.jpg`` for ``task`` (``"age"``, ``"gender"`` or ``"expression"``).

    Every sub-folder must be a class name (or alias) of the task; hidden entries are skipped."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    root = require_dir(root, "dataset folder")
    out: list[Sample] = []
    dirs = sorted(d for d in os.listdir(root) if (root / d).is_dir() and not d.startswith("."))
    if not dirs:
        raise DatasetError(root, f"no class folders; expected <root>/<{task} class>/*.jpg "
                                 f"with classes {list(labels_for(task))}")
    for d in dirs:
        try:
            idx = parse_label(task, d)
        except ValueError as exc:
            raise DatasetError(root / d, f"folder name is not one of the {task} classes ({exc})") from None
        for name in sorted(os.listdir(root / d)):
            if name.lower().endswith(_IMAGE_EXT) and not name.startswith("."):
                out.append(Sample(path=str(root / d / name), labels={task: idx}, meta={"folder": d}))
    if not out:
        raise DatasetError(root, "no images found in the class folders")
    return out
