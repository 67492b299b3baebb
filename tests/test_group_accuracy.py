"""scripts/group_accuracy.py: per-group accuracy from per-image results (known answers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "group_accuracy", Path(__file__).resolve().parents[1] / "scripts" / "group_accuracy.py")
ga = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ga)


def test_groups_and_gaps():
    gender = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    years = np.array([5, 30, 40, 50, 10, 15, 60, 70])
    race = np.array([0, 0, 1, 1, 2, 2, 3, -1])
    correct = {"gender": np.array([1, 1, 0, 0, 1, 1, 1, 1], bool)}
    t = ga.group_table(correct, gender, years, race)["gender"]
    assert t["all"]["accuracy"] == pytest.approx(6 / 8)
    assert t["women"]["accuracy"] == pytest.approx(0.5) and t["men"]["accuracy"] == pytest.approx(1.0)
    assert t["gap women-men (points)"]["accuracy"] == pytest.approx(-50.0)
    assert t["ages 0-19"]["n"] == 3 and t["ages 0-19"]["accuracy"] == pytest.approx(1.0)
    assert t["ages 20+"]["accuracy"] == pytest.approx(3 / 5)
    assert t["gap 0-19 - adults (points)"]["accuracy"] == pytest.approx(40.0)
    assert t["race white"]["accuracy"] == 1.0 and t["race black"]["accuracy"] == 0.0
    assert "race others" not in t                         # no sample of that race
    assert ga.age_years("/x/26_1_3_2017.jpg.chip.jpg") == 26
    with pytest.raises(ValueError, match="same cache"):
        ga.group_table({"age": np.ones(3, bool)}, gender, years, race)


def test_balanced_accuracy_weighs_every_cell_alike():
    gender = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, -1])
    age = np.array([2, 2, 2, 2, 2, 2, 5, 5, 5, 2])
    race = np.array([0, 0, 0, 0, 1, 1, 1, 1, -1, 0])
    cl = ga.cells(gender, age, race, min_cell=2)
    assert sorted(len(c) for c in cl) == [2, 2, 4]            # unknown gender / race in no cell
    correct = np.array([1, 1, 1, 1, 0, 0, 1, 0, 1, 1], bool)
    assert ga.balanced_accuracy(correct, cl) == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert len(ga.cells(gender, age, race, min_cell=3)) == 1
    d, lo, hi = ga.balanced_bootstrap(correct, np.ones(10, bool), cl, n_boot=200)
    assert d == pytest.approx(1 - 0.5) and lo <= d <= hi
    years = np.array([30, 40, 50, 60, 15, 30, 40, 50, 40, 30])
    t = ga.group_table({"gender": correct}, gender, years, race, cl)["gender"]
    assert "older non-White women" not in t                 # these women are all White (race 0)
    assert t["balanced (3 cells)"]["accuracy"] == pytest.approx(0.5)


def test_cell_changes_sorted_by_loss():
    gender = np.array([1, 1, 0, 0])
    age = np.array([4, 4, 0, 0])
    race = np.array([1, 1, 3, 3])
    cl = ga.cells(gender, age, race, min_cell=2)
    a = np.array([1, 0, 1, 1], bool)
    b = np.array([1, 1, 0, 1], bool)
    rows = ga.cell_changes(a, b, gender, age, race, cl)
    assert [(r["gender"], r["age"], r["race"]) for r in rows] == [("men", "0-2", "indian"), ("women", "25-32", "black")]
    assert (rows[0]["a"], rows[0]["b"]) == (1.0, 0.5) and (rows[1]["a"], rows[1]["b"]) == (0.5, 1.0)
