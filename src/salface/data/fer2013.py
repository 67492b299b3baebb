"""FER2013 with its original (single-annotator) labels, in two layouts.

* ``read_fer2013_original(root, split)``: the FER+ image folders with
  ``<root>/fer2013_original_labels.csv`` (``image,usage,fer2013_emotion``), for results comparable
  with papers that report on FER2013's own labels.
* ``read_fer2013_csv(csv_path)``: the ICML 2013 challenge file ``fer2013.csv`` (``emotion,pixels,Usage``;
  ``pixels`` is 2304 space-separated gray values of a 48×48 image). Samples get the path
  ``"<csv path>#row=<i>"`` and :meth:`Sample.load` decodes the row's pixels.

FER2013 emotion codes: 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral; they are
mapped to our :data:`~salface.labels.EXPRESSIONS` order. ``Usage`` Training / PublicTest /
PrivateTest are our ``train`` / ``valid`` / ``test`` (the same as FER+'s folders).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from salface.data.base import DatasetError, Sample, read_table, require_dir, require_file
from salface.data.ferplus import FERPLUS_SPLITS
from salface.labels import EXPRESSIONS

FER2013_CODES: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013 emotion code → our expression name (code 0 Angry ... 6 Neutral)."""

FER2013_NAMES: dict[str, str] = {
    "angry": "anger", "anger": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy",
    "sad": "sad", "surprise": "surprise", "neutral": "neutral",
}
"""The emotion names used in ``fer2013_original_labels.csv`` → our expression names."""

USAGES: dict[str, str] = {"Training": "train", "PublicTest": "valid", "PrivateTest": "test"}


def _split_name(split: str | None) -> str | None:
    if split is None:
        return None
    if split in USAGES:
        return USAGES[split]
    if split in USAGES.values():
        return split
    raise ValueError(f"unknown FER2013 split {split!r}; expected one of "
                     f"{sorted(USAGES.values())} or {sorted(USAGES)}")


def read_fer2013_original(root: str | os.PathLike, split: str = "train", *,
                          check_images: bool = True) -> list[Sample]:
    """FER+ images of one split labelled with FER2013's original emotion.

    ``meta["fer2013_emotion"]`` keeps the original name. Raises :class:`DatasetError` for a
    missing column, an unknown emotion or usage, or (with ``check_images``) a missing PNG.
    """
    split = _split_name(split)
    root = Path(root)
    labels_csv = root / "fer2013_original_labels.csv"
    _, rows = read_table(labels_csv, required=("image", "usage", "fer2013_emotion"))
    folder = require_dir(root / FERPLUS_SPLITS[split], f"FER+ {split} folder")
    present = set(os.listdir(folder)) if check_images else None
    out: list[Sample] = []
    for line, row in rows:
        usage = row["usage"]
        if usage not in USAGES:
            raise DatasetError(labels_csv, f"line {line}: unknown usage {usage!r}; expected {sorted(USAGES)}")
        if USAGES[usage] != split:
            continue
        name = FER2013_NAMES.get(row["fer2013_emotion"].lower())
        if name is None:
            raise DatasetError(labels_csv, f"line {line}: unknown emotion {row['fer2013_emotion']!r}; "
                                           f"expected one of {sorted(FER2013_NAMES)}")
        if present is not None and row["image"] not in present:
            raise DatasetError(folder / row["image"], f"image listed in {labels_csv} is missing")
        out.append(Sample(path=str(folder / row["image"]), labels={"expression": EXPRESSIONS.index(name)},
                          meta={"fer2013_emotion": row["fer2013_emotion"], "usage": usage}))
    return out


def read_fer2013_csv(csv_path: str | os.PathLike, usage: str | None = None) -> list[Sample]:
    """Read the challenge file ``fer2013.csv``; ``usage`` keeps one split (``"train"``/``"Training"``,
    ``"valid"``/``"PublicTest"``, ``"test"``/``"PrivateTest"``), ``None`` keeps all rows.

    Every row's pixels are checked (2304 integers in 0..255) so a malformed file fails here, not
    in the middle of training. ``meta`` holds ``usage``, ``row`` and ``fer2013_code``.
    """
    want = _split_name(usage)
    csv_path = Path(csv_path)
    _, rows = read_table(csv_path, required=("emotion", "pixels", "Usage"))
    out: list[Sample] = []
    for i, (line, row) in enumerate(rows):
        try:
            code = int(row["emotion"])
        except ValueError:
            code = -1
        if not 0 <= code < len(FER2013_CODES):
            raise DatasetError(csv_path, f"line {line}: emotion code {row['emotion']!r} is not 0..6")
        if row["Usage"] not in USAGES:
            raise DatasetError(csv_path, f"line {line}: unknown Usage {row['Usage']!r}; expected {sorted(USAGES)}")
        _decode_pixels(row["pixels"], csv_path, line)
        if want is not None and USAGES[row["Usage"]] != want:
            continue
        out.append(Sample(path=f"{csv_path}#row={i}",
                          labels={"expression": EXPRESSIONS.index(FER2013_CODES[code])},
                          meta={"usage": row["Usage"], "row": i, "fer2013_code": code}))
    return out


def _decode_pixels(text: str, path, line) -> np.ndarray:
    try:
        vals = np.array(text.split(), dtype=np.int64)
    except ValueError:
        raise DatasetError(path, f"line {line}: pixels are not space-separated integers") from None
    if vals.size != 48 * 48:
        raise DatasetError(path, f"line {line}: {vals.size} pixel values, expected 2304 (48×48)")
    if vals.min() < 0 or vals.max() > 255:
        raise DatasetError(path, f"line {line}: pixel values outside 0..255")
    return vals.astype(np.uint8).reshape(48, 48)


_CACHE: dict[tuple[str, float], np.ndarray] = {}
_CACHE_LOCK = threading.Lock()


def fer2013_csv_pixels(csv_path: str | os.PathLike, row: int) -> np.ndarray:
    """Row ``row`` (0-based, header excluded) of a ``fer2013.csv`` file as 48×48×3 uint8 RGB.

    The file's pixels are parsed once and kept in memory (about 83 MB for the full 35,887 rows)
    for as long as the file is unchanged.
    """
    p = require_file(csv_path, "fer2013.csv")
    key = (str(p.resolve()), p.stat().st_mtime)
    with _CACHE_LOCK:
        arr = _CACHE.get(key)
        if arr is None:
            _, rows = read_table(p, required=("pixels",))
            imgs = [_decode_pixels(r["pixels"], p, line) for line, r in rows]
            arr = np.stack(imgs) if imgs else np.zeros((0, 48, 48), np.uint8)
            for k in [k for k in _CACHE if k[0] == key[0]]:
                del _CACHE[k]
            _CACHE[key] = arr
    if not 0 <= row < len(arr):
        raise DatasetError(p, f"row {row} does not exist (the file has {len(arr)} rows)")
    g = arr[row]
    return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))
