"""Dynamic INT8 for a bundled classifier's matrix products: does it keep accuracy, and what does it save?

    python benchmarks/int8_dynamic.py [--name age-gender-ensemble] [--bundle]

EdgeFace-XS (the second member of ``age-gender-ensemble``) is an EdgeNeXt: most of its arithmetic is
in point-wise linear layers, which the ONNX graph holds as ``MatMul`` nodes (its authors shipped it
with those layers dynamically quantised). ONNX Runtime's dynamic quantisation turns every ``MatMul``
with a constant weight into int8 weights and activations quantised per batch at run time; nothing
else changes (the MobileNetV2's convolutions and the heads stay float), and no calibration data is
needed. This script makes that copy, then on the whole **val** split of the model's crop cache
(prepared exactly as the runtime prepares faces: ``Classifier.prepare`` and ``to_input_array``)
compares the float and INT8 files: accuracy per task, label agreement, McNemar, and the speed of
each file alone (batch 12, one non-spinning thread as the runtime runs it, median of 7 alternating
rounds). It also checks that a face's answer does not depend on the other faces in its batch
(the largest probability difference between 64 faces run one at a time and the same faces run as
one batch): dynamic quantisation takes one activation range per tensor, i.e. per batch, and the
runtime batches faces from different photos together, so a copy whose answers move with the batch
is not kept whatever its accuracy. The project's bar (issue 13) is a move of at most 0.3 points per
task, and answers that do not depend on the batch (1e-5). With ``--bundle`` a copy that passes is
added to the package as the model's ``onnx_int8`` variant (``salface models set-variant`` decides
whether the runtime runs it). Writes ``docs/benchmarks/int8_dynamic.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHES = {"age-gender-ensemble": "cache/crops/utkface-96-rgb"}


def session(path: Path):
    import onnxruntime as ort

    from salface.backends.onnxrt import session_options

    return ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])


def run(sess, x: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    name = sess.get_inputs()[0].name
    outs = [o.name for o in sess.get_outputs()]
    parts: dict[str, list[np.ndarray]] = {o: [] for o in outs}
    for i in range(0, len(x), batch):
        for o, v in zip(outs, sess.run(None, {name: x[i:i + batch]})):
            parts[o].append(v)
    return {o: np.concatenate(v) for o, v in parts.items()}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name", default="age-gender-ensemble", choices=sorted(CACHES))
    ap.add_argument("--bundle", action="store_true", help="Add the INT8 copy to the package if it keeps val accuracy.")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "int8_dynamic")
    a = ap.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from scipy.stats import binomtest

    from salface.classify import load_classifier
    from salface.utils import git_commit, machine
    from salface.hub import bundled_dir, bundled_entry, register_bundled_file, sha256_file
    from salface.preprocess import to_input_array
    from salface.training.cache import open_crop_cache

    entry = bundled_entry(a.name)
    src = bundled_dir() / entry["onnx"]["file"]
    work = ROOT / "cache" / "int8"
    work.mkdir(parents=True, exist_ok=True)
    dst = work / f"{a.name}.int8.onnx"
    quantize_dynamic(str(src), str(dst), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)

    clf = load_classifier(a.name, variant="onnx")
    cc = open_crop_cache(ROOT / CACHES[a.name])
    idx = cc.indices("val")
    maps = np.asarray(cc.saliency(clf.config.saliency)[idx]).astype(np.float32) / 255.0  # cached as uint8
    x = to_input_array(clf.prepare(np.asarray(cc.crops[idx])), maps, clf.config).astype(np.float32)
    sessions = {"float": session(src), "int8": session(dst)}
    preds = {k: {t: v.argmax(1) for t, v in run(s, x).items()} for k, s in sessions.items()}

    timings: dict[str, list[float]] = {k: [] for k in sessions}
    b = x[:12]
    for _ in range(7):  # alternate the files so a busy machine slows both alike
        for k, s in sessions.items():
            name = s.get_inputs()[0].name
            s.run(None, {name: b})
            t0 = time.perf_counter()
            for _ in range(15):
                s.run(None, {name: b})
            timings[k].append((time.perf_counter() - t0) / 15 / len(b) * 1000)

    # does a face's answer depend on its batch? 64 faces alone against the same faces as one batch
    batch_dependence = {}
    for k, s in sessions.items():
        together = run(s, x[:64], batch=64)
        alone = run(s, x[:64], batch=1)
        batch_dependence[k] = max(float(np.abs(_softmax(together[t]) - _softmax(alone[t])).max()) for t in together)

    tasks = {}
    for t in clf.tasks:
        y = cc.task_labels(t)[idx]
        ok = y >= 0
        fa, fb = preds["float"][t][ok] == y[ok], preds["int8"][t][ok] == y[ok]
        n01, n10 = int((fa & ~fb).sum()), int((~fa & fb).sum())
        tasks[t] = {"faces": int(ok.sum()), "float_accuracy": round(float(fa.mean()), 4),
                    "int8_accuracy": round(float(fb.mean()), 4),
                    "change_points": round(100 * float(fb.mean() - fa.mean()), 2),
                    "label_agreement": round(float((preds["float"][t] == preds["int8"][t]).mean()), 4),
                    "mcnemar_p": round(float(binomtest(min(n01, n10), n01 + n10).pvalue), 4) if n01 + n10 else 1.0,
                    "keep": abs(int(fb.sum()) - int(fa.sum())) <= 0.003 * int(ok.sum()) + 1e-9}
    keep = all(v["keep"] for v in tasks.values()) and batch_dependence["int8"] <= 1e-5
    report = {"name": a.name, "commit": git_commit(), "machine": machine(),
              "command": "python benchmarks/int8_dynamic.py" + (" --bundle" if a.bundle else ""),
              "method": "ONNX Runtime quantize_dynamic, op_types_to_quantize=['MatMul'], int8 weights",
              "float_file": {"file": src.name, "sha256": sha256_file(src), "mb": round(src.stat().st_size / 2**20, 1)},
              "int8_file": {"sha256": sha256_file(dst), "mb": round(dst.stat().st_size / 2**20, 1)},
              "ms_per_face": {k: round(statistics.median(v), 3) for k, v in timings.items()},
              "batch_dependence_max_probability_diff": {k: float(f"{v:.3g}") for k, v in batch_dependence.items()},
              "val": tasks, "keep": keep}
    if a.bundle and keep:
        register_bundled_file(a.name, "onnx_int8", dst, extra={
            "method": report["method"], "trial": "docs/benchmarks/int8_dynamic.md", "val": tasks})
        report["bundled"] = True
    a.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    L = [f"# Dynamic INT8 of `{a.name}` (commit {report['commit']})", "",
         f"Machine: {report['machine']}. Command: `{report['command']}`. Method: {report['method']}. "
         f"Val split of `{CACHES[a.name]}` ({next(iter(tasks.values()))['faces']} faces), inputs prepared as the runtime "
         "prepares them; speed: the file alone, batch 12, one non-spinning ONNX Runtime thread, median of 7 "
         "alternating rounds.", "",
         f"Files: float {report['float_file']['mb']} MB, INT8 {report['int8_file']['mb']} MB; "
         f"ms per face: float {report['ms_per_face']['float']}, INT8 {report['ms_per_face']['int8']}.", "",
         "Largest probability difference, 64 faces one at a time against the same faces as one batch: "
         f"float {report['batch_dependence_max_probability_diff']['float']}, "
         f"INT8 {report['batch_dependence_max_probability_diff']['int8']} (bar 1e-05).", "",
         f"Kept: **{'yes' if keep else 'no'}**.", "",
         "| task | val accuracy float → int8 | change | label agreement | McNemar p | within 0.3 points |",
         "|---|---|---|---|---|---|"]
    for t, v in tasks.items():
        L.append(f"| {t} | {100 * v['float_accuracy']:.2f} → {100 * v['int8_accuracy']:.2f} % | "
                 f"{v['change_points']:+.2f} | {100 * v['label_agreement']:.1f} % | {v['mcnemar_p']} | "
                 f"{'yes' if v['keep'] else 'no'} |")
    a.out.with_suffix(".md").write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
