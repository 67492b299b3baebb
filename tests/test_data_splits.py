"""Leakage-safe splits: content hashing of decoded pixels, grouping, stratification, the split file
format, and the FER+ standard split built end to end on a small tree in FER+'s layout."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from salface.data import DatasetError, Sample, content_hash, deduplicate_against, make_splits
from salface.data.ferplus import read_ferplus
from salface.data.splits import (
    check_no_leakage, collapse_duplicates, group_samples, read_split, split_counts, standard_split,
    write_split)
from salface.types import Box


def _s(i, *, h=None, subject=None, age=None, gender=None, box=None):
    labels = {}
    if age is not None:
        labels["age"] = age
    if gender is not None:
        labels["gender"] = gender
    return Sample(f"/x/{i:05d}.jpg", labels, subject, box, {"content_hash": h or f"h{i}"})


def test_content_hash_sees_pixels_not_bytes(tmp_path):
    a = (np.arange(48 * 48) % 251).astype(np.uint8).reshape(48, 48)
    Image.fromarray(a).save(tmp_path / "a.png", compress_level=0)
    Image.fromarray(a).save(tmp_path / "b.png", compress_level=9)
    Image.fromarray(a[::-1]).save(tmp_path / "c.png")
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()
    ha, hb, hc = (content_hash(Sample(str(tmp_path / n), {})) for n in ("a.png", "b.png", "c.png"))
    assert ha == hb != hc


def test_real_fer_duplicate_across_splits():
    root = shared_path("data", "ferplus")
    # fer0000077 (Train) and fer0032326 (Test) are the same picture (found by the full scan)
    train = [s for s in read_ferplus(root, "train") if s.path.endswith(("fer0000077.png", "fer0000000.png"))]
    test = [s for s in read_ferplus(root, "test") if s.path.endswith("fer0032326.png")]
    assert len(train) == 2 and len(test) == 1
    kept, removed = deduplicate_against(train, test)
    assert [s.path.rsplit("/", 1)[-1] for s in removed] == ["fer0000077.png"]
    assert [s.path.rsplit("/", 1)[-1] for s in kept] == ["fer0000000.png"]


def test_groups_never_straddle_and_are_deterministic():
    rng = np.random.default_rng(1)
    samples = []
    for i in range(600):
        subj = f"p{i // 6}"  # 100 subjects, 6 images each
        h = "dup" if i in (3, 200, 401) else None  # one image shared by three subjects
        samples.append(_s(i, h=h, subject=subj, age=int(rng.integers(8)), gender=int(rng.integers(2))))
    a = make_splits(samples, seed=3, group_by="subject", stratify="gender")
    b = make_splits(list(samples), seed=3, group_by="subject", stratify="gender")
    assert {k: [s.path for s in v] for k, v in a.items()} == {k: [s.path for s in v] for k, v in b.items()}
    assert check_no_leakage(a) == []
    assert sum(len(v) for v in a.values()) == 600
    where = {s.subject: k for k, v in a.items() for s in v}
    # subjects p0, p33, p66 are linked by the shared image, so they sit in one split together
    assert where["p0"] == where["p33"] == where["p66"]
    assert 40 <= len(a["test"]) <= 80 and 40 <= len(a["val"]) <= 80
    c = make_splits(samples, seed=4, group_by="subject", stratify="gender")
    assert [s.path for s in c["test"]] != [s.path for s in a["test"]]


def test_stratified_content_split_fractions():
    samples = [_s(i, age=i % 8, gender=(i // 8) % 2) for i in range(1600)]  # 100 per age×gender
    sp = make_splits(samples, group_by="content", stratify=("age", "gender"), seed=0)
    counts = split_counts(sp)
    assert counts["train"]["n"] == 1280 and counts["val"]["n"] == 160 and counts["test"]["n"] == 160
    assert set(counts["test"]["age"].values()) == {20}
    assert set(counts["val"]["gender"].values()) == {80}
    with pytest.raises(ValueError):
        make_splits(samples, val=0.5, test=0.5)
    with pytest.raises(ValueError):
        make_splits(samples, stratify="height")


def test_group_samples_content_duplicates():
    samples = [_s(0, h="a"), _s(1, h="b"), _s(2, h="a"), _s(3, h="c", subject="s"), _s(4, h="d", subject="s")]
    assert group_samples(samples, group_by="content") == [[0, 2], [1], [3], [4]]
    assert group_samples(samples, group_by="subject") == [[0, 2], [1], [3, 4]]


def test_collapse_duplicates():
    samples = [_s(0, h="a", age=1), _s(1, h="a", age=1), _s(2, h="b", age=1), _s(3, h="b", age=2), _s(4, age=3)]
    kept, counts = collapse_duplicates(samples)
    assert [s.path for s in kept] == ["/x/00000.jpg", "/x/00004.jpg"]
    assert kept[0].meta["duplicates"] == ["/x/00001.jpg"]
    assert counts == {"groups": 2, "collapsed": 1, "conflict_groups": 1, "conflict_dropped": 2}
    kept, _ = collapse_duplicates(samples, conflicts="first")
    assert len(kept) == 3


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_write_read_roundtrip(tmp_path, suffix):
    sp = {"train": [_s(2, age=3, gender=1, subject="u1", box=Box(1, 2, 30.5, 40))],
          "val": [_s(1, gender=0)], "test": [Sample("/x/t.png", {"expression": 6}, meta={"votes": [1, 2]})]}
    p = write_split(sp, tmp_path / f"s{suffix}")
    back = read_split(p)
    assert back == sp
    first = p.read_bytes()
    write_split(back, p)
    assert p.read_bytes() == first  # stable
    if suffix == ".jsonl":
        rec = json.loads(p.read_text().splitlines()[0])
        assert rec["split"] == "train" and rec["labels"] == {"age": 3, "gender": 1} and rec["box"] == [1, 2, 30.5, 40]


def test_read_split_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_split(tmp_path / "none.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"path": "a"}\n')
    with pytest.raises(DatasetError, match="bad.jsonl.*line 1"):
        read_split(bad)


def _gray(v):
    return (np.arange(48 * 48).reshape(48, 48) * 7 + v).astype(np.uint8)


def test_standard_ferplus_split_small_tree(tmp_path):
    """A 3-split tree in FER+'s layout with duplicates inside and across splits."""
    root = tmp_path / "shared" / "data" / "ferplus"
    happy, sad, neutral = [0, 9, 0, 0, 0, 0, 0, 0, 1, 0], [1, 0, 0, 9, 0, 0, 0, 0, 0, 0], [9, 1] + [0] * 8
    layout = {
        "FER2013Train": [("t0.png", 1, happy), ("t1.png", 1, happy),    # within-train duplicate
                         ("t2.png", 2, sad), ("t3.png", 2, happy),       # conflicting duplicate
                         ("t4.png", 3, neutral),                          # also in test
                         ("t5.png", 4, sad), ("t6.png", 5, happy)],      # t6 also in val
        "FER2013Valid": [("v0.png", 5, happy), ("v1.png", 6, sad), ("v2.png", 7, happy)],  # v2 in test
        "FER2013Test": [("x0.png", 3, neutral), ("x1.png", 7, happy), ("x2.png", 8, sad)],
    }
    for folder, rows in layout.items():
        d = root / folder
        d.mkdir(parents=True)
        lines = []
        for name, v, votes in rows:
            Image.fromarray(_gray(v)).save(d / name)
            lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
        (d / "label.csv").write_text("\n".join(lines) + "\n")
    rep = standard_split("ferplus", tmp_path / "shared", tmp_path / "out")
    sp = read_split(tmp_path / "out" / "ferplus.jsonl")
    names = {k: [s.path.rsplit("/", 1)[-1] for s in v] for k, v in sp.items()}
    assert names == {"train": ["t0.png", "t5.png"], "val": ["v0.png", "v1.png"],
                     "test": ["x0.png", "x1.png", "x2.png"]}
    assert check_no_leakage(sp) == []
    n = rep.notes
    assert n["train_within_duplicates"] == {"groups": 2, "collapsed": 1, "conflict_groups": 1, "conflict_dropped": 2}
    assert n["train_removed_also_in_val_or_test"] == 2 and n["val_removed_also_in_test"] == 1
    assert rep.counts["test"]["expression"]["happy"] == 1
    assert json.loads((tmp_path / "out" / "ferplus.report.json").read_text())["counts"]["train"]["n"] == 2
    with pytest.raises(ValueError, match="unknown standard split"):
        standard_split("imagenet", tmp_path / "shared", tmp_path / "out")
