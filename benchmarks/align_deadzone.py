"""Eye-line tilt of the clean faces, and what a dead zone would do to levelled crops (session 15).

    python benchmarks/align_deadzone.py --split val \\
        --pair utkface cache/robust15/full-utkface-default cache/robust15/full-utkface-align-age-gender-ensemble \\
        --pair utkface cache/robust15/full-utkface-default-age-gender cache/robust15/full-utkface-align-default-age-gender \\
        --pair ferplus cache/robust15/full-ferplus-default cache/robust15/full-ferplus-align-default-expression \\
        --out docs/benchmarks/align/val/deadzone

Each ``--pair DATASET UPRIGHT LEVELLED`` names two ``salface robustness`` output folders made on the
same faces (``--limit 0``), the upright model's and the levelled one's; their work folders are read
from the reports (``work_dir``). The tilt of a face is the angle of the line between YuNet's two eye
landmarks on the clean image (``clean_detections.json``). For each threshold θ, a "dead zone" crop
takes the levelled answer when the tilt exceeds θ and the upright answer otherwise; printed: clean
accuracy, faces gained and lost against upright, exact McNemar p, and the share of faces levelled.
Only clean faces are simulated (the conditions' own detections are not stored).

Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

THRESHOLDS = (0.0, 3.0, 5.0, 7.0, 10.0)


def _clean_preds(report_dir: Path) -> tuple[dict, dict]:
    rep = json.loads(next(report_dir.glob("*.json")).read_text())
    cell = json.loads((Path(rep["work_dir"]) / "cell_clean.json").read_text())
    return rep, cell["preds"]


def _tilts(rep: dict) -> np.ndarray:
    faces = json.loads((Path(rep["work_dir"]) / "clean_detections.json").read_text())["faces"]
    by_tail = {}
    for key, face in faces.items():
        parts = key.split("/")
        by_tail[parts[-1]] = by_tail[f"{parts[-2]}/{parts[-1]}"] = face
    out = []
    for path in rep["per_face"]["paths"]:
        (rx, ry), (lx, ly) = by_tail[path]["landmarks"][:2]
        out.append(abs(math.degrees(math.atan2(ly - ry, lx - rx))))
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", nargs=3, action="append", required=True,
                    metavar=("DATASET", "UPRIGHT", "LEVELLED"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--out", type=Path, required=True)
    an = ap.parse_args(argv)
    rows, tilt_rows = [], {}
    for dataset, upright, levelled in an.pair:
        rep_u, pu = _clean_preds(Path(upright))
        rep_l, pl = _clean_preds(Path(levelled))
        if rep_u["per_face"]["paths"] != rep_l["per_face"]["paths"]:
            raise SystemExit(f"{upright} and {levelled} are not on the same faces")
        tilt = _tilts(rep_u)
        tilt_rows[dataset] = {"faces": len(tilt), **{f"p{q}": round(float(np.percentile(tilt, q)), 1)
                                                     for q in (50, 75, 90, 95, 99)}}
        for task, truth in rep_u["per_face"]["truth"].items():
            y = np.array([int(c) for c in truth])
            a = np.array([int(c) for c in pu[task]])
            b = np.array([int(c) for c in pl[task]])
            base = a == y
            for th in THRESHOLDS:
                pred = np.where(tilt > th, b, a)
                new = pred == y
                gained, lost = int((new & ~base).sum()), int((base & ~new).sum())
                p = binomtest(gained, gained + lost).pvalue if gained + lost else 1.0
                rows.append({"dataset": dataset, "models": f"{Path(upright).name} / {Path(levelled).name}",
                             "task": task, "threshold_deg": th, "upright": round(100 * base.mean(), 2),
                             "dead_zone": round(100 * new.mean(), 2), "gained": gained, "lost": lost,
                             "mcnemar_p": round(float(p), 3), "levelled_share": round(float((tilt > th).mean()), 3)})
    an.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"split": an.split, "pairs": an.pair, "tilt_deg": tilt_rows, "rows": rows}
    an.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    md = [f"# Eye-line tilt and dead-zone levelling, {an.split} (clean faces)", "",
          f"Command: `python benchmarks/align_deadzone.py --split {an.split} "
          + " ".join(f"--pair {' '.join(p)}" for p in an.pair) + f" --out {an.out}`", "",
          "| dataset | faces | tilt median | 75th | 90th | 95th | 99th percentile (degrees) |", "|---|---|---|---|---|---|---|"]
    md += [f"| {d} | {t['faces']} | {t['p50']} | {t['p75']} | {t['p90']} | {t['p95']} | {t['p99']} |"
           for d, t in tilt_rows.items()]
    md += ["", "| models | task | θ (°) | upright % | dead zone % | gained | lost | McNemar p | levelled |",
           "|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['models']} | {r['task']} | {r['threshold_deg']:g} | {r['upright']} | {r['dead_zone']} | "
           f"{r['gained']} | {r['lost']} | {r['mcnemar_p']} | {100 * r['levelled_share']:.0f} % |" for r in rows]
    an.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
