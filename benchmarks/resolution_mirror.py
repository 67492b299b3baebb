"""Resolution mirror (issue 12): does a network trained only on small, upscaled faces lose accuracy
on sharp faces, and does resampling a sharp face down to its training resolution win it back?

The expression model learned from FER's 48-px pictures: the 30 % margin square around a YuNet box
spans about 50 source pixels, upscaled to the 96-px crop. A face in a user's photo (a posed
portrait, a press photo) spans hundreds of pixels and reaches the network as a sharp 96-px crop,
sharper than anything it saw. No labelled sharp expression photos exist here, so this script
builds the same situation with labels, from UTKFace (sharp 200-px chips):

* ``measure`` runs YuNet on FER+ train pictures (or, to compare, UTKFace chips) and records the
  side of the crop square in source pixels (``(1 + margin) × max(box w, box h)``): the resolution
  a model trained on them learned from.
* ``build`` copies a UTKFace 96-px crop cache with every crop resampled down to a side drawn from
  that distribution (area) and back up to 96 px (bilinear, as the crop code enlarges): a
  "FER-resolution" UTKFace. ``--side N`` resamples every crop to one side instead (a cap at
  inference); no ``--side`` and no ``--sides`` keeps the sharp crops. Only the rows of
  ``--splits`` are kept. The copy gets its own cache key; build its ML-Net maps with
  ``salface cache saliency``, or, with ``--maps-from`` the sharp copy, take the sharp crops' maps
  as the pipeline does (it maps the uncapped crop it shares with the other models).

An age/gender network trained on the FER-resolution cache then meets val crops at its own
resolution, sharp val crops, and sharp val crops capped at a few sides (``salface evaluate``;
``scripts/framing_proxy.py compare`` pairs the reports). For a face whose square spans far more
than 96 pixels, the cap is what ``ClassifierConfig.max_crop_px`` does in the pipeline (which cuts
the crop at the cap straight from the photo).

    python benchmarks/resolution_mirror.py measure --dataset ferplus --data ../shared/data/ferplus --n 4000 --out docs/benchmarks/resolution/fer_crop_sides.json
    python benchmarks/resolution_mirror.py measure --dataset utkface --data ../shared/data/utkface --n 2000 --out docs/benchmarks/resolution/utk_crop_sides.json
    python benchmarks/resolution_mirror.py build --cache cache/crops/utkface-96-rgb --sides docs/benchmarks/resolution/fer_crop_sides.json --splits train,val --out cache/crops/utk-ferres
    python benchmarks/resolution_mirror.py build --cache cache/crops/utkface-96-rgb --splits val --out cache/crops/utk-val-sharp
    python benchmarks/resolution_mirror.py build --cache cache/crops/utkface-96-rgb --side 56 --splits val --out cache/crops/utk-val-cap56
    python benchmarks/resolution_mirror.py build --cache cache/crops/utkface-96-rgb --side 56 --splits val --out cache/crops/utk-val-cap56-sm --maps-from cache/crops/utk-val-sharp
    python benchmarks/resolution_mirror.py maps cache/crops/utk-val-sharp cache/crops/utk-val-cap48 cache/crops/utk-val-cap56 cache/crops/utk-val-cap62 --out docs/benchmarks/resolution/map_agreement.json

The same on the expression task itself (``benchmarks/resolution_mirror.sh fer``): FER+'s own
crops at half their resolution for training (``--scale 0.5``), FER+'s pictures as the sharper
faces:

    python benchmarks/resolution_mirror.py build --cache cache/crops/ferplus-96-gray-level --sides docs/benchmarks/resolution/fer_crop_sides.json --scale 0.5 --splits train,val --out cache/crops/fer-half
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from salface.training.cache import SPLITS

ARRAYS = ("crops", "labels", "split", "boxes", "landmarks", "detected")


def measure(dataset: str, root: Path, n: int, seed: int, margin: float) -> dict:
    from salface.detect import get_detector
    from salface.io import load_image

    if dataset == "ferplus":
        from salface.data.ferplus import read_ferplus
        samples = read_ferplus(root, "train")
    else:
        from salface.data.utkface import read_utkface
        samples = read_utkface(root)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(samples), size=min(n, len(samples)), replace=False)
    det = get_detector("yunet")
    sides, found = [], 0
    for i in pick:
        faces = det.detect(load_image(samples[int(i)].path))
        if not faces:
            continue
        found += 1
        b = max(faces, key=lambda f: f.box.width * f.box.height).box
        sides.append((1 + margin) * max(b.width, b.height))
    s = np.asarray(sides)
    pct = {str(p): round(float(np.percentile(s, p)), 2) for p in (5, 10, 25, 50, 75, 90, 95, 99)}
    return {"command": "python " + " ".join(sys.argv), "pictures": int(len(pick)), "found": found,
            "margin": margin, "percentiles": pct, "sides": [round(float(v), 2) for v in s]}


def resample(crop: np.ndarray, side: int) -> np.ndarray:
    """``crop`` seen at ``side`` source pixels: area down to ``side``, bilinear back up."""
    size = crop.shape[0]
    if side >= size:
        return crop
    small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


def build(cache: Path, out: Path, splits: list[str], sides: np.ndarray | None, side: int | None,
          seed: int, maps_from: Path | None = None, scale: float = 1.0) -> dict:
    meta = json.loads((cache / "meta.json").read_text())
    split = np.load(cache / "split.npy")
    rows = np.flatnonzero(np.isin(split, [SPLITS[s] for s in splits]))
    rng = np.random.default_rng(seed)
    drawn = (np.round(scale * rng.choice(sides, size=len(rows))).astype(int) if sides is not None
             else np.full(len(rows), side if side else meta["size"], dtype=int))
    out.mkdir(parents=True, exist_ok=True)
    src = {k: np.load(cache / f"{k}.npy", mmap_mode="r") for k in ARRAYS}
    crops = np.empty((len(rows),) + src["crops"].shape[1:], np.uint8)
    for j, i in enumerate(rows):
        crops[j] = resample(np.asarray(src["crops"][i]), int(drawn[j]))
    np.save(out / "crops.npy", crops)
    for k in ARRAYS[1:]:
        np.save(out / f"{k}.npy", np.asarray(src[k][rows]))
    for t in sorted(cache.glob("targets_*.npy")):  # soft targets (FER+ vote distributions)
        np.save(out / t.name, np.load(t)[rows])
    paths = json.loads((cache / "paths.json").read_text())
    (out / "paths.json").write_text(json.dumps([paths[i] for i in rows]))
    recipe = {"source_key": meta["key"], "splits": splits, "side": side, "seed": seed, "scale": scale,
              "sides_drawn_from": None if sides is None else len(sides)}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode() + crops.tobytes()).hexdigest()
    new = dict(meta, key=key, n=len(rows), done=len(rows), resolution_mirror=recipe,
               drawn_sides={str(p): float(np.percentile(drawn, p)) for p in (5, 50, 95)})
    (out / "meta.json").write_text(json.dumps(new, indent=1))
    if maps_from is not None:  # the pipeline's maps: ML-Net on the uncapped crop, shared
        other = json.loads((maps_from / "meta.json").read_text())
        if other["resolution_mirror"]["source_key"] != meta["key"] or other["n"] != len(rows):
            raise SystemExit(f"{maps_from} was not built from {cache} with the same rows")
        for name in sorted(p.name for p in maps_from.glob("saliency_*.json")):
            m = json.loads((maps_from / name).read_text())
            (out / name).write_text(json.dumps(dict(m, crop_key=key, maps_from=str(maps_from))))
            npy = name[:-5] + ".npy"
            np.save(out / npy, np.load(maps_from / npy))
    return new


def map_agreement(a: Path, b: Path, name: str = "mlnet") -> dict:
    """Per-face Pearson correlation between the saliency maps of two mirror caches of the same rows
    (e.g. the sharp crops and the capped ones): how much the map changes with the resolution."""
    x, y = (np.load(c / f"saliency_{name}.npy").astype(np.float64) for c in (a, b))
    x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    x -= x.mean(1, keepdims=True)
    y -= y.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cc = (x * y).sum(1) / np.sqrt((x ** 2).sum(1) * (y ** 2).sum(1))
    ok = cc[np.isfinite(cc)]
    return {"command": "python " + " ".join(sys.argv), "a": str(a), "b": str(b), "faces": int(len(cc)),
            "constant_maps": int(len(cc) - len(ok)),
            "correlation_percentiles": {str(p): round(float(np.percentile(ok, p)), 4) for p in (1, 5, 50)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="crop sides of FER+ train pictures in source pixels")
    m.add_argument("--dataset", choices=("ferplus", "utkface"), default="ferplus",
                   help="ferplus: its train pictures; utkface: all chips (to compare)")
    m.add_argument("--data", type=Path, required=True)
    m.add_argument("--n", type=int, default=4000)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--margin", type=float, default=0.30)
    m.add_argument("--out", type=Path, required=True)
    b = sub.add_parser("build", help="a UTKFace crop cache seen at FER's resolution (or one side)")
    b.add_argument("--cache", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--splits", default="train,val")
    b.add_argument("--sides", type=Path, help="a `measure` JSON: each crop gets a side drawn from it")
    b.add_argument("--side", type=int, help="every crop resampled to this side")
    b.add_argument("--scale", type=float, default=1.0, help="with --sides: the drawn sides times this "
                   "(0.5 on FER+'s own cache: FER+ at half its resolution)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--maps-from", type=Path, help="copy the saliency maps of this mirror cache (same "
                   "rows), e.g. the sharp one: the pipeline maps the uncapped crop")
    g = sub.add_parser("maps", help="how closely the saliency maps of two mirror caches agree")
    g.add_argument("caches", nargs="+", type=Path, help="the reference cache, then one or more others")
    g.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    if a.cmd == "maps":
        res = [map_agreement(a.caches[0], c) for c in a.caches[1:]]
        a.out.write_text(json.dumps(res, indent=1) + "\n")
        print(json.dumps(res, indent=1))
    elif a.cmd == "measure":
        res = measure(a.dataset, a.data, a.n, a.seed, a.margin)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res) + "\n")
        print(json.dumps({k: v for k, v in res.items() if k != "sides"}, indent=1))
    else:
        if a.sides is not None and a.side is not None:
            ap.error("give --sides or --side, not both")
        sides = np.asarray(json.loads(a.sides.read_text())["sides"]) if a.sides else None
        res = build(a.cache, a.out, a.splits.split(","), sides, a.side, a.seed, a.maps_from, a.scale)
        print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
