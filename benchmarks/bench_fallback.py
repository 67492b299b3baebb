"""Second look: how many hidden or frame-filling faces a second detection pass recovers where
the first found no face, and how many false faces it adds on photos without faces.

Faces: the robustness benchmark's seeded, stratified val subsets (600 FER+ val faces, 48-px
pictures; 600 UTKFace val faces, 200-px chips), each re-rendered at the middle severity of every
pixel condition of ``salface robustness`` (the benchmark's own renderer and seeds). A face counts
as found when a returned box overlaps YuNet's box on the clean picture (IoU >= 0.1), as in the
robustness benchmark. Detectors: YuNet and BlazeFace at their thresholds, and the cascades "first;
where it finds no face at all, the second (kept where the witness agrees, IoU >= 0.3)": YuNet then
BlazeFace at 0.3; YuNet then YuNet at 0.2 or 0.1; YuNet then YuNet at 0.2 / 0.1 confirmed by
BlazeFace at 0.3 (``salface.detect.cascade.SecondLook``, the ``yunet+blazeface`` detector); and,
for installs without YuNet, BlazeFace then BlazeFace on a copy blurred with σ 1 px (not shipped).

False faces: the 500 NUS scene photos (``../shared/data/nus-saliency/stimuli``; no face labels,
some show people), boxes each detector returns, and for each cascade the boxes its fallback adds
(pictures where the first detector found nothing). ``--sheet`` writes those added boxes as a
contact sheet to look at.

    python benchmarks/bench_fallback.py --out docs/benchmarks/fallback
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from salface.data.splits import read_split  # noqa: E402
from salface.detect import get_detector  # noqa: E402
from salface.detect.cascade import confirmed  # noqa: E402
from salface.evaluation.robustness import _best_face, get_conditions, stratified_subset  # noqa: E402
from salface.io import load_image  # noqa: E402
from salface.types import Box  # noqa: E402
from salface.utils import git_commit, machine  # noqa: E402

STRATIFY = {"ferplus": ("expression",), "utkface": ("age", "gender")}


class _OnBlurred:
    """A detector run on a Gaussian-blurred copy (sigma in px): a second look for BlazeFace alone,
    which has no second detector to confirm with (fresh installs without YuNet)."""

    def __init__(self, det, sigma: float = 1.0) -> None:
        self.det, self.sigma = det, sigma

    def detect(self, img):
        return self.det.detect(cv2.GaussianBlur(img, (0, 0), self.sigma))


def detectors() -> dict:
    bf = get_detector("blazeface")
    return {"yunet": get_detector("yunet"), "blazeface": bf,
            "yunet@0.2": get_detector("yunet", score_threshold=0.2),
            "yunet@0.1": get_detector("yunet", score_threshold=0.1),
            "blazeface@0.3": get_detector("blazeface", score_threshold=0.3),
            "blazeface(blur σ1)": _OnBlurred(bf, 1.0)}


def cascades() -> list[tuple[str, str, str, str | None]]:
    """(name, primary, second, witness or None)."""
    return [("yunet>blazeface@0.3", "yunet", "blazeface@0.3", None),
            ("yunet>yunet@0.2", "yunet", "yunet@0.2", None),
            ("yunet>yunet@0.1&blazeface@0.3", "yunet", "yunet@0.1", "blazeface@0.3"),
            ("yunet>yunet@0.2&blazeface@0.3 (yunet+blazeface)", "yunet", "yunet@0.2", "blazeface@0.3"),
            ("blazeface>blazeface(blur σ1)", "blazeface", "blazeface(blur σ1)", None)]


def cascade_faces(got: dict, primary: str, second: str, witness: str | None) -> list:
    """What a cascade returns, from each detector's faces on one picture (``SecondLook.detect``'s
    rule, with ``salface.detect.cascade.confirmed`` for the witness)."""
    if got[primary]:
        return got[primary]
    return got[second] if witness is None else confirmed(got[second], got[witness])


def faces_found(dets: dict, items, images) -> dict[str, float]:
    """Share (%) of ``items``' faces found in ``images`` by each detector and cascade."""
    hits: dict[str, list[bool]] = {k: [] for k in list(dets) + [c[0] for c in cascades()]}
    for (_, ref), img in zip(items, images):
        got = {k: d.detect(img) for k, d in dets.items()}
        for k, faces in got.items():
            hits[k].append(_best_face(faces, ref.box) is not None)
        for name, a, b, w in cascades():
            hits[name].append(_best_face(cascade_faces(got, a, b, w), ref.box) is not None)
    return {k: round(100 * float(np.mean(v)), 1) for k, v in hits.items()}


def dataset_rows(dataset: str, split_file: Path, limit: int, dets: dict, part: str = "val") -> dict:
    split = read_split(split_file)
    if part not in split:
        raise SystemExit(f"{split_file}: no '{part}' split")
    subset = stratified_subset(split[part], limit, 0,
                               key=lambda s: tuple(s.labels.get(t, -1) for t in STRATIFY[dataset]))
    items = []
    for s in subset:
        img = s.load()
        ref = _best_face(dets["yunet"].detect(img), Box(0, 0, img.shape[1], img.shape[0]))
        if ref is not None:
            items.append((img, ref))
    rows = {"clean": faces_found(dets, items, [im for im, _ in items])}
    for cond in get_conditions(None):
        if cond.fn is None:
            continue
        images = [cond.apply(im, f, cond.middle, 0)[0] for im, f in items]
        rows[f"{cond.name} (s{cond.middle})"] = faces_found(dets, items, images)
        print(dataset, cond.name, rows[f"{cond.name} (s{cond.middle})"], flush=True)
    return {"faces": len(items), "sampled": len(subset), "split": part,
            "split_file": str(split_file.relative_to(ROOT) if split_file.is_relative_to(ROOT) else split_file),
            "rows": rows}


def scene_rows(scene_dir: Path, dets: dict, sheet: Path | None) -> dict:
    paths = sorted(scene_dir.glob("*.jpg"))
    got: dict[str, list[int]] = {k: [] for k in dets}
    ms: dict[str, float] = {k: 0.0 for k in dets}
    adds = {name: {"photos_where_fallback_runs": 0, "boxes_added": 0, "photos_given_boxes": 0}
            for name, *_ in cascades()}
    added_crops: dict[str, list] = {name: [] for name, *_ in cascades()}  # at most 40 each, for the sheet
    for p in paths:  # one photo in memory at a time
        img = load_image(p)
        row = {}
        for k, d in dets.items():
            t0 = time.perf_counter()
            row[k] = d.detect(img)
            ms[k] += 1000 * (time.perf_counter() - t0)
            got[k].append(len(row[k]))
        for name, a, b, w in cascades():
            if row[a]:
                continue
            faces = cascade_faces(row, a, b, w)
            adds[name]["photos_where_fallback_runs"] += 1
            adds[name]["boxes_added"] += len(faces)
            adds[name]["photos_given_boxes"] += bool(faces)
            for f in faces[:max(0, 40 - len(added_crops[name]))]:
                bx = f.box
                x1, y1 = max(int(bx.x1), 0), max(int(bx.y1), 0)
                x2, y2 = max(int(bx.x2), x1 + 1), max(int(bx.y2), y1 + 1)
                added_crops[name].append(cv2.resize(img[y1:y2, x1:x2], (96, 96)))
    out = {"photos": len(paths), "boxes": {k: int(sum(v)) for k, v in got.items()},
           "photos_with_boxes": {k: int(sum(x > 0 for x in v)) for k, v in got.items()},
           "ms_per_photo": {k: round(v / max(len(paths), 1), 2) for k, v in ms.items()}, "fallback_adds": adds}
    if sheet is not None:
        for name, tiles in added_crops.items():
            if not tiles:
                continue
            while len(tiles) % 8:
                tiles.append(np.zeros((96, 96, 3), np.uint8))
            grid = np.concatenate([np.concatenate(tiles[i:i + 8], 1) for i in range(0, len(tiles), 8)], 0)
            sheet.parent.mkdir(parents=True, exist_ok=True)
            tag = (name.split(" ")[0].replace("@", "_").replace(">", "_then_").replace("&", "_and_")
                   .replace("(blur", "_blurred").replace("σ1)", ""))
            cv2.imwrite(str(sheet.with_name(f"{sheet.stem}_{tag}.png")),
                        cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return out


def markdown(res: dict) -> str:
    lines = [f"# Second-chance detection ({res['date']})", "",
             f"- command: `{res['command']}`", f"- commit: `{res['commit']}`", f"- machine: {res['machine']}", "",
             "Faces found (%, IoU >= 0.1 with YuNet's clean box) at each pixel condition's middle severity. "
             "`A>B@s`: A; where A finds no face at all, B at score threshold s; `&W`: only B's faces that W "
             "also reports (IoU >= 0.3).", ""]
    for ds, r in res["datasets"].items():
        cols = list(next(iter(r["rows"].values())))
        lines += [f"## {ds}: {r['faces']} faces ({r['sampled']} sampled from `{r['split_file']}` {r.get('split', 'val')})", "",
                  "| condition | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for cond, row in r["rows"].items():
            lines.append(f"| {cond} | " + " | ".join(f"{row[c]:.1f}" for c in cols) + " |")
        lines.append("")
    sc = res.get("scenes")
    if sc:
        lines += [f"## False faces: {sc['photos']} NUS scene photos (no face labels; some show people)", "",
                  "| detector | boxes | photos with boxes | ms / photo |", "|---|---|---|---|"]
        for k in sc["boxes"]:
            lines.append(f"| {k} | {sc['boxes'][k]} | {sc['photos_with_boxes'][k]} | {sc['ms_per_photo'][k]} |")
        lines += ["", "| cascade | photos where the fallback runs | boxes it adds | on photos |", "|---|---|---|---|"]
        for k, v in sc["fallback_adds"].items():
            lines.append(f"| {k} | {v['photos_where_fallback_runs']} | {v['boxes_added']} | {v['photos_given_boxes']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=600)
    ap.add_argument("--datasets", default="ferplus,utkface")
    ap.add_argument("--split-dir", type=Path, default=ROOT / "cache/splits",
                    help="folder of the split files that `salface splits DATASET` writes")
    ap.add_argument("--split", default="val", help="which split's faces to sample (choose on val)")
    ap.add_argument("--scenes", type=Path, default=ROOT.parent / "shared/data/nus-saliency/stimuli")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/fallback")
    ap.add_argument("--sheet", action="store_true", help="write contact sheets of the boxes fallbacks add on scenes")
    a = ap.parse_args()
    dets = detectors()
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": git_commit(), "machine": machine(),
           "command": "python " + " ".join(sys.argv), "datasets": {}}
    for ds in a.datasets.split(","):
        res["datasets"][ds] = dataset_rows(ds, a.split_dir / f"{ds}.jsonl", a.limit, dets, a.split)
    if a.scenes.is_dir():
        res["scenes"] = scene_rows(a.scenes, dets, a.out.with_name(a.out.name + "_added") if a.sheet else None)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    a.out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
