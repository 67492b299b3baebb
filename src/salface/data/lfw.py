"""Labeled Faces in the Wild with gender labels from published name lists.

Layout, as published: ``<root>/<Person_Name>/<Person_Name>_0001.jpg`` (``root`` may also be the
folder holding ``lfw/``). LFW itself has no gender labels; they come from separate lists, one for
men and one for women (e.g. ``male_names.txt`` / ``female_names.txt`` of the widely used LFW gender
labelling). Two kinds of line occur in such lists and both are read:

* an **image** file name (``Aaron_Eckhart_0001.jpg``, possibly with a folder before it): labels
  that one image;
* a **person** name (``Aaron_Eckhart``, or ``Aaron Eckhart``): labels every image of that person.

An image label wins over a person label. An image (or person) named in both lists is dropped as
conflicting; images named in neither list are left out. Both are counted in the report.
``Sample.subject`` is the person name, so splits can keep a person's images together.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from salface.data.base import DatasetError, ReaderReport, Sample, require_dir, require_file

_IMG = re.compile(r"\.(jpe?g|png)$", re.IGNORECASE)
_LFW_NAME = re.compile(r"^(?P<person>.+)_(?P<num>\d{4})\.(jpe?g|png)$", re.IGNORECASE)


@dataclass
class LFWReport(ReaderReport):
    images: int = 0
    samples: int = 0
    unlabelled: int = 0
    conflicting: int = 0
    list_entries_not_found: list[str] = field(default_factory=list)


def read_name_list(path: str | os.PathLike) -> tuple[set[str], set[str]]:
    """``(image file names, person names)`` from one gender list. Blank lines and ``#`` comments are
    skipped; spaces in person names become underscores, as in LFW's folder names."""
    p = require_file(path, "LFW name list")
    images, people = set(), set()
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(p, f"not a UTF-8 text file ({exc.reason})") from exc
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        s = s.replace("\\", "/").rsplit("/", 1)[-1]
        if _IMG.search(s):
            images.add(s)
        else:
            people.add(re.sub(r"\s+", "_", s))
    if not images and not people:
        raise DatasetError(p, "the name list is empty")
    return images, people


def _lfw_folder(root: Path) -> Path:
    root = require_dir(root, "LFW folder")
    inner = root / "lfw"
    if inner.is_dir() and not any(_LFW_NAME.match(n) for n in _peek(root)):
        return inner
    return root


def _peek(root: Path, limit: int = 50) -> list[str]:
    out = []
    for d in sorted(os.listdir(root))[:limit]:
        if (root / d).is_dir():
            out.extend(os.listdir(root / d)[:2])
    return out


def read_lfw(root: str | os.PathLike, male_names: str | os.PathLike, female_names: str | os.PathLike,
             *, report: LFWReport | None = None) -> list[Sample]:
    """Read LFW images that the two lists label (``gender``: male 0, female 1)."""
    rep = report if report is not None else LFWReport()
    folder = _lfw_folder(Path(root))
    m_img, m_people = read_name_list(male_names)
    f_img, f_people = read_name_list(female_names)
    seen_imgs: set[str] = set()
    seen_people: set[str] = set()
    out: list[Sample] = []
    people = sorted(d for d in os.listdir(folder) if (folder / d).is_dir() and not d.startswith("."))
    if not people:
        raise DatasetError(folder, "no person folders (expected <root>/<Person_Name>/<Person_Name>_0001.jpg)")
    for person in people:
        for name in sorted(os.listdir(folder / person)):
            if not _IMG.search(name):
                continue
            rep.images += 1
            seen_people.add(person)
            seen_imgs.add(name)
            male = name in m_img or (name not in f_img and person in m_people)
            female = name in f_img or (name not in m_img and person in f_people)
            if male and female:
                rep.conflicting += 1
                continue
            if not (male or female):
                rep.unlabelled += 1
                continue
            m = _LFW_NAME.match(name)
            meta = {"image_number": int(m.group("num"))} if m else {}
            out.append(Sample(path=str(folder / person / name), labels={"gender": 0 if male else 1},
                              subject=person, meta=meta))
    if rep.images == 0:
        raise DatasetError(folder, "no images in the person folders")
    rep.list_entries_not_found = sorted((m_img | f_img) - seen_imgs) + sorted((m_people | f_people) - seen_people)
    rep.samples = len(out)
    return out
