"""Accuracy per group from a `salface evaluate` report: women vs men, ages 0–19 vs adults, race.

Reads the report's per-image correctness (``per_image_correct``, in the split order of the run's
crop cache) and the cache's labels and file names (UTKFace ``[age]_[gender]_[race]_…``), so no
model is run and the split is not looked at again.

    python scripts/group_accuracy.py docs/benchmarks/<run>_<split>.json --cache cache/crops/<cache> --split val

Prints a Markdown table (and ``--json`` writes the numbers). ``--baseline OTHER.json`` (a report
on the same images in the same order, e.g. the shipped model's) adds McNemar's exact test and a
paired bootstrap of the accuracy difference per task (``salface.evaluation.stats``). Issue 12's floors on UTKFace test:
gender accuracy of women within 2 points of men; ages 0–19 within 5 points of adults (20+).

Two rows look past UTKFace's own mix, which issue 12's race- and age-balanced photos do not share:
**balanced**, the mean accuracy over the gender × age group × race cells with at least
``--min-cell`` faces (every cell weighs the same, as on a balanced set; with ``--baseline`` its
difference gets a paired bootstrap that resamples faces within each cell), and **older non-White
women** (38+ years, race not White), the faces issue 12 saw called men most often.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from salface.training.cache import open_crop_cache
from salface.evaluation.reports import read_per_image
from salface.training.sampling import UTKFACE_RACES, utkface_race

_AGE = re.compile(r"^(\d+)_")


def age_years(path: str) -> int:
    m = _AGE.match(Path(path).name)
    return int(m.group(1)) if m else -1


def cells(gender: np.ndarray, age_group: np.ndarray, race: np.ndarray, min_cell: int) -> list[np.ndarray]:
    """Index arrays of the gender × age group × race cells with at least ``min_cell`` faces
    (faces with an unknown gender, age group or race belong to no cell)."""
    ok = (gender >= 0) & (age_group >= 0) & (race >= 0)
    key = np.where(ok, (gender * 100 + age_group) * 10 + race, -1)
    return [np.flatnonzero(key == k) for k in np.unique(key[ok]) if (key == k).sum() >= min_cell]


def balanced_accuracy(correct: np.ndarray, cell_list: list[np.ndarray]) -> float:
    """Mean over the cells of the accuracy within each cell."""
    return float(np.mean([correct[c].mean() for c in cell_list]))


def balanced_bootstrap(a: np.ndarray, b: np.ndarray, cell_list: list[np.ndarray], n_boot: int = 2000,
                       seed: int = 0) -> tuple[float, float, float]:
    """``balanced(b) − balanced(a)`` and its 95 % interval, faces resampled within each cell
    (the same resample for both models: paired)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, float), np.asarray(b, float)
    diffs = np.empty(n_boot)
    for r in range(n_boot):
        d = [(b[s] - a[s]).mean() for s in (c[rng.integers(0, len(c), len(c))] for c in cell_list)]
        diffs[r] = np.mean(d)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return balanced_accuracy(b, cell_list) - balanced_accuracy(a, cell_list), float(lo), float(hi)


def cell_changes(a: np.ndarray, b: np.ndarray, gender: np.ndarray, age_group: np.ndarray,
                 race: np.ndarray, cell_list: list[np.ndarray]) -> list[dict[str, object]]:
    """Per cell: its gender, age group and race, size, and accuracy of ``a`` and of ``b``; sorted
    by ``b − a`` (largest loss first)."""
    from salface.labels import labels_for

    rows = []
    for c in cell_list:
        i = c[0]
        rows.append({"gender": ("men", "women")[int(gender[i])], "age": labels_for("age")[int(age_group[i])],
                     "race": UTKFACE_RACES[int(race[i])], "n": int(len(c)),
                     "a": float(np.mean(a[c])), "b": float(np.mean(b[c]))})
    return sorted(rows, key=lambda r: r["b"] - r["a"])


OLDER = 38
"""Issue 12's older women: 38+ years (the age groups 38-43, 48-53, 60+ and the gaps between)."""


def group_table(correct: dict[str, np.ndarray], gender: np.ndarray, years: np.ndarray,
                race: np.ndarray, cell_list: list[np.ndarray] | None = None
                ) -> dict[str, dict[str, dict[str, float]]]:
    """``{task: {group: {"n", "accuracy"}}}`` over the groups women, men, 0–19, 20+, each race,
    older non-White women, and (with ``cell_list``) the balanced accuracy over those cells."""
    groups = {"women": gender == 1, "men": gender == 0, "ages 0-19": (years >= 0) & (years < 20),
              "ages 20+": years >= 20}
    groups.update({f"race {r}": race == i for i, r in enumerate(UTKFACE_RACES)})
    groups["older non-White women"] = (gender == 1) & (years >= OLDER) & (race >= 1)
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
        if cell_list:
            out[task][f"balanced ({len(cell_list)} cells)"] = {
                "n": int(sum(len(c) for c in cell_list)), "accuracy": balanced_accuracy(c, cell_list)}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="JSON report written by `salface evaluate`.")
    ap.add_argument("--cache", type=Path, required=True, help="The run's crop cache.")
    ap.add_argument("--split", default="test", help="The split the report evaluated.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the table as JSON here.")
    ap.add_argument("--baseline", type=Path, default=None, help="Report of a baseline on the same images: paired tests.")
    ap.add_argument("--min-cell", type=int, default=10, help="Smallest gender × age group × race cell in the balanced row.")
    ap.add_argument("--cells", type=int, default=0, help="With --baseline: list the N cells that lost most and gained most.")
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
    age_group = cc.task_labels("age")[idx]
    cell_list = cells(gender, age_group, race, a.min_cell)
    table = group_table(correct, gender, years, race, cell_list)
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
            d, lo, hi = balanced_bootstrap(base[t], correct[t], cell_list)
            table[t]["paired"]["balanced"] = {"difference": d, "ci_low": lo, "ci_high": hi}
            print(f"| {t}, balanced | {100 * balanced_accuracy(base[t], cell_list):.2f} % | "
                  f"{100 * balanced_accuracy(correct[t], cell_list):.2f} % | {100 * d:+.2f} "
                  f"({100 * lo:+.2f}, {100 * hi:+.2f}) | | |")
        if a.cells:
            for t in tasks:
                if t not in base or len(base[t]) != len(correct[t]):
                    continue
                rows = cell_changes(base[t], correct[t], gender, age_group, race, cell_list)
                table[t]["cells"] = rows
                print(f"\n{t}: the cells that lost and gained most (A → B)\n")
                print("| cell | n | A | B |\n|---|---|---|---|")
                for r in rows[:a.cells] + rows[-a.cells:]:
                    print(f"| {r['gender']} {r['age']} {r['race']} | {r['n']} | {100 * r['a']:.0f} % | {100 * r['b']:.0f} % |")
    if a.json:
        a.json.write_text(json.dumps(table, indent=1, default=str))


if __name__ == "__main__":
    main()
