"""Experiment 7b: AffectNet with SAF-BAGE's balanced test (Tables 5-6)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..backends.torch import resolve_device
from .protocols import _protocol_cache, _protocol_tables, _train_eval_view
from .report import write_experiment
from .runs import _protocol_preset
from .settings import PAPER, Settings
from .views import cache_view, ensure_saliency


def affectnet(s: Settings, training_csv: str | Path, validation_csv: str | Path, images_root: str | Path, *,
              preset: str = "saf-bage", size: int | None = None, per_class: int = 500,
              detector: str = "yunet", detector_kwargs: dict | None = None) -> Path:
    """Experiment 7b: AffectNet, SAF-BAGE's protocol (balanced test of ``per_class`` per class from
    the official validation set; the training set split 80/20 into train/val), expression head."""
    from ..data.affectnet import affectnet_saf_bage_splits, read_affectnet
    from ..training.presets import get_preset

    t0 = time.time()
    tr = read_affectnet(training_csv, images_root, require_images=True)
    va = read_affectnet(validation_csv, images_root, require_images=True)
    sp = affectnet_saf_bage_splits(tr, va, per_class=per_class)
    samples = sp["train"] + sp["val"] + sp["test"]
    names = ["train"] * len(sp["train"]) + ["val"] * len(sp["val"]) + ["test"] * len(sp["test"])
    p = get_preset(preset, ("expression",))
    size = size or p.input_size
    cc = _protocol_cache(samples, "affectnet", s, size, p.color, ("expression",), detector, detector_kwargs)
    split = np.array([{"train": 0, "val": 1, "test": 2}[n] for n in names], np.int8)
    view = cache_view(cc, np.arange(len(samples)), split)
    body: list[str] = []
    payload: dict[str, Any] = {"arms": {}}
    pr = _protocol_preset(p, s, size)
    for sal in ("none", s.saliency):
        ensure_saliency(cc, sal, s.log, s.progress, resolve_device(s.device))
        arm = "without saliency" if sal == "none" else f"with {sal} (r = {pr.ratio:g})"
        metrics, _ = _train_eval_view(view, pr, f"affectnet-{pr.name}-{size}-{sal}", s, 0, sal, pr.ratio)
        b, pl = _protocol_tables({"test": metrics}, ("expression",), "run",
                                 PAPER["affectnet"] if sal != "none" else PAPER["affectnet-without"],
                                 Path(s.out_dir) / "affectnet", "with" if sal != "none" else "without")
        body += [f"## {arm}", ""] + b + [""]
        payload["arms"][arm] = pl
    body += ["", f"Test: {len(sp['test'])} images ({per_class} per class), train {len(sp['train'])}, val "
             f"{len(sp['val'])}. The paper's Table 5 diagonal (with saliency) is in the last column. Recipe: preset "
             f"`{p.name}` at {size} px ({'ImageNet' if pr.pretrained else 'from scratch'})."]
    return write_experiment("affectnet", s, "Experiment 7b — AffectNet (SAF-BAGE balanced test)", body, payload,
                            time.time() - t0, {"per_class": per_class, "preset": p.name, "size": size},
                            summary=body[:6])
