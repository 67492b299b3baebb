"""EdgeFace backbones: the authors' int8 checkpoints, their float copy, the classifier and its CAMs."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("timm")

from salface.models.backbones import build_classifier, input_norm  # noqa: E402
from salface.models.config import ClassifierConfig  # noqa: E402
from salface.models.edgeface import (EDGEFACE_FILES, cam_weight, dequantized_state_dict,  # noqa: E402
                                     load_edgeface_float, load_quantized, weights_path)


def _cfg(backbone="edgeface_xs", **kw):
    return ClassifierConfig(name="t", backbone=backbone, tasks=("age", "gender"), input_size=112, **kw)


@pytest.fixture(scope="module")
def weights_dir():
    from conftest import shared_path
    return shared_path("weights", "edgeface")


# README: XS has 300 keys, ≈ 2.2M parameters; XXS (fewer blocks) 222 keys, ≈ 1.2M
@pytest.mark.parametrize("backbone,keys,width,params", [("edgeface_xs", 300, 192, 2.2e6),
                                                        ("edgeface_xxs", 222, 168, 1.2e6)])
def test_checkpoint_loads_with_the_readme_shapes(weights_dir, backbone, keys, width, params):
    sd = torch.load(weights_dir / EDGEFACE_FILES[backbone], map_location="cpu", weights_only=True)
    assert len(sd) == keys and all(k.startswith("model.") for k in sd)
    q = load_quantized(backbone, weights_dir)            # strict: every key of the file matches
    f = load_edgeface_float(backbone, weights_dir)
    n = sum(p.numel() for p in f.parameters())
    assert n == pytest.approx(params, rel=0.1)
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        assert f(x).shape == (2, 512) and q.model(x).shape == (2, 512)
        assert f.forward_features(x).shape == (2, width, 3, 3)


def test_float_copy_equals_the_dequantised_weights(weights_dir):
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    q = load_quantized("edgeface_xxs", weights_dir)
    f = load_edgeface_float("edgeface_xxs", weights_dir)
    fmods = dict(f.named_modules())
    n = 0
    for name, mod in q.model.named_modules():
        if isinstance(mod, QLinear):
            w, b = mod._packed_params._weight_bias()
            assert torch.equal(fmods[name].weight, w.dequantize())
            assert torch.equal(fmods[name].bias, b)
            n += 1
    assert n > 10                                        # all MLPs, attention and the embedding
    # every other tensor is copied as is
    fsd = f.state_dict()
    for k, v in q.model.state_dict().items():
        if isinstance(v, torch.Tensor) and v.dtype == torch.float32 and k in fsd:
            assert torch.equal(fsd[k], v), k
    assert set(dequantized_state_dict(q)) == {f"model.{k}" for k in fsd}


def test_pretrained_classifier_holds_the_float_copy(weights_dir, monkeypatch):
    monkeypatch.setenv("EDGEFACE_WEIGHTS", str(weights_dir))
    m = build_classifier(_cfg(), pretrained=True)
    f = load_edgeface_float("edgeface_xs", weights_dir)
    assert torch.equal(m.neck[1].weight, f.head.fc.weight)
    assert torch.equal(m.features[0][0].weight, f.stem[0].weight)
    x = torch.rand(3, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(m.embed(x), f(x), atol=1e-5)   # trunk + neck = the face embedding
    assert input_norm("edgeface_xs") == ((0.5,) * 3, (0.5,) * 3)


def test_missing_weights_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEFACE_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="edgeface_xs_q.pt.*EDGEFACE_WEIGHTS"):
        build_classifier(_cfg(), pretrained=True)
    with pytest.raises(FileNotFoundError, match="nothere"):
        weights_path("edgeface_xxs", tmp_path / "nothere.pt")
    with pytest.raises(ValueError, match="unknown EdgeFace"):
        weights_path("edgeface_l")


def test_untrained_build_needs_no_file_and_cams_are_exact(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEFACE_WEIGHTS", str(tmp_path))     # no file: pretrained=False must not look
    torch.manual_seed(0)
    m = build_classifier(_cfg("edgeface_xxs"), pretrained=False).eval()
    with torch.no_grad():                                    # non-trivial LayerNorm affine
        m.neck[0].weight.uniform_(0.5, 1.5)
        m.neck[0].bias.uniform_(-0.5, 0.5)
    assert m.has_gap
    x = torch.randn(4, 3, 112, 112)
    with torch.no_grad():
        feats = m.features(x)
        logits = m(x)["age"]
        p = feats.mean(dim=(2, 3))
        norm, fc = m.neck[0], m.neck[1]
        sigma = torch.sqrt(p.var(dim=1, unbiased=False) + norm.eps)
        w = m.head_weight("age")
        assert torch.allclose(w, cam_weight(m.heads.weight("age"), m.neck))
        assert torch.allclose(w.sum(dim=1), torch.zeros(8), atol=1e-5)
        raw = torch.einsum("ck,nkhw->nchw", w, feats)          # CAM of every class
        head = m.heads.heads["age"]
        const = head.weight @ (fc.weight @ norm.bias + fc.bias) + head.bias
        # logit = spatial mean of the CAM / σ + a per-class constant: exact up to 1/σ > 0
        assert torch.allclose(raw.mean(dim=(2, 3)) / sigma[:, None] + const, logits, atol=1e-4)
