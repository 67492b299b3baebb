"""Paired tests between two groups of runs tested on the same images (one run per seed in each
group), and the verdict a report prints.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .runs import RunResult


def _verdict(p: float, diff: float, alpha: float = 0.05) -> str:
    if p >= alpha:
        return f"no significant difference (p = {p:.3g} ≥ {alpha})"
    return (f"saliency **helps** significantly (p = {p:.3g})" if diff > 0
            else f"saliency **hurts** significantly (p = {p:.3g})")


def _paired(a: Sequence[RunResult], b: Sequence[RunResult], task: str, n_boot: int = 10000) -> dict[str, Any]:
    """Per-seed exact McNemar (pairs a[i], b[i]), a bootstrap over images of the per-image mean
    correctness, and — with two or more seeds — a bootstrap over seeds and images, which is the
    test the verdicts use (``primary``): a difference one seed carries is not called significant."""
    from ..evaluation.stats import mcnemar, paired_bootstrap, seed_image_bootstrap

    for x, y in zip(a, b):
        if not np.array_equal(x.index, y.index):
            raise ValueError(f"{x.run_dir.name} and {y.run_dir.name} were tested on different images")
    per_seed = [mcnemar(x.correct(task), y.correct(task), "exact").to_dict() for x, y in zip(a, b)]
    ca = np.mean([x.correct(task) for x in a], axis=0)
    cb = np.mean([y.correct(task) for y in b], axis=0)
    boot = paired_bootstrap(ca, cb, n_boot=n_boot).to_dict()
    out = {"mcnemar_per_seed": per_seed, "bootstrap_mean_over_seeds": boot, "primary": boot}
    if len(a) >= 2:
        out["bootstrap_seeds_and_images"] = seed_image_bootstrap(
            [x.correct(task) for x in a], [y.correct(task) for y in b], n_boot=n_boot).to_dict()
        out["primary"] = out["bootstrap_seeds_and_images"]
    return out


SIGNIFICANCE_NOTE = ("p: with several seeds, a paired bootstrap that resamples the seeds and then the test "
                     "images (10,000 resamples), so a difference one seed carries is not called significant; "
                     "\"images only\" resamples the images of the per-image share of seeds that were right, "
                     "treating the seeds as fixed (it was the only test before session 4). With one seed both "
                     "are the same.")
