"""FER+ (Barsoum et al. 2016): FER2013's 48×48 faces relabelled by 10 annotators each.

Layout, as the FER+ authors publish it (the images extracted from ``fer2013.csv`` with their tool)::

    <root>/FER2013Train/label.csv + fer0000000.png ...
    <root>/FER2013Valid/label.csv + ...     (= FER2013 PublicTest)
    <root>/FER2013Test/label.csv  + ...     (= FER2013 PrivateTest)

``label.csv`` has no header; each row is ``image name, "(x1, y1, x2, y2)" face box, then 10 vote
counts`` in the order neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
unknown, NF (not a face).

Label rule (FER+ leaves the choice to the user; we document ours): the label is the **single
highest vote count** (a plurality, not necessarily > 50 %). When that class is contempt, unknown
or NF the image is dropped (contempt is not one of our seven classes); when two or more classes
share the highest count the image is dropped as a tie, unless ``include_ties=True`` (then the tied
class that comes first in the vote order above is taken and ``meta["tie"]`` is set; ties that
involve only contempt/unknown/NF are still dropped).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from salface.data.base import DatasetError, Sample, parse_int, require_dir, require_file
from salface.labels import EXPRESSIONS
from salface.types import Box

FERPLUS_VOTE_ORDER: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
    "unknown", "NF")
"""The order of the 10 vote columns in FER+ ``label.csv`` / ``fer2013new.csv``."""

FERPLUS_TO_EXPRESSION: dict[str, str | None] = {
    "neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
    "anger": "anger", "disgust": "disgust", "fear": "fear",
    "contempt": None, "unknown": None, "NF": None,
}
"""FER+ vote column → our expression class (``None``: dropped)."""

FERPLUS_SPLITS: dict[str, str] = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}
"""Our split name → FER+ folder. ``valid`` is FER2013 PublicTest, ``test`` is PrivateTest."""

_VOTE_INDEX = tuple(None if FERPLUS_TO_EXPRESSION[v] is None else EXPRESSIONS.index(FERPLUS_TO_EXPRESSION[v])
                    for v in FERPLUS_VOTE_ORDER)


def ferplus_vote_distribution(votes: list[int] | tuple[int, ...]) -> list[float] | None:
    """The annotators' votes as a distribution over our 7 expression classes (in the order of
    :data:`salface.labels.EXPRESSIONS`): contempt, unknown and NF votes are dropped and the rest
    renormalised to sum to 1. ``None`` when no vote falls on the seven classes."""
    if len(votes) != len(FERPLUS_VOTE_ORDER):
        raise ValueError(f"expected {len(FERPLUS_VOTE_ORDER)} votes, got {len(votes)}")
    dist = [0.0] * len(EXPRESSIONS)
    for v, j in zip(votes, _VOTE_INDEX):
        if j is not None:
            dist[j] += float(v)
    total = sum(dist)
    if total <= 0:
        return None
    return [d / total for d in dist]


def ferplus_majority(votes: list[int] | tuple[int, ...], *, include_ties: bool = False
                     ) -> tuple[int | None, str]:
    """Apply the label rule to one row of 10 votes.

    Returns ``(expression index or None, reason)`` where reason is ``"ok"``, ``"tie"`` (kept with
    ``include_ties``), ``"tie"`` + None, ``"contempt"``, ``"unknown"``, ``"NF"`` or ``"no votes"``.
    """
    if len(votes) != len(FERPLUS_VOTE_ORDER):
        raise ValueError(f"expected {len(FERPLUS_VOTE_ORDER)} votes, got {len(votes)}")
    top = max(votes)
    if top <= 0:
        return None, "no votes"
    winners = [i for i, v in enumerate(votes) if v == top]
    if len(winners) == 1:
        idx = _VOTE_INDEX[winners[0]]
        return (idx, "ok") if idx is not None else (None, FERPLUS_VOTE_ORDER[winners[0]])
    if include_ties:
        mapped = [_VOTE_INDEX[i] for i in winners if _VOTE_INDEX[i] is not None]
        if mapped:
            return mapped[0], "tie"
    return None, "tie"


def _folder(root: str | os.PathLike, split: str) -> Path:
    if split not in FERPLUS_SPLITS:
        raise ValueError(f"unknown FER+ split {split!r}; expected one of {sorted(FERPLUS_SPLITS)}")
    return require_dir(Path(root) / FERPLUS_SPLITS[split], f"FER+ {split} folder")


def _parse_box(text: str, path: Path, line: int) -> Box:
    parts = text.strip().strip("()").split(",")
    try:
        x1, y1, x2, y2 = (float(p) for p in parts)
        return Box(x1, y1, x2, y2)
    except ValueError:
        raise DatasetError(path, f"line {line}: face box {text!r} is not '(x1, y1, x2, y2)'") from None


def read_ferplus_votes(root: str | os.PathLike, split: str) -> list[tuple[str, Box, list[int]]]:
    """The rows of ``<root>/<FER2013Split>/label.csv``: ``(image path, box, 10 votes)``."""
    folder = _folder(root, split)
    label_csv = require_file(folder / "label.csv", "FER+ label.csv")
    rows = []
    with open(label_csv, newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.reader(fh), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2 + len(FERPLUS_VOTE_ORDER):
                raise DatasetError(label_csv, f"line {line}: {len(row)} fields, expected 12 "
                                              "(image, box, 10 votes)")
            name = row[0].strip()
            if not name:
                raise DatasetError(label_csv, f"line {line}: empty image name")
            votes = [parse_int(v, label_csv, line, f"vote {FERPLUS_VOTE_ORDER[i]}")
                     for i, v in enumerate(row[2:])]
            if min(votes) < 0:
                raise DatasetError(label_csv, f"line {line}: negative vote count {votes}")
            rows.append((str(folder / name), _parse_box(row[1], label_csv, line), votes))
    return rows


def read_ferplus(root: str | os.PathLike, split: str = "train", *, include_ties: bool = False,
                 check_images: bool = True) -> list[Sample]:
    """Read one FER+ split (``"train"``, ``"valid"`` or ``"test"``) with the label rule above.

    ``meta`` holds ``votes`` (the 10 counts), ``ferplus_split`` and, for kept ties, ``tie``.
    With ``check_images`` a :class:`DatasetError` is raised when a listed PNG is missing.
    The number of rows dropped per reason is available from :func:`ferplus_drop_counts`.
    """
    samples, _ = _read(root, split, include_ties=include_ties, check_images=check_images)
    return samples


def ferplus_drop_counts(root: str | os.PathLike, split: str, *, include_ties: bool = False
                        ) -> dict[str, int]:
    """How many rows of a split were dropped, per reason (``tie``, ``contempt``, ``unknown``, ``NF``)."""
    _, dropped = _read(root, split, include_ties=include_ties, check_images=False)
    return dropped


def _read(root, split, *, include_ties: bool, check_images: bool):
    samples: list[Sample] = []
    dropped: dict[str, int] = {}
    folder = _folder(root, split)
    present = set(os.listdir(folder)) if check_images else None
    for path, box, votes in read_ferplus_votes(root, split):
        if present is not None and os.path.basename(path) not in present:
            raise DatasetError(path, f"image listed in {folder / 'label.csv'} is missing")
        idx, reason = ferplus_majority(votes, include_ties=include_ties)
        if idx is None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        meta = {"votes": votes, "ferplus_split": FERPLUS_SPLITS[split]}
        if reason == "tie":
            meta["tie"] = True
        samples.append(Sample(path=path, labels={"expression": idx}, box=box, meta=meta))
    return samples, dropped
