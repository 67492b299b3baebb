"""BlazeFace (bundled) against YuNet: detector speed, faces found in multi-face photos, and the
end-to-end accuracy reports of ``salface evaluate-pipeline`` with each, in one table.

    python benchmarks/bench_blazeface.py [--photos cache/bench_photos] [--repeats 3]
                                         [--out docs/benchmarks/blazeface_vs_yunet]

* Speed: ``detector.detect(image)`` alone (decoded images in memory, after one untimed pass) on
  the 300 ``utk448`` photos (UTKFace test faces upscaled to 448 × 448) of
  ``benchmarks/peer/photos.py``; the median over ``--repeats`` rounds of the mean ms per image.
  Both detectors with their defaults (ONNX Runtime / OpenCV default threads).
* Faces found: the 60 ``multi`` composites (1280 × 960, 2–6 real faces of 180–300 px each) and the
  same composites tiled 2 × 2 (2560 × 1920, so every face is half as large relative to the
  picture). A pasted face counts as found when a detected box's centre lies in its tile (each
  tile and each box used once); other boxes count as extra.
* Accuracy: read from the four ``evaluate-pipeline`` reports (``--pipeline-reports``), made by::

    salface evaluate-pipeline --split-file cache/splits/utkface.jsonl --split test \\
        --tasks age,gender --model default-age-gender --detector blazeface \\
        --name pipeline_utkface_test_blazeface
    salface evaluate-pipeline --split-file cache/splits/ferplus.jsonl --split test \\
        --tasks expression --model default-expression --detector blazeface \\
        --name pipeline_ferplus_test_blazeface

  and the same with ``--detector yunet --detector-model ../shared/weights/yunet/face_detection_yunet_2023mar.onnx``
  (``--name ..._yunet``).

Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from salface.detect import get_detector  # noqa: E402
from salface.io import load_image  # noqa: E402

YUNET = ROOT.parent / "shared/weights/yunet/face_detection_yunet_2023mar.onnx"
DETECTORS = ("yunet", "blazeface")
DETECTION_ROWS = ("yunet", "blazeface", "blazeface-no-tiles")
"""Rows of the detection table: ``blazeface-no-tiles`` is BlazeFace with ``tile_size=0`` (before
session 9, the only way it ran)."""
SCENE_MIN_SIDE = 800  # scene photos larger than this (longer side) are searched tile by tile


def build(name: str):
    if name == "yunet":
        return get_detector("yunet", model_path=YUNET)
    if name == "blazeface-no-tiles":
        return get_detector("blazeface", tile_size=0)
    return get_detector(name)


def speed(det, images: list[np.ndarray], repeats: int) -> dict:
    for im in images:  # untimed pass
        det.detect(im)
    rounds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for im in images:
            det.detect(im)
        rounds.append((time.perf_counter() - t0) / len(images) * 1000)
    return {"ms_per_image_median": round(statistics.median(rounds), 2),
            "ms_per_image_rounds": [round(r, 2) for r in rounds], "images": len(images)}


def found(det, photos: list[tuple[np.ndarray, list[list[float]]]]) -> dict:
    faces = hits = extra = 0
    t0 = time.perf_counter()
    detections = [[f.box for f in det.detect(img)] for img, _ in photos]
    ms = (time.perf_counter() - t0) / len(photos) * 1000
    for (img, tiles), boxes in zip(photos, detections):
        faces += len(tiles)
        used = set()
        for t in tiles:
            for i, b in enumerate(boxes):
                cx, cy = (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2
                if i not in used and t[0] <= cx <= t[2] and t[1] <= cy <= t[3]:
                    used.add(i)
                    hits += 1
                    break
        extra += len(boxes) - len(used)
    return {"photos": len(photos), "faces": faces, "found": hits,
            "recall": round(hits / faces, 4) if faces else None, "extra_boxes": extra,
            "ms_per_photo": round(ms, 1)}


def scene_boxes(det, scenes: list[np.ndarray]) -> dict:
    """Boxes found on large scene photos (NUS eye-fixation stimuli: no face labels, so a check
    that tiling adds no false faces, not a recall)."""
    n = [len(det.detect(im)) for im in scenes]
    return {"photos": len(scenes), "boxes": int(sum(n)), "photos_with_boxes": int(sum(x > 0 for x in n))}


def tiled(photos):
    """Each 2 × 2 group of photos as one picture twice as wide and high, tiles shifted."""
    out = []
    for k in range(0, len(photos) - 3, 4):
        group = photos[k:k + 4]
        h, w = group[0][0].shape[:2]
        img = np.zeros((2 * h, 2 * w, 3), np.uint8)
        tiles = []
        for j, (im, ts) in enumerate(group):
            oy, ox = (j // 2) * h, (j % 2) * w
            img[oy:oy + im.shape[0], ox:ox + im.shape[1]] = im
            tiles += [[t[0] + ox, t[1] + oy, t[2] + ox, t[3] + oy] for t in ts]
        out.append((img, tiles))
    return out


def pipeline_rows(folder: Path) -> list[dict]:
    rows = []
    for data, tasks in (("utkface", ("age", "gender")), ("ferplus", ("expression",))):
        for det in DETECTORS:
            p = folder / f"pipeline_{data}_test_{det}.json"
            if not p.is_file():
                continue
            r = json.loads(p.read_text())
            ex = r["extra"]
            rows.append({
                "data": f"{data} test", "detector": det, "images": ex["images"],
                "faces_found": ex["faces found"], "report": p.name, "commit": r["commit"],
                "command": r["command"],
                **{f"{t}_end_to_end": round(100 * r["results"][t]["end_to_end_accuracy"], 2)
                   for t in tasks},
                **{f"{t}_on_found": round(100 * r["results"][t]["accuracy"], 2) for t in tasks},
            })
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=ROOT / "cache/bench_photos")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pipeline-reports", type=Path, default=ROOT / "docs/benchmarks")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/blazeface_vs_yunet")
    ap.add_argument("--scenes", type=Path, default=ROOT.parent / "shared/data/nus-saliency/stimuli",
                    help=f"Scene photos; those over {SCENE_MIN_SIDE} px (longer side) are searched for false faces.")
    args = ap.parse_args()
    manifest = json.loads((args.photos / "manifest.json").read_text())
    utk = [load_image(args.photos / "utk448" / n)
           for n in sorted(manifest["sets"]["utk448"]["images"])]
    multi = [(load_image(args.photos / "multi" / n), [f["box"] for f in faces])
             for n, faces in sorted(manifest["sets"]["multi"]["images"].items())]
    multi2 = tiled(multi)
    scenes = [im for im in (load_image(p) for p in sorted(args.scenes.glob("*.jpg")))
              if max(im.shape[:2]) > SCENE_MIN_SIDE] if args.scenes.is_dir() else []

    res: dict = {"speed_utk448": {}, "multi_1280x960": {}, "multi_tiled_2560x1920": {}, "scenes": {}}
    for name in DETECTION_ROWS:
        det = build(name)
        load0 = os.getloadavg()[0]
        res["speed_utk448"][name] = {**speed(det, utk, args.repeats),
                                     "load_1min_before": round(load0, 2)}
        res["multi_1280x960"][name] = found(det, multi)
        res["multi_tiled_2560x1920"][name] = found(det, multi2)
        res["scenes"][name] = scene_boxes(det, scenes)
        print(name, json.dumps({k: v[name] for k, v in res.items()}), flush=True)
    res["pipeline"] = pipeline_rows(args.pipeline_reports)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit,
            "machine": f"2-core AMD EPYC (shared VM), {platform.system()} {platform.release()}, "
                       f"Python {platform.python_version()}",
            "command": "python benchmarks/bench_blazeface.py " + " ".join(sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({**meta, **res}, indent=2) + "\n")

    s, m1, m2 = res["speed_utk448"], res["multi_1280x960"], res["multi_tiled_2560x1920"]
    lines = [
        "# BlazeFace (bundled) vs YuNet", "",
        f"- date: {meta['date']}; commit `{commit}`; machine: {meta['machine']}",
        f"- command: `{meta['command'].strip()}` (photo sets: `benchmarks/peer/photos.py`)", "",
        "## Detection alone", "",
        "| detector | ms / 448-px image (median of rounds) | multi 1280×960: found / faces (extra boxes), "
        "ms / photo | multi tiled 2560×1920: found / faces (extra), ms / photo | scene photos > "
        f"{SCENE_MIN_SIDE} px: boxes (photos with any) |",
        "|---|---|---|---|---|",
    ]
    sc = res["scenes"]
    for name in DETECTION_ROWS:
        lines.append(f"| {name} | {s[name]['ms_per_image_median']} | {m1[name]['found']} / "
                     f"{m1[name]['faces']} ({m1[name]['extra_boxes']}), {m1[name]['ms_per_photo']} | "
                     f"{m2[name]['found']} / {m2[name]['faces']} ({m2[name]['extra_boxes']}), "
                     f"{m2[name]['ms_per_photo']} | {sc[name]['boxes']} ({sc[name]['photos_with_boxes']} "
                     f"of {sc[name]['photos']}) |")
    lines += ["", "`blazeface` searches pictures whose longer side exceeds 800 px also tile by tile "
              "(`tile_size` 640, session 9); `blazeface-no-tiles` is the same detector with `tile_size=0`, "
              "as it ran before. The 448-px photos are never tiled. Times are one process, one "
              "detector call per photo, decoded images in memory."]
    lines += ["", "## Through the whole pipeline (`salface evaluate-pipeline`, full test splits)", "",
              "| data | detector | images | faces found | accuracy, no face = error | "
              "accuracy over found faces | report |", "|---|---|---|---|---|---|---|"]
    for r in res["pipeline"]:
        tasks = [k[:-len("_end_to_end")] for k in r if k.endswith("_end_to_end")]
        e2e = " / ".join(f"{t} {r[t + '_end_to_end']:.2f} %" for t in tasks)
        onf = " / ".join(f"{t} {r[t + '_on_found']:.2f} %" for t in tasks)
        lines.append(f"| {r['data']} | {r['detector']} | {r['images']} | {r['faces_found']} | "
                     f"{e2e} | {onf} | [{r['report']}]({r['report'].replace('.json', '.md')}) "
                     f"(commit `{r['commit']}`) |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"→ {args.out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
