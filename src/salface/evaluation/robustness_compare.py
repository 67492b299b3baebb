"""Paired comparison of two robustness reports (``salface robustness-compare A.json B.json``).

Both reports must come from ``salface robustness`` on the same faces (same dataset, subset, seed
and conditions version); they then hold one prediction per face for every condition and severity
(``per_face``), so model B can be compared with model A face by face:

* clean accuracy and every condition at its middle severity: accuracies, Δ and the exact McNemar
  test on the faces (``salface.evaluation.stats.mcnemar``);
* the mean over conditions (each condition's mean over its severities, as in the reports): each
  face's share of correct answers over all the conditions, compared by a paired bootstrap over
  faces (95 % interval of B − A) and the Wilcoxon signed-rank test;
* each model's worst condition at the middle severity.

A face a detector did not find (``.``) counts as wrong, as in the reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .stats import mcnemar

_SAME = ("dataset", "seed", "conditions_version")


def _load(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{p}: not a readable robustness report ({exc})") from None
    if "per_face" not in d or "summary" not in d:
        raise ValueError(f"{p}: not a robustness report (no per_face/summary; written by an older salface?)")
    return d


def load_pair(a_path: str | Path, b_path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reports A and B, checked to hold the same faces under the same conditions."""
    a, b = _load(a_path), _load(b_path)
    for k in _SAME:
        if a.get(k) != b.get(k):
            raise ValueError(f"the reports differ in {k}: {a.get(k)!r} vs {b.get(k)!r}; rerun on the same faces")
    if a["per_face"]["paths"] != b["per_face"]["paths"]:
        raise ValueError("the reports hold different faces (a face the clean detector missed in one run "
                         "but not the other?); compare runs on the same subset")
    return a, b


def _correct(pred: str, truth: str) -> np.ndarray:
    p = np.frombuffer(pred.encode(), np.uint8)
    t = np.frombuffer(truth.encode(), np.uint8)
    return (p == t) & (p != ord(".")) & (t != ord("."))


def _labelled(truth: str) -> np.ndarray:
    return np.frombuffer(truth.encode(), np.uint8) != ord(".")


def _bootstrap(diff: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(n_boot, len(diff)))
    means = diff[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def compare_reports(a_path: str | Path, b_path: str | Path, *, n_boot: int = 10000,
                    seed: int = 0) -> dict[str, Any]:
    """Per task: the paired comparison of report B against report A (see the module docstring)."""
    a, b = load_pair(a_path, b_path)
    fa, fb = a["per_face"], b["per_face"]
    conds = [c for c in a["conditions"] if c["name"] in fb["conditions"]]
    out: dict[str, Any] = {"a": {"path": str(a_path), "models": a["models"], "commit": a.get("commit")},
                           "b": {"path": str(b_path), "models": b["models"], "commit": b.get("commit")},
                           "dataset": a["dataset"], "split": a.get("split", "test"), "faces": len(fa["paths"]),
                           "tasks": {}}
    for task, truth in fa["truth"].items():
        if task not in fb["truth"]:
            continue
        keep = _labelled(truth)
        rows = []
        ca, cb = _correct(fa["clean"][task], truth)[keep], _correct(fb["clean"][task], truth)[keep]
        mc = mcnemar(ca, cb)
        rows.append({"condition": "clean", "a": float(ca.mean()), "b": float(cb.mean()),
                     "delta": float(cb.mean() - ca.mean()), "p": mc.p_value})
        share_a, share_b = np.zeros(int(keep.sum())), np.zeros(int(keep.sum()))
        for c in conds:
            name, mid = c["name"], str(c["middle"])
            pa, pb = fa["conditions"][name], fb["conditions"][name]
            sev = sorted(pa, key=int)
            sa = np.mean([_correct(pa[s][task], truth)[keep] for s in sev], axis=0)
            sb = np.mean([_correct(pb[s][task], truth)[keep] for s in sev], axis=0)
            share_a += sa / len(conds)
            share_b += sb / len(conds)
            mid = mid if mid in pa else sev[0]
            xa, xb = _correct(pa[mid][task], truth)[keep], _correct(pb[mid][task], truth)[keep]
            m = mcnemar(xa, xb)
            rows.append({"condition": name, "severity": int(mid), "a": float(xa.mean()), "b": float(xb.mean()),
                         "delta": float(xb.mean() - xa.mean()), "p": m.p_value})
        diff = share_b - share_a
        lo, hi = _bootstrap(diff, n_boot, seed)
        try:
            from scipy.stats import wilcoxon
            w_p = float(wilcoxon(share_b, share_a, zero_method="zsplit").pvalue) if np.any(diff) else 1.0
        except ImportError:  # scipy is a [dev]/[train] extra
            w_p = None
        worst_a = min(rows[1:], key=lambda r: r["a"] - rows[0]["a"])
        worst_b = min(rows[1:], key=lambda r: r["b"] - rows[0]["b"])
        out["tasks"][task] = {
            "rows": rows,
            "mean_over_conditions": {"a": float(share_a.mean()), "b": float(share_b.mean()),
                                     "delta": float(diff.mean()), "ci95": [lo, hi], "wilcoxon_p": w_p},
            "worst_middle": {"a": {"condition": worst_a["condition"], "accuracy": worst_a["a"],
                                   "drop": rows[0]["a"] - worst_a["a"]},
                             "b": {"condition": worst_b["condition"], "accuracy": worst_b["b"],
                                   "drop": rows[0]["b"] - worst_b["b"]}},
        }
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _p(p: float | None) -> str:
    return "–" if p is None else (f"{p:.2g}" if p >= 1e-4 else "<1e-4")


def comparison_markdown(cmp: dict[str, Any], command: str = "") -> str:
    name = lambda side: ", ".join(f"`{m['name']}` ({m['sha256'][:12]})" for m in cmp[side]["models"])  # noqa: E731
    L = [f"# Robustness, paired: B against A on {cmp['faces']} {cmp['dataset']} {cmp.get('split', 'test')} faces", ""]
    if command:
        L += [f"- command: `{command}`"]
    L += [f"- A: {cmp['a']['path']} (commit `{cmp['a']['commit']}`): {name('a')}",
          f"- B: {cmp['b']['path']} (commit `{cmp['b']['commit']}`): {name('b')}",
          "- p: exact McNemar on the faces; mean over conditions: each face's share of correct answers "
          "over all conditions and severities, paired bootstrap (95 % interval of B − A, 10,000 resamples) "
          "and Wilcoxon signed-rank", ""]
    for task, t in cmp["tasks"].items():
        m, w = t["mean_over_conditions"], t["worst_middle"]
        L += [f"## {task}", "",
              f"- mean over conditions: A {_pct(m['a'])} %, B {_pct(m['b'])} % (Δ {100 * m['delta']:+.2f} points, "
              f"95 % interval [{100 * m['ci95'][0]:+.2f}, {100 * m['ci95'][1]:+.2f}], Wilcoxon p {_p(m['wilcoxon_p'])})",
              f"- worst condition at the middle severity: A {w['a']['condition']} {_pct(w['a']['accuracy'])} % "
              f"(−{100 * w['a']['drop']:.1f} from clean), B {w['b']['condition']} {_pct(w['b']['accuracy'])} % "
              f"(−{100 * w['b']['drop']:.1f})", "",
              "| condition (middle severity) | A % | B % | Δ points | McNemar p |", "|---|---|---|---|---|"]
        for r in t["rows"]:
            L.append(f"| {r['condition']} | {_pct(r['a'])} | {_pct(r['b'])} | {100 * r['delta']:+.1f} | {_p(r['p'])} |")
        L.append("")
    return "\n".join(L)
