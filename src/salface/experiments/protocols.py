"""What the dataset protocols (Adience five-fold, AffectNet balanced test) share: a crop cache
of the protocol's images, training and testing one view of it, and the tables and confusion
matrices in the papers' layout.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..training.cache import CropCache
from ..labels import labels_for
from ..backends.torch import resolve_device
from ..utils import atomic_write_json
from .report import _pct, _pm
from .settings import Settings
from .views import CacheView


def _confusion_pct_rows(cm: np.ndarray, labels: Sequence[str], counts: bool, paper_diag: dict | None) -> list[str]:
    rows = ["| true \\ predicted | " + " | ".join(labels) + (" | paper diagonal |" if paper_diag else " |"),
            "|---" * (len(labels) + 1 + (1 if paper_diag else 0)) + "|"]
    for i, lab in enumerate(labels):
        n = cm[i].sum()
        cells = []
        for j in range(len(labels)):
            pct = 100 * cm[i, j] / n if n else 0.0
            c = f"{pct:.1f}" + (f" ({int(cm[i, j])})" if counts else "")
            cells.append(f"**{c}**" if i == j else c)
        extra = [f"{paper_diag.get(lab, '–')}"] if paper_diag else []
        rows.append(f"| {lab} | " + " | ".join(cells + extra) + " |")
    return rows


def _protocol_cache(samples, name: str, s: Settings, size: int, color: str, tasks, detector: str,
                    detector_kwargs: dict | None) -> CropCache:
    from ..training.cache import build_crop_cache

    root = Path(s.cache_dir) / f"{name}-{size}-{color}"
    return build_crop_cache(samples, root, size=size, color=color, tasks=tasks, detector=detector,
                            detector_kwargs=detector_kwargs, progress=s.progress,
                            splits=["train"] * len(samples))


def _train_eval_view(view: CacheView, preset, name: str, s: Settings, seed: int, saliency: str, ratio: float
                     ) -> tuple[dict[str, Any], Path]:
    from ..training.scoring import predict_arrays, task_metrics
    from ..training.train import load_run, train

    device = resolve_device(s.device)
    h = hashlib.sha256(json.dumps({"preset": preset.to_dict(), "cache": view.meta["key"], "seed": seed,
                                   "saliency": saliency, "ratio": ratio, "max_steps": s.max_steps},
                                  sort_keys=True).encode())
    h.update(np.ascontiguousarray(view.index).tobytes())
    h.update(np.ascontiguousarray(view.split).tobytes())
    run_dir = Path(s.runs_dir) / f"{name}-{h.hexdigest()[:8]}"
    rec_p = run_dir / "eval_test.json"
    if rec_p.exists():
        return json.loads(rec_p.read_text())["metrics"], run_dir
    state = run_dir / "state.json"
    if not (state.exists() and json.loads(state.read_text()).get("finished")):
        train(preset, view, out_dir=run_dir, seed=seed, resume=state.exists(), device=device, saliency=saliency,
              ratio=ratio if saliency != "none" else None, max_steps=s.max_steps, progress=s.progress,
              threads=s.threads, log=s.log)
    model, cfg, _ = load_run(run_dir, "best", device=device)
    te = np.flatnonzero(view.split == 2)
    maps = view.saliency(cfg.saliency)[te] if cfg.saliency != "none" else None
    probs = predict_arrays(model, cfg, view.crops[te], maps, tta_flip=preset.tta_flip, device=device)
    metrics = {}
    for t in cfg.tasks:
        y = view.task_labels(t)[te]
        if (y >= 0).any():
            metrics[t] = task_metrics(t, y, probs[t].argmax(1))
    atomic_write_json(rec_p, {"metrics": metrics})
    return metrics, run_dir


def _protocol_tables(per_run: dict[Any, dict[str, Any]], tasks, unit: str, paper: dict,
                     out: Path | None = None, stem: str = "") -> tuple[list[str], dict]:
    """Accuracy per fold/arm with mean ± std, and confusion matrices summed over them in the
    papers' layout (row %, counts in brackets; the paper's diagonal beside), + PNG heat maps."""
    from ..evaluation.metrics import mean_std
    from ..evaluation.reports import plot_confusion

    body = [f"| task | accuracy per {unit} | mean ± std over {unit}s | 1-off (age) | paper |", "|---|---|---|---|---|"]
    payload: dict[str, Any] = {"per_" + unit: per_run, "summary": {}}
    for t in tasks:
        accs = {k: m[t]["accuracy"] for k, m in per_run.items() if t in m}
        if not accs:
            continue
        one = [m[t]["one_off_accuracy"] for m in per_run.values() if t in m and "one_off_accuracy" in m[t]]
        mu, sd = mean_std(list(accs.values()))
        payload["summary"][t] = {"mean": mu, "std": sd, "n": len(accs)}
        body.append(f"| {t} | " + ", ".join(f"{k}: {_pct(a)}" for k, a in accs.items()) + f" | {_pm(list(accs.values()))} | "
                    + (_pm(one) if one else "–") + f" | {paper.get(t, '–')} |")
    for t in tasks:
        cms = [np.asarray(m[t]["confusion_matrix"]) for m in per_run.values() if t in m]
        if not cms:
            continue
        cm = np.sum(cms, axis=0)
        payload["summary"].setdefault(t, {})["confusion_matrix"] = cm.tolist()
        diag = paper.get("age_confusion_diagonal") if t == "age" else paper.get("per_class")
        body += ["", f"**{t}: confusion matrix summed over {unit}s (row %, counts in brackets)**", ""]
        body += _confusion_pct_rows(cm, labels_for(t), True, diag)
        if out is not None:
            png = plot_confusion(cm, labels_for(t), out / f"confusion_{t}{'_' + stem if stem else ''}.png",
                                 title=f"{t} ({stem or unit})")
            body += ["", f"![{t} confusion matrix]({png.name})"]
    return body, payload
