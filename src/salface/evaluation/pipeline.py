"""Judge shipped models on faces that went through ``analyze`` end to end (detector → crop →
saliency → classifier), not only on the dataset's crops (:func:`evaluate_pipeline`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..labels import labels_for
from ..training.scoring import task_metrics
from .calibration import calibration_metrics


def evaluate_pipeline(samples: Sequence[Any], tasks: Sequence[str], analyzer: Any, *,
                      progress: bool = False) -> dict[str, Any]:
    """Judge shipped models on faces that went through ``analyze`` end to end.

    Each sample's image goes through ``analyzer.analyze_batch`` (detector → crop → saliency →
    classifier); the face overlapping the dataset box most (the whole image without one) is scored.
    Images where the detector finds no face count as misses in ``end_to_end_accuracy`` and are
    left out of ``accuracy`` (which then matches the cached-crop evaluation's population minus
    the fallbacks). Returns ``{task: task_metrics + end_to_end_accuracy}`` plus ``"_detection"``."""
    from ..types import Box

    paths = [s.path for s in samples]
    preds: dict[str, list[int]] = {t: [] for t in tasks}
    truth: dict[str, list[int]] = {t: [] for t in tasks}
    probs: dict[str, list[list[float]]] = {t: [] for t in tasks}
    found = 0
    it = analyzer.analyze_batch(paths)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=len(paths), desc="analyze", unit="img", mininterval=5)
    for s, res in zip(samples, it):
        if not res.ok:
            raise RuntimeError(f"{s.path}: {res.error}")
        ref = s.box if getattr(s, "box", None) is not None else Box(0, 0, res.width, res.height)
        face = max(res.faces, key=lambda f: f.face.box.iou(ref), default=None)
        if face is not None:
            found += 1
        for t in tasks:
            y = s.labels.get(t)
            if y is None:
                continue
            p = face.predictions().get(t) if face is not None else None
            truth[t].append(int(y))
            preds[t].append(-1 if p is None else int(p.index))
            if p is not None:
                probs[t].append([p.probabilities[n] for n in labels_for(t)])
    out: dict[str, Any] = {"_detection": {"images": len(samples), "with_face": found,
                                          "rate": found / max(1, len(samples))}}
    for t in tasks:
        y, p = np.asarray(truth[t]), np.asarray(preds[t])
        if y.size == 0:
            continue
        hit = p >= 0
        m = task_metrics(t, y[hit], p[hit])
        m["end_to_end_accuracy"] = float((p == y).sum() / y.size)
        if probs[t]:    # the probabilities analyze reports (with the shipped model's temperature)
            m["calibration_as_shipped"] = calibration_metrics(np.asarray(probs[t]), y[hit])
        out[t] = m
    return out


__all__ = ["evaluate_pipeline"]
