"""Training helpers, bundling round trip through the manifest, and the saliency CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import shared_path
from salface.cli import app
from salface.saliency.mlnet import MLNet, MLNetConfig
from salface.saliency.train import _target, bundle_checkpoint
from test_saliency_mlnet import imagenet_home  # noqa: F401  (fixture: offline ImageNet weights)


def test_target_on_output_grid():
    t = _target(np.array([[127.5, 127.5]]), (256, 256), 256)
    assert t.shape == (32, 32) and t.dtype == np.float32
    assert t.max() == pytest.approx(1.0)
    y, x = np.unravel_index(np.argmax(t), t.shape)
    assert {int(y), int(x)} <= {15, 16}
    # the same point in a 512×1024 image maps to the same place of the square grid
    t2 = _target(np.array([[511.5, 255.5]]), (512, 1024), 256)
    np.testing.assert_allclose(t2, t, atol=0.05)


def test_bundle_round_trip(tmp_path, monkeypatch, imagenet_home):
    from salface.hub import load_manifest
    from salface.saliency import get_saliency

    torch.manual_seed(0)
    net = MLNet(MLNetConfig(), pretrained_backbone=False)
    with torch.no_grad():
        net.head.prior.mul_(0.5)
    ck = tmp_path / "best.pt"
    torch.save({"head": net.head.state_dict(), "config": MLNetConfig().to_dict(), "epoch": 3,
                "val": {"val_nss": 1.0, "val_cc": 0.5}}, ck)
    bundled = tmp_path / "bundled"
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(bundled))
    bundle_checkpoint(ck, "mlnet-test", command="pytest", blur=0.0, floor=0.1)
    entry = load_manifest(bundled)["models"]["mlnet-test"]
    assert {"file", "sha256", "kind", "config", "metrics", "data", "license", "created",
            "command"} <= set(entry)
    assert entry["kind"] == "saliency" and entry["metrics"]["selected_epoch"] == 3
    assert entry["config"]["postprocess"] == {"blur": 0.0, "floor": 0.1}
    assert entry["onnx"]["parity_vs_torch"]["max_rel_map"] < 1e-3  # its ONNX file, checked
    model = get_saliency("mlnet", model="mlnet-test", backend="torch")
    torch.testing.assert_close(model.network.module.head.prior, net.head.prior)
    x = np.random.default_rng(0).integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    for backend in ("torch", "onnx"):
        m = get_saliency("mlnet", model="mlnet-test", backend=backend)(x)
        assert m.shape == (2, 96, 96) and m.min() >= 0.1 / 1.1 - 1e-6  # the floor is applied


runner = CliRunner()


def test_cli_help_and_errors():
    r = runner.invoke(app, ["train-saliency", "--help"])
    assert r.exit_code == 0 and "--backbone" in r.output and "--resume" in r.output
    r = runner.invoke(app, ["evaluate-saliency", "--help"])
    assert r.exit_code == 0 and "--models" in r.output
    r = runner.invoke(app, ["train-saliency", "--bundle-only"])
    assert r.exit_code != 0


def test_cli_evaluate_known_answers(tmp_path):
    data = shared_path("data", "nus-saliency")
    r = runner.invoke(app, ["evaluate-saliency", "--data", str(data), "--models", "none,centre",
                            "--split", "val", "--max-side", "96", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "nus_val.json").read_text())
    assert rep["n_images"] == 50
    none = rep["models"]["none"]
    # a constant map carries no information: AUCs exactly at chance, NSS and CC 0
    assert none["auc_judd"]["mean"] == pytest.approx(0.5)
    assert none["sauc"]["mean"] == pytest.approx(0.5)
    assert none["nss"]["mean"] == 0.0 and none["cc"]["mean"] == 0.0
    assert rep["models"]["centre"]["nss"]["mean"] > 0.8
    assert (tmp_path / "nus_val.md").read_text().count("|") > 10
