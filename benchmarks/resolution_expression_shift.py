"""How far the shipped expression model's answers move when sharp faces are seen at FER's resolution
(issue 12, session 18; docs/benchmarks/resolution/README.md).

No labelled sharp expression photos exist here, so this measures movement, not accuracy: the
shipped ``default-expression`` (ONNX Runtime, its own flip TTA and temperature) on UTKFace's sharp
96-px val crops, once as they are and once with the resolution cap of its config
(``max_crop_px``: as if the crop were cut at that many pixels, then enlarged), both with the sharp crop's ML-Net map as
the pipeline uses it. It reports how often the answer changes, the share of each expression in
both arms, and the mean confidence. (On FER+'s own pictures the cap changes nothing: their crop
squares span at most 62.4 pixels; the end-to-end runs in the README show it.)

    python benchmarks/resolution_expression_shift.py --cache cache/crops/utk-val-sharp --cap 62.4 --out docs/benchmarks/resolution/expression_shift_utk_val.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from resolution_mirror import resample  # this folder: the stand-in's down-and-up resampling

from salface.labels import labels_for
from salface.classify import load_classifier
from salface.training.cache import open_crop_cache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="a crop cache of sharp crops with ML-Net maps")
    ap.add_argument("--split", default="val")
    ap.add_argument("--cap", type=float, default=62.4, help="the cap in photo pixels of the crop square")
    ap.add_argument("--model", default="default-expression")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    cc = open_crop_cache(a.cache)
    rows = cc.indices(a.split)
    clf = load_classifier(a.model, backend="onnx")
    names = labels_for("expression")
    maps_all = cc.saliency("mlnet")
    answers = {"sharp": [], "capped": []}
    conf = {"sharp": [], "capped": []}
    for i in range(0, len(rows), 256):
        idx = rows[i:i + 256]
        crops = np.asarray(cc.crops[idx])
        maps = np.asarray(maps_all[idx]).astype(np.float32) / 255.0
        arms = {"sharp": crops,
                "capped": np.stack([resample(c, int(round(a.cap))) for c in crops])}
        for arm, px in arms.items():
            p = clf.predict(clf.prepare(px), maps)["expression"]
            answers[arm].append(p.argmax(1))
            conf[arm].append(p.max(1))
    s, c = np.concatenate(answers["sharp"]), np.concatenate(answers["capped"])
    res = {
        "command": "python " + " ".join(sys.argv), "cache": str(a.cache), "faces": int(len(s)),
        "model": a.model, "cap": a.cap,
        "answers_changed_percent": round(100 * float((s != c).mean()), 2),
        "share_percent": {arm: {n: round(100 * float((v == k).mean()), 2) for k, n in enumerate(names)}
                          for arm, v in (("sharp", s), ("capped", c))},
        "mean_confidence": {arm: round(float(np.concatenate(conf[arm]).mean()), 4) for arm in conf},
        "changes": {f"{names[i]} -> {names[j]}": int(((s == i) & (c == j)).sum())
                    for i in range(len(names)) for j in range(len(names)) if i != j and ((s == i) & (c == j)).any()},
    }
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
