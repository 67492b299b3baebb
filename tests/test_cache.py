"""Crop and saliency caches: contents, keying, resume, split assignment, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from salface import cache as cache_mod
from salface.training.cache import (CacheError, apply_split_file, build_crop_cache, build_saliency_cache,
                           open_crop_cache)
from salface.data.base import Sample
from salface.saliency.base import SaliencyModel
from salface.types import Box

FER_NAMES = ["fer0032220.png", "fer0032222.png", "fer0032223.png", "fer0032224.png",
             "fer0032225.png", "fer0032226.png"]


def _fer_samples(shared):
    root = shared("data", "ferplus", "FER2013Test")
    return [Sample(str(root / n), {"expression": i % 7}, box=Box(0, 0, 48, 48)) for i, n in enumerate(FER_NAMES)]


class CountingDetector:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, img):
        self.calls += 1
        return self.inner(img)


@pytest.fixture
def yunet(yunet_model):
    from salface.detect import get_detector
    return get_detector("yunet", model_path=yunet_model)


def test_fer_crop_cache_contents(shared, yunet, tmp_path):
    samples = _fer_samples(shared)
    splits = ["train", "train", "train", "val", "val", "test"]
    cc = build_crop_cache(samples, tmp_path / "c", size=64, margin=0.3, color="gray",
                          splits=splits, detector_obj=yunet, progress=False)
    assert len(cc) == 6 and cc.crops.shape == (6, 64, 64, 3) and cc.crops.dtype == np.uint8
    assert (cc.crops[..., 0] == cc.crops[..., 1]).all()            # gray replicated
    assert cc.task_labels("expression").tolist() == [0, 1, 2, 3, 4, 5]
    assert cc.indices("val").tolist() == [3, 4]
    assert cc.detected.sum() >= 4                                   # YuNet finds most FER faces
    assert 0.0 <= cc.meta["detection_rate"] <= 1.0
    d = int(np.flatnonzero(cc.detected)[0])
    x1, y1, x2, y2 = cc.boxes[d]
    assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64                 # box in crop pixels
    assert np.isfinite(cc.landmarks[d]).all()
    # reopening with the same samples and settings reuses the cache without detecting again
    det = CountingDetector(yunet)
    build_crop_cache(samples, tmp_path / "c", size=64, margin=0.3, color="gray", splits=splits,
                     detector_obj=det, progress=False)
    assert det.calls == 0


def test_changed_settings_rebuild_and_interrupted_build_resumes(shared, yunet, tmp_path, monkeypatch):
    samples = _fer_samples(shared)
    full = build_crop_cache(samples, tmp_path / "c", size=48, detector_obj=yunet, progress=False)
    ref = np.array(full.crops)
    # simulate an interruption after the first chunk of 2
    monkeypatch.setattr(cache_mod, "CHUNK", 2)
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    meta["done"] = 2
    (tmp_path / "c" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CacheError, match="incomplete"):
        open_crop_cache(tmp_path / "c")
    det = CountingDetector(yunet)
    again = build_crop_cache(samples, tmp_path / "c", size=48, detector_obj=det, progress=False)
    assert det.calls == 4 and np.array_equal(np.array(again.crops), ref)
    # another margin is another key: everything is recomputed
    det2 = CountingDetector(yunet)
    other = build_crop_cache(samples, tmp_path / "c", size=48, margin=0.5, detector_obj=det2, progress=False)
    assert det2.calls == 6 and other.meta["key"] != full.meta["key"]


def test_no_detector_falls_back_to_dataset_box(shared, tmp_path):
    samples = _fer_samples(shared)[:2]
    cc = build_crop_cache(samples, tmp_path / "c", size=48, detector="none", progress=False)
    assert not cc.detected.any() and cc.meta["detection_rate"] == 0.0
    from salface.io import load_image
    assert np.array_equal(cc.crops[0], load_image(samples[0].path))  # whole 48×48 image, no margin
    assert np.isnan(cc.landmarks).all()


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    s = Sample(str(bad), {"gender": 0})
    with pytest.raises(CacheError, match="broken.png"):
        build_crop_cache([s], tmp_path / "c", size=32, detector="none", progress=False)


class RowRamp(SaliencyModel):
    name = "ramp"

    def predict(self, crops):
        n, h, w = crops.shape[:3]
        return np.broadcast_to(np.linspace(0, 1, h, dtype=np.float32)[None, :, None], (n, h, w)).copy()


def test_saliency_cache_and_split_file(shared, tmp_path):
    samples = _fer_samples(shared)
    cc = build_crop_cache(samples, tmp_path / "c", size=32, detector="none", progress=False)
    with pytest.raises(CacheError, match="no 'ramp' saliency cache"):
        cc.saliency("ramp")
    maps = build_saliency_cache(cc, "ramp", batch=4, model=RowRamp(), progress=False)
    assert maps.shape == (6, 32, 32) and maps.dtype == np.uint8
    assert maps[0, 0, 0] == 0 and maps[0, -1, 0] == 255
    assert np.array_equal(open_crop_cache(tmp_path / "c").saliency("ramp"), maps)

    from salface.data.splits import write_split
    sp = write_split({"train": samples[:3], "val": samples[3:4], "test": samples[4:5]}, tmp_path / "s.jsonl")
    counts = apply_split_file(tmp_path / "c", sp)
    assert counts == {"train": 3, "val": 1, "test": 1}
    assert open_crop_cache(tmp_path / "c").split.tolist() == [0, 0, 0, 1, 2, -1]
    wrong = [Sample(samples[0].path, {"expression": 6})]
    with pytest.raises(CacheError, match="label"):
        apply_split_file(tmp_path / "c", write_split({"train": wrong}, tmp_path / "w.jsonl"))
