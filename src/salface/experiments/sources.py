"""Experiment 3: ML-Net against spectral residual, frequency-tuned, a centre prior and no saliency."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..evaluation.reports import pyplot
from .compare import SIGNIFICANCE_NOTE, _paired
from .report import _pm, _runs_time, _savefig, _subset_text, write_experiment
from .runs import RunSpec, _spec, _task_of, run_one, train_runs
from .settings import Settings

SOURCES = ("mlnet", "spectral-residual", "frequency-tuned", "centre", "none")


def source_specs(s: Settings, dataset: str = "utkface", sources: Sequence[str] = (), ratio: float = 0.3
                 ) -> list[RunSpec]:
    return [_spec(s, dataset, tasks=(_task_of(dataset),), saliency=src, ratio=float(ratio), seed=sd)
            for src in (sources or SOURCES) for sd in s.seeds]


def saliency_source(s: Settings, dataset: str = "utkface", sources: Sequence[str] = SOURCES,
                    ratio: float = 0.3) -> Path:
    """Experiment 3: the same recipe with each saliency source at ``ratio``, ``s.seeds`` seeds."""
    t0 = time.time()
    task = _task_of(dataset)
    specs = source_specs(s, dataset, sources, ratio)
    train_runs(specs, s)
    runs = {src: [run_one(sp, s) for sp in specs if sp.saliency == src] for src in sources}
    rows = ["| saliency | test accuracy (mean ± std over seeds) | Δ vs none [95 % CI] | p vs none | "
            "Δ vs centre | p vs centre |", "|---|---|---|---|---|---|"]
    payload: dict[str, Any] = {"task": task, "ratio": ratio, "sources": {}}
    for src in sources:
        accs = [r.metrics[task]["accuracy"] for r in runs[src]]
        cells = [src, _pm(accs)]
        entry: dict[str, Any] = {"accuracy": accs}
        for ref in ("none", "centre"):
            if ref in runs and ref != src:
                test = _paired(runs[ref], runs[src], task)["primary"]
                cells += [f"{100 * test['difference']:+.2f} [{100 * test['ci_low']:+.2f}, {100 * test['ci_high']:+.2f}]",
                          f"{test['p_value']:.3g}"]
                entry[f"vs_{ref}"] = test
            else:
                cells += ["–", "–"]
        rows.append("| " + " | ".join(cells) + " |")
        payload["sources"][src] = entry
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    m = [100 * np.mean(payload["sources"][x]["accuracy"]) for x in sources]
    sd = [100 * np.std(payload["sources"][x]["accuracy"], ddof=1) if len(s.seeds) > 1 else 0 for x in sources]
    ax.bar(range(len(sources)), m, yerr=sd, capsize=3, color="tab:blue")
    ax.set_xticks(range(len(sources)), sources, rotation=20, fontsize=8)
    ax.set_ylim(max(0, min(m) - 10), min(100, max(m) + 5))
    ax.set_ylabel(f"test accuracy (%), {task}")
    png = _savefig(fig, Path(s.out_dir) / "saliency-source" / "accuracy.png")
    first = runs[sources[0]][0]
    body = rows + ["", SIGNIFICANCE_NOTE + " The question: does a learned saliency model (ML-Net) beat a "
                   "plain centre prior?", "",
                   f"![accuracy per saliency source]({png})", "", "Subset: " + _subset_text(first.spec, first),
                   "", "The papers did not run this comparison (they used ML-Net only)."]
    all_runs = [r for v in runs.values() for r in v]
    return write_experiment("saliency-source", s, f"Experiment 3 — saliency source ({dataset} {task}, r = {ratio:g})",
                            body, payload, time.time() - t0, {"seeds": list(s.seeds), "runs": _runs_time(all_runs)},
                            summary=rows)
