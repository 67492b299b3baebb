"""Adience: the five subject-exclusive folds, explicit handling of every off-protocol age label,
end to end on the 11 real aligned images in ../shared, Levi & Hassner's lists, malformed files."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_path
from salface.data import DatasetError
from salface.data.adience import (
    ADIENCE_AGE_TABLE, ADIENCE_STANDARD_AGES, AdienceReport, adience_cross_validation, adience_folds,
    read_adience, read_adience_lists)
from salface.data.base import age_to_group
from salface.labels import AGE_GROUPS

HEADER = ("user_id\toriginal_image\tface_id\tage\tgender\tx\ty\tdx\tdy\ttilt_ang\t"
          "fiducial_yaw_angle\tfiducial_score\n")


def G(name):
    return AGE_GROUPS.index(name)


@pytest.fixture(scope="module")
def root():
    return shared_path("data", "adience")


def test_end_to_end_on_the_11_real_images(root):
    rep = AdienceReport()
    samples = read_adience(root, report=rep)
    assert len(samples) == 11 and rep.rows == 19487 and rep.missing_images == 19487 - 11
    by_face = {s.meta["face_id"]: s for s in samples}
    s = by_face["2"]  # 30601258@N03, fold 0, "(25, 32)", m
    assert s.subject == "30601258@N03" and s.meta["fold"] == 0
    assert s.labels == {"age": G("25-32"), "gender": 0}
    assert by_face["481"].labels == {"age": G("60+"), "gender": 1}
    assert by_face["333"].labels == {"age": G("8-13"), "gender": 1}  # "(8, 12)"
    # "22" is off-protocol: no age label in standard mode, 15-20 when mapped
    assert by_face["628"].labels == {"gender": 1} and by_face["628"].meta["age_string"] == "22"
    mapped = {s.meta["face_id"]: s for s in read_adience(root, age_labels="mapped")}
    assert mapped["628"].labels == {"age": G("15-20"), "gender": 1}
    assert by_face["1317"].labels == {}  # age None, gender empty
    assert sorted(s.meta["fold"] for s in samples) == [0, 0, 0, 1, 1, 1, 1, 2, 2, 4, 4]
    for s in samples:
        img = s.load()
        assert img.shape == (816, 816, 3) and img.dtype == np.uint8
        assert s.box is None and len(s.meta["original_box"]) == 4


def test_folds_are_subject_exclusive_and_complete(root):
    folds = adience_folds(root, require_images=False)
    assert [len(f) for f in folds] == [4496, 3745, 3953, 3459, 3834]  # wc -l minus header
    users = [{s.subject for s in f} for f in folds]
    for i in range(5):
        for j in range(i + 1, 5):
            assert not users[i] & users[j]
    cv = adience_cross_validation(folds, 2)
    assert len(cv["test"]) == 3953 and len(cv["train"]) == 19487 - 3953


def test_every_age_label_in_the_real_files_is_handled(root):
    rep = AdienceReport()
    samples = read_adience(root, require_images=False, age_labels="mapped", report=rep)
    seen = {s.meta["age_string"] for s in samples}
    assert seen <= set(ADIENCE_AGE_TABLE)
    assert rep.off_protocol_age == {
        "None": 753, "35": 294, "13": 169, "22": 149, "34": 105, "23": 96, "45": 88, "(27, 32)": 77,
        "55": 77, "(25, 23)": 72, "36": 57, "(38, 42)": 50, "57": 24, "3": 18, "29": 12, "(38, 48)": 6,
        "58": 5, "32": 3, "2": 3, "56": 2, "46": 1, "42": 1, "(8, 23)": 1}
    assert rep.no_age == 753 + 6 + 1  # None, (38, 48), (8, 23)
    std = AdienceReport()
    read_adience(root, require_images=False, report=std)
    assert std.no_age == 753 + sum(v for k, v in rep.off_protocol_age.items() if k != "None")


def test_age_table_by_hand():
    expected = {"(25, 32)": "25-32", "(38, 43)": "38-43", "(8, 12)": "8-13", "(60, 100)": "60+",
                "(27, 32)": "25-32", "(25, 23)": "25-32", "(38, 42)": "38-43", "(38, 48)": None,
                "(8, 23)": None, "None": None, "35": "38-43", "34": "25-32", "13": "8-13", "22": "15-20",
                "23": "25-32", "3": "4-6", "2": "0-2", "45": "38-43", "46": "48-53", "56": "48-53",
                "57": "60+", "58": "60+", "55": "48-53", "36": "38-43", "42": "38-43", "29": "25-32",
                "32": "25-32"}
    for s, g in expected.items():
        assert ADIENCE_AGE_TABLE[s] == (None if g is None else G(g)), s
    for s, v in ADIENCE_AGE_TABLE.items():
        if s.isdigit():
            assert v == age_to_group(int(s))
    assert set(ADIENCE_STANDARD_AGES.values()) == set(range(8))


def _tree(tmp_path, rows, images=()):
    (tmp_path / "folds").mkdir()
    (tmp_path / "aligned").mkdir()
    for k in range(5):
        body = "".join("\t".join(r) + "\n" for r in rows if int(r[-1]) == k)
        (tmp_path / "folds" / f"fold_{k}_data.txt").write_text(
            HEADER + "".join(line.rsplit("\t", 1)[0] + "\n" for line in body.splitlines(True)))
    from PIL import Image

    for user, face, orig in images:
        (tmp_path / "aligned" / user).mkdir(exist_ok=True)
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(
            tmp_path / "aligned" / user / f"landmark_aligned_face.{face}.{orig}")


def _row(user, face, age, gender, fold):
    return (user, f"img{face}.jpg", str(face), age, gender, "1", "2", "30", "40", "0", "0", "50", str(fold))


def test_small_tree_written_in_the_format(tmp_path):
    rows = [_row("u1", 1, "(0, 2)", "f", 0), _row("u1", 2, "(38, 42)", "m", 0),
            _row("u2", 3, "35", "u", 1), _row("u3", 4, "(8, 23)", "", 3)]
    _tree(tmp_path, rows, images=[("u1", 1, "img1.jpg"), ("u2", 3, "img3.jpg"), ("u3", 4, "img4.jpg")])
    rep = AdienceReport()
    std = read_adience(tmp_path, report=rep)
    assert [s.labels for s in std] == [{"age": 0, "gender": 1}, {}, {}]
    assert rep.missing_images == 1
    mapped = read_adience(tmp_path, age_labels="mapped", require_images=False)
    assert [s.labels for s in mapped] == [{"age": 0, "gender": 1}, {"age": G("38-43"), "gender": 0},
                                          {"age": G("38-43")}, {}]
    assert mapped[0].meta["original_box"] == [1, 2, 30, 40]
    assert [len(f) for f in adience_folds(tmp_path, require_images=False)] == [2, 1, 0, 1, 0]


@pytest.mark.parametrize("age,gender,match", [("(99, 100)", "m", "unknown age label '\\(99, 100\\)'"),
                                              ("(0, 2)", "x", "unknown gender 'x'")])
def test_bad_labels(tmp_path, age, gender, match):
    _tree(tmp_path, [_row("u1", 1, age, gender, 2)])
    with pytest.raises(DatasetError, match=match) as ei:
        read_adience(tmp_path, require_images=False)
    assert "fold_2_data.txt" in str(ei.value) and "line 2" in str(ei.value)


def test_missing_column_and_dirs(tmp_path):
    _tree(tmp_path, [_row("u1", 1, "(0, 2)", "m", 0)])
    (tmp_path / "folds" / "fold_3_data.txt").write_text("user_id\toriginal_image\tface_id\tgender\n")
    with pytest.raises(DatasetError, match=r"fold_3_data.txt.*missing column.*'age'"):
        read_adience(tmp_path, 3, require_images=False)
    (tmp_path / "aligned").rmdir()
    with pytest.raises(DatasetError, match="aligned"):
        read_adience(tmp_path, 0)
    assert len(read_adience(tmp_path, 0, require_images=False)) == 1
    with pytest.raises(DatasetError, match="fold_1_data.txt"):
        read_adience(tmp_path / "nowhere", 1, require_images=False)
    with pytest.raises(ValueError):
        read_adience(tmp_path, 5)


def test_levi_hassner_lists_agree_with_fold_files(root):
    lists = read_adience_lists(root, 0, "age")
    assert {k: len(v) for k, v in lists.items()} == {"train": 11823, "val": 1284, "test": 4316,
                                                       "train_subset": 1295}
    rows = {s.path: s for s in read_adience(root, require_images=False)}
    for part in ("train", "val", "test"):
        for s in lists[part]:
            assert rows[s.path].labels["age"] == s.labels["age"]
    test_users = {s.subject for s in lists["test"]}
    assert test_users == {s.subject for s in read_adience(root, 0, require_images=False)} & test_users
    assert not test_users & {s.subject for s in lists["train"]}
    g = read_adience_lists(root, 0, "gender")
    for s in g["test"][:500]:
        assert rows[s.path].labels["gender"] == s.labels["gender"]


def test_levi_hassner_malformed(tmp_path):
    d = tmp_path / "train_val_txt_files_per_fold" / "test_fold_is_0"
    d.mkdir(parents=True)
    for part in ("train", "val", "test"):
        (d / f"age_{part}.txt").write_text("u1/landmark_aligned_face.1.a.jpg 3\n")
    assert len(read_adience_lists(tmp_path, 0)["val"]) == 1
    (d / "age_val.txt").write_text("u1/landmark_aligned_face.1.a.jpg 9\n")
    with pytest.raises(DatasetError, match="age_val.txt.*not 0..7"):
        read_adience_lists(tmp_path, 0)
    with pytest.raises(DatasetError, match="gender_train.txt"):
        read_adience_lists(tmp_path, 0, "gender")
