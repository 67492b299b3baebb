"""Distillation targets (``salface cache distill``): the teacher's answers mixed into the train
rows' label distributions, val and test rows untouched, the source cache unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from salface.training.cache import open_crop_cache  # noqa: E402
from salface.training.distill import distill_cache  # noqa: E402
from toys import toy_cache, train_logp  # noqa: E402


def test_train_targets_mix_teacher_and_votes_and_nothing_else_changes(tmp_path, gender_toy_run):
    teacher = gender_toy_run
    src = toy_cache(tmp_path)
    before = np.array(src.soft_targets("gender"))
    rec = distill_cache(src.root, teacher, tmp_path / "kd", task="gender", weight=0.25, temperature=2.0,
                        threads=1)
    kd = open_crop_cache(tmp_path / "kd")
    got = kd.soft_targets("gender")
    tri = src.indices("train")
    logp = train_logp(teacher, src)
    soft = np.exp(logp / 2.0)
    soft /= soft.sum(1, keepdims=True)
    assert np.allclose(got[tri], 0.75 * before[tri] + 0.25 * soft, atol=1e-5)
    assert not np.allclose(got[tri], before[tri])              # the teacher did move them
    assert np.allclose(got[tri].sum(1), 1.0, atol=1e-5)
    rest = np.setdiff1d(np.arange(len(src)), tri)
    assert np.array_equal(got[rest], before[rest])               # val and test keep their own
    assert np.array_equal(np.array(open_crop_cache(src.root).soft_targets("gender")), before)
    assert np.array_equal(kd.crops, src.crops) and np.array_equal(kd.labels, src.labels)
    assert kd.paths == src.paths
    written = json.loads((tmp_path / "kd" / "distill.json").read_text())
    assert written == rec and rec["train_rows"] == len(tri) == 4 and rec["weight"] == 0.25


def test_bad_requests_are_refused(tmp_path, gender_toy_run):
    teacher = gender_toy_run
    src = toy_cache(tmp_path)
    with pytest.raises(ValueError, match="weight"):
        distill_cache(src.root, teacher, tmp_path / "kd", task="gender", weight=0.0)
    with pytest.raises(ValueError, match="new folder"):
        distill_cache(src.root, teacher, src.root, task="gender")
    with pytest.raises(Exception, match="no labels for task 'age'"):
        distill_cache(src.root, teacher, tmp_path / "kd", task="age")
