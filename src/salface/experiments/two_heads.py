"""One network with age and gender heads against one network per task (UTKFace)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .compare import SIGNIFICANCE_NOTE, _paired
from .report import _pm, _runs_time, _subset_text, write_experiment
from .runs import RunSpec, _spec, run_one, train_runs
from .settings import Settings


def heads_specs(s: Settings) -> list[RunSpec]:
    """The runs of the heads experiment: the age + gender network of experiment 1's saliency arm
    and one network per task (the gender ones are experiment 3's ML-Net runs)."""
    both = [_spec(s, "utkface", saliency=s.saliency, seed=sd) for sd in s.seeds]
    single = [_spec(s, "utkface", tasks=(t,), saliency=s.saliency, ratio=0.3, seed=sd)
              for t in ("age", "gender") for sd in s.seeds]
    return both + single


def heads(s: Settings) -> Path:
    """One MobileNetV2 with age and gender heads (what salface ships) against one network per
    task, same recipe, subset, saliency and seeds, on UTKFace: is the shared network at least as
    accurate? (SAF-BAGE and VEGAC train one network per task.)"""
    t0 = time.time()
    specs = heads_specs(s)
    train_runs(specs, s)
    n = len(s.seeds)
    both = [run_one(sp, s) for sp in specs[:n]]
    single = {t: [run_one(sp, s) for sp in specs[n:] if sp.tasks == (t,)] for t in ("age", "gender")}
    rows = ["| task | one network per task | one network, age + gender heads | Δ shared − per task (pp) "
            "[95 % CI] | McNemar p per seed | p (seeds + images) | p (images only) | verdict |",
            "|---|---|---|---|---|---|---|---|"]
    payload: dict[str, Any] = {"seeds": list(s.seeds), "tasks": {}}
    for t in ("age", "gender"):
        acc_single = [r.metrics[t]["accuracy"] for r in single[t]]
        acc_both = [r.metrics[t]["accuracy"] for r in both]
        test = _paired(single[t], both, t)
        bt = test["primary"]
        if bt["p_value"] >= 0.05:
            verdict = f"no significant difference (p = {bt['p_value']:.3g})"
        else:
            verdict = f"shared network significantly {'better' if bt['difference'] > 0 else '**worse**'}"
        ps = ", ".join(f"{m['p_value']:.3g}" for m in test["mcnemar_per_seed"])
        rows.append(f"| {t} | {_pm(acc_single)} | {_pm(acc_both)} | {100 * bt['difference']:+.2f} "
                    f"[{100 * bt['ci_low']:+.2f}, {100 * bt['ci_high']:+.2f}] | {ps} | {bt['p_value']:.3g} | "
                    f"{test['bootstrap_mean_over_seeds']['p_value']:.3g} | {verdict} |")
        entry: dict[str, Any] = {"accuracy_per_task_network": acc_single, "accuracy_shared": acc_both,
                                 "tests": test, "verdict": verdict}
        if t == "age":
            entry["one_off_per_task_network"] = [r.metrics[t]["one_off_accuracy"] for r in single[t]]
            entry["one_off_shared"] = [r.metrics[t]["one_off_accuracy"] for r in both]
            rows.append(f"| age, 1-off | {_pm(entry['one_off_per_task_network'])} | {_pm(entry['one_off_shared'])} "
                        "| | | | | |")
        payload["tasks"][t] = entry
    worse = [t for t, e in payload["tasks"].items() if "worse" in e["verdict"]]
    verdict = (f"The shared network is significantly worse on: {', '.join(worse)}." if worse else
               "The shared age + gender network is at least as accurate as one network per task here "
               "(no significant loss on either task), at half the inference cost for the two tasks.")
    payload["verdict"] = verdict
    p_both = both[0].info["params"]
    p_single = sum(single[t][0].info["params"] for t in ("age", "gender"))
    cost = (f"Cost per face for age and gender: one forward pass of {p_both / 1e6:.2f} M parameters "
            f"(shared) against two of {p_single / 2e6:.2f} M ({p_single / 1e6:.2f} M in all, per task).")
    payload["params"] = {"shared": p_both, "per_task_total": p_single}
    first = both[0]
    body = rows + ["", verdict, "", cost, "",
                   "Mean ± sample std over seeds; Δ and its CI from the seeds + images bootstrap; McNemar: "
                   "exact test per seed pair (same seed, same test images). " + SIGNIFICANCE_NOTE + " "
                   "The two-head network keeps the epoch "
                   "with the best mean of its two val accuracies, each single-task network the epoch best on "
                   "its own task.", "",
                   "Subset: " + _subset_text(first.spec, first)]
    all_runs = both + single["age"] + single["gender"]
    return write_experiment("heads", s, "One network with two heads against one network per task (UTKFace)",
                            body, payload, time.time() - t0, {"seeds": list(s.seeds), "runs": _runs_time(all_runs)},
                            summary=rows + ["", verdict, "", cost])
