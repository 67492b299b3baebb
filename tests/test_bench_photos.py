"""The photo-set helpers of the peer benchmark (benchmarks/peer/photos.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, shared_path

_spec = importlib.util.spec_from_file_location("bench_photos", ROOT / "benchmarks" / "peer" / "photos.py")
photos = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(photos)


def _overlap(a, b, gap=0):
    return not (a[0] >= b[2] + gap or b[0] >= a[2] + gap or a[1] >= b[3] + gap or b[1] >= a[3] + gap)


def test_place_squares_keeps_gap_and_canvas():
    rng = np.random.default_rng(3)
    sizes = [300, 280, 250, 220, 200, 180]
    boxes = photos.place_squares(rng, sizes, (1280, 960), gap=16)
    assert [b[2] - b[0] for b in boxes] == sizes and all(b[3] - b[1] == b[2] - b[0] for b in boxes)
    assert all(b[0] >= 16 and b[1] >= 16 and b[2] <= 1280 - 16 and b[3] <= 960 - 16 for b in boxes)
    assert not any(_overlap(a, b, gap=15) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    # same seed, same layout
    assert photos.place_squares(np.random.default_rng(3), sizes, (1280, 960), gap=16) == boxes


def test_place_squares_says_when_there_is_no_room():
    with pytest.raises(ValueError, match="no room"):
        photos.place_squares(np.random.default_rng(0), [500, 500, 500], (1280, 960), tries=200)
    with pytest.raises(ValueError, match="does not fit"):
        photos.place_squares(np.random.default_rng(0), [950], (1280, 960))


def test_feather_mask_and_paste_known_values():
    m = photos.feather_mask(10, 4)
    assert np.allclose(m[0, :5], [0.125, 0.125, 0.125, 0.125, 0.125])
    assert np.allclose(m[4, :5], [0.125, 0.375, 0.625, 0.875, 1.0])
    assert np.allclose(m, m[::-1, ::-1]) and m[4:6, 4:6].min() == 1.0
    canvas = np.zeros((20, 20, 3), np.uint8)
    photos.paste(canvas, np.full((10, 10, 3), 200, np.uint8), (5, 5, 15, 15), border=4)
    assert canvas[9, 9, 0] == 200 and canvas[5, 9, 0] == 25 and canvas[6, 9, 0] == 75
    assert canvas[4, 9, 0] == 0 and canvas[9, 15, 0] == 0  # nothing outside the box
    with pytest.raises(ValueError, match="does not match box"):
        photos.paste(canvas, np.zeros((4, 4, 3), np.uint8), (0, 0, 5, 5))


def test_seeded_sample_and_split_reader(tmp_path):
    items = list(range(50))
    a = photos.seeded_sample(items, 10, np.random.default_rng(7))
    assert a == photos.seeded_sample(items, 10, np.random.default_rng(7)) and len(set(a)) == 10
    assert sorted(photos.seeded_sample(items, 80, np.random.default_rng(7))) == items
    f = tmp_path / "s.jsonl"
    f.write_text('{"path": "/x/b.jpg", "split": "test"}\n{"path": "/x/c.jpg", "split": "train"}\n'
                 '\n{"path": "/x/a.jpg", "split": "test"}\n')
    assert photos.test_split_paths(f) == [Path("/x/a.jpg"), Path("/x/b.jpg")]
    f.write_text('{"path": "/x/b.jpg", "split": "test"}\nnot json\n')
    with pytest.raises(ValueError, match=r"s\.jsonl:2: not a JSON line"):
        photos.test_split_paths(f)


def test_build_small_sets_from_shared(tmp_path):
    utk = shared_path("data", "utkface")
    files = sorted(utk.glob("*.jpg"))[:12]
    split = tmp_path / "utkface.jsonl"
    split.write_text("".join(json.dumps({"path": str(p), "split": "test"}) + "\n" for p in files))
    out = tmp_path / "photos"
    m = photos.build(utk.parents[1], out, n_faces=3, n_multi=2, seed=1, split_file=split, log=lambda _: None)
    assert sorted(p.name for p in (out / "utk448").iterdir()) == ["utk448_0000.jpg", "utk448_0001.jpg",
                                                                  "utk448_0002.jpg"]
    with Image.open(out / "utk448" / "utk448_0000.jpg") as im:
        assert im.size == (448, 448)
    crops = sorted((out / "crops").iterdir())
    assert len(crops) == 3 and all(c.is_symlink() and c.resolve().parent == utk.resolve() for c in crops)
    # crops and upscaled faces are the same faces, in the same order
    assert [v[0]["source"] for v in m["sets"]["crops"]["images"].values()] == \
           [v[0]["source"] for v in m["sets"]["utk448"]["images"].values()]
    multi = m["sets"]["multi"]["images"]
    assert len(multi) == 2
    for name, faces in multi.items():
        assert 2 <= len(faces) <= 6
        boxes = [f["box"] for f in faces]
        assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        with Image.open(out / "multi" / name) as im:
            assert im.size == (1280, 960)
            px = np.asarray(im.convert("RGB"))
        x1, y1, x2, y2 = boxes[0]  # the pasted face, not the background, is at its box
        with Image.open(faces[0]["source"]) as src:
            tile = np.asarray(src.convert("RGB").resize((x2 - x1, y2 - y1), Image.BICUBIC), np.float32)
        inner = (slice(y1 + 10, y2 - 10), slice(x1 + 10, x2 - 10))
        assert np.abs(px[inner].astype(np.float32) - tile[10:-10, 10:-10]).mean() < 6
    # same settings: nothing is rebuilt
    stamp = (out / "multi" / next(iter(multi))).stat().st_mtime_ns
    assert photos.build(utk.parents[1], out, n_faces=3, n_multi=2, seed=1, split_file=split) == m
    assert (out / "multi" / next(iter(multi))).stat().st_mtime_ns == stamp
