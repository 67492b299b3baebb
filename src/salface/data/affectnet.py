"""AffectNet (Mollahosseini et al. 2017), manually annotated part.

Layout, as published: ``training.csv`` and ``validation.csv`` with the columns
``subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks, expression,
valence, arousal`` and the images under ``Manually_Annotated_Images/<subDirectory_filePath>``
(pass that folder as ``images_root``). Some copies of ``validation.csv`` have no header row; a
first row that is data is read with the standard column order.

Expression codes: 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt,
8 None, 9 Uncertain, 10 No-Face. Codes 0-6 are exactly our :data:`~salface.labels.EXPRESSIONS`
order; the 7-class subset used by VEGAC / SAF-BAGE drops codes 7-10.

The face box (``face_x, face_y, face_width, face_height``, original image pixels) becomes
``Sample.box``; valence and arousal go to ``meta``; the 68 landmarks only with ``keep_landmarks``.

SAF-BAGE's protocol (its Table 1: 227,121 / 56,779 / 3,500): the test set is 500 images per class
(AffectNet's official validation set has exactly 500 per class), and the 7-class training set is
split 80/20 into train and val per class. :func:`affectnet_saf_bage_splits` builds that.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from salface.data.base import DatasetError, ReaderReport, Sample, parse_float, require_dir, require_file
from salface.types import Box

AFFECTNET_CODES: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger",
                                    "contempt", "none", "uncertain", "no-face")
AFFECTNET_COLUMNS: tuple[str, ...] = ("subDirectory_filePath", "face_x", "face_y", "face_width",
                                      "face_height", "facial_landmarks", "expression", "valence", "arousal")


@dataclass
class AffectNetReport(ReaderReport):
    rows: int = 0
    samples: int = 0
    dropped_codes: dict[str, int] = field(default_factory=dict)
    missing_images: int = 0


def read_affectnet(csv_path: str | os.PathLike, images_root: str | os.PathLike, *, classes: int = 7,
                   require_images: bool = False, keep_landmarks: bool = False,
                   report: AffectNetReport | None = None) -> list[Sample]:
    """Read ``training.csv`` / ``validation.csv`` into samples of the 7-class subset.

    ``require_images=True`` drops rows whose image file is missing (counted). Raises
    :class:`DatasetError` naming the file for a missing column, a bad expression code or number,
    or a missing ``images_root``.
    """
    if classes != 7:
        raise ValueError("only the 7-class subset (codes 0-6) is supported: our label set has no "
                         f"contempt class; got classes={classes}")
    csv_path = require_file(csv_path, "AffectNet csv")
    images_root = require_dir(images_root, "AffectNet image folder")
    rep = report if report is not None else AffectNetReport()
    out: list[Sample] = []
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            first = next(reader)
        except StopIteration:
            raise DatasetError(csv_path, "file is empty") from None
        if "subDirectory_filePath" in [c.strip() for c in first]:
            header = [c.strip() for c in first]
            missing = [c for c in AFFECTNET_COLUMNS if c not in header and c != "facial_landmarks"]
            if missing:
                raise DatasetError(csv_path, f"missing column(s) {missing}; found {header}")
            pending: list[list[str]] = []
        elif len(first) == len(AFFECTNET_COLUMNS):
            header, pending = list(AFFECTNET_COLUMNS), [first]
        else:
            raise DatasetError(csv_path, f"no header with 'subDirectory_filePath' and the first row has "
                                         f"{len(first)} fields, not the {len(AFFECTNET_COLUMNS)} of AffectNet")
        col = {c: i for i, c in enumerate(header)}

        def rows():
            yield from ((1, r) for r in pending)
            for r in reader:
                yield reader.line_num, r

        for line, r in rows():
            if not r or not "".join(r).strip():
                continue
            if len(r) < len(header):
                raise DatasetError(csv_path, f"line {line}: {len(r)} fields, expected {len(header)}")
            rep.rows += 1
            code_s = r[col["expression"]].strip()
            try:
                code = int(code_s)
            except ValueError:
                code = -1
            if not 0 <= code < len(AFFECTNET_CODES):
                raise DatasetError(csv_path, f"line {line}: expression code {code_s!r} is not 0..10")
            if code >= classes:
                name = AFFECTNET_CODES[code]
                rep.dropped_codes[name] = rep.dropped_codes.get(name, 0) + 1
                continue
            rel = r[col["subDirectory_filePath"]].strip()
            if not rel:
                raise DatasetError(csv_path, f"line {line}: empty subDirectory_filePath")
            img = images_root / rel
            if require_images and not img.is_file():
                rep.missing_images += 1
                continue
            x, y, w, h = (parse_float(r[col[c]], csv_path, line, c)
                          for c in ("face_x", "face_y", "face_width", "face_height"))
            if w <= 0 or h <= 0 or x < 0 or y < 0:
                raise DatasetError(csv_path, f"line {line}: invalid face box x={x} y={y} w={w} h={h}")
            meta = {"affectnet_code": code,
                    "valence": parse_float(r[col["valence"]], csv_path, line, "valence"),
                    "arousal": parse_float(r[col["arousal"]], csv_path, line, "arousal")}
            if keep_landmarks and "facial_landmarks" in col:
                vals = [v for v in r[col["facial_landmarks"]].split(";") if v.strip()]
                try:
                    meta["landmarks"] = [float(v) for v in vals]
                except ValueError:
                    raise DatasetError(csv_path, f"line {line}: facial_landmarks are not numbers") from None
            out.append(Sample(path=str(img), labels={"expression": code}, box=Box.from_xywh(x, y, w, h),
                              meta=meta))
    rep.samples = len(out)
    return out


def affectnet_balanced_test(samples: Sequence[Sample], per_class: int = 500, seed: int = 0
                            ) -> tuple[list[Sample], list[Sample]]:
    """Draw ``per_class`` samples of each of the 7 expressions (seeded) as a balanced test set.

    Returns ``(test, rest)``, each in the input order. Raises ValueError when a class has fewer
    than ``per_class`` samples. On AffectNet's official ``validation.csv`` (500 per class) with
    the default ``per_class`` this is the whole 7-class validation set: SAF-BAGE's 3,500-image test.
    """
    by_class: dict[int, list[int]] = {}
    for i, s in enumerate(samples):
        if "expression" in s.labels:
            by_class.setdefault(s.labels["expression"], []).append(i)
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    for c in range(7):
        idx = by_class.get(c, [])
        if len(idx) < per_class:
            raise ValueError(f"class {AFFECTNET_CODES[c]!r} has {len(idx)} samples, fewer than {per_class}")
        chosen.update(idx[j] for j in rng.choice(len(idx), size=per_class, replace=False))
    test = [s for i, s in enumerate(samples) if i in chosen]
    rest = [s for i, s in enumerate(samples) if i not in chosen]
    return test, rest


def affectnet_saf_bage_splits(training: Sequence[Sample], validation: Sequence[Sample], *, seed: int = 0,
                              per_class: int = 500) -> dict[str, list[Sample]]:
    """SAF-BAGE's AffectNet protocol: ``test`` = ``per_class`` images per class from the official
    validation set; ``train``/``val`` = the official training set split 80/20, stratified by
    expression, with ``seed``. Images are not hashed (AffectNet has ~284k of them); see
    :func:`salface.data.splits.deduplicate_against` to remove exact duplicates of test images."""
    from salface.data.splits import make_splits

    test, _ = affectnet_balanced_test(validation, per_class=per_class, seed=seed)
    tv = make_splits(training, val=0.2, test=0.0, seed=seed, group_by="subject", stratify="expression",
                     by_content=False)
    return {"train": tv["train"], "val": tv["val"], "test": test}
