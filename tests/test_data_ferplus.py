"""FER+ and FER2013 readers: real ../shared data (label rule checked by hand) and small files in the
published formats written by the tests, including malformed ones."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_path
from salface.data import DatasetError
from salface.data.fer2013 import read_fer2013_csv, read_fer2013_original
from salface.data.ferplus import ferplus_drop_counts, ferplus_majority, read_ferplus
from salface.labels import EXPRESSIONS


def E(name: str) -> int:
    return EXPRESSIONS.index(name)


# --------------------------------------------------------------------------- label rule, by hand
# vote order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF

def test_majority_rule_by_hand():
    assert ferplus_majority([4, 0, 0, 1, 3, 2, 0, 0, 0, 0]) == (E("neutral"), "ok")
    assert ferplus_majority([0, 0, 6, 0, 0, 0, 4, 0, 0, 0]) == (E("surprise"), "ok")
    assert ferplus_majority([0, 0, 0, 0, 2, 1, 0, 7, 0, 0]) == (None, "contempt")
    assert ferplus_majority([0, 0, 0, 0, 0, 0, 0, 0, 0, 10]) == (None, "NF")
    assert ferplus_majority([1, 0, 0, 0, 0, 0, 0, 0, 5, 0]) == (None, "unknown")
    assert ferplus_majority([5, 5, 0, 0, 0, 0, 0, 0, 0, 0]) == (None, "tie")
    # with include_ties the first tied class in vote order is taken
    assert ferplus_majority([0, 4, 0, 0, 0, 0, 4, 0, 2, 0], include_ties=True) == (E("happy"), "tie")
    # a tie with contempt only among our classes -> the mapped class
    assert ferplus_majority([0, 0, 0, 0, 4, 0, 0, 4, 2, 0], include_ties=True) == (E("anger"), "tie")
    assert ferplus_majority([0, 0, 0, 0, 0, 0, 0, 5, 5, 0], include_ties=True) == (None, "tie")
    assert ferplus_majority([0] * 10) == (None, "no votes")
    # anger and sadness land on our indices, not FER+'s column numbers
    assert ferplus_majority([0, 0, 0, 9, 1, 0, 0, 0, 0, 0])[0] == E("sad")
    assert ferplus_majority([0, 0, 0, 0, 0, 8, 1, 0, 1, 0])[0] == E("disgust")
    assert ferplus_majority([0, 0, 0, 0, 1, 0, 8, 0, 1, 0])[0] == E("fear")


# --------------------------------------------------------------------------- real FER+

@pytest.fixture(scope="module")
def fer_root():
    return shared_path("data", "ferplus")


def test_real_counts_per_split(fer_root):
    # measured on ../shared (label.csv rows 28,558 / 3,579 / 3,573), see docs/datasets.md
    expected = {"train": (26775, {"tie": 1445, "contempt": 165, "unknown": 171, "NF": 2}),
                "valid": (3370, {"tie": 159, "contempt": 26, "unknown": 23, "NF": 1}),
                "test": (3344, {"tie": 174, "contempt": 27, "unknown": 28})}
    rows = {"train": 28558, "valid": 3579, "test": 3573}
    for split, (n, dropped) in expected.items():
        samples = read_ferplus(fer_root, split)
        assert len(samples) == n
        assert ferplus_drop_counts(fer_root, split) == dropped
        assert n + sum(dropped.values()) == rows[split]


def test_real_known_image(fer_root):
    samples = {s.path.rsplit("/", 1)[-1]: s for s in read_ferplus(fer_root, "train")}
    # fer0000000.png votes 4,0,0,1,3,2,0,0,0,0 -> neutral (4 > 3 anger)
    s = samples["fer0000000.png"]
    assert s.meta["votes"] == [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]
    assert s.label_name("expression") == "neutral"
    # fer0000009.png votes 0,0,6,0,0,0,4,0,0,0 -> surprise
    assert samples["fer0000009.png"].label_name("expression") == "surprise"
    # fer0000443.png votes 5,5,0,... -> tie, dropped by default, kept as neutral with include_ties
    assert "fer0000443.png" not in samples
    with_ties = {s.path.rsplit("/", 1)[-1]: s for s in read_ferplus(fer_root, "train", include_ties=True)}
    assert with_ties["fer0000443.png"].label_name("expression") == "neutral"
    assert with_ties["fer0000443.png"].meta["tie"] is True
    img = s.load()
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert s.box is not None and s.box.as_tuple() == (0, 0, 48, 48)


def test_real_test_image(fer_root):
    samples = {s.path.rsplit("/", 1)[-1]: s for s in read_ferplus(fer_root, "test")}
    assert samples["fer0032225.png"].label_name("expression") == "anger"  # 0,0,0,0,9,0,1,0,0,0
    assert "fer0032220.png" not in samples  # contempt 7


def test_real_fer2013_original(fer_root):
    train = {s.path.rsplit("/", 1)[-1]: s for s in read_fer2013_original(fer_root, "train")}
    assert train["fer0000000.png"].label_name("expression") == "anger"  # 'angry' in the csv
    assert train["fer0000002.png"].label_name("expression") == "fear"
    counts = np.bincount([s.labels["expression"] for s in read_fer2013_original(fer_root, "test")],
                         minlength=7)
    # PrivateTest per class, from the csv: neutral 624, happy 876, sad 588, surprise 414, fear 526,
    # disgust 55, angry 489
    assert counts.tolist() == [624, 876, 588, 414, 526, 55, 489]


# --------------------------------------------------------------------------- written in the format

def _write_ferplus(root, rows, split="FER2013Train", images=True):
    d = root / split
    d.mkdir(parents=True)
    from PIL import Image

    lines = []
    for name, votes in rows:
        if images:
            Image.fromarray(np.full((48, 48), 7, np.uint8)).save(d / name)
        lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
    (d / "label.csv").write_text("\n".join(lines) + "\n")
    return d


def test_small_ferplus_and_errors(tmp_path):
    _write_ferplus(tmp_path, [("a.png", [0, 0, 0, 0, 0, 0, 9, 0, 1, 0]), ("b.png", [3, 3, 0, 0, 0, 0, 0, 0, 0, 4])])
    s = read_ferplus(tmp_path, "train")
    assert [x.label_name("expression") for x in s] == ["fear"]
    assert ferplus_drop_counts(tmp_path, "train") == {"NF": 1}
    with pytest.raises(DatasetError, match="FER2013Valid"):
        read_ferplus(tmp_path, "valid")  # missing image dir
    (tmp_path / "FER2013Train" / "b.png").unlink()
    with pytest.raises(DatasetError, match="b.png"):
        read_ferplus(tmp_path, "train")


def test_small_ferplus_malformed(tmp_path):
    d = _write_ferplus(tmp_path, [("a.png", [0] * 10)])
    (d / "label.csv").write_text('a.png,"(0, 0, 48, 48)",1,2,3\n')
    with pytest.raises(DatasetError, match=r"label\.csv.*12"):
        read_ferplus(tmp_path, "train")
    (d / "label.csv").write_text('a.png,"(0, 0, 48, 48)",1,x,0,0,0,0,0,0,0,0\n')
    with pytest.raises(DatasetError, match="not an integer"):
        read_ferplus(tmp_path, "train")


def _pixels(value: int) -> str:
    return " ".join([str(value)] * 2304)


def test_fer2013_csv(tmp_path):
    p = tmp_path / "fer2013.csv"
    p.write_text("emotion,pixels,Usage\n"
                 f"0,{_pixels(10)},Training\n"
                 f"3,{_pixels(200)},PublicTest\n"
                 f"6,{_pixels(0)},PrivateTest\n")
    allrows = read_fer2013_csv(p)
    assert [s.label_name("expression") for s in allrows] == ["anger", "happy", "neutral"]
    assert allrows[1].path == f"{p}#row=1"
    img = allrows[1].load()
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8 and int(img.min()) == 200
    assert [s.meta["row"] for s in read_fer2013_csv(p, usage="PrivateTest")] == [2]
    assert [s.meta["row"] for s in read_fer2013_csv(p, usage="valid")] == [1]


@pytest.mark.parametrize("content,match", [
    ("emotion,Usage\n0,Training\n", "missing column"),
    (f"emotion,pixels,Usage\n7,{_pixels(1)},Training\n", "emotion code"),
    ("emotion,pixels,Usage\n1,1 2 3,Training\n", "2304"),
    (f"emotion,pixels,Usage\n1,{_pixels(300)},Training\n", "0..255"),
    (f"emotion,pixels,Usage\n1,{_pixels(3)},Train\n", "Usage"),
])
def test_fer2013_csv_malformed(tmp_path, content, match):
    p = tmp_path / "bad_fer2013.csv"
    p.write_text(content)
    with pytest.raises(DatasetError, match=match) as ei:
        read_fer2013_csv(p)
    assert "bad_fer2013.csv" in str(ei.value)


def test_fer2013_original_malformed(tmp_path):
    _write_ferplus(tmp_path, [("a.png", [1] + [0] * 9)])
    (tmp_path / "fer2013_original_labels.csv").write_text("image,usage,fer2013_emotion\na.png,Training,bored\n")
    with pytest.raises(DatasetError, match="bored"):
        read_fer2013_original(tmp_path, "train")
    (tmp_path / "fer2013_original_labels.csv").write_text("image,usage,fer2013_emotion\na.png,Training,happy\n")
    assert read_fer2013_original(tmp_path, "train")[0].label_name("expression") == "happy"


def test_vote_distribution_by_hand():
    from salface.data.ferplus import ferplus_vote_distribution

    # neutral 4, sadness 1, anger 3, disgust 2 of 10 votes
    d = ferplus_vote_distribution([4, 0, 0, 1, 3, 2, 0, 0, 0, 0])
    want = {"neutral": 0.4, "sad": 0.1, "anger": 0.3, "disgust": 0.2}
    assert d == pytest.approx([want.get(e, 0.0) for e in EXPRESSIONS])
    # contempt, unknown and NF votes are dropped before normalising
    assert ferplus_vote_distribution([0, 5, 0, 0, 0, 0, 0, 3, 1, 1]) == pytest.approx(
        [1.0 if e == "happy" else 0.0 for e in EXPRESSIONS])
    assert ferplus_vote_distribution([0, 0, 0, 0, 0, 0, 0, 4, 3, 3]) is None
    with pytest.raises(ValueError, match="10 votes"):
        ferplus_vote_distribution([1, 2, 3])
