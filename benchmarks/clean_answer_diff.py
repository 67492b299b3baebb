"""How many clean answers two `salface robustness` runs on the same faces give differently (session 17).

    python benchmarks/clean_answer_diff.py --pair NAME A_DIR B_DIR [--pair …] --out OUT

Each ``--pair`` names two output folders of ``salface robustness`` made on the same faces (A: the
reference, B: the candidate); their work folders are read from the reports (``work_dir``, the
clean cell's predictions ``cell_clean.json``). Printed per pair and task: faces, answers that
differ, faces B gets right that A got wrong (gained) and the reverse (lost), and the exact McNemar p.
Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import binomtest

from salface.evaluation.robustness import _decode  # the reports' answer strings ("." = no face)


def _run(report_dir: Path) -> tuple[dict, dict]:
    rep = json.loads(next(report_dir.glob("*.json")).read_text())
    cell = json.loads((Path(rep["work_dir"]) / "cell_clean.json").read_text())
    return rep, cell["preds"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", nargs=3, action="append", required=True, metavar=("NAME", "A", "B"))
    ap.add_argument("--out", type=Path, required=True)
    an = ap.parse_args(argv)
    rows = []
    for name, a_dir, b_dir in an.pair:
        rep_a, pa = _run(Path(a_dir))
        rep_b, pb = _run(Path(b_dir))
        if rep_a["per_face"]["paths"] != rep_b["per_face"]["paths"]:
            raise SystemExit(f"{a_dir} and {b_dir} are not on the same faces")
        for task, truth in rep_a["per_face"]["truth"].items():
            y, a, b = _decode(truth), _decode(pa[task]), _decode(pb[task])
            gained, lost = int(((b == y) & (a != y)).sum()), int(((a == y) & (b != y)).sum())
            p = binomtest(gained, gained + lost).pvalue if gained + lost else 1.0
            rows.append({"pair": name, "task": task, "faces": int(len(y)), "differ": int((a != b).sum()),
                         "gained": gained, "lost": lost, "acc_a": round(100 * float((a == y).mean()), 2),
                         "acc_b": round(100 * float((b == y).mean()), 2), "mcnemar_p": round(float(p), 3)})
    an.out.parent.mkdir(parents=True, exist_ok=True)
    an.out.with_suffix(".json").write_text(json.dumps({"pairs": an.pair, "rows": rows}, indent=1))
    md = ["# Clean answers that differ between two robustness runs on the same faces", "",
          "Command: `python benchmarks/clean_answer_diff.py "
          + " ".join(f"--pair {' '.join(p)}" for p in an.pair) + f" --out {an.out}`", "",
          "| pair | task | faces | answers differ | gained | lost | A % | B % | McNemar p |",
          "|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['pair']} | {r['task']} | {r['faces']} | {r['differ']} | {r['gained']} | {r['lost']} | "
           f"{r['acc_a']} | {r['acc_b']} | {r['mcnemar_p']} |" for r in rows]
    an.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
