"""Views of a crop cache: some of its samples, read into memory, with their splits optionally
reassigned (:func:`cache_view`), seeded subsets (:func:`subset_index`), and the saliency maps a run
needs, built once even when several processes ask at the same time (:func:`ensure_saliency`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..training.cache import CropCache
from ..utils import file_lock


@dataclass
class CacheView(CropCache):
    """Some samples of a crop cache, read into memory, optionally with their splits reassigned.
    Behaves like a :class:`CropCache` for :func:`salface.training.train.train`."""

    parent: CropCache | None = None
    index: np.ndarray | None = None

    def saliency(self, name: str) -> np.ndarray:
        assert self.parent is not None and self.index is not None
        return np.asarray(self.parent.saliency(name)[self.index])

    def soft_targets(self, task: str) -> np.ndarray | None:
        assert self.parent is not None and self.index is not None
        t = self.parent.soft_targets(task)
        return None if t is None else np.asarray(t[self.index])

    @property
    def paths(self) -> list[str]:
        assert self.parent is not None and self.index is not None
        p = self.parent.paths
        return [p[i] for i in self.index]


def cache_view(cc: CropCache, index: np.ndarray, split: np.ndarray | None = None) -> CacheView:
    """The samples ``index`` (sorted) of ``cc``; ``split`` (one id per index) replaces their split."""
    idx = np.asarray(index, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    idx = idx[order]
    sp = np.asarray(cc.split[idx]) if split is None else np.asarray(split, np.int8)[order]
    return CacheView(root=cc.root, meta=dict(cc.meta), crops=np.asarray(cc.crops[idx]),
                     labels=np.asarray(cc.labels[idx]), split=sp, boxes=np.asarray(cc.boxes[idx]),
                     landmarks=np.asarray(cc.landmarks[idx]), detected=np.asarray(cc.detected[idx]),
                     parent=cc, index=idx)


def subset_index(cc: CropCache, limits: dict[str, int | None], seed: int = 0) -> np.ndarray:
    """Up to ``limits[split]`` samples of each split (all when None), drawn with ``seed``, sorted."""
    rng = np.random.default_rng(seed)
    out = []
    for sp in ("train", "val", "test"):
        idx = cc.indices(sp)
        lim = limits.get(sp)
        if lim is not None and lim < len(idx):
            idx = np.sort(rng.choice(idx, size=lim, replace=False))
        out.append(idx)
    return np.sort(np.concatenate(out))


def ensure_saliency(cc: CropCache, name: str, log: Callable[[str], None] = print,
                    progress: bool = True, device: str = "cpu") -> None:
    """Build the cache's ``name`` saliency maps if they are missing (resumable)."""
    if name == "none":
        return
    from ..training.cache import CacheError, build_saliency_cache

    def present() -> bool:
        try:
            cc.saliency(name)
            return True
        except CacheError:
            return False

    if present():
        return
    with file_lock(Path(cc.root) / f"saliency_{name}.lock", f"the {name} saliency maps of {cc.root}", log):
        if present():                # built by another process while this one waited
            return
        from ..saliency import get_saliency

        log(f"computing {name} saliency maps for {cc.root} ({len(cc)} crops)")
        build_saliency_cache(cc, name, progress=progress, model=get_saliency(name, device=device))
