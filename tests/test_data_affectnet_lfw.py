"""AffectNet and LFW readers on small files written by the tests in the datasets' real formats
(neither dataset is in ../shared), including malformed variants."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from salface.data import DatasetError
from salface.data.affectnet import (
    AFFECTNET_COLUMNS, AffectNetReport, affectnet_balanced_test, affectnet_saf_bage_splits, read_affectnet)
from salface.data.lfw import LFWReport, read_lfw, read_name_list
from salface.labels import EXPRESSIONS

LM = ";".join(["10.5"] * 136)


def _affectnet(tmp_path, rows, header=True, name="training.csv"):
    images = tmp_path / "Manually_Annotated_Images"
    images.mkdir(exist_ok=True)
    lines = [",".join(AFFECTNET_COLUMNS)] if header else []
    for rel, code in rows:
        lines.append(f"{rel},20,30,100,120,{LM},{code},0.25,-0.5")
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p, images


def test_affectnet_codes_and_boxes(tmp_path):
    rows = [(f"1/img{c}.jpg", c) for c in range(11)]
    p, images = _affectnet(tmp_path, rows)
    rep = AffectNetReport()
    s = read_affectnet(p, images, report=rep)
    # codes 0..6 are our EXPRESSIONS order: neutral, happy, sad, surprise, fear, disgust, anger
    assert [x.label_name("expression") for x in s] == list(EXPRESSIONS)
    assert rep.dropped_codes == {"contempt": 1, "none": 1, "uncertain": 1, "no-face": 1} and rep.rows == 11
    assert s[0].box.as_tuple() == (20, 30, 120, 150)
    assert s[0].meta == {"affectnet_code": 0, "valence": 0.25, "arousal": -0.5}
    assert s[3].path.endswith("Manually_Annotated_Images/1/img3.jpg")
    assert len(read_affectnet(p, images, keep_landmarks=True)[0].meta["landmarks"]) == 136


def test_affectnet_headerless_validation_and_images(tmp_path):
    p, images = _affectnet(tmp_path, [("2/a.jpg", 1), ("2/b.jpg", 6)], header=False, name="validation.csv")
    (images / "2").mkdir()
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(images / "2" / "a.jpg")
    assert [x.label_name("expression") for x in read_affectnet(p, images)] == ["happy", "anger"]
    rep = AffectNetReport()
    got = read_affectnet(p, images, require_images=True, report=rep)
    assert len(got) == 1 and rep.missing_images == 1
    assert got[0].load().shape == (200, 200, 3)


@pytest.mark.parametrize("text,match", [
    ("subDirectory_filePath,face_x,face_y,face_width,face_height,expression,valence\n", "missing column"),
    (",".join(AFFECTNET_COLUMNS) + f"\n1/a.jpg,1,2,3,4,{LM},11,0,0\n", "expression code '11'"),
    (",".join(AFFECTNET_COLUMNS) + f"\n1/a.jpg,1,2,3,4,{LM},happy,0,0\n", "expression code 'happy'"),
    (",".join(AFFECTNET_COLUMNS) + f"\n1/a.jpg,1,two,3,4,{LM},1,0,0\n", "face_y"),
    (",".join(AFFECTNET_COLUMNS) + f"\n1/a.jpg,1,2,0,4,{LM},1,0,0\n", "invalid face box"),
    ("a,b\n", "first row has 2 fields"),
])
def test_affectnet_malformed(tmp_path, text, match):
    p = tmp_path / "training.csv"
    p.write_text(text)
    (tmp_path / "imgs").mkdir()
    with pytest.raises(DatasetError, match=match) as ei:
        read_affectnet(p, tmp_path / "imgs")
    assert "training.csv" in str(ei.value)


def test_affectnet_missing_image_dir(tmp_path):
    p, _ = _affectnet(tmp_path, [("1/a.jpg", 0)])
    with pytest.raises(DatasetError, match="nope.*not found"):
        read_affectnet(p, tmp_path / "nope")
    with pytest.raises(ValueError, match="contempt"):
        read_affectnet(p, tmp_path / "Manually_Annotated_Images", classes=8)


def test_affectnet_balanced_test_and_saf_bage_splits(tmp_path):
    rows = [(f"t/{c}_{i}.jpg", c) for c in range(7) for i in range(30 + 10 * c)]
    p, images = _affectnet(tmp_path, rows)
    train = read_affectnet(p, images)
    test, rest = affectnet_balanced_test(train, per_class=20, seed=1)
    assert np.bincount([s.labels["expression"] for s in test]).tolist() == [20] * 7
    assert len(rest) == len(train) - 140 and not {s.path for s in test} & {s.path for s in rest}
    again, _ = affectnet_balanced_test(train, per_class=20, seed=1)
    assert [s.path for s in again] == [s.path for s in test]
    with pytest.raises(ValueError, match="neutral"):
        affectnet_balanced_test(train, per_class=31)
    sp = affectnet_saf_bage_splits(rest, test, per_class=20)
    assert len(sp["test"]) == 140
    per_class_val = np.bincount([s.labels["expression"] for s in sp["val"]]).tolist()
    per_class_all = np.bincount([s.labels["expression"] for s in rest]).tolist()
    assert all(abs(v - 0.2 * a) <= 1 for v, a in zip(per_class_val, per_class_all))
    assert len(sp["train"]) + len(sp["val"]) == len(rest)


# ----------------------------------------------------------------------------------------- LFW

def _lfw(tmp_path, people):
    root = tmp_path / "lfw"
    for person, n in people.items():
        (root / person).mkdir(parents=True)
        for i in range(1, n + 1):
            Image.fromarray(np.full((250, 250, 3), i, np.uint8)).save(root / person / f"{person}_{i:04d}.jpg")
    return root


def test_lfw_image_and_person_lists(tmp_path):
    _lfw(tmp_path, {"Aaron_Eckhart": 1, "Serena_Williams": 3, "Pat_Smith": 2, "Nobody_Known": 1})
    male = tmp_path / "male_names.txt"
    female = tmp_path / "female_names.txt"
    male.write_text("Aaron_Eckhart_0001.jpg\nPat_Smith_0001.jpg\n\n# comment\nlfw/Gone_Person/Gone_Person_0001.jpg\n")
    female.write_text("Serena Williams\nPat_Smith_0002.jpg\nPat_Smith_0001.jpg\n")
    rep = LFWReport()
    s = read_lfw(tmp_path, male, female, report=rep)  # root holding lfw/
    got = {x.path.rsplit("/", 1)[-1]: (x.label_name("gender"), x.subject) for x in s}
    assert got == {"Aaron_Eckhart_0001.jpg": ("male", "Aaron_Eckhart"),
                   "Pat_Smith_0002.jpg": ("female", "Pat_Smith"),
                   "Serena_Williams_0001.jpg": ("female", "Serena_Williams"),
                   "Serena_Williams_0002.jpg": ("female", "Serena_Williams"),
                   "Serena_Williams_0003.jpg": ("female", "Serena_Williams")}
    assert rep.images == 7 and rep.conflicting == 1 and rep.unlabelled == 1
    assert rep.list_entries_not_found == ["Gone_Person_0001.jpg"]
    assert s[0].load().shape == (250, 250, 3)
    assert len(read_lfw(tmp_path / "lfw", male, female)) == 5  # the lfw/ folder itself


def test_lfw_errors(tmp_path):
    _lfw(tmp_path, {"A_B": 1})
    ok = tmp_path / "m.txt"
    ok.write_text("A_B\n")
    empty = tmp_path / "f.txt"
    empty.write_text("\n# nothing\n")
    with pytest.raises(DatasetError, match="f.txt.*empty"):
        read_lfw(tmp_path / "lfw", ok, empty)
    with pytest.raises(DatasetError, match="missing.txt"):
        read_lfw(tmp_path / "lfw", ok, tmp_path / "missing.txt")
    with pytest.raises(DatasetError, match="LFW folder not found"):
        read_lfw(tmp_path / "nolfw", ok, ok)
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(DatasetError, match="no person folders"):
        read_lfw(bare, ok, ok)
    assert read_name_list(ok) == (set(), {"A_B"})
