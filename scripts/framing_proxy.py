"""Source-frame experiment (issue 12): does a network lose accuracy on photos framed more loosely
than its training photos, and does cropping them as if they ended at the training frame win it
back?

No labelled photo set with more context than UTKFace's chips exists here, so the experiment makes
one: it rebuilds the UTKFace crop cache as if every chip ended at the detector's box (frame
``0,0,0,0``: the whole 30 % margin replicated). A network trained on that cache then meets the
ordinary cache's val crops, which hold real pixels where its training had replicated ones (the
chips reach about 0.09 box widths beyond the box at the sides and 0.02 below it), and the same
val faces cut at its own frame. A network trained on the ordinary cache gets both crops too.

    python scripts/framing_proxy.py build  --cache cache/crops/utkface-96-rgb --out cache/crops/utkface-96-rgb-frame0
    salface cache saliency cache/crops/utkface-96-rgb-frame0
    salface train --preset edge-age-gender --cache cache/crops/utkface-96-rgb-frame0 --out runs/frame0-edge-ag --threads 2 --seed 0
    salface evaluate runs/frame0-edge-ag --split val --cache cache/crops/utkface-96-rgb-frame0 --no-calibrate ...
    salface evaluate runs/frame0-edge-ag --split val --cache cache/crops/utkface-96-rgb --no-calibrate ...
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from salface.evaluation.reports import read_per_image
from salface.evaluation.stats import compare_paired
from salface.io import load_image
from salface.labels import labels_for
from salface.training.cache import SPLITS, build_crop_cache


@dataclass
class _Sample:
    path: str
    labels: dict = field(default_factory=dict)
    split: str | None = None

    def load(self) -> np.ndarray:
        return load_image(self.path)


def samples_of(cache_dir: Path) -> tuple[list[_Sample], dict]:
    """The samples a crop cache was built from: path, labels (class names) and split."""
    meta = json.loads((cache_dir / "meta.json").read_text())
    paths = json.loads((cache_dir / "paths.json").read_text())
    labels = np.load(cache_dir / "labels.npy")
    split = np.load(cache_dir / "split.npy")
    names = {v: k for k, v in SPLITS.items()}
    out = []
    for i, p in enumerate(paths):
        lab = {t: labels_for(t)[int(labels[i, j])] for j, t in enumerate(meta["tasks"]) if labels[i, j] >= 0}
        out.append(_Sample(path=p, labels=lab, split=names.get(int(split[i]))))
    return out, meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="rebuild a crop cache with every photo cut at a source frame")
    b.add_argument("--cache", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--frame", default="0,0,0,0", help="left,top,right,bottom in box units")
    c = sub.add_parser("compare", help="paired comparison of reports of the same faces (per_image_correct)")
    c.add_argument("reports", nargs="+", type=Path, help="A.json B.json [C.json ...]: each against A")
    c.add_argument("--out", type=Path, help="JSON file for the table")
    a = ap.parse_args()
    if a.cmd == "compare":
        base = read_per_image(a.reports[0])
        rows = []
        for r in a.reports:
            other = read_per_image(r)
            for t, ok in other.items():
                row = {"report": str(r), "task": t, "n": int(len(ok)), "accuracy": round(100 * float(ok.mean()), 2)}
                if r != a.reports[0]:
                    p = compare_paired(base[t], ok)
                    row["vs_first_points"] = round(100 * float(ok.mean() - base[t].mean()), 2)
                    row["mcnemar_exact_p"] = p["mcnemar_exact"]["p_value"]
                rows.append(row)
                print(json.dumps(row))
        if a.out:
            a.out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "rows": rows}, indent=1) + "\n")
    elif a.cmd == "build":
        samples, meta = samples_of(a.cache)
        frame = [float(v) for v in a.frame.split(",")]
        build_crop_cache(samples, a.out, size=meta["size"], margin=meta["margin"], detector=meta["detector"],
                         color=meta["color"], tasks=meta["tasks"], align=meta["align"],
                         min_iou=meta["min_iou"], frame=frame)
        print(json.dumps(json.loads((a.out / "meta.json").read_text()), indent=1))


if __name__ == "__main__":
    main()
