"""Ensembles: several trained networks on one crop answering as one (salface.models.ensemble)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from salface.models.config import ClassifierConfig  # noqa: E402
from salface.models.ensemble import ensemble_config  # noqa: E402
from salface.training.ensemble import ensemble_runs  # noqa: E402
from salface.training.train import load_run  # noqa: E402
from toys import member_run, normalised  # noqa: E402

HALF = (0.5, 0.5, 0.5)


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    from salface.training import presets

    # ensemble_runs records the first run's preset; load_run rebuilds it from the dict
    monkeypatch.setattr(presets.Preset, "from_dict", classmethod(
        lambda cls, d: presets.Preset(name=d["name"], backbone=d["backbone"], tasks=tuple(d["tasks"]))))
    a = member_run(tmp_path, "a", 0)
    b = member_run(tmp_path, "b", 1, mean=HALF, std=HALF)  # EdgeFace-style normalisation
    return a, b


def test_ensemble_averages_log_softmax_with_each_members_normalisation(two_runs, tmp_path):
    (ra, na, ca), (rb, nb, cb) = two_runs
    out = ensemble_runs([ra, rb], tmp_path / "ens", weights=[3, 1])
    model, cfg, _ = load_run(out)
    assert cfg.backbone == "ensemble" and cfg.tasks == ("age", "gender")
    assert cfg.mean == ca.mean and cfg.extra["member_weights"] == [3.0, 1.0]
    img = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        got = model(normalised(img, ca.mean, ca.std))
        la = na(normalised(img, ca.mean, ca.std))
        lb = nb(normalised(img, HALF, HALF))  # b sees its own normalisation, not a's
    for t in ("age", "gender"):
        want = 0.75 * torch.log_softmax(la[t], 1) + 0.25 * torch.log_softmax(lb[t], 1)
        torch.testing.assert_close(got[t], want, rtol=1e-4, atol=1e-4)
        # and not what b would say on a's normalisation
        wrong = 0.75 * torch.log_softmax(la[t], 1) + 0.25 * torch.log_softmax(nb(normalised(img, ca.mean, ca.std))[t], 1)
        assert not torch.allclose(got[t], wrong, atol=1e-4)
    d = json.loads((out / "config.json").read_text())
    assert [m["run"] for m in d["ensemble"]["members"]] == [str(ra), str(rb)]
    assert all(len(m["sha256"]) == 64 for m in d["ensemble"]["members"])


def test_ensemble_refuses_members_on_another_crop(two_runs, tmp_path):
    (ra, _, ca), _ = two_runs
    rc, _, cc = member_run(tmp_path, "c", 2, margin=0.5)
    with pytest.raises(ValueError, match="margin"):
        ensemble_runs([ra, rc], tmp_path / "bad")
    nested = ensemble_runs([ra, two_runs[1][0]], tmp_path / "ens")
    with pytest.raises(ValueError, match="itself an ensemble"):
        ensemble_runs([ra, nested], tmp_path / "bad3")
    with pytest.raises(ValueError, match="at least two"):
        ensemble_runs([ra], tmp_path / "bad1")
    with pytest.raises(ValueError, match="weights"):
        ensemble_runs([ra, ra], tmp_path / "bad2", weights=[1.0])
    with pytest.raises(ValueError, match="does not answer"):
        ensemble_config("e", [ca, ClassifierConfig(name="x", backbone="mobilenet_v2", tasks=("age",),
                                                   input_size=32, saliency="none")], tasks=("age", "gender"))
    # the tasks every member answers, by default
    cfg = ensemble_config("e", [ca, ClassifierConfig(name="x", backbone="mobilenet_v2", tasks=("age",),
                                                     input_size=32, saliency="none")])
    assert cfg.tasks == ("age",)


def test_members_at_different_input_sizes_share_the_largest_crop(two_runs, tmp_path):
    """A 48-px member and a 32-px one: the ensemble takes 48-px crops, and the 32-px member sees
    them resized (bilinear, antialiased), whichever comes first; the recorded cache is the 48-px
    run's. Asked for 32-px crops, the 48-px member sees them enlarged."""
    import torch.nn.functional as F

    (ra, na, ca), _ = two_runs
    rc, nc, cc = member_run(tmp_path, "c", 2, size=48)
    d = json.loads((rc / "config.json").read_text())
    (rc / "config.json").write_text(json.dumps({**d, "cache": "cache-48"}))
    img = np.random.default_rng(3).integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    x = normalised(img, ca.mean, ca.std)
    with torch.no_grad():
        small = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
        la, lc = na(small), nc(x)
    for order in ([ra, rc], [rc, ra]):
        out = ensemble_runs(order, tmp_path / f"mixed-{order[0].name}")
        model, cfg, _ = load_run(out)
        assert cfg.input_size == 48
        assert json.loads((out / "config.json").read_text())["cache"] == "cache-48"
        with torch.no_grad():
            got = model(x)
        for t in ("age", "gender"):
            want = (torch.log_softmax(la[t], 1) + torch.log_softmax(lc[t], 1)) / 2
            torch.testing.assert_close(got[t], want, rtol=1e-4, atol=1e-4)
            # not the 32-px member's answer on a crop cut from the middle instead of resized
            wrong = (torch.log_softmax(na(x[:, :, 8:40, 8:40])[t], 1) + torch.log_softmax(lc[t], 1)) / 2
            assert not torch.allclose(got[t], wrong, atol=1e-4)
    # asked for the smaller crop instead (--input-size), the 48-px member gets it enlarged
    out = ensemble_runs([ra, rc], tmp_path / "mixed-32", input_size=32)
    model, cfg, _ = load_run(out)
    assert cfg.input_size == 32
    assert json.loads((out / "config.json").read_text())["cache"] == "nowhere"
    x32 = normalised(img[:, ::3, ::3][:, :32, :32].copy(), ca.mean, ca.std)
    with torch.no_grad():
        got = model(x32)
        big = F.interpolate(x32, size=(48, 48), mode="bilinear", align_corners=False)
        for t in ("age", "gender"):
            want = (torch.log_softmax(na(x32)[t], 1) + torch.log_softmax(nc(big)[t], 1)) / 2
            torch.testing.assert_close(got[t], want, rtol=1e-4, atol=1e-4)


def _shipped_onnx(run, name, tmp_path, monkeypatch):
    """``run`` shipped into a scratch bundle as ``name`` and loaded on ONNX Runtime."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import shutil

    from salface.classify import load_classifier
    from salface.evaluation.ship import ship_run
    from salface.hub import bundled_dir

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(bundled_dir() / "manifest.json", bundle / "manifest.json")
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(bundle))
    report = tmp_path / f"{name}_val.json"
    report.write_text(json.dumps({"results": {t: {"accuracy": 0.5, "n": 10, "per_class_accuracy": {}}
                                              for t in ("age", "gender")},
                                  "extra": {"split": "val"}, "commit": "x"}))
    ship_run(run, name=name, report=report, data="toy", license="none")
    return load_classifier(name, backend="onnx")


def test_an_ensemble_ships_as_one_onnx_graph(two_runs, tmp_path, monkeypatch):
    (ra, na, ca), (rb, nb, _) = two_runs
    clf = _shipped_onnx(ensemble_runs([ra, rb], tmp_path / "ens"), "toy-ens", tmp_path, monkeypatch)
    img = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    probs = clf.predict(img, None)
    with torch.no_grad():
        la, lb = na(normalised(img, ca.mean, ca.std)), nb(normalised(img, HALF, HALF))
    for t in ("age", "gender"):
        want = torch.softmax((torch.log_softmax(la[t], 1) + torch.log_softmax(lb[t], 1)) / 2, 1).numpy()
        np.testing.assert_allclose(probs[t], want, atol=1e-4)


def test_a_mixed_size_ensemble_ships_as_one_onnx_graph(two_runs, tmp_path, monkeypatch):
    """The resize inside the graph survives the ONNX export: ONNX Runtime answers as torch does."""
    (ra, _, ca), _ = two_runs
    rc, _, _ = member_run(tmp_path, "c", 2, size=48)
    out = ensemble_runs([ra, rc], tmp_path / "mixed")
    model, cfg, _ = load_run(out)
    clf = _shipped_onnx(out, "toy-mixed", tmp_path, monkeypatch)
    assert clf.config.input_size == 48
    img = np.random.default_rng(1).integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    probs = clf.predict(img, None)
    with torch.no_grad():
        logits = model(normalised(img, ca.mean, ca.std))
    for t in ("age", "gender"):
        np.testing.assert_allclose(probs[t], torch.softmax(logits[t], 1).numpy(), atol=1e-4)


def test_an_ensembles_cam_is_its_members_maps_averaged(two_runs, tmp_path):
    from salface.explain import class_activation_maps

    # 96 px: MobileNetV2's last maps are 3×3, so the CAMs are not flat
    ra, na, ca = member_run(tmp_path, "a96", 0, size=96)
    rb, nb, _ = member_run(tmp_path, "b96", 1, size=96, mean=HALF, std=HALF)
    model, cfg, _ = load_run(ensemble_runs([ra, rb], tmp_path / "ens", weights=[3, 1]))
    img = np.random.default_rng(2).integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    xa, xb = normalised(img, ca.mean, ca.std), normalised(img, HALF, HALF)
    assert model.has_gap   # every member pools globally, so the ensemble has CAMs
    cams = class_activation_maps(model, xa, "gender")
    with torch.no_grad():
        assert (cams.classes == model(xa)["gender"].argmax(1).numpy()).all()   # the ensemble's answer
    ma = class_activation_maps(na, xa, "gender", cams.classes.tolist()).maps
    mb = class_activation_maps(nb, xb, "gender", cams.classes.tolist()).maps
    want = 0.75 * ma + 0.25 * mb
    lo, hi = want.min(axis=(1, 2), keepdims=True), want.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(cams.maps, (want - lo) / (hi - lo), atol=1e-5)
    assert cams.maps.shape == (2, 96, 96) and np.isclose(cams.maps.max(), 1.0) and not cams.flat.any()
