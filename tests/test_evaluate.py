"""Metrics against hand-computed values; reports, plots and run evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from salface.evaluation.metrics import confusion_matrix, mean_std, summarize_runs, task_metrics
from salface.evaluation.reports import plot_confusion, write_comparison, write_report


def test_confusion_matrix_counts_and_skips_missing_labels():
    cm = confusion_matrix([0, 0, 1, -1, 1], [0, 1, 1, 0, 1], 2)
    assert cm.tolist() == [[1, 1], [0, 2]]
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 0], 2)


def test_age_exact_and_one_off():
    # truths 0,1,2,3 ; predictions 0 (exact), 2 (one off), 2 (exact), 7 (four off)
    m = task_metrics("age", [0, 1, 2, 3], [0, 2, 2, 7])
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["one_off_accuracy"] == pytest.approx(0.75)
    assert m["per_class_accuracy"]["0-2"] == 1.0 and m["per_class_accuracy"]["4-6"] == 0.0
    assert m["per_class_accuracy"]["60+"] is None          # no sample of that class
    assert m["mean_class_accuracy"] == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert sum(map(sum, m["confusion_matrix"])) == 4


def test_gender_metrics_have_no_one_off():
    m = task_metrics("gender", [0, 1, 1, 1], [0, 1, 0, 1])
    assert m["accuracy"] == 0.75 and "one_off_accuracy" not in m
    assert m["per_class_accuracy"] == {"male": 1.0, "female": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="no labelled samples"):
        task_metrics("gender", [-1], [0])


def test_mean_std_over_seeds():
    m, s = mean_std([0.80, 0.90])
    assert m == pytest.approx(0.85) and s == pytest.approx(np.sqrt(0.005))
    assert mean_std([0.7]) == (0.7, 0.0)
    runs = [{"gender": {"accuracy": 0.9}}, {"gender": {"accuracy": 0.8}}]
    assert summarize_runs(runs)["gender"]["accuracy"]["mean"] == pytest.approx(0.85)


def test_report_files(tmp_path):
    res = {"age": task_metrics("age", [0, 1, 2, 3, 4], [0, 1, 3, 3, 4]),
           "gender": task_metrics("gender", [0, 1], [0, 0])}
    hist = [{"epoch": 1, "train_loss": 1.0, "val_age_accuracy": 0.4},
            {"epoch": 2, "train_loss": 0.8, "val_age_accuracy": 0.5}]
    md = write_report(tmp_path, "toy", res, command="salface evaluate x", history=hist, stem="toy")
    text = md.read_text()
    assert "| age | 5 | 80.00 % | 100.00 % |" in text and "commit:" in text and "machine:" in text
    for f in ("toy.json", "toy_confusion_age.png", "toy_confusion_gender.png", "toy_curves.png"):
        assert (tmp_path / f).stat().st_size > 0
    assert json.loads((tmp_path / "toy.json").read_text())["results"]["gender"]["accuracy"] == 0.5
    import matplotlib.image as mpimg
    assert mpimg.imread(plot_confusion(res["gender"]["confusion_matrix"], ["m", "f"], tmp_path / "c.png")).ndim == 3
    cmp = write_comparison([("a", res), ("b", res)], tmp_path, stem="cmp").read_text()
    assert "| a | 80.00 % | 50.00 % | 100.00 % |" in cmp


def test_per_image_round_trip_and_paired_comparison(tmp_path):
    from salface.evaluation.reports import read_per_image

    # base right on 8 of 10, candidate on 5
    base = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], bool)
    cand = np.array([1, 1, 1, 0, 0, 0, 0, 1, 1, 0], bool)   # n01 (base wrong, cand right) = 1, n10 = 4
    y = np.zeros(10, int)
    r_base = {"gender": task_metrics("gender", y, np.where(base, 0, 1))}
    r_cand = {"gender": task_metrics("gender", y, np.where(cand, 0, 1))}
    write_report(tmp_path, "b", r_base, stem="base", per_image={"gender": base})
    assert np.array_equal(read_per_image(tmp_path / "base.json")["gender"], base)
    md = write_comparison([("base", r_base), ("cand", r_cand)], tmp_path, stem="pair",
                          per_image=[{"gender": base}, {"gender": cand}]).read_text()
    # exact McNemar on 1 vs 4 discordant pairs: p = 2·P(X ≤ 1 | n = 5, ½) = 2·6/32 = 0.375
    assert "| cand | gender | -30.00 pts | 1 | 4 | 0.375 |" in md
    paired = json.loads((tmp_path / "pair.json").read_text())["_paired_vs_base"]["cand"]["gender"]
    assert paired["mcnemar_exact"]["p_value"] == pytest.approx(0.375)


def test_evaluate_and_ship_a_run(shared, tmp_path, monkeypatch):
    from salface import presets
    from salface.training.cache import build_crop_cache
    from salface.data.base import Sample
    from salface.evaluation.runs import evaluate_run
    from salface.evaluation.ship import ship_run
    from salface.models.registry import load_classifier
    from salface.training.train import train

    root = shared("data", "ferplus", "FER2013Test")
    names = sorted(p.name for p in root.glob("fer*.png"))[:20]
    samples = [Sample(str(root / n), {"expression": i % 7}) for i, n in enumerate(names)]
    cc = build_crop_cache(samples, tmp_path / "cache", size=32, color="gray", detector="none",
                          splits=["train"] * 10 + ["val"] * 5 + ["test"] * 5, progress=False)
    monkeypatch.setitem(presets.PRESETS, "default-expression",
                        presets.PRESETS["default-expression"].with_overrides(input_size=32))
    train("default-expression", cc, out_dir=tmp_path / "run", epochs=1, saliency="none",
          pretrained=False, batch_size=5, progress=False, threads=1, log=lambda s: None)
    res, md = evaluate_run(tmp_path / "run", split="test", out_dir=tmp_path / "bench", threads=1)
    assert res["expression"]["n"] == 5 and md.exists()
    assert (tmp_path / "bench" / "run_test_curves.png").exists()
    ship_run(tmp_path / "run", name="toy-expr", report=tmp_path / "bench" / "run_test.json",
             data="5 FER+ test images", license="test", command="test", directory=tmp_path / "bundled")
    model, cfg = load_classifier("toy-expr", directory=str(tmp_path / "bundled"))
    assert cfg.name == "toy-expr" and cfg.color == "gray"
    entry = json.loads((tmp_path / "bundled" / "manifest.json").read_text())["models"]["toy-expr"]
    assert entry["metrics"]["expression"]["accuracy"] == round(res["expression"]["accuracy"], 4)
    assert cfg.extra["tta_flip"] is False
    # evaluated with flip TTA → shipped with it, so inference matches the reported numbers
    evaluate_run(tmp_path / "run", split="test", tta=True, out_dir=tmp_path / "bench_tta", threads=1)
    ship_run(tmp_path / "run", name="toy-expr-tta", report=tmp_path / "bench_tta" / "run_test.json",
             data="5 FER+ test images", license="test", command="test", directory=tmp_path / "bundled")
    assert load_classifier("toy-expr-tta", directory=str(tmp_path / "bundled"))[1].extra["tta_flip"] is True
    # calibration: a temperature fitted on val ships with the weights; accuracy is the same
    rep = json.loads((tmp_path / "bench" / "run_test.json").read_text())
    temp = rep["extra"]["temperature (fit on val)"]["expression"]
    cal = rep["results"]["expression"]["calibration"]
    assert cal["temperature"] == temp and 0.05 <= temp <= 20
    assert set(cal["before"]) == set(cal["after"]) == {"ece", "nll", "brier", "mean_confidence"}
    assert "## Calibration" in md.read_text()
    assert cfg.extra["temperature"] == {"expression": temp}
    assert entry["metrics"]["expression"]["calibration"]["temperature"] == temp
    res_nocal, _ = evaluate_run(tmp_path / "run", split="test", out_dir=tmp_path / "b2", threads=1, calibrate=False)
    assert "calibration" not in res_nocal["expression"]
    assert res_nocal["expression"]["accuracy"] == res["expression"]["accuracy"]
    # prior correction: fitted on val, reported beside the plain accuracy, shipped as logit_bias
    res_pc, _ = evaluate_run(tmp_path / "run", split="test", out_dir=tmp_path / "b3", threads=1,
                             prior_correction=("expression",))
    assert res_pc["expression"]["accuracy"] == res["expression"]["accuracy"]   # the headline: no correction
    assert 0 <= res_pc["expression"]["prior_corrected"]["accuracy"] <= 1
    rep = json.loads((tmp_path / "b3" / "run_test.json").read_text())
    pc = rep["extra"]["prior correction (fit on val)"]["expression"]
    assert len(pc["bias"]) == 7 and 0 <= pc["tau"] <= 1
    ship_run(tmp_path / "run", name="toy-expr-pc", report=tmp_path / "b3" / "run_test.json",
             data="5 FER+ test images", license="test", command="test", directory=tmp_path / "bundled")
    assert load_classifier("toy-expr-pc", directory=str(tmp_path / "bundled"))[1].extra["logit_bias"] == {
        "expression": pytest.approx(pc["bias"])}
    with pytest.raises(ValueError, match="val"):
        evaluate_run(tmp_path / "run", split="val", out_dir=tmp_path / "b4", prior_correction=("expression",))


def test_fit_prior_correction_by_hand():
    from salface.evaluation.calibration import fit_prior_correction

    # two classes, prior 0.8 / 0.2; the rare class's scores are pushed down by log 4
    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.2).astype(int)
    margin = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1, len(y)) - np.log(4.0)
    z = np.stack([np.zeros(len(y)), margin], 1)
    loose = fit_prior_correction(z, y, [0.8, 0.2], max_drop=1.0)
    # with no accuracy limit the balanced optimum removes the bias: τ·log 4 ≈ log 4 → τ ≈ 1
    assert loose["tau"] == pytest.approx(1.0, abs=0.15)
    assert loose["bias"][1] - loose["bias"][0] == pytest.approx(loose["tau"] * np.log(4.0), abs=1e-4)
    assert loose["val_mean_class_accuracy"]["after"] > loose["val_mean_class_accuracy"]["before"] + 0.05
    strict = fit_prior_correction(z, y, [0.8, 0.2], max_drop=0.0)
    assert strict["val_accuracy"]["after"] >= strict["val_accuracy"]["before"]
    assert strict["tau"] < loose["tau"]
    with pytest.raises(ValueError, match="prior"):
        fit_prior_correction(z, y, [1.0, 0.0])


def test_calibration_metrics_by_hand():
    from salface.evaluation.calibration import calibration_metrics

    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])
    y = np.array([0, 1, 0, 1, -1])                       # the last row is unlabelled
    m = calibration_metrics(probs, y, n_bins=2)
    # bins of the top probability: [0, .5) none; [.5, 1]: all four, confidence .75, accuracy .75
    assert m["ece"] == pytest.approx(0.0)
    m = calibration_metrics(probs, y, n_bins=10)
    # bins .9 (right), .6 (wrong), .8 (right), .7 (right): |1-.9| + |0-.6| + |1-.8| + |1-.7| = 1.2, / 4
    assert m["ece"] == pytest.approx(0.3)
    assert m["mean_confidence"] == pytest.approx(0.75)
    assert m["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8, 0.7])))
    assert m["brier"] == pytest.approx(np.mean([2 * 0.01, 2 * 0.36, 2 * 0.04, 2 * 0.09]))


def test_fit_temperature_recovers_a_known_temperature():
    from salface.evaluation.calibration import calibration_metrics, fit_temperature

    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, (20000, 5))                          # the true logits
    pz = np.exp(z - z.max(1, keepdims=True))
    pz /= pz.sum(1, keepdims=True)
    y = (pz.cumsum(1) > rng.random((len(z), 1))).argmax(1)     # labels drawn from softmax(z)
    over = 3.0 * z                                             # an over-confident model
    t = fit_temperature(over, y)
    assert t == pytest.approx(3.0, rel=0.05)
    # log-probabilities give the same temperature as logits (a constant per row)
    logp = over - np.log(np.exp(over).sum(1, keepdims=True))
    assert fit_temperature(logp, y) == pytest.approx(t, rel=1e-4)
    sm = lambda v: np.exp(v - v.max(1, keepdims=True)) / np.exp(v - v.max(1, keepdims=True)).sum(1, keepdims=True)
    assert calibration_metrics(sm(over / t), y)["ece"] < 0.3 * calibration_metrics(sm(over), y)["ece"]


def test_evaluate_pipeline_counts_missed_faces():
    from types import SimpleNamespace

    from salface.data.base import Sample
    from salface.evaluation.pipeline import evaluate_pipeline
    from salface.types import Box, Face, FaceResult, ImageResult, Prediction

    def fr(box, k):
        p = Prediction("gender", ("male", "female")[k], k, {"male": 1.0 - k, "female": float(k)})
        return FaceResult(face=Face(box), crop_box=box, gender=p)

    results = {
        "a": ImageResult("a", 100, 100, [fr(Box(0, 0, 10, 10), 1), fr(Box(10, 10, 90, 90), 0)]),  # big face wins
        "b": ImageResult("b", 100, 100, [fr(Box(5, 5, 95, 95), 1)]),
        "c": ImageResult("c", 100, 100, []),                                                      # no face
    }
    an = SimpleNamespace(analyze_batch=lambda paths: (results[p] for p in paths))
    samples = [Sample("a", {"gender": 0}), Sample("b", {"gender": 0}), Sample("c", {"gender": 1})]
    r = evaluate_pipeline(samples, ("gender",), an)
    assert r["_detection"] == {"images": 3, "with_face": 2, "rate": pytest.approx(2 / 3)}
    assert r["gender"]["n"] == 2 and r["gender"]["accuracy"] == 0.5
    assert r["gender"]["end_to_end_accuracy"] == pytest.approx(1 / 3)
    # both scored faces say their label with probability 1; one is right: ECE = |0.5 − 1.0|
    assert r["gender"]["calibration_as_shipped"]["ece"] == pytest.approx(0.5)
    assert r["gender"]["calibration_as_shipped"]["mean_confidence"] == pytest.approx(1.0)


def test_old_module_paths_still_work_and_warn():
    """salface.evaluate and salface.stats are deprecated aliases: same objects, and a DeprecationWarning."""
    import importlib
    import sys
    import warnings

    from salface import scoring
    from salface.evaluation import calibration, metrics, reports, runs, ship, stats
    from salface.evaluation import pipeline as e2e
    from salface.utils import git_commit

    for name in ("salface.evaluate", "salface.stats"):
        sys.modules.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old_eval = importlib.import_module("salface.evaluate")
        old_stats = importlib.import_module("salface.stats")
    moved = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any("salface.evaluate moved to the package salface.evaluation" in m for m in moved)
    assert any("salface.stats moved to salface.evaluation.stats" in m for m in moved)
    where = {"task_metrics": scoring, "confusion_matrix": scoring, "predict_arrays": scoring,
             "evaluate_arrays": scoring, "mean_std": metrics, "summarize_runs": metrics,
             "compact_metrics": metrics, "calibration_metrics": calibration, "fit_temperature": calibration,
             "plot_confusion": reports, "plot_curves": reports, "markdown_report": reports,
             "write_report": reports, "read_per_image": reports, "write_comparison": reports,
             "evaluate_run": runs, "TTA_KEY": runs, "TEMPERATURE_KEY": runs, "ship_run": ship,
             "evaluate_pipeline": e2e}
    assert set(where) | {"git_commit", "machine"} == set(old_eval.__all__)
    for name, mod in where.items():
        assert getattr(old_eval, name) is getattr(mod, name), name
    assert old_eval.git_commit is git_commit
    for name in stats.__all__:
        assert getattr(old_stats, name) is getattr(stats, name), name
