"""What the expression model's resolution cap costs per face (issue 12, session 18;
docs/benchmarks/resolution/README.md): the pipeline cuts one more crop for a capped model (at the
cap, then enlarged), beside the shared uncapped crop. The end-to-end timings of
``benchmarks/bench_pipeline.py`` on the shared 2-core machine vary by ±20 % between runs, more
than this, so the extra crop is timed on its own: YuNet once on UTKFace val chips (every face's
square spans ~250 px, above the cap), then the uncapped 96-px crop and the capped one, each
``--repeats`` times over all faces; the median per face.

    python benchmarks/resolution_crop_cost.py --split-file cache/splits/utkface.jsonl --n 256 --out docs/benchmarks/resolution/crop_cost.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from salface.crop import crop_for_config
from salface.data.splits import read_split
from salface.detect import get_detector
from salface.io import load_image
from salface.models.config import ClassifierConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split-file", type=Path, required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--cap", type=float, default=62.4)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    samples = read_split(a.split_file)[a.split][: a.n]
    det = get_detector("yunet")
    pairs = []
    for s in samples:
        img = load_image(s.path)
        faces = det.detect(img)
        if faces:
            pairs.append((img, faces[0]))
    base = ClassifierConfig(name="x", backbone="mobilenet_v2", tasks=("expression",), input_size=96,
                            align=True, align_min_tilt=10.0)
    capped = ClassifierConfig.from_dict({**base.to_dict(), "max_crop_px": a.cap})
    times: dict[str, list[float]] = {"uncapped": [], "capped": []}
    for _ in range(a.repeats):
        for arm, cfg in (("uncapped", base), ("capped", capped)):
            t = time.perf_counter()
            for img, f in pairs:
                crop_for_config(img, f, cfg)
            times[arm].append((time.perf_counter() - t) / len(pairs) * 1000)
    med = {k: round(float(np.median(v)), 4) for k, v in times.items()}
    res = {"command": "python " + " ".join(sys.argv), "faces": len(pairs), "repeats": a.repeats,
           "machine": platform.processor() or platform.machine(), "ms_per_face_median": med,
           "extra_crop_ms_per_face": med["capped"]}
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
