"""What each training run answers for the faces of one photo: its own crop, ML-Net map and network.

    python scripts/member_answers.py IMAGE RUN [RUN ...] [--detector yunet|blazeface|...]
                                     [--json OUT.json]

For comparing ensemble members (or any runs) on a photo where the shipped model is wrong, e.g. the
bundled demo portrait (docs/benchmarks/robust/README.md, session 9). Each run is loaded with its
best weights (torch, ``salface.training``); the face is found once by the detector, then cropped
as each run's config says (crop mode, size, margin), its saliency map computed with the run's
saliency model, and the run's network applied without flip TTA. Prints, per face and run, the
class probabilities of every task.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image", type=Path)
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--detector", default="auto")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from salface.crop import crop_for_config
    from salface.detect import get_detector
    from salface.io import load_image
    from salface.labels import labels_for
    from salface.saliency import get_saliency
    from salface.training.scoring import predict_arrays
    from salface.training.train import load_run

    img = load_image(args.image)
    faces = get_detector(args.detector).detect(img)
    runs = [(run, *load_run(run, "best")[:2]) for run in args.runs]        # each loaded once
    saliency = {c.saliency: get_saliency(c.saliency) for _, _, c in runs if c.saliency != "none"}
    out: list[dict] = []
    for k, face in enumerate(faces):
        b = face.box
        print(f"face {k}: box ({b.x1:.0f}, {b.y1:.0f})–({b.x2:.0f}, {b.y2:.0f}), score {face.score:.2f}")
        for run, model, config in runs:
            crop = crop_for_config(img, face, config).pixels[None]
            maps = None
            if config.saliency != "none":
                m = np.asarray(saliency[config.saliency](crop))
                maps = m if m.dtype == np.uint8 else (np.clip(m, 0, 1) * 255).round().astype(np.uint8)
            logp = predict_arrays(model, config, crop, maps, tta_flip=False, log=True)
            row = {"face": k, "run": str(run)}
            parts = []
            for task, lp in logp.items():
                p = np.exp(lp[0])
                names = labels_for(task)
                row[task] = {n: round(float(x), 4) for n, x in zip(names, p)}
                parts.append(f"{task} {names[int(p.argmax())]} {p.max():.2f}")
            out.append(row)
            print(f"  {str(run):40s} " + ", ".join(parts))
    if not faces:
        print("no face found")
    if args.json:
        args.json.write_text(json.dumps({"image": str(args.image), "detector": args.detector,
                                         "answers": out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
