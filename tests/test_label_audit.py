"""Label audit (``salface cache audit``): train labels that a reference model contradicts by more
than the margin become missing (−1); val and test labels, the crops and the source cache stay."""

from __future__ import annotations

import json

import numpy as np
import pytest

from salface.training.label_audit import flag_disagreements

LOG = np.log


def test_flags_only_confident_disagreements():
    logp = LOG(np.array([[0.9, 0.1],     # answer 0, label 1: margin log 9 ≈ 2.20 → flagged at 1.5
                         [0.7, 0.3],     # answer 0, label 1: margin ≈ 0.85 → kept
                         [0.05, 0.95],   # answer 1 = label → kept however sure
                         [0.99, 0.01],   # label missing → never flagged
                         [0.2, 0.8]]))   # answer 1, label 0: margin log 4 ≈ 1.39 → kept at 1.5
    labels = np.array([1, 1, 1, -1, 0])
    assert flag_disagreements(logp, labels, 1.5).tolist() == [True, False, False, False, False]
    assert flag_disagreements(logp, labels, 1.0).tolist() == [True, False, False, False, True]
    assert flag_disagreements(logp, labels, 0.0).tolist() == [True, True, False, False, True]
    # the margin is to the label's class, not to the runner-up: three classes
    three = LOG(np.array([[0.6, 0.35, 0.05]]))
    assert flag_disagreements(three, np.array([2]), 2.0).tolist() == [True]     # log 12 ≈ 2.48
    assert flag_disagreements(three, np.array([1]), 2.0).tolist() == [False]    # log 1.7 ≈ 0.54
    with pytest.raises(ValueError, match="log-probabilities"):
        flag_disagreements(logp[:3], labels, 1.0)


torch = pytest.importorskip("torch")

from salface.training.cache import open_crop_cache  # noqa: E402
from salface.training.label_audit import audit_cache  # noqa: E402
from toys import toy_cache, train_logp  # noqa: E402


def test_flagged_train_labels_go_missing_and_nothing_else_changes(tmp_path, gender_toy_run):
    reference = gender_toy_run
    src = toy_cache(tmp_path)
    tri = src.indices("train")
    logp = train_logp(reference, src)
    labels = src.task_labels("gender")
    gap = logp[np.arange(len(tri)), 1 - labels[tri]] - logp[np.arange(len(tri)), labels[tri]]
    # a margin between the two disagreements' gaps: one contradicted label goes, the other stays
    wrong = np.sort(gap[gap > 0])
    assert len(wrong) >= 2, "the toy reference should contradict two train labels; pick another seed"
    margin = float((wrong[0] + wrong[1]) / 2)
    expect = gap > margin
    assert 0 < expect.sum() < (gap > 0).sum()

    rec = audit_cache(src.root, reference, tmp_path / "audited", task="gender", margin=margin, threads=1)
    out = open_crop_cache(tmp_path / "audited")
    got = out.task_labels("gender")
    assert np.array_equal(got[tri][expect], -np.ones(expect.sum()))
    assert np.array_equal(got[tri][~expect], labels[tri][~expect])
    rest = np.setdiff1d(np.arange(len(src)), tri)
    assert np.array_equal(got[rest], labels[rest])                        # val and test untouched
    assert np.array_equal(open_crop_cache(src.root).task_labels("gender"), labels)  # source untouched
    assert np.array_equal(out.crops, src.crops) and out.paths == src.paths
    assert np.allclose(out.soft_targets("gender"), src.soft_targets("gender"))
    written = json.loads((tmp_path / "audited" / "audit.json").read_text())
    assert written == rec and rec["flagged"] == int(expect.sum()) == len(rec["faces"])
    assert rec["train_rows"] == 4 and rec["margin"] == margin
    margins = [f["margin"] for f in rec["faces"]]
    assert margins == sorted(margins, reverse=True) and min(margins) > margin
    assert all(f["label"] != f["answer"] for f in rec["faces"])
    assert sum(rec["flagged_by_label_and_answer"].values()) == rec["flagged"]


def test_bad_requests_are_refused(tmp_path, gender_toy_run):
    reference = gender_toy_run
    src = toy_cache(tmp_path)
    with pytest.raises(ValueError, match="margin"):
        audit_cache(src.root, reference, tmp_path / "a", task="gender", margin=-1.0)
    with pytest.raises(ValueError, match="new folder"):
        audit_cache(src.root, reference, src.root, task="gender")
    with pytest.raises(Exception, match="no labels for task 'age'"):
        audit_cache(src.root, reference, tmp_path / "a", task="age")
