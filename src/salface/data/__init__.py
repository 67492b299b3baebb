"""Dataset readers (each in its dataset's published layout) and leakage-safe splits.

Every reader returns ``list[Sample]``; a dataset that is not in the expected layout raises
:class:`DatasetError` naming the file and what is wrong. See ``docs/datasets.md``.
"""

from salface.data.adience import adience_folds, read_adience, read_adience_lists
from salface.data.affectnet import affectnet_balanced_test, affectnet_saf_bage_splits, read_affectnet
from salface.data.base import DatasetError, Sample, age_in_group, age_to_group
from salface.data.fer2013 import read_fer2013_csv, read_fer2013_original
from salface.data.ferplus import read_ferplus
from salface.data.generic import read_csv_dataset, read_folder_dataset
from salface.data.lfw import read_lfw
from salface.data.splits import (
    content_hash, deduplicate_against, make_splits, read_split, standard_split, write_split)
from salface.data.utkface import read_utkface, utk_age_to_group

__all__ = [
    "read_adience", "adience_folds", "read_adience_lists",
    "read_affectnet", "affectnet_balanced_test", "affectnet_saf_bage_splits", "read_lfw",
    "read_csv_dataset", "read_folder_dataset",
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
    "affectnet": ("read_affectnet(csv_path, images_root)", ("expression",),
                  "training.csv|validation.csv (face box, code 0-10) + Manually_Annotated_Images/"),
    "lfw": ("read_lfw(root, male_names, female_names)", ("gender",),
            "lfw/<Name>/<Name>_0001.jpg + male/female name lists"),
    "csv": ("read_csv_dataset(csv_path, root=None)", ("age", "gender", "expression"),
            "path + age|age_group, gender, expression [, x,y,w,h, subject]"),
    "folder": ("read_folder_dataset(root, task)", ("age", "gender", "expression"),
               "<root>/<class name>/*.jpg"),
    "utkface": ("read_utkface(root)", ("age", "gender"),
                "[age]_[gender]_[race]_[date&time].jpg.chip.jpg in one folder"),
}
"""Reader name → (call, tasks labelled, layout), as listed by ``salface datasets``."""
