"""Derived caches: a new cache folder that links a source cache's files and rewrites one of them
from a reference run's answers on the train rows (`salface cache distill`, `salface cache audit`).

:func:`split_answers` opens the source and the run, checks that both know the task, and returns
the run's log-probabilities on the clean crops of a split (train, for the derived caches);
:func:`link_source` fills the new folder with links to every file of the source except those the
caller rewrites.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .cache import CacheError, CropCache, open_crop_cache


def split_answers(source: str | Path, run: str | Path, *, task: str, split: str = "train",
                  out: str | Path | None = None, tta: bool | None = None, threads: int | None = None,
                  role: str = "reference") -> tuple[CropCache, np.ndarray, np.ndarray, Any]:
    """``(cache, the split's rows, (n, C) float64 log-probabilities, the run's preset)`` of ``run``
    (a training run or ensemble folder) on the clean crops of ``split`` in ``source``, with flip
    TTA when the run's preset uses it (or as ``tta`` says). Refuses an ``out`` that is the source,
    a cache or a run without ``task``, and an empty split; ``role`` names the run in those
    messages."""
    import torch

    from .scoring import predict_arrays
    from .train import load_run

    src, run = Path(source), Path(run)
    cc = open_crop_cache(src)
    if task not in cc.tasks:
        raise CacheError(f"cache {src} has no labels for task {task!r} (tasks: {cc.tasks})")
    if out is not None and Path(out).resolve() == src.resolve():
        raise ValueError("the derived cache must be a new folder, not the source")
    model, config, preset = load_run(run, "best")
    if task not in config.tasks:
        raise ValueError(f"{role} {run} does not answer {task!r} (it answers {list(config.tasks)})")
    torch.set_num_threads(threads or os.cpu_count() or 1)
    rows = cc.indices(split)
    if len(rows) == 0:
        raise ValueError(f"cache {src} has no {split} rows")
    maps = np.asarray(cc.saliency(config.saliency)[rows]) if config.saliency != "none" else None
    use_tta = preset.tta_flip if tta is None else tta
    logp = predict_arrays(model, config, np.asarray(cc.crops[rows]), maps, tta_flip=use_tta, log=True,
                          progress=True)[task].astype(np.float64)
    return cc, rows, logp, preset


def link_source(source: str | Path, out: str | Path, rewritten: set[str]) -> Path:
    """Create ``out`` holding a link to every file of ``source`` except the names in ``rewritten``
    (which the caller writes); existing links are replaced. Returns ``out``."""
    src, dst = Path(source), Path(out)
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.name in rewritten or not f.is_file():
            continue
        link = dst / f.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f.resolve())
    return dst
