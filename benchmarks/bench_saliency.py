"""Time every saliency model on the CPU: one 112-px map, and batches of 64 at 96/112/128 px.

    TORCH_HOME=cache/torch .venv/bin/python benchmarks/bench_saliency.py [--threads 1,2] [--out docs/benchmarks/saliency_speed.json]

Inputs are real face crops (skimage's astronaut, tiled with small shifts), so the classical
models do their usual work. Each timing is the median of several repetitions after one warm-up
call. The JSON records the machine, torch version, thread count, commit and the load average (the
2 cores are shared: other jobs running at the same time slow every number down), and a
reference timing of the bare torchvision MobileNetV2 classifier on the same batch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch


def _crops(size: int, n: int) -> np.ndarray:
    from skimage.data import astronaut

    img = astronaut()
    out = []
    for i in range(n):
        dx, dy = (i * 7) % 40, (i * 5) % 30
        out.append(cv2.resize(img[10 + dy:230 + dy, 120 + dx:340 + dx], (size, size),
                              interpolation=cv2.INTER_AREA))
    return np.stack(out)


def _median_time(fn, reps: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _run(models: list[str], threads: int) -> dict:
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    from salface.saliency import get_saliency

    res: dict = {"models": {}}
    for name in models:
        model = get_saliency(name)
        one = _crops(112, 1)[0]
        r = {"one_map_112_ms": 1000 * _median_time(lambda: model(one), 7)}
        for size in (96, 112, 128):
            batch = _crops(size, 64)
            t = _median_time(lambda: model(batch), 3)
            r[f"batch64_{size}_s"] = t
            r[f"maps_per_s_{size}"] = 64 / t
        res["models"][name] = r
        print(f"threads {threads}", name, {k: round(v, 2) for k, v in r.items()}, flush=True)
    # reference: the bare torchvision MobileNetV2 classifier on the same batch, to show how much
    # of ML-Net's time is the backbone (and how loaded the machine was)
    import torchvision

    ref = torchvision.models.mobilenet_v2(weights=None).eval().to(memory_format=torch.channels_last)
    x = torch.randn(64, 3, 112, 112).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        t = _median_time(lambda: ref(x), 3)
    res["reference_mobilenet_v2_classifier_112_per_s"] = 64 / t
    print(f"threads {threads} reference MobileNetV2 classifier, 112 px, batch 64:",
          round(64 / t, 1), "img/s", flush=True)
    return res


def main() -> None:
    import os

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts to time")
    ap.add_argument("--models", default="mlnet,spectral-residual,frequency-tuned,centre,none")
    ap.add_argument("--out", default="docs/benchmarks/saliency_speed.json")
    args = ap.parse_args()
    from salface.utils import git_commit, machine

    commit = git_commit()
    res = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit, "machine": machine(),
           "torch": torch.__version__, "load_average_before": list(os.getloadavg()), "runs": {}}
    for th in (int(t) for t in args.threads.split(",")):
        res["runs"][f"threads={th}"] = _run(args.models.split(","), th)
    res["load_average_after"] = list(os.getloadavg())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
