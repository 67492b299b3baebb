"""Do the ONNX files the runtime runs give the torch networks' labels? On real test faces.

    python benchmarks/onnx_parity.py [--splits cache/splits] [--limit 0]

For every face of the UTKFace test split (age, gender) and the FER+ test split (expression), the
whole pipeline (YuNet → crop → ML-Net → classifiers) runs once on the PyTorch backend and once per
ONNX configuration: ``float`` (every network's float ONNX file) and ``runtime`` (the files the
runtime runs by default: INT8 where a network passed ``benchmarks/int8_trial.py``); reports, per
task, the share of faces
whose label agrees with torch, the largest probability difference, and each backend's accuracy
against the dataset labels (on the faces YuNet finds). The split files come from
``salface splits utkface|ferplus`` (``cache/splits``). Writes ``docs/benchmarks/onnx_parity.json``
and ``.md``. The manifest's ``parity_vs_torch`` records the logit-level check made when bundling.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TASKS = {"utkface": ("age", "gender"), "ferplus": ("expression",)}


def run(an, samples):
    """Per sample: {task: (label index, probabilities)} of the face nearest the dataset box, or None."""
    from salface.types import Box

    out = []
    for s, res in zip(samples, an.analyze_batch([s.path for s in samples])):
        ref = s.box if getattr(s, "box", None) is not None else Box(0, 0, res.width, res.height)
        face = max(res.faces, key=lambda f: f.face.box.iou(ref), default=None)
        out.append(None if face is None else {
            t: (p.index, np.array(list(p.probabilities.values()))) for t, p in face.predictions().items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", type=Path, default=ROOT / "cache" / "splits")
    ap.add_argument("--limit", type=int, default=0, help="first N test faces per dataset (0: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "onnx_parity")
    args = ap.parse_args()

    from salface.data.splits import read_split
    from salface.hub import DEFAULT_MODELS, bundled_entry
    from salface.labels import labels_for
    from salface.pipeline import Analyzer
    from salface.utils import command_line, git_commit, machine

    variants = ["float", "runtime"]
    report = {"commit": git_commit(), "machine": machine(), "variants": variants,
              "runtime_variants": {m: bundled_entry(m).get("runtime_variant", "onnx")
                                   for m in sorted(set(DEFAULT_MODELS.values()) | {"mlnet-mobilenetv2-nus"})},
              "command": command_line("python benchmarks/onnx_parity.py"), "datasets": {}}
    for ds, tasks in TASKS.items():
        samples = read_split(args.splits / f"{ds}.jsonl")["test"]
        if args.limit:
            samples = samples[: args.limit]
        preds = {"torch": run(Analyzer(tasks=tasks, backend="torch"), samples),
                 "float": run(Analyzer(tasks=tasks, backend="onnx", variant="onnx"), samples),
                 "runtime": run(Analyzer(tasks=tasks, backend="onnx", variant="auto"), samples)}
        found = [i for i, p in enumerate(preds["torch"]) if p is not None]
        rows = {}
        for t in tasks:
            truth = np.array([labels_for(t).index(samples[i].labels[t])
                              if isinstance(samples[i].labels[t], str) else int(samples[i].labels[t])
                              for i in found])
            ref = np.array([preds["torch"][i][t][0] for i in found])
            row = {"faces": len(found), "torch_accuracy": round(float((ref == truth).mean()), 4)}
            for v in variants:
                got = np.array([preds[v][i][t][0] for i in found])
                dp = max(float(np.abs(preds[v][i][t][1] - preds["torch"][i][t][1]).max()) for i in found)
                row[v] = {"label_agreement": round(float((got == ref).mean()), 5),
                          "disagreements": int((got != ref).sum()), "max_probability_diff": dp,
                          "accuracy": round(float((got == truth).mean()), 4)}
            rows[t] = row
        report["datasets"][ds] = {"test_images": len(samples), "faces_found": len(found), "tasks": rows}
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# ONNX files vs torch networks on the test splits (commit {report['commit']})", "",
             f"Machine: {report['machine']}. Command: `{report['command']}`. `float`: every network's "
             f"float ONNX file; `runtime`: the files the runtime runs by default "
             f"({', '.join(f'{k}: {v}' for k, v in report['runtime_variants'].items())}).", "",
             "| dataset | task | faces | variant | label agreement with torch | disagreements | max prob. diff | accuracy (torch) |",
             "|---|---|---|---|---|---|---|---|"]
    for ds, d in report["datasets"].items():
        for t, row in d["tasks"].items():
            for v in variants:
                r = row[v]
                lines.append(f"| {ds} | {t} | {row['faces']} | {v} | {100 * r['label_agreement']:.2f} % | "
                             f"{r['disagreements']} | {r['max_probability_diff']:.1e} | "
                             f"{100 * r['accuracy']:.2f} % ({100 * row['torch_accuracy']:.2f} %) |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
