"""Cache packs (``salface cache pack`` / ``unpack``): what travels to a lent GPU comes back as the
same cache — bit for bit when lossless, as a differently keyed cache when lossy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from salface.training.cache import CacheError, pack_cache, unpack_cache
from toys import toy_cache


def test_png_pack_round_trip_is_bit_identical(tmp_path):
    src = toy_cache(tmp_path)
    info = pack_cache(src, tmp_path / "p.npz", codec="png", progress=False)
    assert info["samples"] == 8 and info["channels"] == 3
    out = unpack_cache(tmp_path / "p.npz", tmp_path / "out", progress=False)
    for k in ("crops", "labels", "split", "boxes", "detected"):
        assert np.array_equal(getattr(out, k), getattr(src, k)), k
    assert np.array_equal(out.landmarks, src.landmarks, equal_nan=True)
    assert np.array_equal(out.soft_targets("gender"), src.soft_targets("gender"))
    assert out.paths == src.paths
    assert out.meta["pack"]["lossless"] and out.meta["pack"]["decoded_match"]
    assert info["mean_abs_error"] == 0.0 and info["bytes_per_crop"] == pytest.approx(info["crop_bytes"] / 8, abs=0.1)
    assert out.meta["key"] != src.meta["key"] and out.meta["pack"]["source_key"] == src.meta["key"]
    assert (out.size, out.color, out.tasks) == (src.size, src.color, src.tasks)


def test_subset_and_lossy_pack_is_another_cache(tmp_path):
    src = toy_cache(tmp_path)
    idx = np.array([6, 1, 4])
    info = pack_cache(src, tmp_path / "j.npz", index=idx, codec="jpeg", quality=90, progress=False)
    out = unpack_cache(tmp_path / "j.npz", tmp_path / "j", progress=False)
    assert len(out) == 3
    assert out.split.tolist() == [0, 1, 2]                      # samples 1, 4, 6, in cache order
    assert out.paths == [src.paths[i] for i in (1, 4, 6)]
    err = np.abs(out.crops.astype(int) - src.crops[[1, 4, 6]].astype(int)).mean()
    assert 0 < err < 4                                          # lossy, but close
    assert info["mean_abs_error"] == pytest.approx(err, abs=1e-3)  # the summary reports that error
    assert out.meta["pack"]["decoded_match"] and not out.meta["pack"]["lossless"]
    pack_cache(src, tmp_path / "j95.npz", index=idx, codec="jpeg", quality=95, progress=False)
    other = unpack_cache(tmp_path / "j95.npz", tmp_path / "j95", progress=False)
    assert other.meta["key"] != out.meta["key"]                 # quality is part of the key


def test_gray_cache_packs_one_channel_and_unpacks_three(tmp_path):
    src = toy_cache(tmp_path, color="gray")
    info = pack_cache(src, tmp_path / "g.npz", codec="png", progress=False)
    assert info["channels"] == 1
    out = unpack_cache(tmp_path / "g.npz", tmp_path / "g", progress=False)
    assert np.array_equal(out.crops, src.crops)


def test_unpack_reuses_a_finished_folder_and_checks_pixels(tmp_path):
    src = toy_cache(tmp_path)
    pack_cache(src, tmp_path / "p.npz", codec="png", progress=False)
    out = unpack_cache(tmp_path / "p.npz", tmp_path / "out", progress=False)
    stamp = out.meta["created"]
    again = unpack_cache(tmp_path / "p.npz", tmp_path / "out", progress=False)
    assert again.meta["created"] == stamp                       # not rebuilt
    # a pack whose stored pixel hash does not match what decodes here is flagged, not trusted
    z = dict(np.load(tmp_path / "p.npz"))
    meta = json.loads(bytes(z["meta_json"]).decode())
    meta["pack"]["decoded_sha256"] = "0" * 64
    meta["key"] = "another"
    z["meta_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "q.npz", **z)
    assert not unpack_cache(tmp_path / "q.npz", tmp_path / "q", progress=False).meta["pack"]["decoded_match"]


def test_unpacking_over_another_cache_leaves_nothing_of_it(tmp_path):
    src = toy_cache(tmp_path)
    pack_cache(src, tmp_path / "with.npz", codec="png", progress=False)
    unpack_cache(tmp_path / "with.npz", tmp_path / "out", progress=False)
    (tmp_path / "out" / "saliency_x.npy").write_bytes(b"old")
    gray = toy_cache(tmp_path, color="gray")
    (gray.root / "targets_gender.npy").unlink()                 # this one has no label distributions
    pack_cache(gray, tmp_path / "without.npz", codec="png", progress=False)
    out = unpack_cache(tmp_path / "without.npz", tmp_path / "out", progress=False)
    assert out.soft_targets("gender") is None
    assert not list((tmp_path / "out").glob("saliency_*"))
    assert np.array_equal(out.crops, gray.crops)


def test_damaged_pack_names_the_file(tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CacheError, match="broken.npz"):
        unpack_cache(bad, tmp_path / "x", progress=False)
    src = toy_cache(tmp_path)
    with pytest.raises(ValueError, match="out of range"):
        pack_cache(src, tmp_path / "p.npz", index=np.array([99]), progress=False)
    with pytest.raises(ValueError, match="codec"):
        pack_cache(src, tmp_path / "p.npz", codec="gif", progress=False)
