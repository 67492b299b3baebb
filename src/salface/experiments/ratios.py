"""Experiment 2: the reweighted ratio r from 0 to 1 (SAF-BAGE Figure 3)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..evaluation.reports import pyplot
from .report import _pct, _runs_time, _savefig, _subset_text, write_experiment
from .runs import RunSpec, _spec, _task_of, run_one, train_runs
from .settings import DIFFERENT_DATA, PAPER, Settings

RATIOS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


def ratio_specs(s: Settings, dataset: str = "utkface", ratios: Sequence[float] = ()) -> list[RunSpec]:
    """One run per ratio; r = 0 is the identity (``crop × 1``), so it is the no-saliency run that
    the saliency-source experiment trains too."""
    return [_spec(s, dataset, tasks=(_task_of(dataset),), seed=s.seeds[0],
                  **({"saliency": "none"} if float(r) == 0.0 else {"ratio": float(r)}))
            for r in (ratios or RATIOS)]


def ratio_sweep(s: Settings, dataset: str = "utkface", ratios: Sequence[float] = RATIOS) -> Path:
    """Experiment 2: one run per ratio (seed ``s.seeds[0]``); curves per epoch and test accuracy vs r."""
    t0 = time.time()
    task = _task_of(dataset)
    specs = ratio_specs(s, dataset, ratios)
    train_runs(specs, s)
    runs = [run_one(sp, s) for sp in specs]
    plt = pyplot()
    name = "ratio-sweep" if dataset == "utkface" else f"ratio-sweep-{dataset}"
    out = Path(s.out_dir) / name
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for r, run in zip(ratios, runs):
        ep = [h["epoch"] for h in run.history]
        a1.plot(ep, [h["train_loss"] for h in run.history], marker="o", ms=3, label=f"r = {r:g}")
        a2.plot(ep, [100 * h[f"val_{task}_accuracy"] for h in run.history], marker="o", ms=3, label=f"r = {r:g}")
    a1.set(xlabel="epoch", ylabel="training loss", title="training loss")
    a2.set(xlabel="epoch", ylabel="validation accuracy (%)", title=f"validation accuracy ({task})")
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    curves = _savefig(fig, out / "curves.png")
    fig, ax = plt.subplots(figsize=(5, 3.4))
    accs = [100 * run.metrics[task]["accuracy"] for run in runs]
    ax.plot(list(ratios), accs, marker="o")
    ax.set(xlabel="reweighted ratio r", ylabel="test accuracy (%)", title=f"{dataset} {task}")
    vs = _savefig(fig, out / "test_vs_ratio.png")
    from ..evaluation.stats import mcnemar

    ref = runs[list(ratios).index(0.0)] if 0.0 in ratios else runs[0]
    rows = ["| r | test accuracy | best epoch (val) | final train loss | McNemar p vs r = 0 |", "|---|---|---|---|---|"]
    for r, run in zip(ratios, runs):
        p = mcnemar(ref.correct(task), run.correct(task)).p_value
        rows.append(f"| {r:g} | {_pct(run.metrics[task]['accuracy'])} | {run.info['best_epoch']} | "
                    f"{run.history[-1]['train_loss']:.4f} | {p:.3g} |")
    best = ratios[int(np.argmax(accs))]
    body = rows + ["", f"Best test accuracy here at r = {best:g}.", "",
                   f"Paper: {PAPER['ratio-sweep']} ({DIFFERENT_DATA}).", "",
                   f"![training loss and validation accuracy per ratio]({curves})", "",
                   f"![test accuracy against r]({vs})", "", "Subset: " + _subset_text(runs[0].spec, runs[0])]
    payload = {"task": task, "ratios": list(ratios), "test_accuracy": [a / 100 for a in accs],
               "histories": {f"{r:g}": run.history for r, run in zip(ratios, runs)}}
    return write_experiment(name, s, f"Experiment 2 — reweighted ratio sweep ({dataset} {task})", body, payload,
                            time.time() - t0, {"seed": s.seeds[0], "saliency": s.saliency, "runs": _runs_time(runs)},
                            summary=rows + ["", f"![]({name}/{curves})"])
