"""Experiment 5: class activation maps, and the share of their mass on eyes, nose and mouth."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..training.cache import open_crop_cache
from ..evaluation.reports import pyplot
from ..backends.torch import resolve_device
from .report import _savefig, write_experiment
from .runs import RunSpec, _spec, run_one, train_runs
from .settings import DIFFERENT_DATA, Settings


def cam_specs(s: Settings) -> list[RunSpec]:
    return [_spec(s, "utkface", saliency=s.saliency, seed=s.seeds[0]),
            _spec(s, "ferplus", saliency=s.saliency, seed=s.seeds[0]),
            _spec(s, "utkface", tasks=("gender",), backbone="alexnet_gap", seed=s.seeds[0])]


def cam_experiment(s: Settings, run_dirs: Sequence[str | Path] | None = None, n_examples: int = 6,
                   limit: int | None = None, models: Sequence[str] = (), name: str = "cam") -> Path:
    """Experiment 5: CAMs of the predicted class on the test faces of GAP models.

    Default models: MobileNetV2 + saliency seed ``s.seeds[0]`` of experiment 1 (age+gender on
    UTKFace, expression on FER+) and the AlexNet-GAP gender run of experiment 4 — trained here
    if they are not finished yet. ``models`` names bundled classifiers to explain instead (or as
    well, with ``run_dirs``), on the test split of ``s.utk_cache`` (age, gender) or ``s.fer_cache``
    (expression); ``name`` is the report's folder."""
    import torch

    from ..explain import cam_overlay, class_activation_maps, summarize_shares
    from ..models.preprocess import to_input_tensor
    from ..models.registry import load_classifier
    from ..training.train import load_run

    t0 = time.time()
    if run_dirs is None and not models:
        train_runs(cam_specs(s), s)
        run_dirs = [run_one(sp, s).run_dir for sp in cam_specs(s)]
    run_dirs = list(run_dirs or [])
    device = resolve_device(s.device)

    def targets():
        """(label, tag, model, config, cache, test indices) per model to explain."""
        for rd in run_dirs:
            rd = Path(rd)
            model, cfg, _ = load_run(rd, "best", device=device)
            cc = open_crop_cache(json.loads((rd / "config.json").read_text())["cache"])
            pred_p = rd / "test_predictions.npz"
            te = np.load(pred_p)["index"] if pred_p.exists() else cc.indices("test")
            tag = rd.name[-8:] if re.fullmatch(r".*-[0-9a-f]{8}", rd.name) else rd.name  # experiment runs: their hash
            yield rd.name, tag, model, cfg, cc, te
        for m in models:
            model, cfg = load_classifier(m, device=device)
            cc = open_crop_cache(s.fer_cache if "expression" in cfg.tasks else s.utk_cache)
            yield f"bundled {m}", m, model, cfg, cc, cc.indices("test")

    rows = ["| model | task | faces | CAM share eyes / nose / mouth / all three | uniform share | lift (all three) | "
            "faces above uniform |", "|---|---|---|---|---|---|---|"]
    payload: dict[str, Any] = {"models": {}}
    out = Path(s.out_dir) / name
    images = []
    plt = pyplot()
    for label, tag, model, cfg, cc, te in targets():
        if not model.has_gap:
            s.log(f"skipping {label}: {cfg.backbone} has no global average pooling")
            continue
        if (cc.size, cc.color) != (cfg.input_size, cfg.color):
            raise ValueError(f"{label} takes {cfg.input_size} px {cfg.color} input, the cache {cc.root} "
                             f"holds {cc.size} px {cc.color} crops")
        te = te[np.asarray(cc.detected[te], bool)]
        if limit is not None and limit < len(te):   # a seeded sample, not the first files by name
            te = np.sort(np.random.default_rng(0).choice(te, size=limit, replace=False))
        if len(te) == 0:
            raise ValueError(f"{label}: no detected test faces with landmarks")
        crops = np.asarray(cc.crops[te])
        maps = np.asarray(cc.saliency(cfg.saliency)[te]) if cfg.saliency != "none" else None
        lms = np.asarray(cc.landmarks[te])
        entry = {}
        for t in cfg.tasks:
            cams = []
            for i in range(0, len(te), 128):
                x = to_input_tensor(crops[i:i + 128], maps[i:i + 128] if maps is not None else None, cfg, device)
                with torch.no_grad():
                    cams.append(class_activation_maps(model, x, t).maps)
            cam = np.concatenate(cams)
            summ = summarize_shares(cam, lms)
            entry[t] = summ
            sh, un = summ["share"], summ["uniform"]
            rows.append(f"| {label[:40]} ({cfg.backbone}) | {t} | {summ['n_faces']} | "
                        + " / ".join(f"{100 * sh[r]['mean']:.1f}" for r in ("eyes", "nose", "mouth", "features"))
                        + " % | " + " / ".join(f"{100 * un[r]['mean']:.1f}" for r in ("eyes", "nose", "mouth", "features"))
                        + f" % | {summ['lift']['features']:.2f} | {100 * summ['above_uniform']['features']:.0f} % |")
            k = min(n_examples, len(te))
            fig, axes = plt.subplots(1, k + 1, figsize=(1.9 * (k + 1), 2.3))
            axes = np.atleast_1d(axes)
            axes[0].imshow(cam.mean(axis=0), cmap="jet", vmin=0, vmax=1)
            axes[0].set_title(f"mean CAM\n({len(cam)} faces)", fontsize=7)
            for j in range(k):
                axes[j + 1].imshow(cam_overlay(crops[j], cam[j]))
                axes[j + 1].plot(lms[j][:, 0], lms[j][:, 1], "w.", ms=3)
            for a in axes:
                a.set_xticks([])
                a.set_yticks([])
            fig.suptitle(f"{cfg.backbone} — {t}", fontsize=8)
            images.append(_savefig(fig, out / f"cam_{cfg.backbone}_{t}_{tag}.png"))
        payload["models"][label] = {"backbone": cfg.backbone, "tasks": entry, "cache": str(cc.root)}
    body = rows + ["", "Share of the min–max normalised CAM's mass inside discs around the eyes, nose and "
                   "mouth (from the detector's landmarks; radii 0.25/0.25/0.35 × inter-ocular distance), "
                   "against a uniform map (the regions' area share). Lift = mean CAM share / mean uniform "
                   "share (> 1: the model looks at the features more than chance).", "",
                   "SAF-BAGE Figure 4 shows two CAMs (AffectNet) and says hair, face and mouth are "
                   f"activated; it gives no measured share ({DIFFERENT_DATA}).", ""]
    body += [f"![]({p})" for p in images]
    return write_experiment(name, s, "Experiment 5 — class activation maps on eyes, nose and mouth", body,
                            payload, time.time() - t0, {"runs": [str(r) for r in run_dirs],
                                                        "bundled models": list(models)}, summary=rows)
