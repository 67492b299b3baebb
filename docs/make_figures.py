"""Regenerate the pipeline figures in docs/img/ from scikit-image's astronaut portrait.

    python docs/make_figures.py [--yunet PATH]

* ``astronaut_triplet.png`` — crop | ML-Net saliency | reweighted at r = 0.3 (what
  ``salface analyze --save-saliency`` writes), 224 px crops.
* ``reweight_ratios.png`` — crop | map | reweighted at r = 0.1, 0.3, 0.7, 1.0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--yunet", default=None, help="YuNet ONNX file (default: the salface cache)")
    args = ap.parse_args()

    import skimage.data

    from salface.crop import crop_face
    from salface.detect import get_detector
    from salface.reweight import reweight
    from salface.saliency import get_saliency
    from salface.viz import save_rgb, saliency_triplet

    img = np.ascontiguousarray(skimage.data.astronaut())
    det = get_detector("yunet", **({"model_path": args.yunet} if args.yunet else {}))
    face = det.detect(img)[0]
    crop = crop_face(img, face, size=224).pixels
    sal = get_saliency("mlnet")(crop)
    save_rgb(HERE / "img" / "astronaut_triplet.png", saliency_triplet(crop, sal, 0.3))

    gap = np.full((224, 4, 3), 255, np.uint8)
    grey = np.repeat(np.clip(np.rint(sal * 255), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    panels = [crop, grey] + [reweight(crop, sal, r) for r in (0.1, 0.3, 0.7, 1.0)]
    row = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
    save_rgb(HERE / "img" / "reweight_ratios.png", row)
    print("wrote", HERE / "img")


if __name__ == "__main__":
    main()
