"""salface.evaluation.robustness_compare: paired comparison of two robustness reports."""

import json

import pytest

from salface.evaluation.robustness_compare import compare_reports, comparison_markdown


def _report(tmp_path, name, clean, cond, models="m"):
    d = {"dataset": "utkface", "seed": 0, "conditions_version": 1, "commit": "abc",
         "models": [{"name": models, "sha256": "0" * 64}], "summary": {},
         "conditions": [{"name": "jpeg", "middle": 2}, {"name": "detector-whole", "middle": 1}],
         "per_face": {"paths": [f"f{i}.jpg" for i in range(10)], "truth": {"gender": "0000011111"},
                      "clean": {"gender": clean},
                      "conditions": {"jpeg": {"1": {"gender": cond[0]}, "2": {"gender": cond[1]},
                                              "3": {"gender": cond[2]}},
                                     "detector-whole": {"1": {"gender": cond[3]}}}}}
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(d))
    return p


def test_known_answers(tmp_path):
    truth = "0000011111"
    a = _report(tmp_path, "a", truth, [truth, "1111111111", truth, "..........0"[:10]])
    b = _report(tmp_path, "b", truth, [truth, truth, truth, truth], models="n")
    t = compare_reports(a, b)["tasks"]["gender"]
    rows = {r["condition"]: r for r in t["rows"]}
    assert rows["clean"]["a"] == rows["clean"]["b"] == 1.0 and rows["clean"]["p"] == 1.0
    # middle jpeg: A right on 5 of 10 (the men), B on all: 5 discordant pairs, exact p = 2 / 2**5
    assert rows["jpeg"]["a"] == 0.5 and rows["jpeg"]["b"] == 1.0
    assert rows["jpeg"]["p"] == pytest.approx(2 / 32)
    # a face not found ('.') counts as wrong
    assert rows["detector-whole"]["a"] == 0.0
    m = t["mean_over_conditions"]
    # A: jpeg (1 + 0.5 + 1) / 3, whole 0 → (5/6) / 2; B: 1
    assert m["a"] == pytest.approx(5 / 12) and m["b"] == pytest.approx(1.0)
    assert m["ci95"][0] > 0
    assert t["worst_middle"]["a"]["condition"] == "detector-whole"
    assert "| jpeg | 50.0 | 100.0 | +50.0 |" in comparison_markdown(compare_reports(a, b))


def test_refuses_other_faces(tmp_path):
    a = _report(tmp_path, "a", "0000011111", ["0000011111"] * 4)
    d = json.loads(a.read_text())
    d["per_face"]["paths"][0] = "other.jpg"
    b = tmp_path / "b.json"
    b.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="different faces"):
        compare_reports(a, b)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a robustness report"):
        compare_reports(a, bad)
