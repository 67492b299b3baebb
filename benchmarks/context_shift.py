"""Does the expression model depend on what surrounds the face? FER+ crops vs faces in scenes.

    python benchmarks/context_shift.py --models default-expression,CANDIDATE [--split val|test]
        [--fer-limit 0] [--utk-limit 600]

FER+ images are tight 48-px cuts of a face, so the pipeline's 30 % margin crop of them is filled by
replicating the photo's edge pixels (streaks). A face in a real photo has hair, neck and scene
there instead. Two measurements of that shift, the same for every model (``--models``: bundled
names; ``SALFACE_BUNDLED_DIR`` points at another bundle for candidates):

1. **FER+ test faces placed in scenes** (labelled). Each test image is pasted, unchanged, into the
   middle of a scene three times its size (a seeded region of a held-out NUS eye-fixation stimulus:
   every fifth photo, the ones ``salface.training.augment.context_paths`` never trains on); the
   face box YuNet found in the clean image is moved with it, and the same face is classified in
   both images (``Analyzer.analyze_faces``). Accuracy on the clean images and on the scenes
   (plurality label), and McNemar of each model against the first.
2. **UTKFace test photos, real context vs FER+-like framing** (no expression labels). The face of a
   real photo is classified twice: as the pipeline sees it (its real surroundings), and cut from
   the photo at FER+'s framing (the square of side ``k`` × the box's long side about its centre;
   ``k`` is the median of FER+'s own, measured from the cache's replicated margins) so the crop
   is padded as FER+'s are. Agreement of the two labels per model: a model that reads the face,
   not its border, agrees.

Writes ``docs/benchmarks/context_shift.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def fer_framing(cache: Path) -> float:
    """Median FER+ image side / face-box long side, from the cache's replicated margins."""
    from salface.training.augment import replicated_margin

    crops = np.load(cache / "crops.npy", mmap_mode="r")
    boxes = np.load(cache / "boxes.npy")
    idx = np.random.default_rng(0).choice(len(crops), min(2000, len(crops)), replace=False)
    ratios = []
    for i in idx:
        x0, y0, x1, y1 = replicated_margin(np.asarray(crops[i]))
        b = boxes[i]
        ratios.append(max(x1 - x0, y1 - y0) / max(b[2] - b[0], b[3] - b[1]))
    return float(np.median(ratios))


def scene_canvas(img: np.ndarray, scene: np.ndarray, rng: np.random.Generator, factor: int = 3):
    h, w = img.shape[:2]
    H, W = h * factor, w * factor
    sh, sw = scene.shape[:2]
    side = int(min(sh, sw) * rng.uniform(0.4, 1.0))
    y, x = int(rng.integers(0, sh - side + 1)), int(rng.integers(0, sw - side + 1))
    canvas = cv2.resize(scene[y:y + side, x:x + side], (W, H), interpolation=cv2.INTER_AREA)
    oy, ox = (H - h) // 2, (W - w) // 2
    canvas[oy:oy + h, ox:ox + w] = img
    return canvas, (ox, oy)


def shifted(face, dx: float, dy: float):
    from salface.types import Box, Face

    b = face.box
    lm = None if face.landmarks is None else face.landmarks + np.array([dx, dy], np.float32)
    return Face(box=Box(b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy), score=face.score, landmarks=lm)


def predict(an, image, face) -> tuple[int, np.ndarray]:
    r = an.analyze_faces(image, [face])[0].predictions()["expression"]
    return r.index, np.array(list(r.probabilities.values()))


def main() -> None:
    from salface.data.splits import read_split
    from salface.evaluation.robustness import stratified_subset
    from salface.evaluation.stats import mcnemar
    from salface.io import load_image
    from salface.pipeline import Analyzer
    from salface.training.augment import context_paths
    from salface.utils import git_commit, machine

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="default-expression")
    ap.add_argument("--splits", type=Path, default=ROOT / "cache" / "splits")
    ap.add_argument("--fer-cache", type=Path, default=ROOT / "cache" / "crops" / "ferplus-96-gray")
    ap.add_argument("--scenes", type=Path, default=ROOT.parent / "shared" / "data" / "nus-saliency" / "stimuli")
    ap.add_argument("--fer-limit", type=int, default=0, help="FER+ test faces (0: all)")
    ap.add_argument("--utk-limit", type=int, default=600, help="UTKFace test photos (seeded, stratified)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="test", help="split of both split files (val to choose, test to report)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "context_shift")
    a = ap.parse_args()
    models = [m for m in a.models.split(",") if m]
    t0 = time.time()

    det = Analyzer(detector="yunet", model=None, tasks=("expression",))
    ans = {m: Analyzer(detector="yunet", model=m, tasks=("expression",), backend="onnx") for m in models}
    scenes = [cv2.imread(str(p))[..., ::-1].copy() for p in context_paths(a.scenes, held_out=True)]

    # 1. FER+ faces in scenes
    fer = read_split(a.splits / "ferplus.jsonl")[a.split]
    fer = stratified_subset(fer, a.fer_limit or None, a.seed, key=lambda s: s.labels["expression"])
    truth, clean, scene = [], {m: [] for m in models}, {m: [] for m in models}
    skipped = 0
    for i, s in enumerate(fer):
        img = load_image(s.path)
        faces = det.detector.detect(img)
        if not faces:
            skipped += 1
            continue
        face = max(faces, key=lambda f: f.box.area)
        rng = np.random.default_rng([a.seed, i])
        canvas, (ox, oy) = scene_canvas(img, scenes[int(rng.integers(len(scenes)))], rng)
        truth.append(s.labels["expression"])
        for m, an in ans.items():
            clean[m].append(predict(an, img, face)[0])
            scene[m].append(predict(an, canvas, shifted(face, ox, oy))[0])
    truth = np.array(truth)
    part1 = {"faces": len(truth), "skipped_no_face": skipped, "models": {}}
    base = models[0]
    for m in models:
        c, s_ = np.array(clean[m]) == truth, np.array(scene[m]) == truth
        row = {"clean": float(c.mean()), "scene": float(s_.mean()), "drop": float(c.mean() - s_.mean())}
        if m != base:
            row["vs_first_clean_p"] = mcnemar(np.array(clean[base]) == truth, c).p_value
            row["vs_first_scene_p"] = mcnemar(np.array(scene[base]) == truth, s_).p_value
        part1["models"][m] = row

    # 2. UTKFace: real context vs FER+-like framing
    k = fer_framing(a.fer_cache)
    utk = read_split(a.splits / "utkface.jsonl")[a.split]
    utk = stratified_subset(utk, a.utk_limit or None, a.seed, key=lambda s: (s.labels["gender"], s.labels["age"]))
    agree = {m: [] for m in models}
    tv = {m: [] for m in models}
    n2 = 0
    for s in utk:
        img = load_image(s.path)
        faces = det.detector.detect(img)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.box.area)
        b = face.box
        side = k * max(b.width, b.height)
        cx, cy = b.center
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        x1, y1 = int(round(cx + side / 2)), int(round(cy + side / 2))
        H, W = img.shape[:2]
        x0c, y0c, x1c, y1c = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        cut = np.ascontiguousarray(img[y0c:y1c, x0c:x1c])
        n2 += 1
        for m, an in ans.items():
            la, pa = predict(an, img, face)
            lb, pb = predict(an, cut, shifted(face, -x0c, -y0c))
            agree[m].append(la == lb)
            tv[m].append(0.5 * float(np.abs(pa - pb).sum()))
    part2 = {"faces": n2, "fer_framing_k": round(k, 4), "models": {
        m: {"label_agreement": float(np.mean(agree[m])), "mean_total_variation": float(np.mean(tv[m]))}
        for m in models}}
    for m in models[1:]:
        part2["models"][m]["vs_first_p"] = mcnemar(np.array(agree[base]), np.array(agree[m])).p_value

    from salface.hub import load_manifest
    man = load_manifest()["models"]
    report = {"benchmark": "context_shift", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "commit": git_commit(), "machine": machine(),
              "command": "python benchmarks/context_shift.py " + " ".join(os.sys.argv[1:]),
              "bundled_dir": os.environ.get("SALFACE_BUNDLED_DIR", "(the package's)"),
              "models": {m: man.get(m, {}).get("sha256") for m in models},
              "seed": a.seed, "split": a.split, "seconds": round(time.time() - t0, 1),
              "fer_in_scenes": part1, "utk_context_vs_fer_framing": part2}
    write(report, a.out)


def write(report: dict, out: Path) -> None:
    """``out``.json and the Markdown ``out``.md of a report."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    part1, part2, split = report["fer_in_scenes"], report["utk_context_vs_fer_framing"], report["split"]
    base = next(iter(part1["models"]))
    L = ["# Context shift: FER+ crops vs faces in scenes (expression)", "",
         f"- date {report['date']}, commit `{report['commit']}`, machine: {report['machine']}",
         f"- command: `{report['command']}`", f"- bundle: {report['bundled_dir']}",
         "- method: see the docstring of `benchmarks/context_shift.py`", "",
         f"## 1. FER+ {split} faces pasted into held-out scenes ({part1['faces']} faces; "
         f"{part1['skipped_no_face']} without a YuNet face left out)", "",
         "| model (sha256) | clean % | in a scene % | drop | McNemar vs first, clean / scene |", "|---|---|---|---|---|"]
    for m, r in part1["models"].items():
        p = f"{r['vs_first_clean_p']:.2g} / {r['vs_first_scene_p']:.2g}" if m != base else "–"
        L.append(f"| {m} ({(report['models'][m] or '')[:12]}) | {100 * r['clean']:.1f} | {100 * r['scene']:.1f} | "
                 f"{100 * r['drop']:+.1f} | {p} |")
    L += ["", f"## 2. UTKFace {split} photos: real surroundings vs FER+-like framing ({part2['faces']} faces, "
          f"k = {part2['fer_framing_k']:.3f})", "",
          "| model | same label % | mean total variation | McNemar vs first |", "|---|---|---|---|"]
    for m, r in part2["models"].items():
        p = f"{r['vs_first_p']:.2g}" if "vs_first_p" in r else "–"
        L.append(f"| {m} | {100 * r['label_agreement']:.1f} | {r['mean_total_variation']:.3f} | {p} |")
    out.with_suffix(".md").write_text("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
