"""Paired comparison of two robustness reports by *family* of conditions and by severity.

`salface robustness-compare` tests each condition at its middle severity and the mean over all
conditions. Issue 12 asks about three families — occlusion, framing, low resolution — and a
600-face McNemar test per condition has little power (± 2 points standard error), so this pools
each family over its conditions and all their severities: per face, the share of correct answers
in the family, compared by a paired bootstrap over faces (95 % interval of B − A) and the Wilcoxon
signed-rank test. It also gives the same for *consistency* (share of answers equal to the model's
own clean answer; a face not found counts as changed) and, for the named conditions, every
severity with the exact McNemar test.

    python scripts/robustness_families.py A.json B.json --out docs/benchmarks/robustness/saliency/families_utkface

A is the baseline, B the candidate; both from `salface robustness` on the same faces. Writes
``OUT.md`` and ``OUT.json`` (or prints the Markdown without ``--out``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from salface.evaluation.robustness_compare import _bootstrap, _correct, _labelled, load_pair
from salface.evaluation.stats import mcnemar

# Issue 12's families (the condition names of `salface robustness --list`, conditions_version 1).
FAMILIES: dict[str, tuple[str, ...]] = {
    "occlusion": ("sunglasses", "mask", "hand"),
    "framing": ("margin-tight", "margin-loose", "off-centre", "detector-dlib-hog", "detector-whole"),
    "low resolution": ("resolution",),
    "pose": ("rotation", "yaw"),
    "image quality": ("jpeg", "gaussian-blur", "motion-blur", "noise"),
    "light and colour": ("underexposure", "overexposure", "low-contrast", "colour-cast", "grayscale"),
}
# Conditions shown severity by severity.
DETAILED = ("resolution", "sunglasses", "mask", "hand", "margin-tight", "margin-loose", "off-centre")


def _same(pred: str, ref: str) -> np.ndarray:
    """Answer equals the reference answer (a face not found, ``.``, never counts as the same)."""
    p = np.frombuffer(pred.encode(), np.uint8)
    r = np.frombuffer(ref.encode(), np.uint8)
    return (p == r) & (p != ord("."))


def _paired(share_a: np.ndarray, share_b: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    diff = share_b - share_a
    lo, hi = _bootstrap(diff, n_boot, seed)
    if np.any(diff):
        from scipy.stats import wilcoxon
        w_p = float(wilcoxon(share_b, share_a, zero_method="zsplit").pvalue)
    else:
        w_p = 1.0
    return {"a": float(share_a.mean()), "b": float(share_b.mean()), "delta": float(diff.mean()),
            "ci95": [lo, hi], "wilcoxon_p": w_p}


def compare_families(a_path: str | Path, b_path: str | Path, *, families: dict[str, tuple[str, ...]] = FAMILIES,
                     detailed: tuple[str, ...] = DETAILED, n_boot: int = 10000, seed: int = 0) -> dict[str, Any]:
    """Per task: each family's accuracy and consistency (pooled over its conditions and severities),
    A against B, and the detailed conditions severity by severity."""
    a, b = load_pair(a_path, b_path)
    fa, fb = a["per_face"], b["per_face"]
    levels = {c["name"]: c.get("levels", []) for c in a["conditions"]}
    out: dict[str, Any] = {"a": str(a_path), "b": str(b_path), "dataset": a["dataset"],
                           "faces": len(fa["paths"]), "tasks": {}}
    for task, truth in fa["truth"].items():
        if task not in fb["truth"]:
            continue
        keep = _labelled(truth)
        fam_out: dict[str, Any] = {}
        for fam, names in families.items():
            missing = [n for n in names if n not in fa["conditions"] or n not in fb["conditions"]]
            if missing:
                raise ValueError(f"family {fam!r}: condition(s) {', '.join(missing)} not in both reports")
            acc_a, acc_b, con_a, con_b = [], [], [], []
            for n in names:
                for s in sorted(fa["conditions"][n], key=int):
                    pa, pb = fa["conditions"][n][s][task], fb["conditions"][n][s][task]
                    acc_a.append(_correct(pa, truth)[keep])
                    acc_b.append(_correct(pb, truth)[keep])
                    con_a.append(_same(pa, fa["clean"][task])[keep])
                    con_b.append(_same(pb, fb["clean"][task])[keep])
            fam_out[fam] = {"conditions": list(names), "cases": len(acc_a),
                            "accuracy": _paired(np.mean(acc_a, 0), np.mean(acc_b, 0), n_boot, seed),
                            "consistency": _paired(np.mean(con_a, 0), np.mean(con_b, 0), n_boot, seed)}
        rows = []
        for n in detailed:
            if n not in fa["conditions"] or n not in fb["conditions"]:
                continue
            for s in sorted(fa["conditions"][n], key=int):
                xa = _correct(fa["conditions"][n][s][task], truth)[keep]
                xb = _correct(fb["conditions"][n][s][task], truth)[keep]
                lv = levels.get(n, [])
                level = lv[int(s) - 1] if 0 < int(s) <= len(lv) else {}
                rows.append({"condition": n, "severity": int(s), "level": level, "a": float(xa.mean()),
                             "b": float(xb.mean()), "delta": float(xb.mean() - xa.mean()),
                             "p": mcnemar(xa, xb).p_value})
        out["tasks"][task] = {"families": fam_out, "severities": rows}
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def families_markdown(cmp: dict[str, Any], command: str = "") -> str:
    L = [f"# Robustness by family, paired: B against A on {cmp['faces']} {cmp['dataset']} test faces", ""]
    if command:
        L.append(f"- command: `{command}`")
    L += [f"- A (baseline): {cmp['a']}", f"- B (candidate): {cmp['b']}",
          "- family: each face's share of correct answers (accuracy) or of answers equal to the model's own "
          "clean answer (consistency) over the family's conditions and all their severities; paired bootstrap "
          "over faces (95 % interval of B − A, 10,000 resamples) and Wilcoxon signed-rank p; a face not found "
          "counts as wrong and as changed", "- severities: exact McNemar p on the faces", ""]
    for task, t in cmp["tasks"].items():
        L += [f"## {task}", "",
              "| family (conditions × severities) | accuracy A % | B % | Δ points [95 % interval] | p "
              "| consistency A % | B % | Δ points [95 % interval] | p |",
              "|---|---|---|---|---|---|---|---|---|"]
        for fam, f in t["families"].items():
            cells = []
            for key in ("accuracy", "consistency"):
                m = f[key]
                cells += [_pct(m["a"]), _pct(m["b"]),
                          f"{100 * m['delta']:+.2f} [{100 * m['ci95'][0]:+.2f}, {100 * m['ci95'][1]:+.2f}]",
                          _p(m["wilcoxon_p"])]
            L.append(f"| {fam} ({', '.join(f['conditions'])}; {f['cases']}) | " + " | ".join(cells) + " |")
        L += ["", "| condition | severity | level | A % | B % | Δ points | McNemar p |", "|---|---|---|---|---|---|---|"]
        for r in t["severities"]:
            lv = ", ".join(f"{k} {v}" for k, v in r["level"].items())
            L.append(f"| {r['condition']} | {r['severity']} | {lv} | {_pct(r['a'])} | {_pct(r['b'])} | "
                     f"{100 * r['delta']:+.1f} | {_p(r['p'])} |")
        L.append("")
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="report A (baseline), DATASET.json from `salface robustness`")
    ap.add_argument("b", type=Path, help="report B (candidate), on the same faces")
    ap.add_argument("--out", type=Path, help="write OUT.md and OUT.json (default: print the Markdown)")
    args = ap.parse_args(argv)
    try:
        cmp = compare_families(args.a, args.b)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    md = families_markdown(cmp, command)
    if args.out is None:
        print(md)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"command": command, **cmp}, indent=1))
    args.out.with_suffix(".md").write_text(md + "\n")
    print(f"→ {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
