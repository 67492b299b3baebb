"""Time the inference pipeline per stage, in one process: decode, detect, crop, saliency, classify.

    python benchmarks/bench_pipeline.py [--images DIR] [--limit 256] [--batch-size 64]
                                        [--backend auto|onnx|torch] [--threads N] [--repeats 5]
                                        [--detector yunet|whole] [--variant onnx|onnx_int8]

Images default to the first ``--limit`` UTKFace files in ``../shared/data/utkface`` (200 × 200, one
face each, sorted by name). Each stage runs over the whole set, batched as the Analyzer batches it,
the way :class:`salface.pipeline.Analyzer` runs it (crops per classifier geometry, one ML-Net map
per face shared by the classifiers, flip TTA where a model ships with it), after one warm-up pass;
stages are timed ``--repeats`` times and each stage's median is reported (the machine is a shared
VM). ``end_to_end`` is ``Analyzer.analyze_batch`` over the same files (decode and detect
prefetched in a background thread), also the median of the repeats. Whole-process numbers (start-up,
peak memory, a peer) are in ``benchmarks/bench_peer.py``.

Writes ``docs/benchmarks/pipeline_speed[_<backend>][_<detector>].json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "utkface")
    ap.add_argument("--limit", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=12)
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads per network")
    ap.add_argument("--backend", default="auto", choices=("auto", "onnx", "torch"))
    ap.add_argument("--variant", default="auto", choices=("auto", "onnx", "onnx_int8"),
                    help="ONNX files: auto = what the runtime runs (manifest), onnx = all float")
    ap.add_argument("--detector", default="yunet", choices=("yunet", "whole"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from salface.crop import crop_for_config
    from salface.io import load_image
    from salface.pipeline import Analyzer
    from salface.utils import git_commit, machine

    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    paths = paths[: args.limit]
    t0 = time.perf_counter()
    an = Analyzer(detector=args.detector, backend=args.backend, threads=args.threads,
                  batch_size=args.batch_size, variant=args.variant)
    t_load = time.perf_counter() - t0

    def timed(fn):
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times), out

    t_decode, images = timed(lambda: [load_image(p) for p in paths])
    t_detect, faces = timed(lambda: [an.detector.detect(im) for im in images])
    pairs = [(im, f) for im, fs in zip(images, faces) for f in fs]
    batches = [pairs[i:i + args.batch_size] for i in range(0, len(pairs), args.batch_size)]

    def crops():
        out = []
        for b in batches:
            per = {}
            for g in an.groups:
                if g.crop_key not in per:
                    per[g.crop_key] = np.stack([crop_for_config(im, f, g.config).pixels for im, f in b])
            out.append(per)
        return out

    def saliency(crops_):
        out = []
        for per in crops_:
            maps = {}
            for g in an.groups:
                key = (g.crop_key, g.saliency_spec)
                if key not in maps:
                    maps[key] = g.saliency(per[g.crop_key]) if g.saliency is not None else None
            out.append(maps)
        return out

    def classify(crops_, maps_):
        for per, maps in zip(crops_, maps_):
            for g in an.groups:
                g.classifier.predict(g.classifier.prepare(per[g.crop_key]), maps[(g.crop_key, g.saliency_spec)])

    t_crop, crop_sets = timed(crops)
    t_sal, map_sets = timed(lambda: saliency(crop_sets))
    t_cls, _ = timed(lambda: classify(crop_sets, map_sets))
    t_e2e, results = timed(lambda: list(an.analyze_batch(paths)))
    n_faces = sum(len(r.faces) for r in results)

    stages = {"decode": t_decode, "detect": t_detect, "crop": t_crop, "saliency": t_sal,
              "classify": t_cls, "end_to_end": t_e2e}
    report = {
        "benchmark": "bench_pipeline", "commit": git_commit(), "machine": machine(),
        "backend": an.backend, "variant": args.variant, "detector": args.detector,
        "threads": args.threads, "batch_size": args.batch_size, "repeats": args.repeats,
        "images": len(paths), "faces": len(pairs), "faces_end_to_end": n_faces,
        "models": [g.classifier.name for g in an.groups], "load_seconds": round(t_load, 3),
        "stages": {k: {"seconds": round(v, 4), "ms_per_face": round(1000 * v / max(len(pairs), 1), 3),
                       "faces_per_second": round(len(pairs) / v, 1) if v else None}
                   for k, v in stages.items()},
        "command": "python benchmarks/bench_pipeline.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
            if k not in ("out", "images") and v is not None),
    }
    out = args.out or ROOT / "docs" / "benchmarks" / (
        "pipeline_speed" + ("" if an.backend == "onnx" else f"_{an.backend}")
        + ("" if args.variant == "auto" else f"_{args.variant}") + ("" if args.detector == "yunet" else f"_{args.detector}") + ".json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"| stage | s | ms/face | faces/s |  ({len(paths)} images, {len(pairs)} faces, {an.backend})")
    print("|---|---|---|---|")
    for k, v in report["stages"].items():
        print(f"| {k} | {v['seconds']} | {v['ms_per_face']} | {v['faces_per_second']} |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
