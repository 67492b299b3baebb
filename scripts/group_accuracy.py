"""Accuracy per group from a `salface evaluate` report: women vs men, ages 0–19 vs adults, race.

Reads the report's per-image correctness (``per_image_correct``, in the split order of the run's
crop cache) and the cache's labels and file names (UTKFace ``[age]_[gender]_[race]_…``), so no
model is run and the split is not looked at again.

    python scripts/group_accuracy.py docs/benchmarks/<run>_<split>.json --cache cache/crops/<cache> --split val

Prints a Markdown table (and ``--json`` writes the numbers). ``--baseline OTHER.json`` (a report
on the same images in the same order, e.g. the shipped model's) adds McNemar's exact test and a
paired bootstrap of the accuracy difference per task (``salface.evaluation.stats``). Issue 12's floors on UTKFace test:
gender accuracy of women within 2 points of men; ages 0–19 within 5 points of adults (20+).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from salface.training.cache import open_crop_cache
from salface.evaluate import read_per_image
from salface.training.sampling import UTKFACE_RACES, utkface_race

_AGE = re.compile(r"^(\d+)_")


def age_years(path: str) -> int:
    m = _AGE.match(Path(path).name)
    return int(m.group(1)) if m else -1


def group_table(correct: dict[str, np.ndarray], gender: np.ndarray, years: np.ndarray,
                race: np.ndarray) -> dict[str, dict[str, dict[str, float]]]:
    """``{task: {group: {"n", "accuracy"}}}`` over the groups women, men, 0–19, 20+ and each race."""
    groups = {"women": gender == 1, "men": gender == 0, "ages 0-19": (years >= 0) & (years < 20),
              "ages 20+": years >= 20}
    groups.update({f"race {r}": race == i for i, r in enumerate(UTKFACE_RACES)})
    out: dict[str, dict[str, dict[str, float]]] = {}
    for task, c in correct.items():
        c = np.asarray(c, bool)
        if len(c) != len(gender):
            raise ValueError(f"{task}: {len(c)} per-image results for {len(gender)} faces; "
                             f"is this report from the same cache and split?")
        out[task] = {"all": {"n": int(len(c)), "accuracy": float(c.mean())}}
        for name, mask in groups.items():
            if mask.any():
                out[task][name] = {"n": int(mask.sum()), "accuracy": float(c[mask].mean())}
        out[task]["gap women-men (points)"] = {
            "n": 0, "accuracy": 100 * (out[task]["women"]["accuracy"] - out[task]["men"]["accuracy"])}
        out[task]["gap 0-19 - adults (points)"] = {
            "n": 0, "accuracy": 100 * (out[task]["ages 0-19"]["accuracy"] - out[task]["ages 20+"]["accuracy"])}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="JSON report written by `salface evaluate`.")
    ap.add_argument("--cache", type=Path, required=True, help="The run's crop cache.")
    ap.add_argument("--split", default="test", help="The split the report evaluated.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the table as JSON here.")
    ap.add_argument("--baseline", type=Path, default=None, help="Report of a baseline on the same images: paired tests.")
    a = ap.parse_args(argv)
    correct = read_per_image(a.report)
    if not correct:
        raise SystemExit(f"{a.report} has no per-image results (per_image_correct)")
    cc = open_crop_cache(a.cache)
    idx = cc.indices(a.split)
    paths = cc.paths
    gender = cc.task_labels("gender")[idx]
    years = np.array([age_years(paths[i]) for i in idx])
    race = np.array([utkface_race(paths[i]) for i in idx])
    table = group_table(correct, gender, years, race)
    tasks = list(table)
    print(f"{a.report.name} ({a.split}, {len(idx)} faces)\n")
    print("| group | n | " + " | ".join(tasks) + " |")
    print("|---|---|" + "---|" * len(tasks))
    for g in table[tasks[0]]:
        n = table[tasks[0]][g]["n"]
        vals = []
        for t in tasks:
            v = table[t][g]["accuracy"]
            vals.append(f"{v:+.2f}" if "gap" in g else f"{100 * v:.2f} %")
        print(f"| {g} | {n or ''} | " + " | ".join(vals) + " |")
    if a.baseline:
        from salface.evaluation.stats import mcnemar, paired_bootstrap
        base = read_per_image(a.baseline)
        print(f"\npaired against {a.baseline.name} (B − A, A = baseline)\n")
        print("| task | A | B | B − A (95 % CI) | bootstrap p | McNemar p (n01 / n10) |")
        print("|---|---|---|---|---|---|")
        for t in tasks:
            if t not in base or len(base[t]) != len(correct[t]):
                print(f"| {t} | (baseline has no matching per-image results) | | | | |")
                continue
            m = mcnemar(base[t], correct[t])
            b = paired_bootstrap(base[t], correct[t], seed=0)
            table[t]["paired"] = {"mcnemar": m.__dict__, "bootstrap": b.__dict__}
            print(f"| {t} | {100 * m.accuracy_a:.2f} % | {100 * m.accuracy_b:.2f} % | "
                  f"{100 * b.difference:+.2f} ({100 * b.ci_low:+.2f}, {100 * b.ci_high:+.2f}) | "
                  f"{b.p_value:.4f} | {m.p_value:.2g} ({m.n01} / {m.n10}) |")
    if a.json:
        a.json.write_text(json.dumps(table, indent=1, default=str))


if __name__ == "__main__":
    main()
