"""Toy fixtures shared by several test modules: a tiny crop cache with soft targets, and a run
folder holding a randomly initialised MobileNetV2 (for the maths of ensembles and distillation)."""

from __future__ import annotations

import json

import cv2
import numpy as np

from salface.data.base import Sample
from salface.models.config import ClassifierConfig
from salface.training.cache import build_crop_cache, open_crop_cache, write_soft_targets


def smooth_image(i: int, size: int = 40) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    r = 127 + 100 * np.sin(x / (3 + i) + i) * np.cos(y / (4 + i))
    g = 127 + 90 * np.cos(x / 5 + y / (6 + i))
    b = np.full_like(r, 30 * i % 255)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def toy_cache(tmp_path, color: str = "rgb", n: int = 8):
    """Eight 32-px crops of smooth synthetic images (gender labels and soft targets): four train,
    two val, two test."""
    samples, splits = [], []
    for i in range(n):
        p = tmp_path / f"img{i}.png"
        cv2.imwrite(str(p), smooth_image(i)[..., ::-1])
        samples.append(Sample(str(p), {"gender": i % 2},
                              meta={"soft": {"gender": [0.25, 0.75] if i % 2 else [1.0, 0.0]}}))
        splits.append(("train", "train", "train", "train", "val", "val", "test", "test")[i])
    cc = build_crop_cache(samples, tmp_path / f"cache-{color}", size=32, detector="none", color=color,
                          splits=splits, progress=False)
    write_soft_targets(cc.root, samples)
    return open_crop_cache(cc.root)


def member_run(tmp_path, name, seed, size=32, mean=None, std=None, tasks=("age", "gender"), **cfg_kw):
    """A run folder holding a randomly initialised MobileNetV2 (no training needed for the maths)."""
    import torch
    from safetensors.torch import save_file

    from salface.models.backbones import build_classifier

    kw = dict(cfg_kw) if mean is None else {"mean": mean, "std": std, **cfg_kw}
    cfg = ClassifierConfig(name=name, backbone="mobilenet_v2", tasks=tasks, input_size=size,
                           saliency="none", **kw)
    torch.manual_seed(seed)
    net = build_classifier(cfg)
    with torch.no_grad():  # BatchNorm statistics of real-looking inputs, so outputs depend on the input
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
        net.train()
        gen = np.random.default_rng(seed)
        for _ in range(3):
            net(normalised(gen.integers(0, 256, (8, size, size, 3), dtype=np.uint8), cfg.mean, cfg.std))
        for p in net.heads.parameters():
            p.normal_(0.0, 1.0)
    net.eval()
    run = tmp_path / name
    run.mkdir()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(run / "best.safetensors"))
    preset = {"name": "toy", "backbone": "mobilenet_v2", "tasks": list(tasks), "input_size": size}
    (run / "config.json").write_text(json.dumps({"preset": preset, "classifier": cfg.to_dict(),
                                                 "cache": "nowhere"}))
    return run, net, cfg


def normalised(img, mean, std):
    import torch

    x = torch.from_numpy(img).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def gender_run(tmp_path, monkeypatch, name):
    """A gender-only toy run that ``load_run`` opens (its toy preset read back without the real
    preset table): the teacher of distillation tests, the reference of label-audit tests."""
    from salface.training import presets

    monkeypatch.setattr(presets.Preset, "from_dict", classmethod(
        lambda cls, d: presets.Preset(name=d["name"], backbone=d["backbone"], tasks=tuple(d["tasks"]))))
    run, _, _ = member_run(tmp_path, name, 0, size=32, tasks=("gender",))
    return run


def train_logp(run, cc, task="gender"):
    """The run's log-probabilities on the clean train crops of cache ``cc`` (no maps, no TTA)."""
    from salface.training.scoring import predict_arrays
    from salface.training.train import load_run

    model, config, _ = load_run(run)
    return predict_arrays(model, config, np.asarray(cc.crops[cc.indices("train")]), None, log=True)[task]
