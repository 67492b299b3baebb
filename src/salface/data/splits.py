"""Leakage-safe train/val/test splits, written to disk.

Two kinds of leakage are prevented:

* **the same image in two splits** — images are compared by a hash of their *decoded pixels*
  (:func:`content_hash`), so a re-encoded copy (FER2013's PNGs, UTKFace's renamed JPEGs) is caught
  as well as a byte-identical one. Exact duplicates only: near-duplicates (resized, recompressed
  differently) are not detected;
* **the same person in two splits** — with ``group_by="subject"`` all samples of a subject go to
  one split. Datasets without subject ids (UTKFace, FER) can only be grouped by content.

A split file is JSON Lines, one sample per line with its ``split`` (``train``, ``val``, ``test``),
in a stable order (split, then path), so regenerating it gives byte-identical output; a ``.csv``
name writes the same data as CSV. ``salface splits NAME`` writes the project's standard splits.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from salface.data.base import DatasetError, Sample
from salface.labels import TASKS
from salface.types import Box
from salface.utils import atomic_path

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


# ---------------------------------------------------------------------------------------------
# hashing


def content_hash(sample: Sample) -> str:
    """SHA-1 of the decoded RGB pixels (and their shape) of ``sample``.

    ``meta["content_hash"]`` is returned as is when present (split files store it), so a sample
    read back from disk is not decoded again.
    """
    cached = sample.meta.get("content_hash")
    if cached:
        return str(cached)
    return pixels_hash(sample.load())


def pixels_hash(pixels: np.ndarray) -> str:
    a = np.ascontiguousarray(pixels)
    h = hashlib.sha1(f"{a.shape}|{a.dtype}|".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def hash_samples(samples: Sequence[Sample], *, progress: Callable[[int, int], None] | None = None
                 ) -> list[Sample]:
    """Return the samples with ``meta["content_hash"]`` filled in (decoding each image once)."""
    out = []
    for i, s in enumerate(samples):
        if not s.meta.get("content_hash"):
            s = Sample(s.path, s.labels, s.subject, s.box, {**s.meta, "content_hash": content_hash(s)})
        out.append(s)
        if progress is not None and (i + 1) % 2000 == 0:
            progress(i + 1, len(samples))
    return out


# ---------------------------------------------------------------------------------------------
# grouping and splitting


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_samples(samples: Sequence[Sample], *, group_by: str = "subject",
                  by_content: bool = True) -> list[list[int]]:
    """Indices of ``samples`` grouped so that a group must not be split: same subject (when
    ``group_by="subject"`` and the subject is known) or same content hash (when ``by_content``).
    Groups are the connected components of both relations, ordered by their first index."""
    if group_by not in ("subject", "content"):
        raise ValueError(f"group_by must be 'subject' or 'content', got {group_by!r}")
    uf = _UnionFind(len(samples))
    first: dict[tuple[str, str], int] = {}
    for i, s in enumerate(samples):
        keys = []
        if group_by == "subject" and s.subject is not None:
            keys.append(("subject", str(s.subject)))
        if by_content or group_by == "content":
            keys.append(("content", content_hash(s)))
        for k in keys:
            j = first.setdefault(k, i)
            if j != i:
                uf.union(i, j)
    groups: dict[int, list[int]] = {}
    for i in range(len(samples)):
        groups.setdefault(uf.find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def _stratum(s: Sample, tasks: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(int(s.labels.get(t, -1)) for t in tasks)


def make_splits(samples: Sequence[Sample], *, val: float = 0.1, test: float = 0.1, seed: int = 0,
                group_by: str = "subject", stratify: str | Sequence[str] | None = None,
                by_content: bool = True) -> dict[str, list[Sample]]:
    """Split ``samples`` into ``train``/``val``/``test`` without any group straddling two splits.

    Groups are formed by :func:`group_samples` (subject and/or identical pixels; with
    ``by_content`` every image is decoded once unless ``meta["content_hash"]`` is set). With
    ``stratify`` (a task or tuple of tasks), groups are bucketed by the labels of their first
    sample and each bucket is split on its own, so class proportions match across splits.
    Within a bucket the groups are shuffled with ``numpy.random.default_rng(seed)`` and dealt to
    test until it holds ``test`` × the bucket's samples, then to val, the rest to train. The result
    depends only on the samples, their order and the arguments.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val and test must be fractions with val + test < 1, got {val}, {test}")
    tasks: tuple[str, ...] = () if stratify is None else (
        (stratify,) if isinstance(stratify, str) else tuple(stratify))
    for t in tasks:
        if t not in TASKS:
            raise ValueError(f"unknown task {t!r} to stratify on; expected one of {sorted(TASKS)}")
    samples = list(samples)
    groups = group_samples(samples, group_by=group_by, by_content=by_content)
    buckets: dict[tuple[int, ...], list[list[int]]] = {}
    for g in groups:
        buckets.setdefault(_stratum(samples[g[0]], tasks), []).append(g)
    rng = np.random.default_rng(seed)
    assign: dict[int, str] = {}
    for key in sorted(buckets):
        bucket = buckets[key]
        order = rng.permutation(len(bucket))
        total = sum(len(g) for g in bucket)
        want_test, want_val = test * total, val * total
        n_test = n_val = 0
        for gi in order:
            g = bucket[gi]
            # put the group where the running count is furthest below its target
            if n_test + len(g) / 2 <= want_test:
                split, n_test = "test", n_test + len(g)
            elif n_val + len(g) / 2 <= want_val:
                split, n_val = "val", n_val + len(g)
            else:
                split = "train"
            for i in g:
                assign[i] = split
    out: dict[str, list[Sample]] = {k: [] for k in SPLIT_NAMES}
    for i, s in enumerate(samples):
        out[assign[i]].append(s)
    for k in out:
        out[k].sort(key=lambda s: s.path)
    return out


def deduplicate_against(train: Sequence[Sample], *others: Sequence[Sample]
                        ) -> tuple[list[Sample], list[Sample]]:
    """Remove from ``train`` every sample whose pixels also occur in any of ``others``.

    Returns ``(kept, removed)``, both in ``train``'s order."""
    seen = {content_hash(s) for other in others for s in other}
    kept, removed = [], []
    for s in train:
        (removed if content_hash(s) in seen else kept).append(s)
    return kept, removed


def collapse_duplicates(samples: Sequence[Sample], *, conflicts: str = "drop"
                        ) -> tuple[list[Sample], dict[str, int]]:
    """Keep one sample per content hash (the first by path). Copies whose labels disagree are all
    dropped (``conflicts="drop"``) or the first is kept (``"first"``). The kept sample lists the
    other copies' paths in ``meta["duplicates"]``. Returns the samples (sorted by path) and counts
    ``{"groups", "collapsed", "conflict_groups", "conflict_dropped"}``."""
    if conflicts not in ("drop", "first"):
        raise ValueError(f"conflicts must be 'drop' or 'first', got {conflicts!r}")
    by_hash: dict[str, list[Sample]] = {}
    for s in sorted(samples, key=lambda s: s.path):
        by_hash.setdefault(content_hash(s), []).append(s)
    counts = {"groups": 0, "collapsed": 0, "conflict_groups": 0, "conflict_dropped": 0}
    out = []
    for members in by_hash.values():
        if len(members) == 1:
            out.append(members[0])
            continue
        counts["groups"] += 1
        if len({tuple(sorted(m.labels.items())) for m in members}) > 1 and conflicts == "drop":
            counts["conflict_groups"] += 1
            counts["conflict_dropped"] += len(members)
            continue
        counts["collapsed"] += len(members) - 1
        first = members[0]
        meta = {**first.meta, "duplicates": [m.path for m in members[1:]]}
        out.append(Sample(first.path, first.labels, first.subject, first.box, meta))
    out.sort(key=lambda s: s.path)
    return out, counts


# ---------------------------------------------------------------------------------------------
# files


def _ordered(splits: dict[str, list[Sample]]) -> list[tuple[str, Sample]]:
    names = [n for n in SPLIT_NAMES if n in splits] + sorted(n for n in splits if n not in SPLIT_NAMES)
    return [(n, s) for n in names for s in sorted(splits[n], key=lambda s: s.path)]


_CSV_COLUMNS = ("path", "split", *TASKS, "subject", "x1", "y1", "x2", "y2", "meta")


def write_split(splits: dict[str, list[Sample]], path: str | os.PathLike) -> Path:
    """Write ``splits`` to ``path`` (``.jsonl`` or ``.csv``), atomically, in a stable order.

    JSON Lines: ``{"path", "split", "labels": {task: index}, "subject", "box": [x1, y1, x2, y2] | null,
    "meta"}`` per line. CSV: one column per task (index, empty when unknown), the box as
    ``x1..y2`` and ``meta`` as JSON."""
    p = Path(path)
    csv_mode = p.suffix.lower() == ".csv"
    with atomic_path(p) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        if csv_mode:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(_CSV_COLUMNS)
            for name, s in _ordered(splits):
                box = ["", "", "", ""] if s.box is None else [f"{v:g}" for v in s.box.as_tuple()]
                w.writerow([s.path, name, *("" if s.labels.get(t) is None else s.labels[t] for t in TASKS),
                            "" if s.subject is None else s.subject, *box,
                            json.dumps(s.meta, sort_keys=True, separators=(",", ":"))])
        else:
            for name, s in _ordered(splits):
                d = s.to_dict()
                d = {"path": d["path"], "split": name, "labels": d["labels"], "subject": d["subject"],
                     "box": d["box"], "meta": d["meta"]}
                fh.write(json.dumps(d, sort_keys=False, separators=(",", ":"), ensure_ascii=False) + "\n")
    return p


def read_split(path: str | os.PathLike) -> dict[str, list[Sample]]:
    """Read a file written by :func:`write_split` back into ``{split: [Sample, ...]}``."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(p, "split file not found")
    out: dict[str, list[Sample]] = {}
    if p.suffix.lower() == ".csv":
        from salface.data.base import read_table

        _, rows = read_table(p, required=("path", "split"))
        for line, r in rows:
            try:
                labels = {t: int(r[t]) for t in TASKS if r.get(t, "") != ""}
                box = None if not r.get("x1") else Box(float(r["x1"]), float(r["y1"]), float(r["x2"]), float(r["y2"]))
                s = Sample(r["path"], labels, r.get("subject") or None, box, json.loads(r.get("meta") or "{}"))
            except (ValueError, KeyError) as exc:
                raise DatasetError(p, f"line {line}: {exc}") from exc
            out.setdefault(r["split"], []).append(s)
        return out
    with open(p, encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                d = json.loads(text)
                out.setdefault(str(d["split"]), []).append(Sample.from_dict(d))
            except (ValueError, KeyError, TypeError) as exc:
                raise DatasetError(p, f"line {line}: not a split record ({exc})") from exc
    return out


def split_counts(splits: dict[str, list[Sample]]) -> dict[str, dict]:
    """``{split: {"n": count, task: {class name: count}}}`` for reports."""
    out: dict[str, dict] = {}
    for name in [n for n in SPLIT_NAMES if n in splits] + sorted(n for n in splits if n not in SPLIT_NAMES):
        d: dict = {"n": len(splits[name])}
        for task, classes in TASKS.items():
            c = [0] * len(classes)
            for s in splits[name]:
                if task in s.labels:
                    c[s.labels[task]] += 1
            if any(c):
                d[task] = dict(zip(classes, c))
        out[name] = d
    return out


# ---------------------------------------------------------------------------------------------
# the project's standard splits


@dataclass
class SplitReport:
    name: str
    path: str
    counts: dict[str, dict] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "counts": self.counts, "notes": self.notes}


STANDARD_SPLITS: tuple[str, ...] = ("ferplus", "utkface")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def standard_split(name: str, shared_root: str | os.PathLike, out_dir: str | os.PathLike, *,
                   verbose: bool = False) -> SplitReport:
    """Build, write (``<out_dir>/<name>.jsonl`` and ``<name>.report.json``) and return one of the
    project's standard splits.

    * ``"ferplus"``: FER+'s official Train / Valid / Test (our ``train`` / ``val`` / ``test``), labels by
      :func:`~salface.data.ferplus.read_ferplus`. Within each split, pixel-identical images are
      collapsed to one (all copies dropped when their labels disagree); then images of ``val`` that
      also occur in ``test`` are removed from ``val``, and images of ``train`` that occur in ``val`` or
      ``test`` are removed from ``train``. Test is never shrunk by the cross-split step.
    * ``"utkface"``: :func:`~salface.data.utkface.read_utkface` (byte-identical files already
      collapsed), grouped by pixel content, stratified on age group × gender, 80/10/10, seed 0.
      UTKFace has **no identity labels**, so the same person can still appear in two splits; only
      identical images are kept apart.
    """
    say = _log if verbose else (lambda m: None)
    shared_root = Path(shared_root).resolve()
    out = Path(out_dir) / f"{name}.jsonl"
    progress = (lambda i, n: say(f"  hashed {i}/{n}")) if verbose else None
    if name == "ferplus":
        from salface.data.ferplus import ferplus_drop_counts, read_ferplus

        root = shared_root / "data" / "ferplus"
        notes: dict = {"label_rule": "plurality of the 10 votes; ties, contempt, unknown and NF dropped"}
        raw: dict[str, list[Sample]] = {}
        for ours, theirs in (("train", "train"), ("val", "valid"), ("test", "test")):
            say(f"reading FER+ {theirs}")
            raw[ours] = hash_samples(read_ferplus(root, theirs), progress=progress)
            notes[f"{ours}_read"] = len(raw[ours])
            notes[f"{ours}_label_dropped"] = ferplus_drop_counts(root, theirs)
        final: dict[str, list[Sample]] = {}
        for k in SPLIT_NAMES:
            final[k], c = collapse_duplicates(raw[k])
            notes[f"{k}_within_duplicates"] = c
        final["val"], rem_v = deduplicate_against(final["val"], raw["test"])
        final["train"], rem_t = deduplicate_against(final["train"], raw["val"], raw["test"])
        notes["val_removed_also_in_test"] = len(rem_v)
        notes["train_removed_also_in_val_or_test"] = len(rem_t)
        splits = final
    elif name == "utkface":
        from salface.data.utkface import UTKFaceReport, read_utkface

        rep = UTKFaceReport()
        say("reading UTKFace")
        samples = hash_samples(read_utkface(shared_root / "data" / "utkface", report=rep), progress=progress)
        splits = make_splits(samples, val=0.1, test=0.1, seed=0, group_by="content",
                             stratify=("age", "gender"))
        notes = {"reader": rep.to_dict(), "group_by": "content", "stratify": ["age", "gender"],
                 "fractions": {"train": 0.8, "val": 0.1, "test": 0.1}, "seed": 0,
                 "pixel_duplicate_groups_beyond_bytes": sum(
                     1 for g in group_samples(samples, group_by="content") if len(g) > 1),
                 "warning": "UTKFace has no identity labels: the same person can appear in two splits"}
    else:
        raise ValueError(f"unknown standard split {name!r}; expected one of {STANDARD_SPLITS}")
    write_split(splits, out)
    report = SplitReport(name=name, path=str(out), counts=split_counts(splits), notes=notes)
    with open(out.with_name(f"{name}.report.json"), "w", encoding="utf-8") as fh:
        json.dump(report.to_dict(), fh, indent=2)
        fh.write("\n")
    return report


def check_no_leakage(splits: dict[str, list[Sample]]) -> list[tuple[str, str, str]]:
    """Every ``(content hash, split a, split b)`` where one image occurs in two splits (should be
    empty), and the same for known subjects (hash replaced by ``"subject:<id>"``)."""
    where: dict[str, set[str]] = {}
    for name, ss in splits.items():
        for s in ss:
            where.setdefault(content_hash(s), set()).add(name)
            if s.subject is not None:
                where.setdefault(f"subject:{s.subject}", set()).add(name)
    bad = []
    for key, names in where.items():
        names_l = sorted(names)
        for i in range(len(names_l)):
            for j in range(i + 1, len(names_l)):
                bad.append((key, names_l[i], names_l[j]))
    return bad


def iter_all(splits: dict[str, list[Sample]]) -> Iterable[Sample]:
    for ss in splits.values():
        yield from ss
