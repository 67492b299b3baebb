"""ML-Net: architecture, the paper's loss by hand, refusal without weights, checksum, and the
bundled model on real images."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from conftest import shared_path
from salface.hub import ChecksumError, MissingModelError, bundled_dir, load_manifest
from salface.saliency import get_saliency
from salface.saliency.mlnet import (DEFAULT_MODEL_NAME, MLNet, MLNetConfig, MobileNetV2Levels,
                                    VGG16Levels, fuse_levels, mlnet_loss)


def test_loss_by_hand():
    prior = torch.ones(1, 1, 2, 2)
    target = torch.tensor([[[[0.0, 1.0]]]])
    # pred [2, 0] / max 2 = [1, 0]; ((1 − 0)² / 1.1 + (0 − 1)² / 0.1) / 2 = (0.90909 + 10) / 2
    pred = torch.tensor([[[[2.0, 0.0]]]])
    assert float(mlnet_loss(pred, target, prior)) == pytest.approx((1 / 1.1 + 10) / 2, rel=1e-5)
    # a perfect prediction (any scale) costs nothing; a prior of 0.5 everywhere adds
    # λ · 4 · 0.25 = 1e-3
    perfect = torch.tensor([[[[0.0, 3.0]]]])
    assert float(mlnet_loss(perfect, target, prior)) == pytest.approx(0.0, abs=1e-7)
    assert float(mlnet_loss(perfect, target, 0.5 * prior)) == pytest.approx(1e-3, rel=1e-5)
    with pytest.raises(ValueError, match="differ"):
        mlnet_loss(pred, torch.zeros(1, 1, 2, 3), prior)


def test_levels_are_at_stride_8():
    x = torch.zeros(2, 3, 64, 96)
    mb = MobileNetV2Levels(pretrained=False).eval()
    lv = mb(x)
    assert [t.shape[1] for t in lv] == [32, 96, 320]
    assert [tuple(t.shape[-2:]) for t in lv] == [(8, 12), (4, 6), (2, 3)]
    fused = fuse_levels(lv)
    assert tuple(fused.shape) == (2, 448, 8, 12)
    with torch.device("meta"):  # shapes only: skips initialising VGG-16's 138 M parameters
        vgg = VGG16Levels(pretrained=False).eval()
        lv = vgg(torch.zeros(2, 3, 64, 96))
    # pool3, pool4 with stride 1, conv5_3: all at 1/8, 256 + 512 + 512 channels
    assert [tuple(t.shape[1:]) for t in lv] == [(256, 8, 12), (512, 8, 12), (512, 8, 12)]


def test_network_output_and_frozen_backbone():
    net = MLNet(MLNetConfig(), pretrained_backbone=False)
    y = net(torch.zeros(1, 3, 96, 96))
    assert tuple(y.shape) == (1, 1, 12, 12) and float(y.detach().min()) >= 0
    assert not any(p.requires_grad for p in net.backbone.parameters())
    assert all(p.requires_grad for p in net.head.parameters())
    net.train()
    assert not net.backbone.training and net.head.training
    with pytest.raises(ValueError, match="backbone"):
        MLNetConfig(backbone="resnet50")


def test_refuses_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(tmp_path))
    with pytest.raises(MissingModelError, match=DEFAULT_MODEL_NAME):
        get_saliency("mlnet")


def _bundled_present():
    if DEFAULT_MODEL_NAME not in load_manifest()["models"]:
        pytest.skip("the ML-Net weights have not been bundled yet")


@pytest.mark.parametrize("backend,variant", [("torch", None), ("onnx", "onnx")])
def test_corrupt_weights_are_rejected(tmp_path, monkeypatch, backend, variant):
    _bundled_present()
    src = bundled_dir()
    entry = load_manifest()["models"][DEFAULT_MODEL_NAME]
    fname = entry[variant]["file"] if variant else entry["file"]
    shutil.copy(src / "manifest.json", tmp_path / "manifest.json")
    data = bytearray((src / fname).read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / fname).write_bytes(bytes(data))
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(tmp_path))
    with pytest.raises(ChecksumError, match=DEFAULT_MODEL_NAME):
        get_saliency("mlnet", backend=backend, **({"variant": variant} if variant else {}))


@pytest.fixture
def imagenet_home(tmp_path, monkeypatch):
    """TORCH_HOME holding a link to ../shared's MobileNetV2 ImageNet weights (offline)."""
    w = shared_path("weights", "imagenet", "mobilenet_v2-b0353104.pth")
    ck = tmp_path / "torch" / "hub" / "checkpoints"
    ck.mkdir(parents=True)
    (ck / w.name).symlink_to(w)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_bundled_model_on_faces(imagenet_home, astronaut):
    _bundled_present()
    import cv2

    model = get_saliency("mlnet")
    face = cv2.resize(astronaut[0:240, 120:360], (112, 112), interpolation=cv2.INTER_AREA)
    crops = np.stack([face, face[:, ::-1].copy(), cv2.resize(astronaut, (112, 112))])
    maps = model(crops)
    assert maps.shape == (3, 112, 112) and maps.dtype == np.float32
    assert maps.min() >= 0 and np.allclose(maps.reshape(3, -1).max(1), 1.0)
    assert maps[0].std() > 0.05  # a real map, not a constant
    np.testing.assert_allclose(model(crops[0]), maps[0], atol=1e-5)  # batch = single
    # 128-px crops work too (fully convolutional, map at crop resolution)
    assert model(cv2.resize(face, (128, 128))).shape == (128, 128)


def test_bundled_model_beats_centre_on_nus_test_images(imagenet_home):
    _bundled_present()
    from salface.saliency.evaluate import prepare, score_maps
    from salface.saliency.fixations import load_nus, load_split

    images = load_nus(shared_path("data", "nus-saliency"))
    # the first 12 test images of at most 256×256 px (decoding the 3-8 Mpx ones is slow)
    small = [i for i in load_split()["test"] if images[i].height * images[i].width <= 256 * 256]
    data = prepare([images[i] for i in small[:12]], max_side=256)
    ml = get_saliency("mlnet", scene=True)
    centre = get_saliency("centre")
    r_ml = score_maps(data, [ml(d.rgb) for d in data])
    r_c = score_maps(data, [centre(d.rgb) for d in data])
    for key in ("nss", "cc"):
        assert np.mean([r[key] for r in r_ml]) > np.mean([r[key] for r in r_c])


def test_golden_astronaut_face(imagenet_home, astronaut, yunet_model):
    """Pins the bundled model's map on skimage's astronaut (YuNet + crop_face, 112 px): the
    values were recorded when mlnet-mobilenetv2-nus was shipped; retraining must update them."""
    _bundled_present()
    from salface.saliency.faces import astronaut_sample, mass_shares, region_masks

    s = astronaut_sample(size=112, yunet_model=yunet_model)
    m = get_saliency("mlnet")(s.crop)
    shares = mass_shares(m, region_masks(s.landmarks, m.shape))
    assert shares["features"] == pytest.approx(0.360, abs=0.01)
    assert shares["mouth"] == pytest.approx(0.225, abs=0.01)
    assert float(m.mean()) == pytest.approx(0.138, abs=0.005)
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    assert abs(int(y) - 70) <= 2 and abs(int(x) - 54) <= 2  # peak just above the mouth


def test_bundled_mlnet_is_self_contained(monkeypatch, tmp_path):
    """The shipped ML-Net carries its frozen backbone: it loads with an empty torch cache and no
    ImageNet download (the pinned astronaut output above checks the maps themselves)."""
    from salface.hub import load_manifest
    from salface.saliency import get_saliency

    if "mlnet-mobilenetv2-nus" not in load_manifest()["models"]:
        pytest.skip("ML-Net not bundled")
    crops = np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setattr("torch.hub.load_state_dict_from_url",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("download attempted")))
    maps = get_saliency("mlnet")(crops)
    assert maps.shape == (2, 64, 64) and 0.0 <= maps.min() and maps.max() == pytest.approx(1.0)
