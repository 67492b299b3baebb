"""Distillation targets: a teacher run's answers mixed into a crop cache's label distributions.

:func:`distill_cache` writes a new cache folder that links every file of the source cache except
``targets_<task>.npy``. On the **train** rows that file becomes ``(1 − weight) · own target +
weight · teacher``, where the own target is the cache's label distribution (FER+ votes) or, where
it has none, the one-hot hard label, and the teacher's distribution is its softmax at
``temperature`` (> 1 softens it) on the clean crop, with flip TTA when the teacher's preset uses it.
A teacher whose config carries a calibration temperature (a shipped model's ``extra["temperature"]``)
has it applied first, as :func:`salface.training.scoring.predict_arrays` always does; runs and
ensembles made by ``salface train`` / ``salface ensemble`` carry none.
Val and test rows keep their own targets (they are only ever scored on the hard labels), so model
selection and evaluation are unchanged. A preset with ``soft_targets`` trained on the new folder
learns from the teacher, on whatever augmented copy of the crop it draws: a single network can so
take in what an ensemble knows (``salface ensemble``) at one network's cost.

The record ``distill.json`` names the teacher (run, weight files' SHA-256), the weight, the
temperature and the source cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..labels import labels_for
from ..hub import sha256_file
from ..utils import atomic_write_json
from .derived import link_source, split_answers


def distill_cache(source: str | Path, teacher_run: str | Path, out: str | Path, *, task: str,
                  weight: float = 0.5, temperature: float = 2.0, tta: bool | None = None,
                  threads: int | None = None, command: str = "") -> dict[str, Any]:
    """Write ``out``: ``source`` with the teacher's answers mixed into ``targets_<task>.npy`` on
    the train rows (see the module docstring). Returns the record written to ``distill.json``."""
    from .train import soft_target_matrix

    if not 0.0 < weight <= 1.0:
        raise ValueError(f"weight must be in (0, 1], got {weight}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    src, dst, run = Path(source), Path(out), Path(teacher_run)
    cc, tri, logp, preset = split_answers(src, run, task=task, out=dst, tta=tta, threads=threads,
                                          role="teacher")
    labels = cc.task_labels(task)
    own = soft_target_matrix(cc, task, labels)
    if own is None:  # no distributions: one-hot of the hard labels
        own = np.zeros((len(cc), len(labels_for(task))), np.float32)
        ok = labels >= 0
        own[np.flatnonzero(ok), labels[ok]] = 1.0
    z = logp / temperature
    teacher = np.exp(z - z.max(1, keepdims=True))
    teacher /= teacher.sum(1, keepdims=True)

    targets = own.copy()
    targets[tri] = ((1.0 - weight) * own[tri] + weight * teacher).astype(np.float32)

    name = f"targets_{task}.npy"
    link_source(src, dst, {name, "distill.json"})
    np.save(dst / f"targets_{task}.tmp.npy", targets)
    os.replace(dst / f"targets_{task}.tmp.npy", dst / name)

    state = json.loads((run / "state.json").read_text()) if (run / "state.json").exists() else {}
    agree = float((teacher.argmax(1) == labels[tri]).mean())
    record = {
        "source": str(src), "task": task, "weight": weight, "temperature": temperature,
        "tta_flip": bool(preset.tta_flip if tta is None else tta), "train_rows": int(len(tri)),
        "teacher": {"run": str(run), "preset": preset.name, "ensemble": state.get("ensemble"),
                    "best_sha256": sha256_file(run / "best.safetensors")},
        "teacher_agrees_with_hard_label_on_train": round(agree, 4),
        "command": command,
    }
    atomic_write_json(dst / "distill.json", record)
    return record
