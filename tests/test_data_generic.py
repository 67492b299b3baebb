"""Users' own data: the generic CSV and class-folder layouts, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from salface.data import DatasetError
from salface.data.generic import parse_label, read_csv_dataset, read_folder_dataset
from salface.labels import AGE_GROUPS


def _img(p):
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((64, 48, 3), np.uint8)).save(p)


def test_parse_label():
    assert parse_label("gender", "Female") == 1 and parse_label("gender", "m") == 0
    assert parse_label("gender", "0") == 0
    assert parse_label("expression", "happiness") == 1 and parse_label("expression", "ANGRY") == 6
    assert parse_label("age", "60+") == 7 and parse_label("age", "(8, 12)") == 2 and parse_label("age", "3") == 3
    for task, bad in [("gender", "2"), ("gender", "other"), ("expression", "contempt"), ("age", "30-40")]:
        with pytest.raises(ValueError):
            parse_label(task, bad)


def test_csv_dataset(tmp_path):
    for n in ("a.jpg", "b.jpg", "sub/c.png"):
        _img(tmp_path / n)
    (tmp_path / "data.csv").write_text(
        "path,age,gender,expression,x,y,w,h,subject\n"
        "a.jpg,35,female,happy,1,2,30,40,p1\n"
        "b.jpg,,m,,,,,,\n"
        f"{tmp_path / 'sub' / 'c.png'},7,,4,,,,,p2\n")
    s = read_csv_dataset(tmp_path / "data.csv")
    assert s[0].labels == {"age": AGE_GROUPS.index("38-43"), "gender": 1, "expression": 1}
    assert s[0].box.as_tuple() == (1, 2, 31, 42) and s[0].subject == "p1" and s[0].meta["age_years"] == 35
    assert s[1].labels == {"gender": 0} and s[1].box is None and s[1].subject is None
    assert s[2].labels == {"age": AGE_GROUPS.index("8-13"), "expression": 4}
    assert s[0].load().shape == (64, 48, 3)
    (tmp_path / "groups.csv").write_text("path,age_group\nimages/a.jpg,25-32\n")
    _img(tmp_path / "other" / "images" / "a.jpg")
    g = read_csv_dataset(tmp_path / "groups.csv", root=tmp_path / "other")
    assert g[0].labels == {"age": 4} and g[0].path == str(tmp_path / "other" / "images" / "a.jpg")


@pytest.mark.parametrize("text,match", [
    ("file,gender\na.jpg,male\n", "missing column.*path"),
    ("path,colour\na.jpg,red\n", "no label column"),
    ("path,gender\na.jpg,robot\n", "line 2.*'robot' is not a gender class"),
    ("path,expression\na.jpg,9\n", "line 2.*expression index 9"),
    ("path,age\na.jpg,old\n", "line 2.*'age' is not a number"),
    ("path,age,age_group\na.jpg,3,0-2\n", "either 'age'"),
    ("path,gender,x,y\na.jpg,male,1,2\n", "x, y, w, h"),
    ("path,gender\nmissing.jpg,male\n", "line 2: image not found.*missing.jpg"),
    ("path,gender,x,y,w,h\na.jpg,male,1,2,0,5\n", "width/height"),
])
def test_csv_malformed(tmp_path, text, match):
    _img(tmp_path / "a.jpg")
    p = tmp_path / "mine.csv"
    p.write_text(text)
    with pytest.raises(DatasetError, match=match) as ei:
        read_csv_dataset(p)
    assert "mine.csv" in str(ei.value)


def test_folder_dataset(tmp_path):
    for cls, n in (("happy", 2), ("Angry", 1), ("neutral", 0)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            _img(tmp_path / cls / f"{i}.jpg")
    (tmp_path / "happy" / "notes.txt").write_text("x")
    s = read_folder_dataset(tmp_path, "expression")
    assert [(x.label_name("expression"), x.path.rsplit("/", 1)[-1]) for x in s] == [
        ("anger", "0.jpg"), ("happy", "0.jpg"), ("happy", "1.jpg")]
    (tmp_path / "bored").mkdir()
    with pytest.raises(DatasetError, match="bored.*not one of the expression classes"):
        read_folder_dataset(tmp_path, "expression")
    with pytest.raises(DatasetError, match="not found"):
        read_folder_dataset(tmp_path / "nope", "gender")
    empty = tmp_path / "empty"
    (empty / "male").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images"):
        read_folder_dataset(empty, "gender")
    with pytest.raises(ValueError):
        read_folder_dataset(tmp_path, "height")
