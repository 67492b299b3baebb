"""The wild recipe end to end on a tiny synthetic UTKFace-style cache: every lever on, checkpoints
(raw, EMA, best = EMA), resume reproducing an uninterrupted run, the aligned crop mode recorded."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("timm")

from salface.training.cache import build_crop_cache, build_saliency_cache  # noqa: E402
from salface.data.base import Sample  # noqa: E402
from salface.evaluate import evaluate_run  # noqa: E402
from salface.training.presets import get_preset  # noqa: E402
from salface.training.train import load_run, train  # noqa: E402


@pytest.fixture
def utk_cache(tmp_path):
    rng = np.random.default_rng(0)
    samples, splits = [], []
    for i in range(28):
        age, gender, race = int(rng.integers(1, 90)), i % 2, i % 5
        p = tmp_path / "img" / f"{age}_{gender}_{race}_201701{i:08d}.jpg.chip.jpg"
        p.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(p), rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
        group = int(np.searchsorted([3, 7, 14, 24, 35, 45, 55], age, side="right"))
        samples.append(Sample(str(p), {"age": group, "gender": gender}))
        splits.append("train" if i < 20 else "val")
    cc = build_crop_cache(samples, tmp_path / "cache", size=32, detector="none", splits=splits,
                          crop_mode="arcface", margin=0.0, progress=False)
    build_saliency_cache(cc, "spectral-residual", progress=False)
    return cc


def _wild(monkeypatch):
    from salface import presets
    p = presets.PRESETS["wild-age-gender"].with_overrides(backbone="edgeface_xxs", input_size=32,
                                                          saliency="spectral-residual")
    monkeypatch.setitem(presets.PRESETS, "wild-age-gender", p)
    return p


def _run(cache, out, resume=False, stop_after=None):
    return train("wild-age-gender", cache, out_dir=out, epochs=2, seed=5, resume=resume,
                 pretrained=False, batch_size=8, progress=False, threads=1, stop_after=stop_after,
                 log=lambda s: None)


def test_wild_preset_levers():
    p = get_preset("wild", ("age", "gender"))
    assert (p.backbone, p.input_size, p.crop_mode, p.saliency, p.ratio) == ("edgeface_xs", 112, "arcface", "mlnet", 0.3)
    assert p.augment.wild and p.augment.rotate == 20.0
    assert p.balance == ("gender", "age", "race") and p.age_loss == "ordinal" and p.ema_decay > 0
    assert not get_preset("wild-age-gender-no-aug").augment.wild
    assert get_preset("wild-age-gender-no-balance").balance == ()
    assert get_preset("wild-age-gender-ce").age_loss == "ce"
    assert get_preset("wild-age-gender-no-ema").ema_decay == 0.0
    assert get_preset("wild-age-gender-mobilenet").backbone == "mobilenet_v2"


def test_wild_training_checkpoints_ema_and_resumes(utk_cache, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    _wild(monkeypatch)
    full = _run(utk_cache, tmp_path / "full")
    hist = full.history
    assert [h["epoch"] for h in hist] == [1, 2]
    assert all("raw_val_score" in h for h in hist)
    assert full.config.crop_mode == "arcface" and full.config.mean == (0.5, 0.5, 0.5)
    files = {p.name for p in (tmp_path / "full").iterdir()}
    assert {"best.safetensors", "last.safetensors", "ema.safetensors", "optimizer.pt", "state.json"} <= files

    part = _run(utk_cache, tmp_path / "part", stop_after=1)
    # after one epoch the best weights are that epoch's EMA, not the raw weights
    best, ema, last = (load_file(str(tmp_path / "part" / f"{w}.safetensors")) for w in ("best", "ema", "last"))
    assert all(np.array_equal(best[k].numpy(), ema[k].numpy()) for k in best)
    assert any(not np.array_equal(best[k].numpy(), last[k].numpy()) for k in best)
    assert json.loads((tmp_path / "part" / "state.json").read_text())["ema_updates"] == 3   # 20 / 8 → 3 steps

    resumed = _run(utk_cache, tmp_path / "part", resume=True)
    for a, b in zip(resumed.history, hist):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_score"] == pytest.approx(b["val_score"])
        assert a["raw_val_score"] == pytest.approx(b["raw_val_score"])

    model, cfg, preset = load_run(tmp_path / "full")
    assert cfg.backbone == "edgeface_xxs" and cfg.crop_mode == "arcface" and preset.augment.wild
    # `salface evaluate` reads the run back (best = EMA weights) and scores val as training did
    res, _ = evaluate_run(tmp_path / "full", split="val", write=False, threads=1)
    best = max(hist, key=lambda h: h["val_score"])
    assert res["gender"]["accuracy"] == pytest.approx(best["val_gender_accuracy"])
    assert res["age"]["accuracy"] == pytest.approx(best["val_age_accuracy"])


def test_crop_mode_of_preset_and_cache_must_agree(utk_cache, tmp_path):
    with pytest.raises(ValueError, match="'margin' crops"):
        train(get_preset("default-age-gender").with_overrides(input_size=32), utk_cache, out_dir=tmp_path / "x", epochs=1, pretrained=False,
              progress=False, threads=1, log=lambda s: None)


def test_gender_loss_balanced_within_strata(utk_cache, tmp_path, monkeypatch):
    """`gender_within` reweights only the gender loss: same seed, same draws, another loss; the
    preset is recorded in the run; a preset without the gender task refuses it."""
    from salface import presets

    base = _wild(monkeypatch).with_overrides(epochs=1, balance=(), ema_decay=0.0)
    fair = base.with_overrides(gender_within=("age", "race"))
    kw = dict(seed=5, pretrained=False, batch_size=8, progress=False, threads=1)
    logs: list[str] = []
    a = train(base, utk_cache, out_dir=tmp_path / "a", log=lambda s: None, **kw)
    b = train(fair, utk_cache, out_dir=tmp_path / "b", log=logs.append, **kw)
    assert any("gender loss weighted within age × race" in m for m in logs)
    assert a.history[0]["train_loss"] != pytest.approx(b.history[0]["train_loss"], rel=1e-6)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["preset"]["gender_within"] == ["age", "race"]
    assert presets.get_preset("robust-age-gender-fair").gender_within == ("age", "race")
    ordinal = presets.get_preset("robust-age-ordinal")   # pinned to session 7's default-age run
    assert ordinal.age_loss == "ordinal" and ordinal.init.startswith("runs/soup-robust-age-gender-fair-0.7")
    assert len(ordinal.init_sha256) == 64
    edge = presets.get_preset("edge-age-gender")   # the ensemble's second member, on the margin crop
    assert (edge.backbone, edge.crop_mode, edge.input_size, edge.balance) == ("edgeface_xs", "margin", 96, ())
    with pytest.raises(ValueError, match="gender_within needs the gender task"):
        train(fair.with_overrides(tasks=("age",)), utk_cache, out_dir=tmp_path / "c", log=lambda s: None, **kw)


def test_age_in_years_head_trains_beside_the_model_and_is_not_saved(utk_cache, tmp_path, monkeypatch):
    """`age_years`: a training-only head on the file names' ages. The saved network has exactly the
    keys of one trained without it, the head's weights are kept for --resume (which reproduces an
    uninterrupted run), the loss differs from the control's, and a cache without ages refuses."""
    from safetensors.torch import load_file

    base = _wild(monkeypatch).with_overrides(epochs=2, balance=(), ema_decay=0.0)
    years = base.with_overrides(age_years=0.5)
    kw = dict(seed=5, pretrained=False, batch_size=8, progress=False, threads=1)
    logs: list[str] = []
    ctrl = train(base, utk_cache, out_dir=tmp_path / "ctrl", log=lambda s: None, **kw)
    full = train(years, utk_cache, out_dir=tmp_path / "full", log=logs.append, **kw)
    assert any("auxiliary age-in-years head" in m and "20 training ages" in m for m in logs)
    assert ctrl.history[0]["train_loss"] != pytest.approx(full.history[0]["train_loss"], rel=1e-6)
    assert all(h["train_age_years_mae"] > 0 for h in full.history)
    assert "train_age_years_mae" not in ctrl.history[0]
    for w in ("best", "last"):
        assert set(load_file(str(tmp_path / "full" / f"{w}.safetensors"))) == \
            set(load_file(str(tmp_path / "ctrl" / f"{w}.safetensors")))
    aux = load_file(str(tmp_path / "full" / "aux_age_years.safetensors"))
    assert aux["fc.weight"].shape[0] == 101 and float(aux["fc.weight"].abs().sum()) > 0   # it learned
    part = train(years, utk_cache, out_dir=tmp_path / "part", log=lambda s: None, stop_after=1, **kw)
    assert len(part.history) == 1
    resumed = train(years, utk_cache, out_dir=tmp_path / "part", log=lambda s: None, resume=True, **kw)
    for a, b in zip(resumed.history, full.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_score"] == pytest.approx(b["val_score"])
    assert json.loads((tmp_path / "full" / "config.json").read_text())["preset"]["age_years"] == 0.5


def test_age_in_years_needs_utkface_names(tmp_path):
    rng = np.random.default_rng(1)
    samples, splits = [], []
    for i in range(10):
        p = tmp_path / "img" / f"face{i}.png"
        p.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(p), rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8))
        samples.append(Sample(str(p), {"age": i % 8, "gender": i % 2}))
        splits.append("train" if i < 7 else "val")
    cc = build_crop_cache(samples, tmp_path / "cache", size=32, detector="none", splits=splits, progress=False)
    p = get_preset("default-age-gender").with_overrides(input_size=32, saliency="none", age_years=0.5, epochs=1)
    with pytest.raises(ValueError, match="age_years needs UTKFace file names"):
        train(p, cc, out_dir=tmp_path / "x", pretrained=False, progress=False, threads=1, log=lambda s: None)
