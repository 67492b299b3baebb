"""The ONNX Runtime backend: exported classifiers and ML-Net agree with PyTorch; exports are
named by their weights' SHA-256 and redone when stale or tampered with; Analyzer(backend="onnx")."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from salface.crop import crop_face  # noqa: E402
from salface import hub as W  # noqa: E402
from salface.models.onnx import (export_onnx, export_path, load_classifier_onnx,  # noqa: E402
                                 onnx_saliency)
from salface.types import Box, Face  # noqa: E402

LOGIT_TOL = 1e-3
"""Max abs logit difference allowed. Both backends compute in float32 and differ only in
operation order and kernels (measured by benchmarks/onnx_parity.py: at most 2.4e-6 on the shipped
models' logits, which are O(1) in size, over 64 crops); 1e-3 leaves three orders of magnitude of headroom for other CPUs
and kernel choices, yet is far below a logit gap that matters (argmax is checked as well)."""
MAP_TOL = 1e-3
"""Max abs difference of ML-Net maps in [0, 1] after post-processing (measured: at most 2e-6);
also the allowed difference of the raw maps relative to their maximum."""
ASTRONAUT_FACE = Face(Box(178, 63, 268, 176))


def _need(name: str) -> None:
    if name not in W.load_manifest()["models"]:
        pytest.skip(f"{name} is not bundled")


@pytest.fixture(scope="module")
def crops(astronaut) -> np.ndarray:
    """Five 128-px RGB faces: the astronaut, mirrored, shifted, and two random uint8 crops."""
    face = crop_face(astronaut, ASTRONAUT_FACE, size=128).pixels
    shifted = crop_face(astronaut, Face(Box(168, 70, 258, 183)), size=128).pixels
    noise = np.random.default_rng(0).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    return np.concatenate([np.stack([face, face[:, ::-1], shifted]), noise])


@pytest.fixture(scope="module")
def mlnet():
    _need("mlnet-mobilenetv2-nus")
    from salface.saliency import get_saliency

    return get_saliency("mlnet")


@pytest.mark.parametrize("name", ["default-age-gender", "default-expression"])
def test_classifier_logits_match_torch(name, crops, mlnet):
    _need(name)
    from salface.models.preprocess import prepare_crops, to_input_tensor
    from salface.models.registry import load_classifier

    net, cfg = load_classifier(name)
    ort_net, ort_cfg = load_classifier_onnx(name)
    assert ort_cfg == cfg and ort_net.output_names == list(cfg.tasks)
    assert export_path(name).name == f"{name}-{W.bundled_entry(name)['sha256']}.onnx"
    pixels = prepare_crops(crops, cfg)
    x = to_input_tensor(pixels, mlnet(pixels), cfg)
    for batch in (x[:1], x):  # batch sizes 1 and 5 through the same dynamic-batch export
        with torch.inference_mode():
            ref = net(batch)
        got = ort_net(batch.numpy())
        for t in cfg.tasks:
            assert got[t].shape == ref[t].shape == (len(batch), len(cfg.labels[t]))
            diff = float((got[t] - ref[t]).abs().max())
            assert diff < LOGIT_TOL, f"{name}/{t}: max abs logit difference {diff:.2e}"
            assert torch.equal(got[t].argmax(1), ref[t].argmax(1))


def test_mlnet_maps_match_torch(crops, mlnet):
    from salface.saliency import get_saliency
    from salface.saliency.mlnet import to_input

    ort_sal = onnx_saliency(get_saliency("mlnet"))
    assert type(ort_sal.net).__name__ == "OnnxMLNet"
    for batch in (crops[:1], crops[:1, 16:80, 16:80], crops):  # dynamic batch and size
        ref, got = mlnet(batch), ort_sal(batch)
        assert got.shape == ref.shape == batch.shape[:3]
        assert float(np.abs(got - ref).max()) < MAP_TOL
    x = to_input(crops)  # the raw maps, before upsampling and scaling to [0, 1]
    with torch.inference_mode():
        ref_raw = mlnet.net(x)
    got_raw = ort_sal.net(x)
    assert float((got_raw - ref_raw).abs().max()) < MAP_TOL * float(ref_raw.abs().max())


# ------------------------------------------------------------------ stale and tampered exports


def _ship_toy(seed: int) -> None:
    """Bundle a small classifier (AlexNet trunk + GAP, 64 px, untrained) with seeded weights."""
    from salface.models.backbones import build_classifier
    from salface.models.config import ClassifierConfig

    cfg = ClassifierConfig(name="toy", backbone="alexnet_gap", tasks=("age", "gender"),
                           input_size=64, saliency="none")
    torch.manual_seed(seed)
    net = build_classifier(cfg)
    W.register_bundled("toy", net.state_dict(), kind="classifier", config=cfg.to_dict(),
                       metrics={}, data="none", license="test", command="test")


def _agree(x: torch.Tensor) -> None:
    from salface.models.registry import load_classifier

    net, _ = load_classifier("toy")
    ort_net, _ = load_classifier_onnx("toy")
    with torch.inference_mode():
        ref = net(x)
    for t in ("age", "gender"):
        assert float((ort_net(x)[t] - ref[t]).abs().max()) < LOGIT_TOL


@pytest.fixture
def toy_bundle(tmp_path, monkeypatch):
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(tmp_path / "bundled"))
    monkeypatch.setenv("SALFACE_HOME", str(tmp_path / "home"))
    _ship_toy(0)
    return tmp_path


def test_stale_and_tampered_exports_are_redone(toy_bundle):
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    _agree(x)
    first = export_path("toy")
    meta = json.loads(first.with_suffix(".json").read_text())
    assert first.is_file() and meta["source_sha256"] == W.bundled_entry("toy")["sha256"]
    assert meta["config"]["name"] == "toy" and meta["outputs"] == ["age", "gender"]
    stamp = first.stat().st_mtime_ns
    assert export_onnx("toy") == first and first.stat().st_mtime_ns == stamp  # reused as is

    _ship_toy(1)  # new weights: new hash, new export; the old file is never used for them
    second = export_path("toy")
    assert second != first and not second.exists()
    _agree(x)
    assert second.is_file()

    data = bytearray(second.read_bytes())  # tampered export: fails its checksum, exported again
    data[-100] ^= 0xFF
    second.write_bytes(bytes(data))
    _agree(x)
    assert W.sha256_file(second) == json.loads(second.with_suffix(".json").read_text())["onnx_sha256"]


def test_cli_export_onnx(toy_bundle):
    from salface.cli import app

    out = toy_bundle / "exported" / "toy.onnx"
    r = CliRunner().invoke(app, ["models", "export-onnx", "toy", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert str(out) in r.output and out.is_file()
    assert json.loads(out.with_suffix(".json").read_text())["config"]["input_size"] == 64
    r = CliRunner().invoke(app, ["models", "export-onnx", "no-such-model"])
    assert r.exit_code == 1 and "no-such-model" in r.output
    assert CliRunner().invoke(app, ["models", "--json"]).exit_code == 0  # the list still works


# ------------------------------------------------------------------ the Analyzer


def test_analyzer_onnx_gives_the_torch_labels(yunet_model, astronaut):
    _need("default-age-gender")
    _need("default-expression")
    from salface.detect import get_detector
    from salface.pipeline import Analyzer

    det = get_detector("yunet", model_path=yunet_model)
    by = {b: Analyzer(detector=det, backend=b) for b in ("torch", "onnx")}
    assert type(by["onnx"].groups[0].saliency.net).__name__ == "OnnxMLNet"
    for tta in (False, True):  # flip TTA (cfg.extra["tta_flip"]) works through both backends
        for an in by.values():
            for g in an.groups:
                g.config = replace(g.config, extra={**g.config.extra, "tta_flip": tta})
        (ft,), (fo,) = by["torch"].analyze(astronaut), by["onnx"].analyze(astronaut)
        for task, p in ft.predictions().items():
            q = fo.predictions()[task]
            assert q.label == p.label
            assert max(abs(q.probabilities[k] - v) for k, v in p.probabilities.items()) < 1e-4


def test_backend_errors(monkeypatch):
    from salface.detect.given import GivenBoxes
    from salface.pipeline import Analyzer

    with pytest.raises(ValueError, match="backend"):
        Analyzer(detector=GivenBoxes([]), model=None, backend="tensorflow")
    with pytest.raises(ValueError, match="CPU"):
        Analyzer(detector=GivenBoxes([]), model=None, backend="onnx", device="cuda:0")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # not installed
    with pytest.raises(ImportError, match=r"pip install salface\[onnx\]"):
        Analyzer(detector=GivenBoxes([]), model=None, backend="onnx")
