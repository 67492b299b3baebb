"""Backbones, heads and the bundled-model registry."""

from __future__ import annotations

import pytest
import torch

from salface.models.backbones import build_classifier, freeze_first
from salface.models.config import ClassifierConfig
from salface.models.registry import DEFAULT_MODELS, list_classifiers, load_classifier
from salface.hub import MissingModelError


def _cfg(backbone: str, size: int, tasks=("age", "gender")) -> ClassifierConfig:
    return ClassifierConfig(name="t", backbone=backbone, tasks=tasks, input_size=size, saliency="none")


@pytest.mark.parametrize("backbone,size", [("mobilenet_v2", 64), ("alexnet_gap", 112), ("gilnet", 96),
                                           ("gilnet", 227), ("alexnet", 112)])
def test_forward_gives_one_logit_tensor_per_task(backbone, size):
    torch.manual_seed(0)
    m = build_classifier(_cfg(backbone, size)).eval()
    with torch.no_grad():
        out = m(torch.randn(2, 3, size, size))
    assert set(out) == {"age", "gender"}
    assert out["age"].shape == (2, 8) and out["gender"].shape == (2, 2)


def test_gap_backbone_exposes_features_and_head_weights_for_cam():
    m = build_classifier(_cfg("mobilenet_v2", 64, ("expression",))).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        fmap = m.features(x)
        logits = m(x)["expression"]
    w = m.head_weight("expression")
    assert fmap.shape[1] == w.shape[1] == 1280
    # GAP + linear: logits equal the head applied to the mean of the last conv maps
    manual = fmap.mean(dim=(2, 3)) @ w.T + m.heads.heads["expression"].bias
    assert torch.allclose(manual, logits, atol=1e-5)
    with pytest.raises(ValueError, match="global average pooling"):
        build_classifier(_cfg("gilnet", 96)).head_weight("age")


def test_gilnet_layers_follow_levi_hassner():
    m = build_classifier(_cfg("gilnet", 227))
    convs = [l for l in m.feature_layers() if isinstance(l, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (96, (7, 7), (4, 4)), (256, (5, 5), (1, 1)), (384, (3, 3), (1, 1))]
    fcs = [l for l in m.neck if isinstance(l, torch.nn.Linear)]
    assert [f.out_features for f in fcs] == [512, 512]


def test_freeze_first_freezes_a_prefix_only():
    m = build_classifier(_cfg("alexnet", 112))
    k = freeze_first(m, 4)
    convs = m.feature_layers()
    assert k == 4 and len(convs) == 5
    assert all(not p.requires_grad for c in convs[:4] for p in c.parameters())
    assert all(p.requires_grad for p in convs[4].parameters())
    assert all(p.requires_grad for p in m.heads.parameters())


def test_pretrained_mobilenet_loads_imagenet_weights(shared, monkeypatch, tmp_path):
    src = shared("weights", "imagenet", "mobilenet_v2-b0353104.pth")
    ck = tmp_path / "hub" / "checkpoints"
    ck.mkdir(parents=True)
    (ck / src.name).symlink_to(src)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    m = build_classifier(_cfg("mobilenet_v2", 64), pretrained=True)
    sd = torch.load(src, map_location="cpu", weights_only=True)
    assert torch.equal(m.features[0][0].weight, sd["features.0.0.weight"])


def test_pretrained_mobilenet_without_weights_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torchvision.models._api as api

    def no_net(*a, **k):
        raise OSError("no network")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_net)
    monkeypatch.setattr(api, "load_state_dict_from_url", no_net, raising=False)
    with pytest.raises(RuntimeError, match="not available offline"):
        build_classifier(_cfg("mobilenet_v2", 64), pretrained=True)


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_classifier(_cfg("resnet9000", 64))


def test_registry_names_and_missing_model_error(tmp_path):
    assert DEFAULT_MODELS["age"] == DEFAULT_MODELS["gender"] == "age-gender-ensemble"
    assert set(DEFAULT_MODELS) == {"age", "gender", "expression"}
    assert list_classifiers(str(tmp_path)) == {}
    with pytest.raises(MissingModelError, match="not been trained"):
        load_classifier("default-expression", directory=str(tmp_path))


def test_registry_round_trip_through_register_bundled(tmp_path):
    from salface.models.bundle import register_bundled

    cfg = _cfg("mobilenet_v2", 64, ("expression",))
    torch.manual_seed(1)
    m = build_classifier(cfg).eval()
    register_bundled("toy", m.state_dict(), kind="classifier", config=cfg.to_dict(), metrics={},
                     data="none", license="test", command="test", directory=tmp_path)
    m2, cfg2 = load_classifier("toy", directory=str(tmp_path))
    assert cfg2 == cfg
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(m(x)["expression"], m2(x)["expression"], atol=1e-5)
    assert "toy" in list_classifiers(str(tmp_path))
