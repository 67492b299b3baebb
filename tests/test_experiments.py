"""Each experiment command end to end on a tiny subset of real data (1 epoch of 2 batches)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from salface.training.cache import build_crop_cache
from salface.data.base import Sample
from salface.experiments import (RunSpec, Settings, adience, affectnet, backbones, cache_view, cam_experiment,
                                 fairness, file_lock, heads, ratio_sweep, run_one, saliency_onoff, saliency_source,
                                 subset_index, update_index)

SIZE = 64  # the smallest input AlexNet's conv/pool stack accepts is 63 px


def _utk_samples(root: Path, n: int) -> list[Sample]:
    from salface.data.utkface import parse_utk_name, utk_age_to_group

    out = []
    for p in sorted(root.glob("*.jpg"))[::397][:n]:      # spread over ages
        info = parse_utk_name(p.name)
        if info is None:
            continue
        out.append(Sample(str(p), {"age": utk_age_to_group(info["age_years"]), "gender": info["gender"]},
                          meta={"race": info["race"]}))
    return out


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    from conftest import shared_path

    yunet = shared_path("weights", "yunet", "face_detection_yunet_2023mar.onnx")
    utk_root = shared_path("data", "utkface")
    fer_root = shared_path("data", "ferplus", "FER2013Test")
    base = tmp_path_factory.mktemp("exp_caches")
    utk = _utk_samples(utk_root, 40)
    utk_c = build_crop_cache(utk, base / "utk", size=SIZE, tasks=("age", "gender"), progress=False,
                             splits=["train"] * 24 + ["val"] * 8 + ["test"] * (len(utk) - 32),
                             detector_kwargs={"model_path": str(yunet)})
    from salface.data.ferplus import read_ferplus

    fer = read_ferplus(fer_root.parent, "test")[::97][:32]            # the real reader and labels
    fer_c = build_crop_cache(fer, base / "fer", size=SIZE, color="gray", tasks=("expression",), progress=False,
                             splits=["train"] * 16 + ["val"] * 8 + ["test"] * (len(fer) - 24),
                             detector_kwargs={"model_path": str(yunet)})
    return {"utk": utk_c.root, "fer": fer_c.root, "yunet": yunet, "shared_utk": utk_root}


@pytest.fixture
def settings(caches, tmp_path):
    out = tmp_path / "docs"
    out.mkdir()
    (out / "README.md").write_text("intro\n<!-- exp:saliency-onoff -->\nnot run yet\n<!-- /exp:saliency-onoff -->\nend\n")
    return Settings.tiny(runs_dir=tmp_path / "runs", out_dir=out, utk_cache=caches["utk"], fer_cache=caches["fer"],
                         cache_dir=tmp_path / "cache", saliency="spectral-residual", device="cpu",
                         pretrained=False, threads=1, command="salface experiment --tiny test",
                         log=lambda m: None)


def test_subset_and_view(caches):
    from salface.training.cache import open_crop_cache

    cc = open_crop_cache(caches["utk"])
    idx = subset_index(cc, {"train": 5, "val": None, "test": 3})
    assert len(idx) == 5 + 8 + 3 and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, subset_index(cc, {"train": 5, "val": None, "test": 3}))   # seeded
    v = cache_view(cc, idx)
    assert len(v) == 16 and v.crops.shape[1:] == (SIZE, SIZE, 3)
    assert [int((v.split == k).sum()) for k in (0, 1, 2)] == [5, 8, 3]
    assert v.paths == [cc.paths[i] for i in idx]


def test_view_carries_the_rows_of_its_label_distributions(caches, tmp_path):
    """A subset's soft targets are its own rows, not the parent's whole array (FER+ votes)."""
    from salface.training.cache import open_crop_cache

    root = tmp_path / "fer"
    shutil.copytree(caches["fer"], root)
    cc = open_crop_cache(root)
    dist = np.zeros((len(cc), 7), np.float32)
    dist[np.arange(len(cc)), np.arange(len(cc)) % 7] = 1.0
    dist[:, 0] += np.arange(len(cc), dtype=np.float32)        # row i is recognisable
    np.save(root / "targets_expression.npy", dist)
    idx = subset_index(cc, {"train": 5, "val": 3, "test": None})
    v = cache_view(cc, idx)
    assert np.array_equal(v.soft_targets("expression"), dist[idx])
    assert cache_view(open_crop_cache(caches["utk"]), idx[:4]).soft_targets("age") is None


def test_saliency_onoff_end_to_end_and_reuse(settings):
    settings.seeds = (0, 1)
    md = saliency_onoff(settings, ("utkface",))
    res = json.loads((md.parent / "result.json").read_text())
    g = res["datasets"]["utkface"]["tasks"]["gender"]
    assert len(g["accuracy_without"]) == len(g["accuracy_with"]) == 2
    boot = g["tests"]["bootstrap_mean_over_seeds"]
    assert 0 < boot["p_value"] <= 1 and boot["ci_low"] <= boot["difference"] <= boot["ci_high"]
    assert len(g["tests"]["mcnemar_per_seed"]) == 2
    assert "age" in res["datasets"]["utkface"]["tasks"]
    assert "Saliency does not help here" in res["verdict"] or "helps significantly" in res["verdict"]
    text = md.read_text()
    assert "different data" in text and "62.11 ± 3.2 %" in text and "commit:" in text
    assert (md.parent / "accuracy.png").stat().st_size > 1000
    index = (settings.out_dir / "README.md").read_text()
    assert "not run yet" not in index and "p (seeds + images)" in index and index.endswith("end\n")
    primary = g["tests"]["primary"]          # with two seeds the verdict rests on seeds + images
    assert primary == g["tests"]["bootstrap_seeds_and_images"]
    assert primary["ci_low"] <= primary["difference"] <= primary["ci_high"]
    # a second call reuses the finished runs: nothing is retrained
    evals = sorted(settings.runs_dir.glob("*/eval_test.json"))
    assert len(evals) == 4
    stamps = [p.stat().st_mtime_ns for p in evals]
    saliency_onoff(settings, ("utkface",))
    assert [p.stat().st_mtime_ns for p in evals] == stamps


def test_run_one_resumes_an_interrupted_run(settings):
    spec = RunSpec(dataset="utkface", cache=str(settings.utk_cache), tasks=("gender",), saliency="none",
                   epochs=2, train_limit=None, val_limit=None, test_limit=None, batch_size=8, max_steps=1,
                   pretrained=False)
    from salface.training.cache import open_crop_cache
    from salface.training.train import train
    from salface.experiments.runs import _preset_for

    cc = open_crop_cache(settings.utk_cache)
    run_dir = settings.runs_dir / spec.name(cc.meta["key"])
    # an interrupted run: one of two epochs done
    train(_preset_for(spec, cc), cache_view(cc, np.arange(len(cc))), out_dir=run_dir, seed=0, saliency="none",
          max_steps=1, progress=False, stop_after=1, threads=1, log=lambda m: None)
    r = run_one(spec, settings)
    assert [h["epoch"] for h in r.history] == [1, 2]
    assert r.info["n_test"] == 8 and "gender" in r.metrics


def test_ratio_sweep(settings):
    md = ratio_sweep(settings, "ferplus", (0.0, 0.3, 1.0))
    res = json.loads((md.parent / "result.json").read_text())
    assert res["ratios"] == [0.0, 0.3, 1.0] and len(res["test_accuracy"]) == 3
    assert set(res["histories"]) == {"0", "0.3", "1"}
    assert md.parent.name == "ratio-sweep-ferplus" and res["task"] == "expression"
    assert (md.parent / "curves.png").exists() and (md.parent / "test_vs_ratio.png").exists()
    assert "Figure 3" in md.read_text()


def test_saliency_source(settings):
    md = saliency_source(settings, "utkface", ("spectral-residual", "centre", "none"))
    res = json.loads((md.parent / "result.json").read_text())
    assert set(res["sources"]) == {"spectral-residual", "centre", "none"}
    assert "vs_none" in res["sources"]["centre"] and "vs_centre" in res["sources"]["spectral-residual"]
    assert (md.parent / "accuracy.png").exists()


def test_backbones_state_what_was_pretrained(settings):
    md = backbones(settings, "utkface", ("gilnet", "alexnet_gap"))
    text = md.read_text()
    assert "| gilnet | no (from scratch) |" in text and "89.8 ± 1.3 %" in text
    res = json.loads((md.parent / "result.json").read_text())
    assert res["backbones"]["alexnet_gap"]["pretrained"] is False


def test_cam_experiment(settings):
    spec = RunSpec(dataset="utkface", cache=str(settings.utk_cache), tasks=("age", "gender"),
                   saliency="spectral-residual", epochs=1, train_limit=24, val_limit=8, test_limit=16,
                   batch_size=8, max_steps=2, pretrained=False)
    run = run_one(spec, settings)
    md = cam_experiment(settings, [run.run_dir], n_examples=2)
    res = json.loads((md.parent / "result.json").read_text())
    entry = res["models"][run.run_dir.name]["tasks"]
    for t in ("age", "gender"):
        assert entry[t]["n_faces"] >= 1
        assert 0 < entry[t]["uniform"]["features"]["mean"] < 1
    assert len(list(md.parent.glob("cam_mobilenet_v2_*.png"))) == 2


def test_cam_of_a_bundled_model_needs_a_cache_of_its_input(settings, caches, tmp_path):
    """The shipped classifiers are explained on a cache of their own size and colour; a 64 px
    cache for a 96 px model is refused with both sizes named, not silently resized."""
    with pytest.raises(ValueError, match="96 px rgb.*64 px rgb"):
        cam_experiment(settings, models=("default-age-gender",), name="cam-shipped")
    # a 96 px cache of a few of the same faces: the bundled model's CAMs are measured and reported
    samples = _utk_samples(caches["shared_utk"], 40)[-8:]
    c96 = build_crop_cache(samples, tmp_path / "utk96", size=96, tasks=("age", "gender"), progress=False,
                           splits=["test"] * len(samples),
                           detector_kwargs={"model_path": str(caches["yunet"])})
    from salface.training.cache import build_saliency_cache
    from salface.saliency import get_saliency
    build_saliency_cache(c96, "mlnet", model=get_saliency("mlnet"), progress=False)
    settings.utk_cache = c96.root
    md = cam_experiment(settings, models=("default-age-gender",), n_examples=2, name="cam-shipped")
    assert md.parent.name == "cam-shipped"
    res = json.loads((md.parent / "result.json").read_text())
    entry = res["models"]["bundled default-age-gender"]
    assert entry["cache"] == str(c96.root)
    assert set(entry["tasks"]) == {"age", "gender"}
    assert entry["tasks"]["gender"]["n_faces"] == int(np.sum(c96.detected))


def test_fairness_per_group(settings, monkeypatch, tmp_path):
    empty = tmp_path / "bundled"
    empty.mkdir()
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(empty))
    with pytest.raises(ValueError, match="no shipped classifier"):
        fairness(settings)
    spec = RunSpec(dataset="utkface", cache=str(settings.utk_cache), tasks=("age", "gender"), saliency="none",
                   epochs=1, batch_size=8, max_steps=1, pretrained=False)
    run = run_one(spec, settings)
    md = fairness(settings, [run.run_dir])
    text = md.read_text()
    assert "gender accuracy by race" in text and "Smallest group" in text
    res = json.loads((md.parent / "result.json").read_text())
    model = next(iter(res["models"].values()))
    races = model["gender"]["groups"]["race"]
    assert sum(v["n"] for v in races.values()) == 8         # every test face in one race group
    assert len(list(md.parent.glob("*_gender_race.png"))) == 1


def test_adience_five_fold_on_the_real_samples(settings, caches):
    from conftest import shared_path

    root = shared_path("data", "adience")
    # two folds + the empty fold 3 keep the test short; the command's default is all five
    md = adience(settings, root, preset="default", size=SIZE, folds=(0, 3, 4),
                 detector_kwargs={"model_path": str(caches["yunet"])})
    text = md.read_text()
    assert "fold 3: 0 test" in text                           # no image of fold 3 here
    res = json.loads((md.parent / "result.json").read_text())
    assert set(res["arms"]) == {"without saliency", "with spectral-residual (r = 0.3)"}
    arm = res["arms"]["with spectral-residual (r = 0.3)"]
    assert sorted(arm["per_fold"]) == ["0", "4"]
    assert "±" in text and (md.parent / "confusion_age_with.png").exists()
    assert "age" in arm["summary"] and len(arm["summary"]["age"]["confusion_matrix"]) == 8
    assert "92.1" in text                                     # the paper's Table 4 diagonal beside ours


def test_affectnet_protocol_on_files_in_the_real_format(settings, caches, tmp_path):
    imgs = tmp_path / "Manually_Annotated_Images"
    src = sorted(Path(caches["shared_utk"]).glob("*.jpg"))[::211][:35]
    rows = []
    for i, p in enumerate(src):
        rel = f"{i % 3}/{p.name}"
        (imgs / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, imgs / rel)
        rows.append((rel, i % 7))
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"

    def line(rel, code):
        return f"{rel},0,0,200,200,{';'.join(['1.0'] * 136)},{code},0.1,-0.2\n"

    (tmp_path / "training.csv").write_text(header + "".join(line(r, c) for r, c in rows[:28]))
    (tmp_path / "validation.csv").write_text("".join(line(r, c) for r, c in rows[28:]))   # headerless, as some copies
    md = affectnet(settings, tmp_path / "training.csv", tmp_path / "validation.csv", imgs, preset="default",
                   size=SIZE, per_class=1, detector_kwargs={"model_path": str(caches["yunet"])})
    res = json.loads((md.parent / "result.json").read_text())
    assert set(res["arms"]) == {"without saliency", "with spectral-residual (r = 0.3)"}
    assert res["arms"]["without saliency"]["per_run"]["test"]["expression"]["n"] == 7
    assert (md.parent / "confusion_expression_with.png").exists()
    assert "62.4" in md.read_text()                           # Table 5's neutral diagonal


def test_update_index_only_touches_its_block(tmp_path):
    p = tmp_path / "README.md"
    p.write_text("a\n<!-- exp:x -->\nold\n<!-- /exp:x -->\n<!-- exp:y -->\nkeep\n<!-- /exp:y -->\n")
    update_index(p, "x", ["new", "lines"])
    assert p.read_text() == "a\n<!-- exp:x -->\nnew\nlines\n<!-- /exp:x -->\n<!-- exp:y -->\nkeep\n<!-- /exp:y -->\n"


def test_cli_experiment_and_explain_errors(settings, caches, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from salface.cli import app

    r = CliRunner().invoke(app, ["experiment", "--tiny", "--quiet", "--runs-dir", str(settings.runs_dir),
                                 "--out", str(settings.out_dir), "--utk-cache", str(caches["utk"]),
                                 "--fer-cache", str(caches["fer"]), "--scratch", "--device", "cpu", "--threads", "1",
                                 "saliency-source", "--sources", "centre,none"])
    assert r.exit_code == 0, r.output
    assert (settings.out_dir / "saliency-source" / "README.md").exists()
    empty = tmp_path / "bundled"
    empty.mkdir()
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(empty))
    img = sorted(Path(caches["shared_utk"]).glob("*.jpg"))[0]
    r = CliRunner().invoke(app, ["explain", str(img), "--out", str(tmp_path / "ex")])
    assert r.exit_code == 2
    assert "shipped classifiers" in r.output and "--run" in r.output
    # with a training run instead: a panel and JSON for the face
    run = next(settings.runs_dir.glob("utkface-gender-preset-centre-*"))
    r = CliRunner().invoke(app, ["explain", str(img), "--out", str(tmp_path / "ex"), "--run", str(run),
                                 "--detector-model", str(caches["yunet"])])
    assert r.exit_code == 0, r.output
    out = json.loads((tmp_path / "ex" / "explain.json").read_text())
    assert out[0]["predictions"]["gender"]["label"] in ("male", "female")
    assert "gender" in out[0]["cam_shares"] and (tmp_path / "ex" / out[0]["panel"]).exists()


def test_paper_presets_train_from_scratch_without_imagenet_weights(settings, monkeypatch):
    from salface.experiments import runs
    from salface.training.presets import get_preset

    monkeypatch.setattr(runs, "_weights_available", lambda b: False)
    p = runs._protocol_preset(get_preset("saf-bage", ("age", "gender")), settings, 96)
    assert (p.backbone, p.pretrained, p.freeze, p.input_size) == ("alexnet", False, 0, 96)
    monkeypatch.setattr(runs, "_weights_available", lambda b: True)
    settings.pretrained = None
    p = runs._protocol_preset(get_preset("saf-bage", ("age", "gender")), settings, 227)
    assert (p.pretrained, p.freeze) == (True, -1)                 # the paper's recipe: fc6-fc8 only


def test_plan_lists_shared_runs_once(settings):
    from salface.experiments import plan

    settings.seeds = (0, 1, 2)
    p = plan(settings, rate64=100.0)
    n = {k: len(v) for k, v in p["experiments"].items()}
    # 1: 2 datasets × 2 arms × 3 seeds; 2: 7 ratios; 3: 5 sources × 3 seeds minus the r = 0.3 ML-Net
    # seed-0 run of 2 and the no-saliency seed-0 run (= r = 0 of 2); 4: 4 backbones minus MobileNetV2
    # heads: the two-head runs are experiment 1's, the gender ones experiment 3's: 3 new age runs
    assert n == {"saliency-onoff": 12, "ratio-sweep": 7, "saliency-source": 13, "backbones": 3, "heads": 3,
                 "cam": 0}
    # tiny runs: 2 batches of 8 per epoch, 1 epoch = 16 faces; at 100 img/s (64 px) = 0.16 s each
    assert p["total_minutes"] == pytest.approx(38 * 16 / 100 / 60, abs=0.1)
    assert all(r["status"] == "to do" for rows in p["experiments"].values() for r in rows)


def test_cli_names_a_missing_cache(tmp_path):
    from typer.testing import CliRunner

    from salface.cli import app

    missing = tmp_path / "no-such-cache"
    r = CliRunner().invoke(app, ["experiment", "--tiny", "--utk-cache", str(missing), "--fer-cache", str(missing),
                                 "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "docs"), "plan"])
    assert r.exit_code == 2 and "no-such-cache" in r.output and "salface cache crops" in r.output


def test_heads_trains_its_runs_two_at_a_time_in_separate_processes(settings):
    msgs: list[str] = []
    settings.seeds, settings.jobs, settings.log = (0, 1), 2, msgs.append
    md = heads(settings)
    # 2 seeds × (age+gender, age, gender), all trained by the two worker processes
    assert any("training 6 runs, 2 at a time, 1 thread(s) each" in m for m in msgs)
    assert sum(m.startswith("finished ") for m in msgs) == 6
    evals = sorted(settings.runs_dir.glob("*/eval_test.json"))
    assert len(evals) == 6
    res = json.loads((md.parent / "result.json").read_text())
    for t in ("age", "gender"):
        e = res["tasks"][t]
        assert len(e["accuracy_shared"]) == len(e["accuracy_per_task_network"]) == 2
        assert len(e["tests"]["mcnemar_per_seed"]) == 2
    assert len(res["tasks"]["age"]["one_off_shared"]) == 2
    # the shared network has one more head than each single-task one, the same trunk
    assert res["params"]["shared"] < res["params"]["per_task_total"]
    assert "per task" in md.read_text() and "age, 1-off" in md.read_text()
    # a second call trains nothing
    stamps = [p.stat().st_mtime_ns for p in evals]
    msgs.clear()
    heads(settings)
    assert [p.stat().st_mtime_ns for p in evals] == stamps and not any("training" in m for m in msgs)


def test_file_lock_makes_a_second_holder_wait(tmp_path):
    import threading
    import time

    events: list[tuple[str, float]] = []
    msgs: list[str] = []

    def second():
        with file_lock(tmp_path / "x.lock", "run x", msgs.append):
            events.append(("second in", time.monotonic()))

    with file_lock(tmp_path / "x.lock", "run x", msgs.append):
        th = threading.Thread(target=second)
        th.start()
        time.sleep(0.3)
        events.append(("first out", time.monotonic()))
    th.join(5)
    assert [e[0] for e in events] == ["first out", "second in"]
    assert msgs == ["waiting: another process is working on run x"]


def test_train_runs_reports_a_failed_run_after_finishing_the_others(settings):
    from salface.experiments import train_runs

    settings.jobs = 2
    base = dict(dataset="utkface", cache=str(settings.utk_cache), tasks=("gender",), saliency="none", epochs=1,
                train_limit=None, val_limit=None, test_limit=None, batch_size=8, max_steps=1, pretrained=False)
    good, bad = RunSpec(**base), RunSpec(**base, backbone="no-such-net")
    with pytest.raises(RuntimeError, match="1 run\\(s\\) failed; first: .*no-such-net"):
        train_runs([bad, good], settings)
    assert len(list(settings.runs_dir.glob("*/eval_test.json"))) == 1


def _device_script():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "device_experiments.py"
    spec = importlib.util.spec_from_file_location("device_experiments", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_device_script_hands_back_records_without_weights(tmp_path, monkeypatch):
    """What comes back from the GPU: every run's small files, never weights or optimizer state."""
    import tarfile

    mod = _device_script()
    monkeypatch.chdir(tmp_path)
    run = Path("runs/experiments/utkface-gender-x-s0-12345678")
    run.mkdir(parents=True)
    for f in ("eval_test.json", "metrics.csv", "test_predictions.npz", "best.safetensors", "optimizer.pt"):
        (run / f).write_bytes(b"x")
    (run.parent / ".locks").mkdir()
    (run.parent / ".locks" / "r.lock").write_bytes(b"")
    mod._records(Path("runs/experiments"), tmp_path, "runs.tgz")
    with tarfile.open(tmp_path / "runs.tgz") as tar:
        names = sorted(Path(n).name for n in tar.getnames())
    assert names == ["eval_test.json", "metrics.csv", "test_predictions.npz"]


def test_device_script_trains_each_shared_run_once(settings):
    mod = _device_script()
    utk = mod.specs_for("utkface", settings)
    names = {sp.name() for sp in utk}
    # experiment 1 (2 arms), ratios (7, r = 0 and 0.3 shared with 3), sources (5), backbones (3 new),
    # heads (age alone), for one seed: 2 + 7 + 3 + 3 + 1 = 16 distinct runs
    assert len(names) == 16
    assert {sp.dataset for sp in mod.specs_for("ferplus", settings)} == {"ferplus"}
