"""Metrics of one run and summaries over several.

* :func:`task_metrics` (and :func:`confusion_matrix`) — accuracy, per-class accuracy, confusion
  matrix, 1-off accuracy for age; defined in :mod:`salface.training.scoring`, which training shares;
* :func:`mean_std` summarises one metric over seeds or folds (sample standard deviation, ddof=1;
  0 for a single run); :func:`summarize_runs` does it for every task and metric;
* :func:`compact_metrics` — the accuracies without confusion matrices, for model manifests.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from ..training.scoring import confusion_matrix, task_metrics


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("mean_std of no values")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def summarize_runs(results: Sequence[dict[str, Any]], keys: Sequence[str] = ("accuracy", "one_off_accuracy")
                   ) -> dict[str, dict[str, dict[str, float]]]:
    """``{task: {metric: {"mean", "std", "n"}}}`` over several runs' ``{task: task_metrics}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    tasks = sorted({t for r in results for t in r})
    for t in tasks:
        out[t] = {}
        for k in keys:
            vals = [r[t][k] for r in results if t in r and k in r[t]]
            if vals:
                m, s = mean_std(vals)
                out[t][k] = {"mean": m, "std": s, "n": len(vals)}
    return out


def compact_metrics(results: dict[str, Any]) -> dict[str, Any]:
    """Accuracy (+ 1-off, per-class) per task, without confusion matrices, for manifests."""
    out = {}
    for t, m in results.items():
        d = {"accuracy": round(m["accuracy"], 4), "n": m["n"],
             "per_class_accuracy": {k: (None if v is None else round(v, 4))
                                    for k, v in m["per_class_accuracy"].items()}}
        if "one_off_accuracy" in m:
            d["one_off_accuracy"] = round(m["one_off_accuracy"], 4)
        if m.get("calibration"):
            c = m["calibration"]
            d["calibration"] = {"temperature": c["temperature"], "ece_before": round(c["before"]["ece"], 4),
                                "ece_after": round(c["after"]["ece"], 4)}
        out[t] = d
    return out


__all__ = ["confusion_matrix", "task_metrics", "mean_std", "summarize_runs", "compact_metrics"]
