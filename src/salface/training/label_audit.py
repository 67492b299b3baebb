"""Label audit: train labels that a reference model contradicts with confidence, taken out.

UTKFace's gender labels come from its file names, and some are wrong: among the val faces that
the shipped ensemble gets "wrong" with the most confidence, most are plainly labelled the other
way round (docs/benchmarks/label_noise/). A wrong train label teaches the network the opposite
of what the face shows, and on UTKFace most of these are women filed as men, the very error
issue 12 saw on balanced photos.

:func:`audit_cache` writes a new cache folder that links every file of the source cache except
``labels.npy``. On the **train** rows, a label is set to −1 (missing: that task's loss skips the
face, its other tasks still train) where the reference run answers another class and its
log-probability of that class exceeds the label's by more than ``margin``
(``log p(answer) − log p(label) > margin``; 1.5 means the answer is at least e^1.5 ≈ 4.5 times
as likely as the label). The reference sees each clean train crop once (flip TTA when its preset
uses it), so it judges faces it was trained on: it flags only what it did not learn to
reproduce, a conservative list. Val and test labels are never touched, so model selection and
the reported numbers stay on the published labels.

The record ``audit.json`` names the reference (run, weight file's SHA-256), the margin, the
source cache, and every flagged face (path, label, answer, margin) for a person to look over.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..hub import sha256_file
from ..labels import labels_for
from ..utils import atomic_write_json
from .derived import link_source, split_answers


def flag_disagreements(logp: np.ndarray, labels: np.ndarray, margin: float) -> np.ndarray:
    """Boolean mask of the rows whose answer (argmax of ``logp``) is not the label and beats it
    by more than ``margin`` in log-probability; rows with a missing label (−1) are never flagged."""
    logp = np.asarray(logp, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logp.ndim != 2 or len(logp) != len(labels):
        raise ValueError(f"expected (N, C) log-probabilities for {len(labels)} labels, got shape {logp.shape}")
    ok = labels >= 0
    answer = logp.argmax(1)
    gap = logp[np.arange(len(logp)), answer] - logp[np.arange(len(logp)), np.where(ok, labels, 0)]
    return ok & (answer != labels) & (gap > margin)


def audit_cache(source: str | Path, reference_run: str | Path, out: str | Path, *, task: str,
                margin: float = 1.5, tta: bool | None = None, threads: int | None = None,
                command: str = "") -> dict[str, Any]:
    """Write ``out``: ``source`` with the train labels of ``task`` that the reference run
    contradicts by more than ``margin`` set to −1 (module docstring). Returns the record written
    to ``audit.json``."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    src, dst, run = Path(source), Path(out), Path(reference_run)
    cc, tri, logp, preset = split_answers(src, run, task=task, out=dst, tta=tta, threads=threads)
    labels = np.array(cc.labels)  # a writable copy
    col = cc.tasks.index(task)
    own = labels[tri, col].astype(np.int64)
    flagged = flag_disagreements(logp, own, margin)

    link_source(src, dst, {"labels.npy", "audit.json"})
    labels[tri[flagged], col] = -1
    np.save(dst / "labels.tmp.npy", labels)
    os.replace(dst / "labels.tmp.npy", dst / "labels.npy")

    names = labels_for(task)
    paths = cc.paths
    answer = logp.argmax(1)
    rows = [{"path": paths[tri[i]], "label": names[own[i]], "answer": names[answer[i]],
             "margin": round(float(logp[i, answer[i]] - logp[i, own[i]]), 3)}
            for i in np.flatnonzero(flagged)]
    rows.sort(key=lambda r: -r["margin"])
    by_pair: dict[str, int] = {}
    for r in rows:
        key = f"{r['label']} -> {r['answer']}"
        by_pair[key] = by_pair.get(key, 0) + 1
    record = {
        "source": str(src), "task": task, "margin": margin,
        "tta_flip": bool(preset.tta_flip if tta is None else tta),
        "train_rows": int(len(tri)), "train_labelled": int((own >= 0).sum()),
        "flagged": len(rows), "flagged_by_label_and_answer": by_pair,
        "reference": {"run": str(run), "preset": preset.name,
                      "best_sha256": sha256_file(run / "best.safetensors")},
        "reference_agrees_with_label_on_train": round(float((answer[own >= 0] == own[own >= 0]).mean()), 4),
        "command": command,
        "faces": rows,
    }
    atomic_write_json(dst / "audit.json", record)
    return record
