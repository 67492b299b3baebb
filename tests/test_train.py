"""Training: presets, schedules, augmentation, checkpoints, resume and determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from salface.training.cache import build_crop_cache
from salface.data.base import Sample
from salface.training.presets import Augment, get_preset
from salface.training.train import augment_batch, class_weights, load_run, lr_factor, train

FER_TEST = "data", "ferplus", "FER2013Test"


def test_paper_presets_carry_the_papers_numbers():
    ag = get_preset("saf-bage", ("age", "gender"))
    assert (ag.backbone, ag.dropout, ag.lr, ag.epochs, ag.batch_size, ag.freeze) == ("alexnet", 0.4, 1e-3, 30, 128, -1)
    assert ag.augment.flip and ag.augment.rotate == 3.0
    ex = get_preset("saf-bage", ("expression",))
    assert (ex.dropout, ex.epochs, ex.milestones, ex.class_weighted, ex.freeze) == (0.35, 40, (30,), True, 4)
    vg = get_preset("vegac", ("expression",))
    assert (vg.backbone, vg.freeze, vg.optimizer, vg.lr, vg.epochs, vg.dropout) == ("vgg16", 10, "adam", 1e-3, 80, 0.5)
    assert get_preset("default", ("gender",)).tasks == ("gender",)
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("nope")


def test_schedules():
    vg = get_preset("vegac-expression")
    # lr ÷10 at epoch 50, then ÷10 every 10 epochs
    assert [lr_factor(vg, e) for e in (0, 49.9, 50, 59, 60, 70, 79)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.001, 0.001])
    ex = get_preset("saf-bage-expression")
    assert lr_factor(ex, 29.5) == 1 and lr_factor(ex, 30) == pytest.approx(0.1)
    d = get_preset("default-expression")
    assert lr_factor(d, 0.0) < 0.01                      # warm-up starts near 0
    assert lr_factor(d, d.warmup_epochs) == pytest.approx(1.0)
    assert lr_factor(d, d.epochs) == pytest.approx(0.0, abs=1e-9)


def test_class_weights_are_inverse_frequency():
    w = class_weights(np.array([0, 0, 0, 1, -1]), 3).numpy()
    # counts 3, 1, 0: total 4 over 2 present classes → 4/3/2, 4/1/2, 0
    assert w == pytest.approx([2 / 3, 2.0, 0.0])


def test_augment_moves_crop_and_map_together():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    maps = crops[..., 0].copy()
    a, m = augment_batch(crops, maps, Augment(flip=True, rotate=10, shift=0.1, scale=0.1), rng)
    assert np.array_equal(a[..., 0], m)
    assert not np.array_equal(a, crops)
    f, _ = augment_batch(crops, None, Augment(flip=True), np.random.default_rng(1))
    for i in range(6):                                   # pure flips: each sample mirrored or not
        assert np.array_equal(f[i], crops[i]) or np.array_equal(f[i], crops[i][:, ::-1])


@pytest.fixture
def tiny_cache(shared, tmp_path):
    root = shared(*FER_TEST)
    names = sorted(p.name for p in root.glob("fer*.png"))[:24]
    samples = [Sample(str(root / n), {"expression": i % 7}) for i, n in enumerate(names)]
    splits = ["train"] * 16 + ["val"] * 8
    return build_crop_cache(samples, tmp_path / "cache", size=32, color="gray", detector="none",
                            splits=splits, progress=False)


def _run(cache, out, epochs, resume=False, stop_after=None):
    return train("default-expression", cache, out_dir=out, epochs=epochs, seed=3, resume=resume,
                 saliency="none", pretrained=False, batch_size=8, progress=False, threads=1,
                 stop_after=stop_after, log=lambda s: None)


def test_train_checkpoints_resume_and_is_repeatable(tiny_cache, tmp_path, monkeypatch):
    from salface import presets
    monkeypatch.setitem(presets.PRESETS, "default-expression",
                        presets.PRESETS["default-expression"].with_overrides(input_size=32))
    _run(tiny_cache, tmp_path / "full", 2)
    files = {p.name for p in (tmp_path / "full").iterdir()}
    assert {"best.safetensors", "last.safetensors", "optimizer.pt", "metrics.csv", "metrics.json",
            "state.json", "config.json"} <= files
    hist = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]
    assert 0.0 <= hist[-1]["val_expression_accuracy"] <= 1.0
    header = (tmp_path / "full" / "metrics.csv").read_text().splitlines()[0]
    assert "train_loss" in header and "val_expression_accuracy" in header

    # interrupted after epoch 1, resumed: the same numbers as the uninterrupted run (same seed)
    part = _run(tiny_cache, tmp_path / "part", 2, stop_after=1)
    assert [h["epoch"] for h in part.history] == [1]
    assert part.history[0]["train_loss"] == pytest.approx(hist[0]["train_loss"], rel=1e-5)
    resumed = _run(tiny_cache, tmp_path / "part", 2, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[-1]["train_loss"] == pytest.approx(hist[-1]["train_loss"], rel=1e-4)
    assert resumed.history[-1]["val_score"] == pytest.approx(hist[-1]["val_score"])

    with pytest.raises(FileExistsError, match="--resume"):
        _run(tiny_cache, tmp_path / "full", 2)
    with pytest.raises(ValueError, match="differs"):
        _run(tiny_cache, tmp_path / "full", 3, resume=True)
    model, cfg, preset = load_run(tmp_path / "full")
    assert cfg.color == "gray" and cfg.saliency == "none" and preset.epochs == 2


def test_soft_targets_written_and_trained_on(tiny_cache, tmp_path, monkeypatch):
    from salface import presets
    from salface.training.cache import CacheError, open_crop_cache, write_soft_targets
    from salface.training.train import soft_target_matrix

    cc = open_crop_cache(tiny_cache.root)
    labels = cc.task_labels("expression")
    # a distribution for every sample but the first: one-hot of the hard label
    samples = [Sample(p, {"expression": int(y)}, meta={"soft": {"expression": list(np.eye(7)[y] * 3)}})
               for p, y in zip(cc.paths[1:], labels[1:])]
    assert write_soft_targets(cc.root, samples) == {"expression": len(cc) - 1}
    dist = cc.soft_targets("expression")
    assert dist[0].sum() == 0 and np.allclose(dist[1:].sum(1), 1.0)       # normalised, first empty
    m = soft_target_matrix(cc, "expression", labels)
    assert np.array_equal(m.argmax(1), labels) and np.allclose(m.sum(1), 1.0)  # empty row → one-hot

    base = presets.PRESETS["default-expression"].with_overrides(input_size=32, label_smoothing=0.0)
    monkeypatch.setitem(presets.PRESETS, "default-expression", base)
    hard = _run(cc, tmp_path / "hard", 1)
    monkeypatch.setitem(presets.PRESETS, "default-expression",
                        base.with_overrides(soft_targets=True))
    onehot = _run(cc, tmp_path / "onehot", 1)
    # one-hot distributions are the hard labels: the same loss, step for step
    assert onehot.history[0]["train_loss"] == pytest.approx(hard.history[0]["train_loss"], rel=1e-5)

    # spread distributions change what is learned
    spread = [Sample(p, {"expression": int(y)}, meta={"soft": {"expression": [1.0] * 7}})
              for p, y in zip(cc.paths, labels)]
    write_soft_targets(cc.root, spread)
    uniform = _run(cc, tmp_path / "uniform", 1)
    assert uniform.history[0]["train_loss"] > hard.history[0]["train_loss"] * 1.02

    bad = [Sample(cc.paths[0], {"expression": 0}, meta={"soft": {"expression": [1.0, -1.0]}})]
    with pytest.raises(CacheError, match="distribution"):
        write_soft_targets(cc.root, bad)


def test_preset_and_cache_must_agree(tiny_cache, tmp_path):
    with pytest.raises(ValueError, match="px"):
        train("default-expression", tiny_cache, out_dir=tmp_path / "x", saliency="none",
              pretrained=False, progress=False)
    with pytest.raises(ValueError, match="has labels for"):
        train("default", tiny_cache, out_dir=tmp_path / "y", tasks=("gender",), progress=False)


def test_single_task_variant_of_a_family():
    both, one = get_preset("default", ("age", "gender")), get_preset("default", ("gender",))
    assert one.tasks == ("gender",)
    assert one.with_overrides(tasks=both.tasks, name=both.name) == both   # same recipe, fewer heads


@pytest.mark.parametrize("cmd", [["train"], ["evaluate"], ["ship"], ["cache", "crops"],
                                 ["cache", "saliency"], ["cache", "splits"]])
def test_cli_help(cmd):
    from typer.testing import CliRunner

    from salface.cli import app

    r = CliRunner().invoke(app, [*cmd, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage" in r.output


def test_cli_train_and_evaluate_end_to_end(tiny_cache, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from salface import presets
    from salface.cli import app

    monkeypatch.setitem(presets.PRESETS, "default-expression",
                        presets.PRESETS["default-expression"].with_overrides(input_size=32, pretrained=False))
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", "--cache", str(tiny_cache.root), "--out", str(run), "--epochs", "1",
                                 "--saliency", "none", "--batch-size", "8", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert "best val score" in r.output and (run / "command.txt").exists()
    r = CliRunner().invoke(app, ["evaluate", str(run), "--split", "val", "--out", str(tmp_path / "b"), "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "b" / "run_val.md").exists()


def test_init_starts_from_given_weights_and_checks_its_hash(tiny_cache, tmp_path, monkeypatch):
    """``Preset.init``: the network starts from a run's weights (lr 0 keeps them exactly), the
    run records the file's SHA-256, and a pinned hash that differs is refused."""
    from safetensors.numpy import load_file

    from salface import presets
    from salface.hub import sha256_file

    base = presets.PRESETS["default-expression"].with_overrides(input_size=32)
    monkeypatch.setitem(presets.PRESETS, "default-expression", base)
    _run(tiny_cache, tmp_path / "first", 1)
    src = tmp_path / "first" / "best.safetensors"
    frozen = base.with_overrides(init=str(tmp_path / "first"), lr=0.0, schedule="constant", freeze=0)
    train(frozen, tiny_cache, out_dir=tmp_path / "again", epochs=1, seed=5, saliency="none",
          batch_size=8, progress=False, threads=1, log=lambda s: None)
    cfg = json.loads((tmp_path / "again" / "config.json").read_text())
    assert cfg["init"]["sha256"] == sha256_file(src)
    a, b = load_file(str(src)), load_file(str(tmp_path / "again" / "last.safetensors"))
    # weights identical (BatchNorm running statistics still follow the batches)
    for k in a:
        if "running" not in k and "num_batches" not in k:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with pytest.raises(ValueError, match="sha256"):
        train(frozen.with_overrides(init_sha256="0" * 64), tiny_cache, out_dir=tmp_path / "pinned",
              epochs=1, saliency="none", batch_size=8, progress=False, threads=1, log=lambda s: None)


def test_robust_presets_pin_the_shipped_weights():
    for name in ("robust-expression", "robust-age-gender"):
        p = get_preset(name)
        assert p.init.startswith("bundled:") and len(p.init_sha256) == 64 and p.augment.wild


def test_soup_interpolates_two_runs(tiny_cache, tmp_path, monkeypatch):
    from safetensors.numpy import load_file

    from salface import presets
    from salface.training.soup import interpolate_runs

    monkeypatch.setitem(presets.PRESETS, "default-expression",
                        presets.PRESETS["default-expression"].with_overrides(input_size=32))
    _run(tiny_cache, tmp_path / "a", 1)
    train("default-expression", tiny_cache, out_dir=tmp_path / "b", epochs=1, seed=9, saliency="none",
          pretrained=False, batch_size=8, progress=False, threads=1, log=lambda s: None)
    out = interpolate_runs(tmp_path / "a", tmp_path / "b", 0.25, tmp_path / "soup")
    a, b, s = (load_file(str(p / "best.safetensors")) for p in (tmp_path / "a", tmp_path / "b", out))
    k = next(k for k in a if a[k].dtype.kind == "f" and not np.array_equal(a[k], b[k]))
    np.testing.assert_allclose(s[k], 0.75 * a[k] + 0.25 * b[k], rtol=1e-5, atol=1e-6)
    model, cfg, _ = load_run(out)            # a run folder like any other
    assert cfg.name == "soup" and json.loads((out / "config.json").read_text())["soup"]["alpha"] == 0.25
    with pytest.raises(ValueError, match="alpha"):
        interpolate_runs(tmp_path / "a", tmp_path / "b", 1.5, tmp_path / "bad")
