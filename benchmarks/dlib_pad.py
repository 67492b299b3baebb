"""dlib HOG and faces that fill the picture: how many faces a black border around the picture
lets ``dlib-hog`` find, and what it adds on photos without a face-filling subject.

Faces (val only; the border's size is chosen here): a seeded sample of ``--n`` FER+ val pictures
(48-px tight crops, ``FER2013Valid``) and ``--n`` UTKFace val chips (200 px, from ``salface splits
utkface``'s file). A picture counts as found when dlib returns at least one box (each holds one
face). Scenes: the NUS scene photos no larger than 512 px on their longer side (371 of 500;
some show people): the boxes returned, with and without the border. Time: the mean per call on
the 512-px astronaut.

    python benchmarks/dlib_pad.py --split-file cache/splits/utkface.jsonl --out docs/benchmarks/dlib_pad.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(SHARED))
    ap.add_argument("--split-file", default="cache/splits/utkface.jsonl")
    ap.add_argument("--n", type=int, default=800)
    ap.add_argument("--pads", default="0,0.1,0.2,0.3,0.5")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="docs/benchmarks/dlib_pad.json")
    args = ap.parse_args(argv)

    from skimage import data as skdata

    from salface.data.splits import read_split
    from salface.detect import get_detector
    from salface.io import load_image
    from salface.utils import git_commit, machine

    shared = Path(args.shared)
    rng = random.Random(args.seed)
    fer = sorted((shared / "data" / "ferplus" / "FER2013Valid").glob("*.png"))
    fer = rng.sample(fer, min(args.n, len(fer)))
    utk = sorted(s.path for s in read_split(args.split_file)["val"])
    utk = rng.sample(utk, min(args.n, len(utk)))
    sets = {"ferplus-val": [load_image(p) for p in fer], "utkface-val": [load_image(p) for p in utk]}
    scenes = [load_image(p) for p in sorted((shared / "data" / "nus-saliency" / "stimuli").iterdir())
              if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    scenes = [im for im in scenes if max(im.shape[:2]) <= 512]
    astronaut = skdata.astronaut()

    rows = []
    for pad in (float(x) for x in args.pads.split(",")):
        det = get_detector("dlib-hog", pad=pad)
        row = {"pad": pad}
        for name, imgs in sets.items():
            found = sum(bool(det(im)) for im in imgs)
            row[name] = {"found": found, "n": len(imgs), "rate": round(found / len(imgs), 4)}
        boxes = [len(det(im)) for im in scenes]
        row["scenes"] = {"pictures": len(scenes), "boxes": sum(boxes),
                         "pictures_with_a_box": sum(b > 0 for b in boxes)}
        det(astronaut)
        t0 = time.perf_counter()
        for _ in range(10):
            det(astronaut)
        row["astronaut_ms"] = round((time.perf_counter() - t0) / 10 * 1000, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": git_commit(),
           "machine": machine(), "command": "python " + " ".join(sys.argv), "seed": args.seed,
           "detector": "dlib-hog, upsample=1, adjust_threshold=0", "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
