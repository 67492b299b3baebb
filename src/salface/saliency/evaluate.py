"""Evaluate saliency models on the NUS fixations with the MIT benchmark metrics.

Protocol (the choices are ours; ``docs/saliency.md`` explains them):

* Images of the chosen split (default ``test``) are resized (area) so that their longer side is
  at most ``max_side`` = 512 px, keeping the aspect ratio; smaller images keep their size.
  Fixations are scaled with them.
* Ground truth at that resolution: the binary fixation map (fixated pixels) for AUC-Judd, sAUC and
  NSS; the density map (σ = one degree, :func:`~salface.saliency.fixations.fixation_density`) for
  CC, KL and SIM.
* Shuffled-AUC negatives for an image: the fixations of every *other* image of the same split,
  mapped to this image's size by their relative position.
* Every model sees the same resized RGB image and returns a map at its size. ML-Net resizes it to
  its training size (256×256) internally and upsamples its map back.
* Reported: mean ± standard deviation over the split's images of each metric.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .base import SaliencyModel
from .fixations import (FixationImage, fixation_density, fixation_points_map, load_nus, load_split,
                        scale_points)
from .metrics import METRICS, all_metrics

MAX_SIDE = 512


@dataclass(frozen=True)
class EvalImage:
    """One image prepared for evaluation at its evaluation size."""

    index: int
    rgb: np.ndarray
    fix: np.ndarray
    dens: np.ndarray
    rel_points: np.ndarray
    """``(K, 2)`` fixation points as fractions of width/height (for other images' sAUC)."""


def eval_size(height: int, width: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """``(H, W)`` with the longer side at most ``max_side``, aspect kept."""
    f = min(1.0, max_side / max(height, width))
    return max(1, int(round(height * f))), max(1, int(round(width * f)))


def prepare(images: list[FixationImage], max_side: int = MAX_SIDE) -> list[EvalImage]:
    out = []
    for im in images:
        rgb = im.load_image()
        hw = eval_size(im.height, im.width, max_side)
        if hw != (im.height, im.width):
            rgb = cv2.resize(rgb, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
        pts = scale_points(im.points, (im.height, im.width), hw)
        rel = np.stack([(im.points[:, 0] + 0.5) / im.width, (im.points[:, 1] + 0.5) / im.height], 1)
        out.append(EvalImage(im.index, np.ascontiguousarray(rgb), fixation_points_map(pts, hw),
                             fixation_density(pts, hw), rel))
    return out


def other_fixations(data: list[EvalImage], i: int) -> np.ndarray:
    """Binary map at image ``i``'s size of the fixations of every other image in ``data``."""
    h, w = data[i].fix.shape
    rel = np.concatenate([d.rel_points for j, d in enumerate(data) if j != i])
    pts = np.stack([rel[:, 0] * w - 0.5, rel[:, 1] * h - 0.5], axis=1)
    return fixation_points_map(pts, (h, w))


def score_maps(data: list[EvalImage], maps: list[np.ndarray]) -> list[dict[str, float]]:
    """Per-image metrics of ``maps`` (one per image of ``data``, same sizes)."""
    rows = []
    for i, (d, m) in enumerate(zip(data, maps)):
        if m.shape != d.fix.shape:
            raise ValueError(f"map {i} has shape {m.shape}, expected {d.fix.shape}")
        rows.append(all_metrics(m, d.fix, d.dens, other_fixations(data, i)))
    return rows


def summarise(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {k: {"mean": float(np.mean([r[k] for r in rows])), "std": float(np.std([r[k] for r in rows]))}
            for k in METRICS}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10, cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def evaluate_models(models: dict[str, SaliencyModel], data_dir: str | Path, split: str = "test",
                    max_side: int = MAX_SIDE, log: Callable[[str], None] = lambda s: None) -> dict:
    """Score each model on the split; returns a JSON-ready report (summary + per-image rows)."""
    images = load_nus(data_dir)
    idx = load_split()[split]
    data = prepare([images[i] for i in idx], max_side)
    report: dict = {
        "dataset": "NUS-VIP scene saliency", "split": split, "n_images": len(data),
        "max_side": max_side, "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "commit": _git_commit(), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "metrics": METRICS, "models": {}, "per_image": {},
    }
    for name, model in models.items():
        maps = [model(d.rgb) for d in data]
        rows = score_maps(data, maps)
        report["models"][name] = summarise(rows)
        report["per_image"][name] = {str(d.index): r for d, r in zip(data, rows)}
        s = report["models"][name]
        log(f"{name}: " + ", ".join(f"{k} {s[k]['mean']:.3f}" for k in METRICS))
    return report


def markdown_table(report: dict) -> str:
    keys = list(METRICS)
    lines = [f"Split `{report['split']}` ({report['n_images']} images), longer side ≤ "
             f"{report['max_side']} px, commit `{report.get('commit')}`, {report['date']}. "
             "Mean ± std over images.", "",
             "| model | " + " | ".join(METRICS[k] for k in keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name, s in report["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{s[k]['mean']:.3f} ± {s[k]['std']:.3f}" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir: str | Path, stem: str = "nus_test") -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jp, mp = out / f"{stem}.json", out / f"{stem}.md"
    jp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    mp.write_text(f"# Saliency models on NUS ({report['split']} split)\n\n" + markdown_table(report),
                  encoding="utf-8")
    return jp, mp


def fit_centre_sigma(data_dir: str | Path, split: str = "train",
                     grid: tuple[float, ...] = (0.10, 0.14, 0.18, 0.22, 0.26, 0.30, 0.35, 0.40),
                     max_side: int = MAX_SIDE) -> dict[float, dict[str, float]]:
    """Mean NSS and CC of the centre-bias map for each σ of ``grid`` on ``split`` (never test)."""
    from .classical import centre_map
    from .metrics import cc, nss

    if split == "test":
        raise ValueError("fit the centre bias on train or val, never on test")
    images = load_nus(data_dir)
    data = prepare([images[i] for i in load_split()[split]], max_side)
    out = {}
    for s in grid:
        ns, cs = [], []
        for d in data:
            m = centre_map(*d.fix.shape, sigma=s)
            ns.append(nss(m, d.fix))
            cs.append(cc(m, d.dens))
        out[s] = {"nss": float(np.mean(ns)), "cc": float(np.mean(cs))}
    return out
