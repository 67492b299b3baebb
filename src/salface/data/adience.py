"""Adience (Eidinger, Enbar & Hassner 2014): unfiltered Flickr faces, age group and gender.

Layout, as published::

    <root>/fold_{0..4}_data.txt        (or <root>/folds/fold_k_data.txt)
    <root>/aligned/<user_id>/landmark_aligned_face.<face_id>.<original_image>
    <root>/faces/<user_id>/coarse_tilt_aligned_face.<face_id>.<original_image>   (optional)
    <root>/train_val_txt_files_per_fold/test_fold_is_<k>/{age,gender}_{train,val,test}.txt

``fold_k_data.txt`` is tab-separated: user_id, original_image, face_id, age, gender, x, y, dx, dy,
tilt_ang, fiducial_yaw_angle, fiducial_score. The five folds are **subject-exclusive** (no
``user_id`` in two folds; ``Sample.subject`` is the user_id). The box ``x, y, dx, dy`` refers to
the original Flickr photo, not to the aligned crop, so ``Sample.box`` is ``None`` and the numbers
are kept in ``meta["original_box"]``.

Age labels. The protocol's eight groups are written ``(0, 2)``, ``(4, 6)``, ``(8, 12)``, ``(15, 20)``,
``(25, 32)``, ``(38, 43)``, ``(48, 53)``, ``(60, 100)``. About 1,000 rows carry something else: a
single age (``35``), an off-protocol range (``(38, 42)``, ``(27, 32)``, ``(25, 23)``, ``(38, 48)``,
``(8, 23)``) or ``None``. Two modes, both explicit:

* ``age_labels="standard"`` (default; what Levi & Hassner's published fold lists do): only the
  eight protocol strings give an ``age`` label; the other rows keep their gender label but no age.
* ``age_labels="mapped"``: :data:`ADIENCE_AGE_TABLE` maps every label seen in the published files —
  single ages and ranges lying inside one group (or in a gap next to only one group) go to that
  group with the same rule as UTKFace (:func:`salface.data.base.age_to_group`); ranges spanning two
  or more groups (``(38, 48)``, ``(8, 23)``) and ``None`` get no age label.

Any age string not in the table raises :class:`DatasetError` naming the file and line.
Gender: ``m`` → male, ``f`` → female, ``u`` or empty → no gender label.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from salface.data.base import DatasetError, ReaderReport, Sample, parse_int, read_table

ADIENCE_STANDARD_AGES: dict[str, int] = {
    "(0, 2)": 0, "(4, 6)": 1, "(8, 12)": 2, "(15, 20)": 3, "(25, 32)": 4, "(38, 43)": 5,
    "(48, 53)": 6, "(60, 100)": 7,
}
"""The eight protocol age strings → index into :data:`salface.labels.AGE_GROUPS`."""

ADIENCE_AGE_TABLE: dict[str, int | None] = {
    **ADIENCE_STANDARD_AGES,
    # off-protocol ranges
    "(27, 32)": 4,    # inside 25-32
    "(25, 23)": 4,    # 23..25: 23 is in the 21-24 gap on the 25-32 side, 25 in 25-32
    "(38, 42)": 5,    # inside 38-43
    "(38, 48)": None,  # spans 38-43 and 48-53
    "(8, 23)": None,   # spans 8-13, 15-20 and 25-32
    # single ages (groups by age_to_group: gaps cut at the midpoint, the midpoint goes up)
    "2": 0, "3": 1, "13": 2, "22": 3, "23": 4, "29": 4, "32": 4, "34": 4, "35": 5, "36": 5,
    "42": 5, "45": 5, "46": 6, "55": 6, "56": 6, "57": 7, "58": 7,
    "None": None, "": None,
}
"""Every age string found in the published ``fold_k_data.txt`` files → age group (``None``: no
age label). Used with ``age_labels="mapped"``."""

ADIENCE_GENDERS: dict[str, int | None] = {"m": 0, "f": 1, "u": None, "": None, "None": None}

FOLD_COLUMNS: tuple[str, ...] = ("user_id", "original_image", "face_id", "age", "gender", "x", "y", "dx", "dy")

_IMAGE_PREFIX = {"aligned": "landmark_aligned_face", "faces": "coarse_tilt_aligned_face"}


@dataclass
class AdienceReport(ReaderReport):
    rows: int = 0
    samples: int = 0
    missing_images: int = 0
    no_age: int = 0
    no_gender: int = 0
    off_protocol_age: dict[str, int] = field(default_factory=dict)


def _fold_file(root: Path, k: int) -> Path:
    for cand in (root / "folds" / f"fold_{k}_data.txt", root / f"fold_{k}_data.txt"):
        if cand.is_file():
            return cand
    raise DatasetError(root / "folds" / f"fold_{k}_data.txt", "Adience fold file not found "
                       "(looked in <root>/folds/ and <root>/)")


def adience_image_path(root: str | os.PathLike, user_id: str, face_id: str, original_image: str,
                       images: str = "aligned") -> Path:
    """``<root>/aligned/<user_id>/landmark_aligned_face.<face_id>.<original_image>`` (or the
    ``faces/`` variant)."""
    return Path(root) / images / user_id / f"{_IMAGE_PREFIX[images]}.{face_id}.{original_image}"


def read_adience(root: str | os.PathLike, fold: int | None = None, *, age_labels: str = "standard",
                 require_images: bool = True, images: str = "aligned",
                 report: AdienceReport | None = None) -> list[Sample]:
    """Read one fold (``0..4``) or all five (``fold=None``) of Adience's ``fold_k_data.txt``.

    ``require_images=True`` drops rows whose image file is missing (counted in the report;
    :class:`DatasetError` when the whole image folder is missing); ``False`` keeps every row.
    ``meta``: ``fold``, ``age_string``, ``gender_string``, ``face_id``, ``original_image``,
    ``original_box`` ``[x, y, dx, dy]``, ``tilt_ang``, ``fiducial_yaw_angle``, ``fiducial_score``.
    """
    if age_labels not in ("standard", "mapped"):
        raise ValueError(f"age_labels must be 'standard' or 'mapped', got {age_labels!r}")
    if images not in _IMAGE_PREFIX:
        raise ValueError(f"images must be one of {sorted(_IMAGE_PREFIX)}, got {images!r}")
    root = Path(root)
    rep = report if report is not None else AdienceReport()
    folds = range(5) if fold is None else [int(fold)]
    if any(not 0 <= k < 5 for k in folds):
        raise ValueError(f"Adience folds are 0..4, got {fold!r}")
    img_dir = root / images
    if require_images and not img_dir.is_dir():
        raise DatasetError(img_dir, f"Adience image folder '{images}/' not found "
                                    "(pass require_images=False to read the labels only)")
    table = ADIENCE_STANDARD_AGES if age_labels == "standard" else ADIENCE_AGE_TABLE
    out: list[Sample] = []
    for k in folds:
        path = _fold_file(root, k)
        _, rows = read_table(path, required=FOLD_COLUMNS, delimiter="\t")
        for line, r in rows:
            rep.rows += 1
            age_s, gender_s = r["age"], r["gender"]
            if age_s not in ADIENCE_AGE_TABLE:
                raise DatasetError(path, f"line {line}: unknown age label {age_s!r} "
                                         "(add it to ADIENCE_AGE_TABLE with an explicit group)")
            if gender_s not in ADIENCE_GENDERS:
                raise DatasetError(path, f"line {line}: unknown gender {gender_s!r}; expected m, f, u or empty")
            if age_s not in ADIENCE_STANDARD_AGES:
                rep.off_protocol_age[age_s] = rep.off_protocol_age.get(age_s, 0) + 1
            if not r["user_id"] or not r["original_image"] or not r["face_id"]:
                raise DatasetError(path, f"line {line}: empty user_id, original_image or face_id")
            img = adience_image_path(root, r["user_id"], r["face_id"], r["original_image"], images)
            if require_images and not img.is_file():
                rep.missing_images += 1
                continue
            labels: dict[str, int] = {}
            age = table.get(age_s)
            if age is not None:
                labels["age"] = age
            else:
                rep.no_age += 1
            g = ADIENCE_GENDERS[gender_s]
            if g is not None:
                labels["gender"] = g
            else:
                rep.no_gender += 1
            meta = {"fold": k, "age_string": age_s, "gender_string": gender_s, "face_id": r["face_id"],
                    "original_image": r["original_image"],
                    "original_box": [parse_int(r[c], path, line, c) for c in ("x", "y", "dx", "dy")]}
            for c in ("tilt_ang", "fiducial_yaw_angle", "fiducial_score"):
                if r.get(c, "") != "":
                    meta[c] = parse_int(r[c], path, line, c)
            out.append(Sample(path=str(img), labels=labels, subject=r["user_id"], meta=meta))
    rep.samples = len(out)
    return out


def adience_folds(root: str | os.PathLike, **kwargs) -> list[list[Sample]]:
    """The five subject-exclusive folds, ``[fold_0_samples, ..., fold_4_samples]``
    (keyword arguments as :func:`read_adience`)."""
    return [read_adience(root, k, **kwargs) for k in range(5)]


def adience_cross_validation(folds: list[list[Sample]], test_fold: int) -> dict[str, list[Sample]]:
    """The protocol's split for one round: ``test`` = fold ``test_fold``, ``train`` = the other four."""
    if not 0 <= test_fold < len(folds):
        raise ValueError(f"test_fold must be 0..{len(folds) - 1}, got {test_fold}")
    return {"train": [s for i, f in enumerate(folds) if i != test_fold for s in f], "test": list(folds[test_fold])}


LH_PARTS: tuple[str, ...] = ("train", "val", "test", "train_subset")


def read_adience_lists(root: str | os.PathLike, test_fold: int, task: str = "age", *,
                       require_images: bool = False, images: str = "aligned") -> dict[str, list[Sample]]:
    """Levi & Hassner's published lists for one round:
    ``<root>/train_val_txt_files_per_fold/test_fold_is_<k>/<task>_{train,val,test}.txt``
    (``<aligned path> <label>`` per line; their age labels are our group indices, gender 0 male /
    1 female). Returns ``{"train", "val", "test"}`` (and ``"train_subset"`` when present).
    Their ``val`` is drawn from the training folds, not subject-exclusive with ``train``.
    """
    if task not in ("age", "gender"):
        raise ValueError(f"task must be 'age' or 'gender', got {task!r}")
    root = Path(root)
    folder = root / "train_val_txt_files_per_fold" / f"test_fold_is_{int(test_fold)}"
    if not folder.is_dir():
        raise DatasetError(folder, "Levi & Hassner fold list folder not found")
    n_classes = 8 if task == "age" else 2
    out: dict[str, list[Sample]] = {}
    for part in LH_PARTS:
        f = folder / f"{task}_{part}.txt"
        if not f.is_file():
            if part == "train_subset":
                continue
            raise DatasetError(f, "Levi & Hassner list file not found")
        samples = []
        with open(f, encoding="utf-8") as fh:
            for line, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                bits = text.split()
                if len(bits) != 2:
                    raise DatasetError(f, f"line {line}: expected '<image path> <label>', got {text.strip()!r}")
                rel, lab = bits
                label = parse_int(lab, f, line, "label")
                if not 0 <= label < n_classes:
                    raise DatasetError(f, f"line {line}: {task} label {label} is not 0..{n_classes - 1}")
                img = root / images / rel
                if require_images and not img.is_file():
                    continue
                subject = rel.split("/", 1)[0] if "/" in rel else None
                samples.append(Sample(str(img), {task: label}, subject, meta={"lh_list": f.name}))
        out[part] = samples
    return out
