"""UTKFace ("aligned & cropped" faces): labels live in the file names.

Layout: one folder of 200×200 JPEGs named ``[age]_[gender]_[race]_[date&time].jpg.chip.jpg``
(gender 0 = male, 1 = female; race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others). The published
set has a few irregular names, all read: three lack the race field
(``39_1_20170116174525125.jpg.chip.jpg``: ``meta["race"]`` is then absent), one has a space before
``.jpg``, one lacks the dot before ``jpg``.

Labels: ``age`` = the Adience group of the age in years by :func:`utk_age_to_group` (ages between
groups go to the nearer group, ties to the older; see :func:`salface.data.base.age_to_group`, or
pass ``in_between="drop"`` to drop them), ``gender`` from the name. UTKFace has **no subject ids**.

Duplicates: byte-identical files (same SHA-1 of the file bytes) are collapsed into one sample, the
first file name in sorted order, with the others listed in ``meta["duplicates"]``. When the copies
disagree on the age *group* or on gender, nobody can say which label is right and the whole group
is dropped; copies whose ages differ but fall in the same group are kept as one sample with the
first file's age (all ages in ``meta["duplicate_ages"]``). :func:`utkface_report` gives the counts.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from salface.data.base import DatasetError, ReaderReport, Sample, age_in_group, age_to_group, require_dir

UTK_RACES: tuple[str, ...] = ("white", "black", "asian", "indian", "others")

_NAME = re.compile(r"^(?P<age>\d+)_(?P<gender>[01])_(?:(?P<race>[0-4])_)?(?P<stamp>\d{8,})")
_IMAGE_EXT = (".jpg", ".jpeg", ".png")


def utk_age_to_group(age: int) -> int:
    """UTKFace age in years → Adience age-group index (see :func:`salface.data.base.age_to_group`:
    in-between ages go to the nearer group, ties — 3, 7, 14, 35 — to the older one)."""
    return age_to_group(age)


def parse_utk_name(name: str) -> dict | None:
    """``{"age_years", "gender", "race" (or None), "stamp"}`` from a UTKFace file name, or None."""
    m = _NAME.match(name)
    if m is None:
        return None
    race = m.group("race")
    return {"age_years": int(m.group("age")), "gender": int(m.group("gender")),
            "race": None if race is None else int(race), "stamp": m.group("stamp")}


@dataclass
class UTKFaceReport(ReaderReport):
    """What :func:`read_utkface` did to the folder's files."""

    files: int = 0
    samples: int = 0
    no_race: list[str] = field(default_factory=list)
    duplicate_groups: int = 0
    duplicate_files_collapsed: int = 0
    conflicting_groups: int = 0
    conflicting_files_dropped: int = 0
    in_between_dropped: int = 0


def _image_folder(root: Path) -> Path:
    root = require_dir(root, "UTKFace folder")
    if not any(n.lower().endswith(_IMAGE_EXT) for n in os.listdir(root)) and (root / "UTKFace").is_dir():
        return root / "UTKFace"
    return root


def read_utkface(root: str | os.PathLike, *, in_between: str = "nearest", on_bad_name: str = "error",
                 report: UTKFaceReport | None = None) -> list[Sample]:
    """Read a UTKFace folder (or a folder holding ``UTKFace/``) into samples labelled ``age`` and
    ``gender``, duplicates handled as the module docstring says.

    ``meta``: ``age_years``, ``race`` (index into :data:`UTK_RACES`; absent for the 3 names
    without it), ``sha1`` (of the file bytes). ``in_between``: ``"nearest"`` or ``"drop"``.
    ``on_bad_name``: ``"error"`` (raise :class:`DatasetError` naming the file) or ``"skip"``.
    Pass a :class:`UTKFaceReport` to get the counts.
    """
    if in_between not in ("nearest", "drop"):
        raise ValueError(f"in_between must be 'nearest' or 'drop', got {in_between!r}")
    if on_bad_name not in ("error", "skip"):
        raise ValueError(f"on_bad_name must be 'error' or 'skip', got {on_bad_name!r}")
    rep = report if report is not None else UTKFaceReport()
    folder = _image_folder(Path(root))
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(_IMAGE_EXT) and not n.startswith("."))
    if not names:
        raise DatasetError(folder, "no UTKFace images (*.jpg) in this folder")
    groups: dict[str, list[tuple[str, dict]]] = {}
    for name in names:
        info = parse_utk_name(name)
        if info is None:
            if on_bad_name == "skip":
                continue
            raise DatasetError(folder / name, "file name is not '[age]_[gender]_[race]_[date&time].jpg' "
                                              "(gender must be 0 or 1, race 0..4)")
        rep.files += 1
        if info["race"] is None:
            rep.no_race.append(name)
        with open(folder / name, "rb") as fh:
            digest = hashlib.sha1(fh.read()).hexdigest()
        groups.setdefault(digest, []).append((name, info))

    out: list[Sample] = []
    for digest, members in groups.items():
        if len(members) > 1:
            rep.duplicate_groups += 1
            keys = {(age_to_group(i["age_years"]), i["gender"]) for _, i in members}
            if len(keys) > 1:
                rep.conflicting_groups += 1
                rep.conflicting_files_dropped += len(members)
                continue
            rep.duplicate_files_collapsed += len(members) - 1
        name, info = members[0]
        age = info["age_years"]
        if in_between == "drop" and age_in_group(age) is None:
            rep.in_between_dropped += 1
            continue
        meta: dict = {"age_years": age, "sha1": digest}
        if info["race"] is not None:
            meta["race"] = info["race"]
        if len(members) > 1:
            meta["duplicates"] = [n for n, _ in members[1:]]
            ages = sorted({i["age_years"] for _, i in members})
            if len(ages) > 1:
                meta["duplicate_ages"] = ages
        out.append(Sample(path=str(folder / name),
                          labels={"age": utk_age_to_group(age), "gender": info["gender"]}, meta=meta))
    out.sort(key=lambda s: s.path)
    rep.samples = len(out)
    return out


def utkface_report(root: str | os.PathLike, **kwargs) -> UTKFaceReport:
    """Read the folder and return only the counts (files, duplicates, conflicts, names without race)."""
    rep = UTKFaceReport()
    read_utkface(root, report=rep, **kwargs)
    return rep
