"""The bundled ONNX files (what the default runtime runs) agree with the torch networks they were
exported from; they are checksum-verified on load; bundle-onnx writes and records them; the
Analyzer gives the same answers on both backends; the runtime never imports torch."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from salface import hub as W  # noqa: E402
from salface.crop import crop_face  # noqa: E402
from salface.types import Box, Face  # noqa: E402

LOGIT_TOL = 1e-3
"""Max abs logit difference allowed. Both backends compute in float32 and differ only in
operation order and kernels (measured when bundling, in the manifest's ``parity_vs_torch``: at most
2.6e-6 on the shipped models' logits, which are O(1) in size); 1e-3 leaves three orders of
magnitude of headroom for other CPUs and kernel choices, yet is far below a logit gap that matters
(argmax is checked as well)."""
MAP_TOL = 1e-3
"""Max abs difference of ML-Net maps in [0, 1] after post-processing (measured: at most 4e-6)."""
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


@pytest.mark.parametrize("name", ["age-gender-ensemble", "default-age-gender", "default-expression"])
def test_classifier_onnx_matches_torch(name, crops):
    _need(name)
    pytest.importorskip("torch")
    from salface.classify import load_classifier
    from salface.saliency import get_saliency

    onnx_clf = load_classifier(name, backend="onnx", variant="onnx")  # the float export
    torch_clf = load_classifier(name, backend="torch")
    assert onnx_clf.backend == "onnx" and torch_clf.backend == "torch"
    pixels = onnx_clf.prepare(crops)
    maps = get_saliency("mlnet", backend="onnx", variant="onnx")(pixels)
    for n in (1, len(pixels)):  # batch sizes 1 and 5 through the same dynamic-batch export
        ref = torch_clf.logits(pixels[:n], maps[:n])
        got = onnx_clf.logits(pixels[:n], maps[:n])
        for t in onnx_clf.tasks:
            assert got[t].shape == ref[t].shape == (n, len(onnx_clf.labels[t]))
            diff = float(np.abs(got[t] - ref[t]).max())
            assert diff < LOGIT_TOL, f"{name}/{t}: max abs logit difference {diff:.2e}"
            assert np.array_equal(got[t].argmax(1), ref[t].argmax(1))


def test_numpy_input_matches_training_tensor(crops):
    """The runtime's NumPy preprocessing equals training's torch preprocessing."""
    torch = pytest.importorskip("torch")
    from salface.models.config import ClassifierConfig
    from salface.models.preprocess import to_input_tensor
    from salface.preprocess import prepare_crops, to_input_array

    cfg = ClassifierConfig(name="x", backbone="mobilenet_v2", tasks=("age",), input_size=96, ratio=0.3)
    pixels = prepare_crops(crops, cfg)
    maps = np.random.default_rng(3).random(pixels.shape[:3], dtype=np.float32)
    ref = to_input_tensor(pixels, maps, cfg).contiguous().numpy()
    assert np.abs(to_input_array(pixels, maps, cfg) - ref).max() < 1e-5
    assert isinstance(ref, np.ndarray) and torch.is_tensor(to_input_tensor(pixels, maps, cfg))


def test_mlnet_runtime_matches_torch_saliency(crops):
    """ML-Net's float ONNX file gives the maps of the torch network (the same NumPy pre- and
    post-processing around both), at several batch sizes and crop sizes."""
    _need("mlnet-mobilenetv2-nus")
    pytest.importorskip("torch")
    from salface.saliency import get_saliency
    from salface.saliency.mlnet import load_mlnet

    reference = load_mlnet()  # the torch network (training side)
    runtime = get_saliency("mlnet", backend="onnx", variant="onnx")  # the float export
    assert type(runtime).__name__ == "MLNetRuntime" and runtime.backend == "onnx"
    for batch in (crops[:1], crops[:1, 16:80, 16:80], crops):  # dynamic batch and size
        ref, got = reference(batch), runtime(batch)
        assert got.shape == ref.shape == batch.shape[:3]
        assert float(np.abs(got - ref).max()) < MAP_TOL


def test_bundled_onnx_is_checksum_verified(tmp_path, monkeypatch):
    _need("default-expression")
    from salface.classify import load_classifier
    from salface.errors import ChecksumError

    d = tmp_path / "bundle"
    shutil.copytree(W.bundled_dir(), d, ignore=shutil.ignore_patterns("*.safetensors"))
    f = d / W.bundled_entry("default-expression")["onnx"]["file"]
    data = bytearray(f.read_bytes())
    data[-100] ^= 0xFF
    f.write_bytes(bytes(data))
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(d))
    with pytest.raises(ChecksumError, match="default-expression"):
        load_classifier("default-expression", backend="onnx", variant="onnx")
    assert W.bundled_status("default-expression", variant="onnx") == "mismatch"
    assert W.bundled_status("default-age-gender", variant="onnx") == "ok"


def _ship_toy(seed: int) -> None:
    """Bundle a small classifier (AlexNet trunk + GAP, 64 px, untrained) with seeded weights."""
    import torch

    from salface.models.backbones import build_classifier
    from salface.models.bundle import register_bundled
    from salface.models.config import ClassifierConfig

    cfg = ClassifierConfig(name="toy", backbone="alexnet_gap", tasks=("age", "gender"),
                           input_size=64, saliency="none")
    torch.manual_seed(seed)
    net = build_classifier(cfg)
    register_bundled("toy", net.state_dict(), kind="classifier", config=cfg.to_dict(),
                       metrics={}, data="none", license="test", command="test")


def test_bundle_onnx_records_and_reshipping_drops_it(tmp_path, monkeypatch):
    pytest.importorskip("onnxscript")
    from typer.testing import CliRunner

    from salface.classify import load_classifier
    from salface.cli import app
    from salface.errors import MissingModelError

    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(tmp_path / "bundled"))
    _ship_toy(0)
    with pytest.raises(MissingModelError, match="bundle-onnx toy"):
        load_classifier("toy", backend="onnx")  # shipped without its ONNX file
    r = CliRunner().invoke(app, ["models", "bundle-onnx", "toy", "no-such-model"])
    assert r.exit_code == 1 and "no-such-model" in r.output
    rec = W.bundled_entry("toy")["onnx"]
    assert rec["file"] == "toy.onnx" and rec["sha256"] == W.sha256_file(tmp_path / "bundled" / "toy.onnx")
    assert rec["parity_vs_torch"]["argmax_agree"] and rec["parity_vs_torch"]["max_abs_logit"] < LOGIT_TOL
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    a, b = (load_classifier("toy", backend=k).logits(x, None) for k in ("onnx", "torch"))
    assert max(float(np.abs(a[t] - b[t]).max()) for t in a) < LOGIT_TOL
    _ship_toy(1)  # new weights: the old ONNX record describes the old weights and is dropped
    assert "onnx" not in W.bundled_entry("toy")


def test_analyzer_backends_agree(astronaut, yunet_model):
    _need("default-age-gender")
    _need("default-expression")
    pytest.importorskip("torch")
    from salface.pipeline import Analyzer

    (ft,), (fo,), (fr,) = (Analyzer(backend=b, variant=v).analyze(astronaut)
                           for b, v in (("torch", "auto"), ("onnx", "onnx"), ("onnx", "auto")))
    for task, p in ft.predictions().items():
        q = fo.predictions()[task]  # float ONNX: the torch numbers
        assert q.label == p.label
        assert max(abs(q.probabilities[k] - v) for k, v in p.probabilities.items()) < 1e-4
        r = fr.predictions()[task]  # what the runtime runs (INT8 where it passed its trial)
        assert r.label == p.label
        assert max(abs(r.probabilities[k] - v) for k, v in p.probabilities.items()) < 0.05


def test_runtime_never_imports_torch(yunet_model):
    """analyze end to end on the default backend, in a fresh interpreter: torch stays unloaded."""
    code = ("import sys, skimage.data\n"
            "from salface.pipeline import Analyzer\n"
            "faces = Analyzer().analyze(skimage.data.astronaut())\n"
            "assert len(faces) == 1 and faces[0].expression.label == 'happy', faces\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'timm')]\n"
            "assert not bad, bad\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_backend_errors(monkeypatch):
    from salface.detect.given import GivenBoxes
    from salface.errors import DependencyError
    from salface.pipeline import Analyzer

    with pytest.raises(ValueError, match="backend"):
        Analyzer(detector=GivenBoxes([]), model=None, backend="tensorflow")
    with pytest.raises(ValueError, match="device"):
        Analyzer(detector=GivenBoxes([]), model=None, device="gpu")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(DependencyError, match="onnxruntime-gpu"):
            Analyzer(detector=GivenBoxes([]), backend="onnx", device="cuda")
    monkeypatch.setattr("salface.backends._installed", lambda m: False)
    with pytest.raises(DependencyError, match="pip install"):
        Analyzer(detector=GivenBoxes([]), model=None)


def test_runtime_runs_the_variant_the_manifest_names():
    """variant="auto" runs each network's runtime_variant (INT8 where it passed its trial),
    "onnx" the float file; both files are checksum-verified."""
    from salface.backends import load_network
    from salface.classify import load_classifier

    for name, entry in W.load_manifest()["models"].items():
        if entry.get("kind") not in ("classifier", "saliency"):
            continue
        want = entry.get("runtime_variant", "onnx")
        net, _ = load_network(name, "onnx", variant="auto")
        assert net.path.name == entry[want]["file"]
        assert load_network(name, "onnx", variant="onnx")[0].path.name == entry["onnx"]["file"]
    if "onnx_int8" in W.bundled_entry("default-expression"):
        x = np.random.default_rng(0).integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
        f, q = (load_classifier("default-expression", variant=v) for v in ("onnx", "onnx_int8"))
        pf, pq = f.predict(f.prepare(x), None if f.config.saliency == "none" else np.ones((4, 96, 96), np.float32)), \
            q.predict(q.prepare(x), None if q.config.saliency == "none" else np.ones((4, 96, 96), np.float32))
        assert np.abs(pf["expression"] - pq["expression"]).max() < 0.5  # a close copy, not the same


def test_set_variant_chooses_the_runtime_file(tmp_path, monkeypatch):
    _need("mlnet-mobilenetv2-nus")
    from typer.testing import CliRunner

    from salface.backends import load_network
    from salface.cli import app

    d = tmp_path / "bundle"
    shutil.copytree(W.bundled_dir(), d, ignore=shutil.ignore_patterns("*.safetensors"))
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(d))
    name = "mlnet-mobilenetv2-nus"
    run = CliRunner().invoke
    for variant in ("onnx_int8", "onnx"):
        r = run(app, ["models", "set-variant", name, variant, "--reason", "test"])
        assert r.exit_code == 0, r.output
        entry = W.bundled_entry(name)
        assert entry["runtime_variant"] == variant and entry["runtime_variant_reason"] == "test"
        assert load_network(name, "onnx", variant="auto")[0].path.name == entry[variant]["file"]
    assert run(app, ["models", "set-variant", name, "int4", "--reason", "x"]).exit_code == 2
    r = run(app, ["models", "set-variant", "default-age-gender", "onnx_int8", "--reason", "x"])
    assert r.exit_code == 1 and "no bundled onnx_int8" in r.output
