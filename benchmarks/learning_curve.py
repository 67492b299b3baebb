"""How accuracy grows with the number of labelled training faces: the learning curve behind
"more data would unblock issue 12".

``subset`` makes a crop cache that trains on a seeded random share of another cache's train
faces: a new folder whose files link to the source's (nothing is copied or recomputed) except
the split assignment, where the train faces left out become unassigned; val and test stay whole.

    python benchmarks/learning_curve.py subset --cache cache/crops/utkface-96-rgb --fraction 0.25 --seed 0 --out cache/crops/utk-train25-s0

``summarise`` reads ``salface evaluate`` val reports of runs trained on such subsets (and on the
whole train split), named by ``--point FRACTION:SEED:REPORT.json``, and writes a table per task:
accuracy at each share (mean over seeds), and a least-squares line of accuracy against log2 of
the number of train faces, with the number of faces that line would need to reach a target.
The line is a rough extrapolation from a few points, not a promise.

    python benchmarks/learning_curve.py summarise --train-faces 18553 --point 0.25:0:cache/lc/val/a_val.json ... --target age=68 --target gender=96 --out docs/benchmarks/learning_curve/utkface
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np


def make_subset(cache: Path, fraction: float, seed: int, out: Path) -> dict[str, int]:
    """A linked copy of ``cache`` whose train split keeps a seeded ``fraction`` of its faces."""
    from salface.training.cache import SPLITS, assign_splits, open_crop_cache
    from salface.training.derived import link_source

    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    cc = open_crop_cache(cache)
    ids = np.load(cache / "split.npy")
    train = [i for i, s in enumerate(ids) if s == SPLITS["train"]]
    keep = set(random.Random(seed).sample(train, round(fraction * len(train))))
    if out.exists():
        raise FileExistsError(f"{out} exists; a subset cache must be a new folder")
    link_source(cache, out, {"split.npy"})
    inv = {v: k for k, v in SPLITS.items()}
    names = [None if (s < 0 or (s == SPLITS["train"] and i not in keep)) else inv[int(s)]
             for i, s in enumerate(ids)]
    assign_splits(out, names)
    assert len(open_crop_cache(out)) == len(cc)
    return {k: sum(1 for x in names if x == k) for k in SPLITS}


def _accuracy(report: Path, task: str) -> float:
    results = json.loads(report.read_text())["results"]  # a `salface evaluate` report
    if task not in results:
        raise KeyError(f"{report}: no results for {task}")
    return float(results[task]["accuracy"])


def summarise(points: list[tuple[float, int, Path]], train_faces: int, tasks: list[str],
              targets: dict[str, float]) -> dict:
    out = {"train_faces": train_faces, "tasks": {}}
    for task in tasks:
        rows = {}
        for frac, seed, rep in points:
            rows.setdefault(frac, []).append((seed, 100 * _accuracy(rep, task)))
        xs = np.array([math.log2(frac * train_faces) for frac, _, _ in points])
        ys = np.array([100 * _accuracy(rep, task) for _, _, rep in points])
        slope, icpt = np.polyfit(xs, ys, 1)
        t = {"points": [{"fraction": f, "faces": round(f * train_faces),
                         "per_seed": {str(s): round(a, 2) for s, a in v},
                         "mean": round(float(np.mean([a for _, a in v])), 2),
                         "std": round(float(np.std([a for _, a in v], ddof=1)), 2) if len(v) > 1 else None}
                        for f, v in sorted(rows.items())],
             "points_per_doubling": round(float(slope), 2)}
        if task in targets and slope > 0:
            need = 2 ** ((targets[task] - icpt) / slope)
            t["target"] = targets[task]
            t["faces_for_target"] = int(round(need))
            t["times_the_train_split"] = round(need / train_faces, 1)
        # the last doubling alone: the curve bends, so the whole-line slope flatters the next step
        means = sorted((f, float(np.mean([a for _, a in v]))) for f, v in rows.items())
        if len(means) >= 2:
            (f0, a0), (f1, a1) = means[-2], means[-1]
            last = (a1 - a0) / math.log2(f1 / f0)
            t["last_doubling_gain"] = round(last, 2)
            if task in targets and last > 0:
                need = f1 * train_faces * 2 ** ((targets[task] - a1) / last)
                t["faces_for_target_last_slope"] = int(round(need))
                t["times_the_train_split_last_slope"] = round(need / train_faces, 1)
        out["tasks"][task] = t
    return out


def markdown(s: dict, meta: dict) -> str:
    lines = ["# Learning curve: val accuracy against the number of labelled train faces", "",
             f"- date: {meta['date']}", f"- commit: `{meta['commit']}`", f"- machine: {meta['machine']}",
             f"- command: `{meta['command']}`", ""]
    for task, t in s["tasks"].items():
        lines += [f"## {task}", "", "| share of train | faces | val accuracy % (per seed) | mean ± std |",
                  "|---|---|---|---|"]
        for p in t["points"]:
            per = ", ".join(f"s{k}: {v:.2f}" for k, v in p["per_seed"].items())
            sd = f" ± {p['std']:.2f}" if p["std"] is not None else ""
            lines.append(f"| {p['fraction']:g} | {p['faces']:,} | {per} | {p['mean']:.2f}{sd} |")
        lines += ["", f"Least-squares line over every point: **{t['points_per_doubling']:+.2f} points per "
                      f"doubling** of the train faces."]
        if t["points_per_doubling"] <= 0:
            lines.append("The line does not rise: more faces of this kind showed no gain here.")
        elif "faces_for_target" in t:
            lines.append(f"On that line {t['target']:g} % needs about {t['faces_for_target']:,} train faces "
                         f"({t['times_the_train_split']:g} × the train split), a rough extrapolation.")
        if "last_doubling_gain" in t:
            lines.append(f"The last doubling alone gained **{t['last_doubling_gain']:+.2f} points**"
                         + (f"; at that rate {t['target']:g} % needs about {t['faces_for_target_last_slope']:,} "
                            f"train faces ({t['times_the_train_split_last_slope']:g} × the train split)."
                            if "faces_for_target_last_slope" in t else "."))
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("subset")
    a.add_argument("--cache", type=Path, required=True)
    a.add_argument("--fraction", type=float, required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("summarise")
    b.add_argument("--point", action="append", required=True, help="FRACTION:SEED:REPORT.json")
    b.add_argument("--train-faces", type=int, required=True)
    b.add_argument("--tasks", default="age,gender")
    b.add_argument("--target", action="append", default=[], help="TASK=PERCENT")
    b.add_argument("--out", type=Path, required=True, help="stem: writes STEM.md and STEM.json")
    args = ap.parse_args(argv)
    if args.cmd == "subset":
        print(json.dumps(make_subset(args.cache, args.fraction, args.seed, args.out)))
        return 0
    from salface.utils import git_commit, machine

    pts = []
    for p in args.point:
        frac, seed, rep = p.split(":", 2)
        pts.append((float(frac), int(seed), Path(rep)))
    targets = {k: float(v) for k, v in (t.split("=") for t in args.target)}
    s = summarise(pts, args.train_faces, args.tasks.split(","), targets)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": git_commit(),
            "machine": machine(), "command": "python " + " ".join(sys.argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({**meta, **s}, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(s, meta))
    print(f"wrote {args.out}.md and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
