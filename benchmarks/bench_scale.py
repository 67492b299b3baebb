"""Throughput of ``salface.scale`` (the pipeline on Ray Data actors) against one process.

    python benchmarks/bench_scale.py [--images DIR] [--limit 300] [--workers 1,2] [--num-cpus 2]
                                     [--images-per-call 32] [--out docs/benchmarks/scale_speed.json]

Images: the first ``--limit`` UTKFace files in ``../shared/data/utkface`` (sorted by name; 200 × 200,
one face each). Runs, in this order: one process (``Analyzer.analyze_batch`` over the paths, the
Analyzer built inside the timer), then ``salface.scale.analyze_dataset`` with each worker count on
a local Ray instance of ``--num-cpus`` CPUs (started once, outside the timers; each run's time
includes starting the actors and loading their models, and writing the Parquet file). Every run
uses the default Analyzer (YuNet, ML-Net, the shipped classifiers, the default backend); Ray
workers run their networks with one thread each (one CPU per actor), the single process with the
backend's default. Writes JSON and prints a Markdown table; the 1-minute load average before and
after each run is recorded (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "utkface")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--num-cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--images-per-call", type=int, default=32)
    ap.add_argument("--detector-model", type=Path,
                    default=ROOT.parent / "shared" / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "scale_speed.json")
    args = ap.parse_args()

    import ray

    from salface import scale
    from salface.pipeline import Analyzer
    from salface.utils import git_commit, machine

    files = sorted(str(p) for p in args.images.glob("*.jpg"))[: args.limit]
    if not files:
        raise SystemExit(f"no images in {args.images}")
    kwargs = {"detector": "yunet", "detector_options": {"model_path": str(args.detector_model)}}
    runs = []

    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    results = list(Analyzer(**kwargs).analyze_batch(files))
    dt = time.perf_counter() - t0
    runs.append({"run": "one process (Analyzer.analyze_batch)", "workers": 0, "seconds": round(dt, 2),
                 "images": len(results), "faces": sum(len(r.faces) for r in results),
                 "images_per_second": round(len(results) / dt, 2),
                 "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)})
    print(runs[-1], flush=True)

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level="WARNING")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for w in (int(x) for x in args.workers.split(",")):
                load = os.getloadavg()[0]
                s = scale.analyze_dataset(files, Path(tmp) / f"w{w}.parquet", analyzer_kwargs=kwargs,
                                          num_workers=w, batch_size=args.images_per_call)
                runs.append({"run": f"salface.scale, {w} worker(s)", **s.to_dict(),
                             "load_before": round(load, 2),
                             "load_after": round(os.getloadavg()[0], 2)})
                runs[-1].pop("output")
                print(runs[-1], flush=True)
    finally:
        ray.shutdown()

    report = {"commit": git_commit(), "machine": machine(), "ray": ray.__version__,
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/bench_scale.py " + " ".join(
                  f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                  if k in ("limit", "workers", "num_cpus", "images_per_call")),
              "images": f"first {len(files)} of {args.images.name} (sorted by name)",
              "images_per_call": args.images_per_call, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("\n| run | images/s | seconds | 1-min load before → after |\n|---|---|---|---|")
    for r in runs:
        print(f"| {r['run']} | {r['images_per_second']:.1f} | {r['seconds']:.1f} | "
              f"{r['load_before']} → {r['load_after']} |")


if __name__ == "__main__":
    main()
