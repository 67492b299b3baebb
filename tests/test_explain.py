"""Class activation maps against a hand-built network with known weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from salface.explain import (ExplainModel, class_activation_maps, explain_images, region_shares,
                             summarize_shares)
from salface.models.backbones import Classifier
from salface.models.config import ClassifierConfig
from salface.models.heads import MultiHead


def _hand_net() -> Classifier:
    """features: 1×1 conv, no bias, channel 0 = R, channel 1 = G; GAP; gender head
    w = [[1, −1], [−1, 2]], b = [0.5, 0]."""
    conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
    head = MultiHead(2, {"gender": 2})
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).view(2, 3, 1, 1))
        head.heads["gender"].weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 2.0]]))
        head.heads["gender"].bias.copy_(torch.tensor([0.5, 0.0]))
    return Classifier(conv, nn.AdaptiveAvgPool2d(1), nn.Identity(), head, has_gap=True).eval()


def _hand_input() -> torch.Tensor:
    # R[i, j] = 4i + j (0..15), G[i, j] = j, B = 0
    i, j = np.mgrid[0:4, 0:4].astype(np.float32)
    return torch.from_numpy(np.stack([4 * i + j, j, np.zeros_like(i)]))[None]


def test_cam_of_a_hand_built_network():
    net, x = _hand_net(), _hand_input()
    # logits: male = mean(R) − mean(G) + 0.5 = 7.5 − 1.5 + 0.5 = 6.5; female = −7.5 + 2·1.5 = −4.5
    assert net(x)["gender"][0].tolist() == pytest.approx([6.5, -4.5])
    cam = class_activation_maps(net, x, "gender")
    assert cam.classes.tolist() == [0]                       # predicted: male
    # raw CAM of male = R − G = 4i  →  rows 0, 4, 8, 12; normalised row i → i / 3
    assert cam.raw[0] == pytest.approx(np.repeat([[0.0], [4.0], [8.0], [12.0]], 4, axis=1))
    assert cam.maps[0] == pytest.approx(np.repeat([[0.0], [1 / 3], [2 / 3], [1.0]], 4, axis=1))
    # the CAM's mean plus the bias is the logit: 6 + 0.5 = 6.5
    assert cam.raw[0].mean() + 0.5 == pytest.approx(6.5)
    p_male = 1 / (1 + np.exp(-11.0))
    assert cam.probabilities[0] == pytest.approx(p_male, rel=1e-6)

    # CAM of the other class: −R + 2G = −4i + j, from −12 (bottom left) to 3 (top right)
    fem = class_activation_maps(net, x, "gender", class_index=1)
    i, j = np.mgrid[0:4, 0:4]
    assert fem.raw[0] == pytest.approx(-4 * i + j)
    assert fem.maps[0] == pytest.approx((-4 * i + j + 12) / 15)


def test_cam_upsampling_by_hand():
    net, x = _hand_net(), _hand_input()
    cam = class_activation_maps(net, x, "gender", size=(8, 8))
    # bilinear ×2, align_corners=False: output row y samples source row (y + 0.5) / 2 − 0.5,
    # clamped to [0, 3]; the male map is 4·row → rows 0, 1, 3, 5, 7, 9, 11, 12 → ÷ 12
    rows = np.array([0, 1, 3, 5, 7, 9, 11, 12]) / 12
    assert cam.maps[0] == pytest.approx(np.repeat(rows[:, None], 8, axis=1), abs=1e-6)


def test_flat_maps_and_refusals():
    net = _hand_net()
    x = torch.zeros(2, 3, 4, 4)                             # all-zero features: flat maps
    cam = class_activation_maps(net, x, "gender")
    assert cam.flat.tolist() == [True, True] and float(cam.maps.max()) == 0.0
    with pytest.raises(ValueError, match="no 'age' head"):
        class_activation_maps(net, x, "age")
    fc = Classifier(nn.Conv2d(3, 2, 1), nn.AdaptiveAvgPool2d(1), nn.Identity(), MultiHead(2, {"gender": 2}),
                    has_gap=False)
    with pytest.raises(ValueError, match="global average pooling"):
        class_activation_maps(fc, x, "gender")


def test_region_shares_of_a_map_on_the_eyes():
    # landmarks in a 40×40 map: eyes at (10, 15) and (30, 15) → d = 20, eye discs of radius 5
    lm = np.array([[10, 15], [30, 15], [20, 24], [14, 31], [26, 31]], np.float64)
    yy, xx = np.mgrid[:40, :40]
    cam = (((xx - 10) ** 2 + (yy - 15) ** 2) <= 4).astype(np.float32)     # mass inside one eye disc
    s, u = region_shares(cam, lm)
    assert s["eyes"] == 1.0 and s["nose"] == 0.0 and s["features"] == 1.0
    # uniform share of the eyes = two discs of radius 5 (81 pixels each on this grid) / 1600
    assert u["eyes"] == pytest.approx(2 * 81 / 1600)
    summ = summarize_shares(np.stack([cam, np.zeros_like(cam)]), np.stack([lm, lm]))
    assert summ["n_faces"] == 1 and summ["skipped"] == 1
    assert summ["lift"]["eyes"] == pytest.approx(1600 / 162)
    assert summ["above_uniform"]["eyes"] == 1.0


def test_explain_images_writes_panels(astronaut, yunet_model, tmp_path):
    from salface.viz import save_rgb

    img = save_rgb(tmp_path / "astronaut.png", astronaut)
    cfg = ClassifierConfig(name="hand", backbone="mobilenet_v2", tasks=("gender",), input_size=32,
                           saliency="centre", ratio=0.3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    from salface.saliency import get_saliency

    em = ExplainModel(_hand_net(), cfg, ("gender",), get_saliency("centre"), "hand-built")
    res = explain_images([img], tmp_path / "out", [em], detector="yunet",
                         detector_options={"model_path": str(yunet_model)})
    assert len(res) == 1
    r = res[0]
    assert r.predictions["gender"]["label"] in ("male", "female")
    sh = r.cam_shares["gender"]
    assert set(sh["share"]) == {"eyes", "nose", "mouth", "features"}
    assert 0 < sh["uniform"]["features"] < 1
    png = tmp_path / "out" / r.panel
    import cv2

    panel = cv2.imread(str(png))
    assert panel.shape[1] == 4 * 160 + 3 * 4                 # crop | saliency | reweighted | CAM
    assert json.loads((tmp_path / "out" / "explain.json").read_text())[0]["face"] == 0


@pytest.mark.parametrize("backbone,size", [("mobilenet_v2", 64), ("alexnet_gap", 64)])
def test_cam_is_exact_for_the_real_gap_backbones(backbone, size):
    """For the shipped GAP architectures the CAM's spatial mean plus the head bias is the logit."""
    from salface.models.backbones import build_classifier

    torch.manual_seed(0)
    cfg = ClassifierConfig(name="t", backbone=backbone, tasks=("age", "gender"), input_size=size)
    net = build_classifier(cfg, pretrained=False).eval()
    x = torch.randn(2, 3, size, size)
    logits = net(x)
    for task in ("age", "gender"):
        for c in range(len(cfg.labels[task])):
            cam = class_activation_maps(net, x, task, class_index=c)
            bias = net.heads.heads[task].bias[c].item()
            assert cam.raw.mean(axis=(1, 2)) + bias == pytest.approx(logits[task][:, c].detach().numpy(),
                                                                     rel=1e-4, abs=1e-4)


def test_explain_reports_the_probabilities_of_analyze(astronaut, tmp_path, yunet_model):
    """One forward path: `salface explain` gives the calibrated, flip-averaged probabilities that
    `analyze` gives (it once reported uncalibrated ones: age 0.69 vs 0.75 for the astronaut)."""
    from salface.explain import shipped_models
    from salface.pipeline import Analyzer

    import skimage.io

    path = tmp_path / "astronaut.png"
    skimage.io.imsave(path, astronaut)
    (ex,) = explain_images([path], tmp_path / "out", shipped_models(), detector="yunet")
    (face,) = Analyzer().analyze(astronaut)
    for task, p in face.predictions().items():
        assert ex.predictions[task]["label"] == p.label
        assert ex.predictions[task]["confidence"] == pytest.approx(p.confidence, abs=1e-4)
