"""UTKFace reader: file-name labels, age-group mapping of in-between ages, duplicate handling."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import shared_path
from salface.data import DatasetError, age_in_group, read_utkface, utk_age_to_group
from salface.data.utkface import UTKFaceReport, parse_utk_name, utkface_report
from salface.labels import AGE_GROUPS


def G(name: str) -> int:
    return AGE_GROUPS.index(name)


def test_age_groups_inside_spans():
    for age, group in [(0, "0-2"), (2, "0-2"), (4, "4-6"), (6, "4-6"), (8, "8-13"), (13, "8-13"),
                       (15, "15-20"), (20, "15-20"), (25, "25-32"), (32, "25-32"), (38, "38-43"),
                       (43, "38-43"), (48, "48-53"), (53, "48-53"), (60, "60+"), (116, "60+")]:
        assert utk_age_to_group(age) == G(group), age
        assert age_in_group(age) == G(group)


def test_age_groups_in_between():
    # gaps are cut at their midpoints; a midpoint age goes to the older group
    table = {3: "4-6", 7: "8-13", 14: "15-20", 21: "15-20", 22: "15-20", 23: "25-32", 24: "25-32",
             33: "25-32", 34: "25-32", 35: "38-43", 36: "38-43", 37: "38-43", 44: "38-43", 45: "38-43",
             46: "48-53", 47: "48-53", 54: "48-53", 55: "48-53", 56: "48-53", 57: "60+", 58: "60+",
             59: "60+"}
    for age, group in table.items():
        assert age_in_group(age) is None
        assert utk_age_to_group(age) == G(group), age
    with pytest.raises(ValueError):
        utk_age_to_group(-1)


def test_parse_names():
    assert parse_utk_name("26_1_2_20170116174525125.jpg.chip.jpg") == {
        "age_years": 26, "gender": 1, "race": 2, "stamp": "20170116174525125"}
    assert parse_utk_name("39_1_20170116174525125.jpg.chip.jpg")["race"] is None
    assert parse_utk_name("24_0_1_20170116220224657 .jpg.chip.jpg")["age_years"] == 24
    assert parse_utk_name("55_0_0_20170116232725357jpg.chip.jpg")["race"] == 0
    assert parse_utk_name("26_2_0_20170116174525125.jpg.chip.jpg") is None  # gender 2
    assert parse_utk_name("notes.jpg") is None


@pytest.fixture(scope="module")
def utk():
    root = shared_path("data", "utkface")
    rep = UTKFaceReport()
    return read_utkface(root, report=rep), rep


def test_real_counts_and_duplicates(utk):
    samples, rep = utk
    assert rep.files == 23708
    assert rep.duplicate_groups == 375
    assert len(rep.no_race) == 3
    # 375 groups of identical files: 123 disagree on age group or gender (248 files dropped),
    # the other 252 keep one file each (265 copies collapsed)
    assert rep.conflicting_groups == 123 and rep.conflicting_files_dropped == 248
    assert rep.duplicate_files_collapsed == 265
    assert len(samples) == 23708 - 248 - 265 == rep.samples
    assert len({s.meta["sha1"] for s in samples}) == len(samples)


def test_real_known_files(utk):
    samples, _ = utk
    by_name = {s.path.rsplit("/", 1)[-1]: s for s in samples}
    s = by_name["100_0_0_20170112213500903.jpg.chip.jpg"]
    assert s.labels == {"age": G("60+"), "gender": 0} and s.meta["race"] == 0 and s.meta["age_years"] == 100
    s = by_name["39_1_20170116174525125.jpg.chip.jpg"]
    assert s.labels == {"age": G("38-43"), "gender": 1} and "race" not in s.meta
    s = by_name["24_0_1_20170116220224657 .jpg.chip.jpg"]
    assert s.labels == {"age": G("25-32"), "gender": 0}  # 24 is in the 20..25 gap, nearer 25
    # byte-identical pair aged 10 and 15 (8-13 vs 15-20): both dropped
    assert "10_0_0_20170110225528484.jpg.chip.jpg" not in by_name
    assert "15_0_0_20170110232730918.jpg.chip.jpg" not in by_name
    # byte-identical pair aged 10 and 13 (same group): one kept, the other listed
    s = by_name["10_0_0_20170110220644705.jpg.chip.jpg"]
    assert s.meta["duplicates"] == ["13_0_0_20170110232519225.jpg.chip.jpg"]
    assert s.meta["duplicate_ages"] == [10, 13]
    assert "13_0_0_20170110232519225.jpg.chip.jpg" not in by_name
    img = s.load()
    assert img.shape == (200, 200, 3) and img.dtype == np.uint8


def test_small_folder_and_errors(tmp_path):
    src = shared_path("data", "utkface")
    names = ["100_0_0_20170112213500903.jpg.chip.jpg", "39_1_20170116174525125.jpg.chip.jpg",
             "10_0_0_20170110220644705.jpg.chip.jpg", "13_0_0_20170110232519225.jpg.chip.jpg"]
    for n in names:
        shutil.copy(src / n, tmp_path / n)
    shutil.copy(src / names[0], tmp_path / "35_1_0_20170112213500903.jpg.chip.jpg")  # same bytes, other sex
    rep = utkface_report(tmp_path)
    assert rep.files == 5 and rep.duplicate_groups == 2 and rep.conflicting_groups == 1
    assert rep.samples == 2
    assert len(read_utkface(tmp_path, in_between="drop")) == 2
    (tmp_path / "hello_world.jpg").write_bytes(b"x")
    with pytest.raises(DatasetError, match="hello_world.jpg"):
        read_utkface(tmp_path)
    assert len(read_utkface(tmp_path, on_bad_name="skip")) == 2
    with pytest.raises(DatasetError, match="not found"):
        read_utkface(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no UTKFace images"):
        read_utkface(empty)


def test_in_between_drop(tmp_path):
    src = shared_path("data", "utkface")
    shutil.copy(src / "100_0_0_20170112213500903.jpg.chip.jpg", tmp_path / "35_1_0_20170112213500903.jpg.chip.jpg")
    assert read_utkface(tmp_path)[0].labels["age"] == G("38-43")
    assert read_utkface(tmp_path, in_between="drop") == []
