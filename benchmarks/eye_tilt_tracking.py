"""How well each detector's eye line follows a turned head (session 17).

    python benchmarks/eye_tilt_tracking.py --split-file cache/splits/utkface.jsonl --split val \\
        --limit 200 --out docs/benchmarks/align/session17/eye_tilt_tracking

Each face photo (the first ``--limit`` of the split, in split-file order) is padded by 30 % with
mirrored pixels, so a turn does not cut the face, then turned about its centre by each angle in
``--angles``. For each detector (YuNet, the bundled BlazeFace) the eye line is read on the upright
and on the turned photo (the highest-scoring face); the turn the detector sees is the difference.
Printed per detector and angle: faces found, the median and the 10th–90th percentiles of the turn
seen as a fraction of the true turn (1 = follows exactly), and the share of faces whose turn seen
reaches 10° (the levelling threshold shipped in session 17). Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from salface.crop import eye_angle
from salface.data.splits import read_split
from salface.detect import get_detector
from salface.io import load_image
from salface.utils import git_commit, machine


def _turn(img: np.ndarray, deg: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)  # counter-clockwise for deg > 0
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split-file", type=Path, required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--angles", default="10,20,30")
    ap.add_argument("--detectors", default="yunet,blazeface")
    ap.add_argument("--out", type=Path, required=True)
    an = ap.parse_args(argv)
    angles = [float(a) for a in an.angles.split(",")]
    dets = {name: get_detector(name) for name in an.detectors.split(",")}
    paths = [sample.path for sample in read_split(an.split_file)[an.split][:an.limit]]
    seen: dict[str, dict[float, list[float]]] = {d: {a: [] for a in angles} for d in dets}
    missed = {d: {a: 0 for a in angles} for d in dets}
    for path in paths:
        img = load_image(path)
        pad = int(0.3 * max(img.shape[:2]))
        img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        for name, det in dets.items():
            base = det.detect(img)
            if not base:
                continue
            a0 = eye_angle(base[0])
            for a in angles:
                for sign in (1.0, -1.0):
                    faces = det.detect(_turn(img, sign * a))
                    if not faces:
                        missed[name][a] += 1
                        continue
                    # a counter-clockwise turn of the photo tilts the eye line by −deg
                    seen[name][a].append(-(eye_angle(faces[0]) - a0) * sign)
    rows = []
    for name in dets:
        for a in angles:
            v = np.array(seen[name][a])
            rows.append({"detector": name, "turn_deg": a, "faces": int(len(v)), "not_found": missed[name][a],
                         "median_fraction": round(float(np.median(v / a)), 3) if len(v) else None,
                         "p10_fraction": round(float(np.percentile(v / a, 10)), 3) if len(v) else None,
                         "p90_fraction": round(float(np.percentile(v / a, 90)), 3) if len(v) else None,
                         "share_seen_10deg_or_more": round(float((v >= 10.0).mean()), 3) if len(v) else None})
    doc = {"split_file": str(an.split_file), "split": an.split, "photos": len(paths), "angles": angles,
           "commit": git_commit(), "machine": machine(), "rows": rows}
    an.out.parent.mkdir(parents=True, exist_ok=True)
    an.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    md = ["# How far each detector's eye line follows a turned head", "",
          f"Command: `python benchmarks/eye_tilt_tracking.py --split-file {an.split_file} --split {an.split} "
          f"--limit {an.limit} --out {an.out}`; commit `{doc['commit']}`; {doc['machine']}.", "",
          f"{len(paths)} {an.split} photos, padded by 30 % (mirrored), each turned both ways by each angle.", "",
          "| detector | turn | turns measured | face not found | turn seen ÷ true turn: median | 10th–90th percentile | seen as ≥ 10° |",
          "|---|---|---|---|---|---|---|"]
    md += [f"| {r['detector']} | {r['turn_deg']:g}° | {r['faces']} | {r['not_found']} | {r['median_fraction']} | "
           f"{r['p10_fraction']}–{r['p90_fraction']} | {100 * r['share_seen_10deg_or_more']:.0f} % |" for r in rows]
    an.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
