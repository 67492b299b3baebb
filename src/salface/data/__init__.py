"""Dataset readers (each in its dataset's published layout) and leakage-safe splits.

Every reader returns ``list[Sample]``; a dataset that is not in the expected layout raises
:class:`DatasetError` naming the file and what is wrong. See ``docs/datasets.md``.
"""

from salface.data.adience import adience_folds, read_adience, read_adience_lists
from salface.data.base import DatasetError, Sample, age_in_group, age_to_group
from salface.data.fer2013 import read_fer2013_csv, read_fer2013_original
from salface.data.ferplus import read_ferplus
from salface.data.splits import (
    content_hash, deduplicate_against, make_splits, read_split, standard_split, write_split)
from salface.data.utkface import read_utkface, utk_age_to_group

__all__ = [
    "read_adience", "adience_folds", "read_adience_lists",
    "DatasetError", "Sample", "age_in_group", "age_to_group",
    "read_ferplus", "read_fer2013_original", "read_fer2013_csv", "read_utkface", "utk_age_to_group",
    "content_hash", "make_splits", "deduplicate_against", "write_split", "read_split", "standard_split",
]

READERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "ferplus": ("read_ferplus(root, split)", ("expression",),
                "FER2013Train|Valid|Test/ with label.csv (10 votes) + 48x48 PNGs"),
    "fer2013": ("read_fer2013_original(root, split)", ("expression",),
                "FER+ folders + fer2013_original_labels.csv (image,usage,fer2013_emotion)"),
    "fer2013-csv": ("read_fer2013_csv(csv_path, usage=None)", ("expression",),
                    "fer2013.csv (emotion,pixels,Usage)"),
    "adience": ("read_adience(root, fold=None)", ("age", "gender"),
                "fold_{0..4}_data.txt + aligned/<user>/landmark_aligned_face.<face>.<image>"),
    "adience-lh": ("read_adience_lists(root, test_fold, task)", ("age", "gender"),
                   "train_val_txt_files_per_fold/test_fold_is_<k>/<task>_{train,val,test}.txt"),
    "utkface": ("read_utkface(root)", ("age", "gender"),
                "[age]_[gender]_[race]_[date&time].jpg.chip.jpg in one folder"),
}
"""Reader name → (call, tasks labelled, layout), as listed by ``salface datasets``."""
