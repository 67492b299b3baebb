"""Experiment 1: the same recipe with and without saliency, several seeds, paired tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..evaluation.reports import pyplot
from .compare import SIGNIFICANCE_NOTE, _paired, _verdict
from .report import _pm, _runs_time, _savefig, _subset_text, write_experiment
from .runs import RunResult, RunSpec, _spec, run_one, train_runs
from .settings import DIFFERENT_DATA, PAPER, Settings


def onoff_specs(s: Settings, datasets: Sequence[str] = ("utkface", "ferplus")) -> list[RunSpec]:
    """Experiment 1's runs: every dataset × (none, ``s.saliency``) × seed."""
    return [_spec(s, ds, saliency=sal, seed=seed) for ds in datasets for sal in ("none", s.saliency)
            for seed in s.seeds]


def saliency_onoff(s: Settings, datasets: Sequence[str] = ("utkface", "ferplus")) -> Path:
    """Experiment 1: the same recipe with and without saliency, ``s.seeds`` seeds per arm."""
    t0 = time.time()
    rows, payload, body = [], {"datasets": {}}, []
    all_runs: list[RunResult] = []
    fig_data = []
    train_runs(onoff_specs(s, datasets), s)
    for ds in datasets:
        arms = {}
        for sal in ("none", s.saliency):
            arms[sal] = [run_one(sp, s) for sp in onoff_specs(s, (ds,)) if sp.saliency == sal]
            all_runs += arms[sal]
        off, on = arms["none"], arms[s.saliency]
        dsp = {"subset": _subset_text(off[0].spec, off[0]), "tasks": {}}
        for t in off[0].spec.tasks:
            acc_off = [r.metrics[t]["accuracy"] for r in off]
            acc_on = [r.metrics[t]["accuracy"] for r in on]
            test = _paired(off, on, t)
            bt = test["primary"]
            verdict = _verdict(bt["p_value"], bt["difference"])
            ps = ", ".join(f"{m['p_value']:.3g}" for m in test["mcnemar_per_seed"])
            paper = PAPER["saliency-onoff"].get(t, {})
            rows.append(f"| {ds} | {t} | {_pm(acc_off)} | {_pm(acc_on)} | {100 * bt['difference']:+.2f} "
                        f"[{100 * bt['ci_low']:+.2f}, {100 * bt['ci_high']:+.2f}] | {ps} | {bt['p_value']:.3g} | "
                        f"{test['bootstrap_mean_over_seeds']['p_value']:.3g} | "
                        f"{verdict} | {paper.get('without', '–')} → {paper.get('with', '–')} |")
            dsp["tasks"][t] = {"accuracy_without": acc_off, "accuracy_with": acc_on, "tests": test,
                               "verdict": verdict, "seeds": list(s.seeds)}
            fig_data.append((f"{ds}\n{t}", acc_off, acc_on))
        payload["datasets"][ds] = dsp
    helps = [f"{ds} {t}" for ds, d in payload["datasets"].items() for t, v in d["tasks"].items()
             if "helps" in v["verdict"]]
    not_helps = [f"{ds} {t}" for ds, d in payload["datasets"].items() for t, v in d["tasks"].items()
                 if "helps" not in v["verdict"]]
    verdict = ((f"Saliency helps significantly here for: {', '.join(helps)}. " if helps else "")
               + (f"**Saliency does not help here** (no significant gain at p < 0.05) for: {', '.join(not_helps)}."
                  if not_helps else ""))
    payload["verdict"] = verdict
    head = [f"| data | task | without saliency | with {s.saliency} (r = 0.3) | Δ (pp) [95 % CI] | "
            f"McNemar p per seed | p (seeds + images) | p (images only) | verdict | paper (without → with; "
            f"{DIFFERENT_DATA}) |", "|---|---|---|---|---|---|---|---|---|---|"]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(fig_data), 3.6))
    x = np.arange(len(fig_data))
    for k, (lab, col) in enumerate((("without saliency", "tab:gray"), (f"with {s.saliency}", "tab:orange"))):
        means = [100 * np.mean(d[1 + k]) for d in fig_data]
        sds = [100 * np.std(d[1 + k], ddof=1) if len(d[1 + k]) > 1 else 0 for d in fig_data]
        ax.bar(x + (k - 0.5) * 0.38, means, 0.38, yerr=sds, capsize=3, label=lab, color=col)
    ax.set_xticks(x, [d[0] for d in fig_data], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    png = _savefig(fig, Path(s.out_dir) / "saliency-onoff" / "accuracy.png")
    body = head + rows + ["", verdict, "", f"![accuracy with and without saliency]({png})", "",
                          "Mean ± sample std over seeds. Δ = with − without, in percentage points, with the "
                          "95 % CI of the seeds + images bootstrap; McNemar: exact binomial test per seed pair "
                          "(same seed, same test images). A p-value ≥ 0.05 means the data here do not show "
                          "that saliency helps. " + SIGNIFICANCE_NOTE,
                          "", "Subsets: " + "; ".join(f"{d}: {p['subset']}" for d, p in payload["datasets"].items())]
    extra = {"seeds": list(s.seeds), "runs": _runs_time(all_runs)}
    return write_experiment("saliency-onoff", s, "Experiment 1 — with and without saliency", body,
                            payload, time.time() - t0, extra, summary=head + rows + ["", verdict, "", f"![]({'saliency-onoff/' + png})"])
