"""scripts/robustness_families.py: family-pooled paired comparison of robustness reports (known answers)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "robustness_families", Path(__file__).resolve().parents[1] / "scripts" / "robustness_families.py")
rf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rf)

FAM = {"occlusion": ("mask", "hand"), "low resolution": ("resolution",)}


def _report(path: Path, clean: str, conds: dict[str, dict[str, str]], *, seed: int = 0) -> Path:
    """A minimal `salface robustness` report on four faces, one task (gender, truth 0101)."""
    levels = {"mask": [{"share": 0.1}, {"share": 0.2}], "hand": [{"share": 0.1}],
              "resolution": [{"face_width": 64}, {"face_width": 16}]}
    d = {"dataset": "utkface", "seed": seed, "conditions_version": 1, "summary": {},
         "conditions": [{"name": n, "levels": levels[n], "middle": 1} for n in conds],
         "per_face": {"paths": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"], "truth": {"gender": "0101"},
                      "clean": {"gender": clean},
                      "conditions": {n: {s: {"gender": p} for s, p in sev.items()} for n, sev in conds.items()}}}
    path.write_text(json.dumps(d))
    return path


def test_family_accuracy_consistency_and_severities(tmp_path):
    a = _report(tmp_path / "a.json", "0101", {"mask": {"1": "0100", "2": "1.00"}, "hand": {"1": "0101"},
                                              "resolution": {"1": "0101", "2": "1010"}})
    b = _report(tmp_path / "b.json", "0111", {"mask": {"1": "0101", "2": "0101"}, "hand": {"1": "0111"},
                                              "resolution": {"1": "0101", "2": "0101"}})
    cmp = rf.compare_families(a, b, families=FAM, detailed=("resolution", "mask"), n_boot=200)
    t = cmp["tasks"]["gender"]
    occ = t["families"]["occlusion"]
    assert occ["cases"] == 3
    # A correct: mask1 3/4, mask2 1/4 (the '.' face is wrong), hand 4/4 → 8/12; B: 4/4, 4/4, 3/4 → 11/12
    assert occ["accuracy"]["a"] == pytest.approx(8 / 12)
    assert occ["accuracy"]["b"] == pytest.approx(11 / 12)
    assert occ["accuracy"]["delta"] == pytest.approx(3 / 12)
    # consistency with each model's own clean answer: A 3/4 + 1/4 ('.' is changed) + 4/4;
    # B (clean 0111): mask 3/4 + 3/4, hand 4/4
    assert occ["consistency"]["a"] == pytest.approx(8 / 12)
    assert occ["consistency"]["b"] == pytest.approx(10 / 12)
    res = t["families"]["low resolution"]["accuracy"]
    assert res["a"] == pytest.approx(0.5) and res["b"] == pytest.approx(1.0)
    lo, hi = res["ci95"]
    assert lo <= res["delta"] <= hi
    rows = {(r["condition"], r["severity"]): r for r in t["severities"]}
    assert set(rows) == {("resolution", 1), ("resolution", 2), ("mask", 1), ("mask", 2)}
    assert rows[("resolution", 2)]["level"] == {"face_width": 16}
    assert rows[("resolution", 2)]["a"] == 0.0 and rows[("resolution", 2)]["delta"] == 1.0
    assert rows[("resolution", 1)]["p"] == 1.0                 # identical answers
    md = rf.families_markdown(cmp)
    assert "| occlusion (mask, hand; 3) | 66.7 | 91.7 | +25.00" in md


def test_identical_reports_give_no_difference(tmp_path):
    conds = {"mask": {"1": "0110", "2": "0101"}, "hand": {"1": "1101"}, "resolution": {"1": "0.01", "2": "0001"}}
    a = _report(tmp_path / "a.json", "0101", conds)
    cmp = rf.compare_families(a, a, families=FAM, detailed=(), n_boot=100)
    for f in cmp["tasks"]["gender"]["families"].values():
        for key in ("accuracy", "consistency"):
            assert f[key]["delta"] == 0.0 and f[key]["ci95"] == [0.0, 0.0] and f[key]["wilcoxon_p"] == 1.0


def test_bad_input_names_the_reason(tmp_path):
    a = _report(tmp_path / "a.json", "0101", {"mask": {"1": "0101"}, "hand": {"1": "0101"},
                                              "resolution": {"1": "0101"}})
    other_seed = _report(tmp_path / "b.json", "0101", {"mask": {"1": "0101"}, "hand": {"1": "0101"},
                                                       "resolution": {"1": "0101"}}, seed=1)
    with pytest.raises(ValueError, match="differ in seed"):
        rf.compare_families(a, other_seed, families=FAM)
    no_hand = _report(tmp_path / "c.json", "0101", {"mask": {"1": "0101"}, "resolution": {"1": "0101"}})
    with pytest.raises(ValueError, match="occlusion.*hand"):
        rf.compare_families(a, no_hand, families=FAM)
    (tmp_path / "junk.json").write_text("{}")
    assert rf.main([str(a), str(tmp_path / "junk.json")]) == 2
