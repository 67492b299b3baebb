"""Would INT8 (ONNX Runtime static quantisation) pay for itself? A trial on val faces.

    python benchmarks/int8_trial.py [--calibration 256] [--val 1000] [--bundle]

For each bundled network (ML-Net and the two classifiers) an INT8 copy is made with ONNX Runtime's
static quantisation (QDQ, per-channel int8 weights, uint8 activations, MinMax calibration on
``--calibration`` faces of the *train* split, prepared exactly as the runtime prepares them). Then
the whole pipeline runs on ``--val`` faces of the *val* splits (UTKFace for age and gender, FER+ for
expression) with the float networks and with one network at a time swapped for its INT8 copy:
accuracy of each, label agreement with float, McNemar, and the network's own speed (median of 5
timed passes over one batch of 64, 2 threads). The project keeps an INT8 model only where accuracy
moves by at most 0.3 points on every task it serves, and checks the kept ones together (all swapped
at once) against the same bound. The INT8 files are written to ``cache/int8/``; with ``--bundle``
the kept ones go into the package as each model's ``onnx_int8`` variant and become the variant the
runtime runs for it (``runtime_variant`` in the manifest); ``--only`` limits which networks may
be bundled (the expression model's INT8 copy passed on val but moved FER+ test accuracy by −0.6
points together with INT8 ML-Net, ``docs/benchmarks/onnx_parity.md``, more than issue 13's
0.3, so it is not bundled). Writes
``docs/benchmarks/int8_trial.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NETS = {"mlnet-mobilenetv2-nus": "utkface", "default-age-gender": "utkface",
        "default-expression": "ferplus"}


def prepared_inputs(paths, name):
    """The float network inputs the runtime builds for these images (first face of each)."""
    from salface.classify import load_classifier
    from salface.crop import crop_for_config
    from salface.detect import get_detector
    from salface.io import load_image
    from salface.preprocess import to_input_array
    from salface.saliency import get_saliency
    from salface.saliency.mlnet_runtime import imagenet_input

    det, sal = get_detector("yunet"), get_saliency("mlnet")
    clf = load_classifier("default-age-gender" if name.startswith("mlnet") else name)
    xs = []
    for p in paths:
        im = load_image(p)
        faces = det.detect(im)
        if not faces:
            continue
        rgb = crop_for_config(im, faces[0], clf.config).pixels[None]
        if name.startswith("mlnet"):
            xs.append(imagenet_input(rgb))
        else:
            xs.append(to_input_array(clf.prepare(rgb), sal(rgb), clf.config))
    return np.concatenate(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--splits", type=Path, default=ROOT / "cache" / "splits")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "int8_trial")
    ap.add_argument("--bundle", action="store_true", help="bundle the INT8 files that pass")
    ap.add_argument("--only", default="", help="comma-separated networks that may be bundled "
                                               "(default: every one that passes)")
    args = ap.parse_args()

    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)
    from scipy.stats import binomtest

    from salface import hub
    from salface.backends.onnxrt import OrtNetwork
    from salface.data.splits import read_split
    from salface.pipeline import Analyzer
    from salface.utils import command_line, git_commit, machine

    rng = np.random.default_rng(0)
    work = ROOT / "cache" / "int8"
    work.mkdir(parents=True, exist_ok=True)
    splits = {ds: read_split(args.splits / f"{ds}.jsonl") for ds in set(NETS.values())}
    report = {"commit": git_commit(), "machine": machine(), "command": command_line("python benchmarks/int8_trial.py"),
              "settings": vars(args) | {"splits": str(args.splits), "out": str(args.out)}, "networks": {}}
    int8_paths = {}
    for name, ds in NETS.items():
        train = splits[ds]["train"]
        pick = [train[i].path for i in rng.choice(len(train), args.calibration, replace=False)]
        x = prepared_inputs(pick, name)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([{"input": x[i:i + 16]} for i in range(0, len(x), 16)])

            def get_next(self):
                return next(self.it, None)

        src = hub.bundled_file(name, "onnx")
        pre, out = work / f"{name}.pre.onnx", work / f"{name}.int8.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        int8_paths[name] = out
        batch = np.concatenate([x, x])[:64]
        speed = {}
        for kind, path in (("float", src), ("int8", out)):
            net = OrtNetwork(path, threads=2)
            net(batch)
            times = []
            for _ in range(5):
                t = time.perf_counter()
                net(batch)
                times.append(time.perf_counter() - t)
            speed[kind] = round(64 / statistics.median(times), 1)
        report["networks"][name] = {"calibration_faces": int(len(x)), "images_per_second": speed,
                                    "float_mb": round(src.stat().st_size / 2**20, 1),
                                    "int8_mb": round(out.stat().st_size / 2**20, 1)}

    # accuracy: the whole pipeline on val faces, one network swapped at a time
    from salface.types import Box

    def predict(ds, tasks, swap=()):
        an = Analyzer(tasks=tasks, variant="onnx")  # the float files, whatever the manifest says
        swap = (swap,) if isinstance(swap, str) else tuple(swap)
        for g in an.groups:
            if g.classifier.name in swap:
                g.classifier.network = OrtNetwork(int8_paths[g.classifier.name])
        for sal in an._saliency_models.values():
            if getattr(sal, "model_name", None) in swap:
                sal.network = OrtNetwork(int8_paths[sal.model_name])
        samples = splits[ds]["val"][: args.val]
        out = []
        for s, res in zip(samples, an.analyze_batch([s.path for s in samples])):
            ref = s.box if s.box is not None else Box(0, 0, res.width, res.height)
            f = max(res.faces, key=lambda f: f.face.box.iou(ref), default=None)
            out.append({t: (getattr(f, t).index if f else -1) for t in tasks})
        truth = [{t: int(s.labels[t]) for t in tasks} for s in samples]
        return out, truth

    def compare(base, got, truth, t):
        y = np.array([r[t] for r in truth])
        a = np.array([r[t] for r in base]) == y
        b = np.array([r[t] for r in got]) == y
        n01, n10 = int((a & ~b).sum()), int((~a & b).sum())
        agree = float(np.mean([r[t] == q[t] for r, q in zip(base, got)]))
        return {"faces": len(y), "float_accuracy": round(float(a.mean()), 4),
                "int8_accuracy": round(float(b.mean()), 4),
                "change_points": round(100 * float(b.mean() - a.mean()), 2),
                "label_agreement": round(agree, 4),
                "mcnemar_p": round(float(binomtest(min(n01, n10), n01 + n10).pvalue), 4) if n01 + n10 else 1.0,
                # within 0.3 points, counted in faces (3 of 1,000), not in floating point
                "keep": abs(int(b.sum()) - int(a.sum())) <= 0.003 * len(y) + 1e-9}

    bases = {}
    for ds, tasks in (("utkface", ("age", "gender")), ("ferplus", ("expression",))):
        base, truth = predict(ds, tasks)
        bases[ds] = (tasks, base, truth)
        for name, nds in NETS.items():
            if nds != ds and not name.startswith("mlnet"):
                continue
            got, _ = predict(ds, tasks, swap=name)
            for t in tasks:
                report["networks"][name].setdefault("val", {})[t] = compare(base, got, truth, t)
    kept = [n for n, r in report["networks"].items() if all(v["keep"] for v in r["val"].values())]
    together = {}
    for ds, (tasks, base, truth) in bases.items():
        got, _ = predict(ds, tasks, swap=kept)
        together.update({t: compare(base, got, truth, t) for t in tasks})
    report["kept"] = kept if all(v["keep"] for v in together.values()) else []
    report["kept_together"] = together
    if args.bundle:
        from salface.hub import _update_manifest, bundled_dir, register_bundled_file

        allowed = [n.strip() for n in args.only.split(",") if n.strip()] or list(NETS)
        bundled = [n for n in report["kept"] if n in allowed]
        report["bundled"] = bundled
        for name in bundled:
            register_bundled_file(name, "onnx_int8", int8_paths[name], extra={
                "method": "ONNX Runtime static quantisation, QDQ, per-channel int8 weights, uint8 "
                          "activations, MinMax calibration",
                "calibration": f"{report['networks'][name]['calibration_faces']} faces of the "
                               f"{NETS[name]} train split, seed 0",
                "trial": "docs/benchmarks/int8_trial.md", "val": report["networks"][name]["val"]})

        def choose(models):
            for name in NETS:
                if name in bundled:
                    models[name]["runtime_variant"] = "onnx_int8"
                else:
                    models[name].pop("runtime_variant", None)
                    models[name].pop("onnx_int8", None)

        _update_manifest(bundled_dir(), choose)
        for name in NETS:
            if name not in bundled:
                (bundled_dir() / f"{name}.int8.onnx").unlink(missing_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# INT8 trial (commit {report['commit']})", "",
             f"Machine: {report['machine']}. Command: `{report['command']}`. Calibration: {args.calibration} "
             f"train-split faces per network; accuracy on the first {args.val} val-split faces, whole pipeline, "
             "one network swapped at a time. Kept only where accuracy moves by at most 0.3 points.", "",
             "| network | images/s float → int8 (batch 64, 2 threads) | MB | task | val accuracy float → int8 | change | label agreement | McNemar p | kept |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in report["networks"].items():
        for t, v in r.get("val", {}).items():
            lines.append(f"| {name} | {r['images_per_second']['float']} → {r['images_per_second']['int8']} | "
                         f"{r['float_mb']} → {r['int8_mb']} | {t} | {100 * v['float_accuracy']:.2f} → "
                         f"{100 * v['int8_accuracy']:.2f} % | {v['change_points']:+.2f} | "
                         f"{100 * v['label_agreement']:.1f} % | {v['mcnemar_p']} | {'yes' if v['keep'] else 'no'} |")
    lines += ["", f"Kept ({', '.join(report['kept']) or 'none'}) all swapped at once:", "",
              "| task | val accuracy float → int8 | change | label agreement | McNemar p |", "|---|---|---|---|---|"]
    for t, v in together.items():
        lines.append(f"| {t} | {100 * v['float_accuracy']:.2f} → {100 * v['int8_accuracy']:.2f} % | "
                     f"{v['change_points']:+.2f} | {100 * v['label_agreement']:.1f} % | {v['mcnemar_p']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
