"""Experiment 7a: Adience five-fold, subject-exclusive protocol (SAF-BAGE Tables 2-4)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..backends.torch import resolve_device
from .protocols import _protocol_cache, _protocol_tables, _train_eval_view
from .report import write_experiment
from .runs import _protocol_preset
from .settings import DIFFERENT_DATA, PAPER, Settings
from .views import cache_view, ensure_saliency


def adience(s: Settings, root: str | Path, *, preset: str = "saf-bage", size: int | None = None,
            folds: Sequence[int] = (0, 1, 2, 3, 4), detector: str = "yunet", detector_kwargs: dict | None = None,
            val_fraction: float = 0.1) -> Path:
    """Experiment 7a: Adience five-fold, subject-exclusive cross-validation (age and gender heads).

    For test fold k the other folds train; ``val_fraction`` of their subjects (seeded) are held out
    for model selection. Faces are re-detected in Adience's aligned images (whole image as the
    reference box). Folds without labelled images here are skipped and listed."""
    from ..data.adience import read_adience
    from ..training.presets import get_preset

    t0 = time.time()
    samples = read_adience(root)
    if not samples:
        raise ValueError(f"{root}: no Adience images found")
    p = get_preset(preset, ("age", "gender"))
    size = size or p.input_size
    cc = _protocol_cache(samples, "adience", s, size, p.color, ("age", "gender"), detector, detector_kwargs)
    fold_of = np.array([sm.meta["fold"] for sm in samples])
    subj = np.array([sm.subject or f"#{i}" for i, sm in enumerate(samples)])
    per_arm: dict[str, dict[int, dict[str, Any]]] = {}
    skipped: list[str] = []
    device = resolve_device(s.device)
    pr = _protocol_preset(p, s, size)
    for sal in ("none", s.saliency):
        ensure_saliency(cc, sal, s.log, s.progress, device)
        arm = "without saliency" if sal == "none" else f"with {sal} (r = {pr.ratio:g})"
        per_arm[arm] = {}
        for k in folds:
            test = np.flatnonzero(fold_of == k)
            train_idx = np.flatnonzero(fold_of != k)
            if len(test) == 0 or len(train_idx) < 2:
                if sal == "none":
                    skipped.append(f"fold {k}: {len(test)} test / {len(train_idx)} train images here")
                continue
            subjects = np.unique(subj[train_idx])
            rng = np.random.default_rng(k)
            n_val = max(1, int(round(val_fraction * len(subjects))))
            val_subj = set(rng.choice(subjects, size=min(n_val, len(subjects) - 1), replace=False))
            split = np.full(len(samples), -1, np.int8)
            split[train_idx] = 0
            split[[i for i in train_idx if subj[i] in val_subj]] = 1
            split[test] = 2
            idx = np.flatnonzero(split >= 0)
            view = cache_view(cc, idx, split[idx])
            per_arm[arm][k], _ = _train_eval_view(view, pr, f"adience-{pr.name}-{size}-{sal}-fold{k}", s, 0,
                                                   sal, pr.ratio)
    if not any(per_arm.values()):
        raise ValueError(f"{root}: no fold could be run ({'; '.join(skipped)})")
    body: list[str] = []
    payload: dict[str, Any] = {"arms": {}}
    out = Path(s.out_dir) / "adience"
    for arm, per_fold in per_arm.items():
        with_sal = arm.startswith("with ")
        b, pl = _protocol_tables(per_fold, ("age", "gender"), "fold",
                                 PAPER["adience"] if with_sal else PAPER["adience-without"], out,
                                 "with" if with_sal else "without")
        body += [f"## {arm}", ""] + b + [""]
        payload["arms"][arm] = pl
    body += ["The paper's Table 4 (age confusion with saliency) diagonal is beside ours in the last column.",
             f"Folds skipped (not enough images here): {'; '.join(skipped) or 'none'}.",
             f"Recipe: preset `{p.name}` at {size} px ({'ImageNet' if pr.pretrained else 'from scratch'}); "
             f"{DIFFERENT_DATA.replace('**different data**: ', '')}; the same protocol"
             + ("." if len(samples) > 15000 else f", but only {len(samples)} images here (not the full set).")]
    return write_experiment("adience", s, "Experiment 7a — Adience five-fold protocol", body, payload,
                            time.time() - t0, {"images": len(samples), "preset": p.name, "size": size},
                            summary=body[:16])
