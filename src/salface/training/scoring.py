"""Scoring a classifier against labels, shared by training (validation after each epoch) and
evaluation (test reports), so that neither imports the other.

* :func:`confusion_matrix` and :func:`task_metrics` — accuracy, per-class accuracy (recall), the
  confusion matrix and, for age groups, the 1-off accuracy (numpy only);
* :func:`predict_arrays` runs a classifier over cached crops (through the one preprocessing path,
  :func:`salface.models.preprocess.to_input_tensor`), optionally with flip test-time
  augmentation; :func:`evaluate_arrays` scores it. torch is imported when they run, not before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..labels import labels_for

if TYPE_CHECKING:
    import torch


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of samples of true class ``i`` predicted as ``j`` (labels < 0 skipped)."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    keep = t >= 0
    t, p = t[keep], p[keep]
    if t.size and (t.max() >= n_classes or p.min() < 0 or p.max() >= n_classes):
        raise ValueError(f"labels outside 0..{n_classes - 1}")
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def task_metrics(task: str, y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, Any]:
    """Accuracy, per-class accuracy, confusion matrix (and 1-off accuracy for ``age``)."""
    names = labels_for(task)
    cm = confusion_matrix(y_true, y_pred, len(names))
    n = int(cm.sum())
    if n == 0:
        raise ValueError(f"no labelled samples for task {task!r}")
    out: dict[str, Any] = {"n": n, "accuracy": float(np.trace(cm) / n)}
    support = cm.sum(axis=1)
    out["per_class_accuracy"] = {c: (float(cm[i, i] / support[i]) if support[i] else None)
                                 for i, c in enumerate(names)}
    present = support > 0
    out["mean_class_accuracy"] = float(np.mean(np.diag(cm)[present] / support[present]))
    out["support"] = {c: int(support[i]) for i, c in enumerate(names)}
    if task == "age":
        i, j = np.indices(cm.shape)
        out["one_off_accuracy"] = float(cm[np.abs(i - j) <= 1].sum() / n)
    out["confusion_matrix"] = cm.tolist()
    out["labels"] = list(names)
    return out


def predict_arrays(model: "torch.nn.Module", config, crops: np.ndarray, maps: np.ndarray | None, *,
                   batch_size: int = 256, tta_flip: bool = False, device: str = "cpu",
                   progress: bool = False, log: bool = False) -> dict[str, np.ndarray]:
    """Softmax probabilities ``{task: (N, C)}`` for uint8 crops ``(N, S, S, 3)`` (+ maps); their
    logarithms with ``log``. A shipped model's temperature (``config.extra["temperature"]``) is
    applied, as ``analyze`` applies it (its optional prior correction is not)."""
    import torch

    from ..models.preprocess import forward_logits, to_input_tensor

    model.eval()
    outs: dict[str, list[np.ndarray]] = {}
    rng = range(0, len(crops), batch_size)
    if progress:
        from tqdm import tqdm
        rng = tqdm(rng, desc="predict", unit="batch", mininterval=5)
    use_maps = config.saliency != "none"
    for i in rng:
        c = np.asarray(crops[i:i + batch_size])
        m = np.asarray(maps[i:i + batch_size]) if (use_maps and maps is not None) else None
        with torch.no_grad():
            x = to_input_tensor(c, m, config, device)
            logits = forward_logits(model, x, tta_flip=tta_flip, temperature=config.extra.get("temperature"))
        for t, v in logits.items():
            f = torch.log_softmax if log else torch.softmax
            outs.setdefault(t, []).append(f(v.float(), dim=1).cpu().numpy())
    return {t: np.concatenate(v) for t, v in outs.items()}


def evaluate_arrays(model, config, crops, maps, labels: dict[str, np.ndarray], **kw) -> dict[str, Any]:
    """Per-task :func:`task_metrics` of ``model`` on arrays; ``labels[task]`` has −1 for missing."""
    probs = predict_arrays(model, config, crops, maps, **kw)
    return {t: task_metrics(t, labels[t], probs[t].argmax(1)) for t in probs if t in labels
            and (np.asarray(labels[t]) >= 0).any()}


__all__ = ["confusion_matrix", "task_metrics", "predict_arrays", "evaluate_arrays"]
