"""benchmarks/speed_budget.py (arithmetic on two reports) and the peer benchmark's configurations."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

from conftest import ROOT


def _load(name, rel):
    spec = importlib.util.spec_from_file_location(name, ROOT / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sb = _load("speed_budget", "benchmarks/speed_budget.py")
bp = _load("bench_peer", "benchmarks/bench_peer.py")


def test_budget_bounds_from_stage_costs():
    peer = {"commit": "p", "sets": {"utk448": {"best_peer": "peer (2 workers)", "configs": {
        "peer (2 workers)": {"summary": {"faces_per_s": {"median": 100.0}}}}}}}
    stages = {"commit": "s", "stages": {"decode": {"ms_per_face": 1.0}, "detect": {"ms_per_face": 4.0},
                                        "crop": {"ms_per_face": 0.5}, "saliency": {"ms_per_face": 0.5},
                                        "classify": {"ms_per_face": 1.5}, "end_to_end": {"ms_per_face": 8.0}}}
    b = sb.budget(peer, stages)
    assert b["goal_faces_per_s"] == 500.0
    measured, no_detect, no_clf = b["cases"].values()
    assert measured["faces_per_s"] == 125.0 and measured["ratio_to_peer"] == 1.25
    assert no_detect["ms_per_face"] == 2.5 and no_detect["ratio_to_peer"] == 4.0   # networks only
    assert no_clf["ms_per_face"] == 1.0 and no_clf["ratio_to_peer"] == 10.0


def test_peer_benchmark_names_detectors_except_the_default(monkeypatch, tmp_path):
    monkeypatch.setattr(bp, "salface_exe", lambda: ["salface"])
    args = SimpleNamespace(backends=["default"], detectors=["auto", "blazeface"], profiles=["default"], peer_workers=[2],
                           salface_tasks="age,gender,expression", peer_python=tmp_path / "py")
    cfgs = bp.configs(args, "utk448", tmp_path)
    sal = [c for c in cfgs if c["tool"] == "salface"]
    assert [c["name"] for c in sal] == ["salface (default backend)", "salface (default backend, blazeface detector)"]
    assert "--detector" not in sal[0]["cmd"] and sal[1]["cmd"][-2:] == ["--detector", "blazeface"]
    args.profiles = ["default", "fast"]
    fast = [c for c in bp.configs(args, "utk448", tmp_path) if c["tool"] == "salface" and c["profile"] == "fast"]
    assert [c["name"] for c in fast] == ["salface (default backend, fast)", "salface (default backend, blazeface detector, fast)"]
    assert all(c["cmd"][-1] == "--fast" for c in fast)
    args.profiles = ["default"]
    crops = [c for c in bp.configs(args, "crops", tmp_path) if c["tool"] == "salface"]
    assert len(crops) == 1 and crops[0]["cmd"][-2:] == ["--detector", "whole"]
    assert crops[0]["name"] == "salface (default backend)"
