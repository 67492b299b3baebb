"""Train ML-Net on the NUS fixations (``salface train-saliency``).

Recipe (choices ours; the paper trains end to end on SALICON with SGD):

1. The split's train images (350) and their horizontal mirrors, and the val images (50), are
   resized (area / bilinear) to the training size (256×256: 311 of the 500 NUS images are
   256×256; the others are squeezed to a square, which keeps the whole scene in view as the
   face crops the model is used on are square). Targets: the fixation map at 256×256
   (σ = one degree = 8 px) area-resized to the 32×32 output grid and scaled to max 1.
2. The frozen backbone's three feature levels are computed once and cached (float16) under
   ``<out>/features_<backbone>_<size>.pt``; training then runs only the encoder and prior.
3. Adam (lr 1e-3, weight decay 5e-4 on the convolutions), batch 10 (the paper's batch size),
   for ``epochs`` passes over the 700 train samples, seeded. Each epoch the val split is scored
   (NSS and CC at the evaluation resolution, :mod:`salface.saliency.evaluate`); the epoch with
   the best val CC is kept as ``best.pt``. ``last.pt`` is written every epoch for ``--resume``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .evaluate import MAX_SIDE, prepare
from .fixations import fixation_density, load_nus, load_split, scale_points
from .metrics import cc, nss
from .mlnet import (DEFAULT_MODEL_NAME, MLNet, MLNetConfig, bundle_state, fuse_levels, mlnet_loss,
                    to_input)


@dataclass
class TrainSettings:
    data_dir: str
    out_dir: str = "runs/saliency"
    epochs: int = 30
    seed: int = 0
    batch_size: int = 10
    lr: float = 1e-3
    weight_decay: float = 5e-4
    backbone: str = "mobilenet_v2"
    size: int = 256
    resume: bool = False


@dataclass
class TrainResult:
    best_epoch: int
    best_val: dict[str, float]
    checkpoint: str
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
    return cv2.resize(rgb, (size, size), interpolation=interp)


def _target(points: np.ndarray, hw: tuple[int, int], size: int) -> np.ndarray:
    pts = scale_points(points, hw, (size, size))
    dens = fixation_density(pts, (size, size))
    small = cv2.resize(dens, (size // 8, size // 8), interpolation=cv2.INTER_AREA)
    mx = float(small.max())
    return (small / mx if mx > 0 else small).astype(np.float32)


@torch.inference_mode()
def _features(net: MLNet, scenes: np.ndarray, batch: int = 16) -> list[torch.Tensor]:
    levels: list[list[torch.Tensor]] = [[], [], []]
    for s in range(0, len(scenes), batch):
        out = net.backbone(to_input(scenes[s:s + batch]))
        for i, lv in enumerate(out):
            levels[i].append(lv.to(torch.float16).contiguous())
    return [torch.cat(lv) for lv in levels]


def build_cache(settings: TrainSettings, net: MLNet, log: Callable[[str], None]) -> dict:
    """Backbone features + targets for train (with mirrors) and val, cached on disk."""
    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"features_{settings.backbone}_{settings.size}.pt"
    if path.is_file():
        log(f"using cached features {path}")
        return torch.load(path, weights_only=True)
    t0 = time.time()
    images = load_nus(settings.data_dir)
    split = load_split()
    cache: dict = {}
    for part in ("train", "val"):
        scenes, targets = [], []
        for i in split[part]:
            im = images[i]
            rgb = _resize(im.load_image(), settings.size)
            tgt = _target(im.points, (im.height, im.width), settings.size)
            scenes.append(rgb)
            targets.append(tgt)
            if part == "train":
                scenes.append(np.ascontiguousarray(rgb[:, ::-1]))
                targets.append(np.ascontiguousarray(tgt[:, ::-1]))
        feats = _features(net, np.stack(scenes))
        cache[part] = {"feats": feats, "targets": torch.from_numpy(np.stack(targets))[:, None],
                       "index": torch.tensor(split[part])}
        log(f"{part}: {len(scenes)} samples, features {[tuple(f.shape) for f in feats]}")
    torch.save(cache, path)
    log(f"feature cache written to {path} in {time.time() - t0:.0f} s")
    return cache


def _val_scores(net: MLNet, feats: list[torch.Tensor], val_data) -> dict[str, float]:
    net.head.eval()
    with torch.inference_mode():
        raw = net.head(fuse_levels([f.float() for f in feats]))
    ns, cs = [], []
    for r, d in zip(raw, val_data):
        h, w = d.fix.shape
        m = F.interpolate(r[None], size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
        ns.append(nss(m, d.fix))
        cs.append(cc(m, d.dens))
    return {"val_nss": float(np.mean(ns)), "val_cc": float(np.mean(cs))}


def train_mlnet(settings: TrainSettings, log: Callable[[str], None] = print) -> TrainResult:
    """Train the encoder + prior on cached features; see the module docstring."""
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    config = MLNetConfig(backbone=settings.backbone, train_size=(settings.size, settings.size))
    net = MLNet(config, pretrained_backbone=True)
    cache = build_cache(settings, net, log)
    images = load_nus(settings.data_dir)
    val_data = prepare([images[i] for i in cache["val"]["index"].tolist()], MAX_SIDE)

    head = net.head
    decay = [p for n, p in head.named_parameters() if n.endswith("weight")]
    other = [p for n, p in head.named_parameters() if not n.endswith("weight")]
    opt = torch.optim.Adam([{"params": decay, "weight_decay": settings.weight_decay},
                            {"params": other, "weight_decay": 0.0}], lr=settings.lr)
    out = Path(settings.out_dir)
    start, history, best = 0, [], {"val_cc": -1.0}
    best_epoch = -1
    if settings.resume and (out / "last.pt").is_file():
        ck = torch.load(out / "last.pt", weights_only=False)
        head.load_state_dict(ck["head"])
        opt.load_state_dict(ck["opt"])
        start, history = ck["epoch"] + 1, ck["history"]
        best, best_epoch = ck["best"], ck["best_epoch"]
        rng = np.random.default_rng(settings.seed + start)
        log(f"resumed from epoch {start}")

    tr = cache["train"]
    n = tr["targets"].shape[0]
    t0 = time.time()
    for epoch in range(start, settings.epochs):
        head.train()
        order = rng.permutation(n)
        total, steps = 0.0, 0
        for s in range(0, n, settings.batch_size):
            b = torch.from_numpy(order[s:s + settings.batch_size])
            feats = fuse_levels([f[b].float() for f in tr["feats"]])
            pred = head(feats)
            loss = mlnet_loss(pred, tr["targets"][b], head.prior, config.alpha, config.prior_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            steps += 1
        scores = _val_scores(net, cache["val"]["feats"], val_data)
        row = {"epoch": epoch, "loss": total / steps, **scores, "seconds": time.time() - t0}
        history.append(row)
        if scores["val_cc"] > best["val_cc"]:
            best, best_epoch = scores, epoch
            torch.save({"head": head.state_dict(), "config": config.to_dict(), "epoch": epoch,
                        "val": scores, "settings": asdict(settings)}, out / "best.pt")
        torch.save({"head": head.state_dict(), "opt": opt.state_dict(), "epoch": epoch,
                    "history": history, "best": best, "best_epoch": best_epoch,
                    "config": config.to_dict()}, out / "last.pt")
        log(f"epoch {epoch:3d} loss {row['loss']:.4f} val NSS {scores['val_nss']:.3f} "
            f"CC {scores['val_cc']:.3f} ({row['seconds']:.0f} s)")
    (out / "history.json").write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
    return TrainResult(best_epoch, best, str(out / "best.pt"), history, time.time() - t0)


def load_checkpoint(path: str | Path, input_size=None):
    """An :class:`~salface.saliency.mlnet.MLNetSaliency` from a training checkpoint (``best.pt``)."""
    from .mlnet import MLNetSaliency

    ck = torch.load(path, weights_only=False)
    config = MLNetConfig.from_dict(ck["config"])
    net = MLNet(config, pretrained_backbone=True)
    net.head.load_state_dict(ck["head"])
    return MLNetSaliency(net, input_size=input_size, model_name=f"checkpoint:{path}")


def bundle_checkpoint(path: str | Path, name: str = DEFAULT_MODEL_NAME, command: str = "",
                      extra_metrics: dict | None = None, blur: float = 0.0, floor: float = 0.0,
                      training_command: str | None = None) -> Path:
    """Register checkpoint ``path`` as bundled saliency model ``name`` (safetensors + ONNX + manifest),
    with the map post-processing ``blur`` / ``floor`` (:func:`~salface.saliency.mlnet.postprocess`)
    recorded in its config."""
    from ..models.bundle import register_bundled

    ck = torch.load(path, weights_only=False)
    config = MLNetConfig.from_dict(ck["config"])
    net = MLNet(config, pretrained_backbone=True)  # the frozen ImageNet backbone ships in the file
    net.head.load_state_dict(ck["head"])
    metrics = {k: round(float(v), 4) for k, v in ck.get("val", {}).items()}
    metrics["selected_epoch"] = int(ck.get("epoch", -1))
    metrics.update(extra_metrics or {})
    cfg = config.to_dict()
    cfg.update({"architecture": "ML-Net (Cornia et al., ICPR 2016)",
                "backbone_weights": "torchvision IMAGENET1K_V1 (frozen; included in this file)",
                "output_stride": 8, "postprocess": {"blur": float(blur), "floor": float(floor)}})
    if training_command:
        cfg["training_command"] = training_command
    if ck.get("settings"):
        cfg["training_settings"] = ck["settings"]
    from ..models.onnx import bundle_onnx

    path = register_bundled(
        name, bundle_state(net), kind="saliency", config=cfg, metrics=metrics,
        data="NUS-VIP scene saliency: 350 train images (+ mirrors), 50 val for model selection; "
             "split in salface/saliency/nus_split.json",
        license="weights: MIT (NUS data MIT licence); backbone ImageNet weights: torchvision terms",
        command=command)
    bundle_onnx(name)  # the ONNX file the default runtime runs, checked against torch
    return path
