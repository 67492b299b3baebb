"""Fit the box calibration of the bundled BlazeFace detector to YuNet's boxes.

The shipped classifiers were trained on 30 %-margin crops around YuNet boxes; BlazeFace boxes of
the same face are centred and sized differently, which shifts the crop. For each of BlazeFace's
two models (short- and full-range) this script runs it and YuNet on UTKFace **train** images (a
seeded random subset of the project split), pairs the top face of each (IoU ≥ 0.3), and fits,
relative to the BlazeFace box (centre cx, cy, size w, h):

    dx = median((cx_yunet − cx) / w)      sx = median(w_yunet / w)
    dy = median((cy_yunet − cy) / h)      sy = median(h_yunet / h)

(medians, robust to the odd mismatched pair). The calibrated box has centre
``(cx + dx·w, cy + dy·h)`` and size ``(sx·w, sy·h)``. The full-range model misses faces that fill
the picture, so for it both detectors see each image inside a black border (``--full-pad``).
The mapping is checked on UTKFace **val** images (never used for the fit): IoU with the YuNet
box before and after calibration; with ``--write-manifest`` also the calibrated two-model
detector on the plain val images.

    python benchmarks/fit_blazeface_box.py --n-train 3000 --n-val 1000 --write-manifest

writes ``docs/benchmarks/blazeface_box_fit.json`` and, with ``--write-manifest``, stores the
numbers in the manifest entry ``blazeface`` (``config.box_calibration`` for full-range,
``short_range.config.box_calibration``), which :class:`salface.detect.blazeface.BlazeFaceDetector`
applies by default. Needs ``../shared`` (UTKFace images and the YuNet ONNX file).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from salface.data.splits import read_split  # noqa: E402
from salface.detect import get_detector  # noqa: E402
from salface.io import ImageError, load_image  # noqa: E402

YUNET = ROOT.parent / "shared/weights/yunet/face_detection_yunet_2023mar.onnx"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def padded(img: np.ndarray, frac: float) -> np.ndarray:
    if frac <= 0:
        return img
    p = int(round(max(img.shape[:2]) * frac))
    return cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_CONSTANT, value=0)


def pairs(samples, yunet, blaze, label: str, pad: float = 0.0):
    """``(blazeface box, yunet box)`` of every image where both find a face that overlap
    (both detectors see the image with a black border of ``pad`` × its side)."""
    out, found_y, found_b, unreadable = [], 0, 0, 0
    t0 = time.perf_counter()
    for i, s in enumerate(samples):
        try:
            img = padded(load_image(s.path), pad)
        except ImageError:
            unreadable += 1
            continue
        fy, fb = yunet.detect(img), blaze.detect(img)
        found_y += bool(fy)
        found_b += bool(fb)
        if fy and fb:
            a, b = np.array(fb[0].box.as_tuple()), np.array(fy[0].box.as_tuple())
            if iou(a, b) >= 0.3:
                out.append((a, b))
        if (i + 1) % 500 == 0:
            print(f"{label}: {i + 1}/{len(samples)} ({time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr)
    n = len(samples) - unreadable
    return out, {"images": n, "unreadable": unreadable, "yunet_found": found_y,
                 "blazeface_found": found_b, "paired": len(out)}


def relative(p) -> np.ndarray:
    """Per pair: (dx, dy, sx, sy) of the YuNet box relative to the BlazeFace box."""
    rows = []
    for a, b in p:
        w, h = a[2] - a[0], a[3] - a[1]
        rows.append(((b[0] + b[2] - a[0] - a[2]) / 2 / w, (b[1] + b[3] - a[1] - a[3]) / 2 / h,
                     (b[2] - b[0]) / w, (b[3] - b[1]) / h))
    return np.array(rows)


def apply(a: np.ndarray, c: dict) -> np.ndarray:
    w, h = a[2] - a[0], a[3] - a[1]
    cx, cy = (a[0] + a[2]) / 2 + c["dx"] * w, (a[1] + a[3]) / 2 + c["dy"] * h
    w, h = c["sx"] * w, c["sy"] * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def iou_stats(p, c: dict | None) -> dict:
    v = np.array([iou(apply(a, c) if c else a, b) for a, b in p])
    return {"median": round(float(np.median(v)), 4), "mean": round(float(v.mean()), 4),
            "p10": round(float(np.percentile(v, 10)), 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split-file", type=Path, default=ROOT / "cache/splits/utkface.jsonl")
    ap.add_argument("--n-train", type=int, default=3000, help="train images for the fit")
    ap.add_argument("--n-val", type=int, default=1000, help="val images for the check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--yunet", type=Path, default=YUNET)
    ap.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/blazeface_box_fit.json")
    ap.add_argument("--full-pad", type=float, default=0.5,
                    help="black border (× image side) around each image for the full-range fit")
    ap.add_argument("--write-manifest", action="store_true",
                    help="store the fit in the bundled manifest entry 'blazeface'")
    args = ap.parse_args()
    if not args.yunet.is_file():
        raise SystemExit(f"YuNet model not found: {args.yunet}")

    split = read_split(args.split_file)
    rng = random.Random(args.seed)
    train = rng.sample(split["train"], min(args.n_train, len(split["train"])))
    val = rng.sample(split["val"], min(args.n_val, len(split["val"])))
    yunet = get_detector("yunet", model_path=args.yunet)
    keys = ("dx", "dy", "sx", "sy")
    fits = {}
    for rng_name, pad in (("short", 0.0), ("full", args.full_pad)):
        blaze = get_detector("blazeface", ranges=(rng_name,), calibrate=False)
        fit_pairs, fit_counts = pairs(train, yunet, blaze, f"{rng_name} train", pad)
        rel = relative(fit_pairs)
        cal = {k: round(float(np.median(rel[:, i])), 4) for i, k in enumerate(keys)}
        spread = {k: [round(float(q), 4) for q in np.percentile(rel[:, i], [25, 75])]
                  for i, k in enumerate(keys)}
        val_pairs, val_counts = pairs(val, yunet, blaze, f"{rng_name} val", pad)
        fits[rng_name] = {
            "images_padded_by": pad, "calibration": cal, "interquartile_range": spread,
            "fit": {**fit_counts, "iou_with_yunet_before": iou_stats(fit_pairs, None),
                    "iou_with_yunet_after": iou_stats(fit_pairs, cal)},
            "check": {**val_counts, "iou_with_yunet_before": iou_stats(val_pairs, None),
                      "iou_with_yunet_after": iou_stats(val_pairs, cal)},
        }
        print(rng_name, json.dumps({k: fits[rng_name][k] for k in ("calibration",)}),
              "val IoU", fits[rng_name]["check"]["iou_with_yunet_before"], "→",
              fits[rng_name]["check"]["iou_with_yunet_after"])

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    command = "python benchmarks/fit_blazeface_box.py " + " ".join(sys.argv[1:])
    report = {
        "what": "BlazeFace (bundled; short- and full-range model each) → YuNet box mapping, "
                "relative to the BlazeFace box: centre + (dx·w, dy·h), size × (sx, sy); medians",
        "fit_data": f"UTKFace train split of {args.split_file.name}: {len(train)} images drawn "
                    f"with seed {args.seed}",
        "check_data": f"UTKFace val split: {len(val)} images (seed {args.seed}), not used for the "
                      "fit",
        "note": "the full-range model misses faces that fill the picture (UTKFace crops), so "
                f"for it both detectors see each image inside a black border of {args.full_pad} "
                "× its side",
        "models": fits,
        "command": command.strip(), "commit": commit,
        "machine": f"2-core {platform.processor() or platform.machine()} CPU, "
                   f"{platform.system()}, Python {platform.python_version()}",
        "date": _dt.date.today().isoformat(),
    }
    if args.write_manifest:
        from salface import hub

        entry = hub.bundled_entry("blazeface")

        def with_cal(cfg: dict, r: str) -> dict:
            return {**cfg, "box_calibration": {
                **fits[r]["calibration"],
                "fit": f"medians over {fits[r]['fit']['paired']} UTKFace train images "
                       f"(docs/benchmarks/blazeface_box_fit.json)",
                "command": command.strip()}}

        hub.update_bundled_entry("blazeface", {
            "config": with_cal(entry["config"], "full"),
            "short_range": {**entry["short_range"],
                            "config": with_cal(entry["short_range"]["config"], "short")}})
        print("manifest entry 'blazeface' updated")
        # the calibrated detector, both models, on the unpadded val images
        both = get_detector("blazeface")
        val_pairs, val_counts = pairs(val, yunet, both, "calibrated val")
        report["calibrated_detector_on_val"] = {**val_counts,
                                                "iou_with_yunet": iou_stats(val_pairs, None)}
        print("calibrated detector on val:", json.dumps(report["calibrated_detector_on_val"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"→ {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
