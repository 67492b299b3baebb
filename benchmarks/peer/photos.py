"""Build the photo sets of the peer benchmark (``benchmarks/bench_peer.py``) from ``../shared``.

    python benchmarks/peer/photos.py [--shared ../shared] [--out cache/bench_photos]
                                     [--faces 300] [--multi 60] [--seed 0]

Three folders under ``--out`` (gitignored; nothing from ``../shared`` is ever committed):

``utk448/``  ``--faces`` UTKFace test-split faces (a seeded sample of the split file written by
             ``salface splits utkface``), each upscaled from 200 × 200 to 448 × 448 (bicubic, JPEG q95).
``multi/``   ``--multi`` 1280 × 960 **composites**: 2–6 real UTKFace test faces and Adience faces
             (``data/adience/aligned``), each resized to a 180–300 px square and pasted without
             overlap, edges feathered, onto a smooth neutral gradient with mild noise. They are not
             photographs of groups: there is no real scene, lighting or occlusion around the faces.
``crops/``   the same ``--faces`` UTKFace files as they are (200 × 200 face crops), as symbolic links
             to ``../shared`` (for ``salface analyze --detector whole`` and the peer's
             ``predict_face``).

``manifest.json`` records the settings and, for every image, the source files and the box of every
face placed in it (``[x1, y1, x2, y2]``), so a run can say how many faces each set holds. The sets
are rebuilt only when the settings differ from the manifest's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[2]
CANVAS = (1280, 960)  # width, height of the multi-face composites
TILE_SIZES = (180, 300)  # side of a pasted face, min and max, px
FACES_PER_PHOTO = (2, 6)
UPSCALED = 448
MANIFEST_VERSION = 1


def test_split_paths(split_file: Path) -> list[Path]:
    """UTKFace test-split image paths from a ``salface splits utkface`` file, sorted by name."""
    paths = []
    with open(split_file) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{split_file}:{n}: not a JSON line ({exc})") from None
            if row.get("split") == "test":
                paths.append(Path(row["path"]))
    if not paths:
        raise ValueError(f"{split_file}: no test-split rows")
    return sorted(paths, key=lambda p: p.name)


def seeded_sample(items: list, n: int, rng: np.random.Generator) -> list:
    """``n`` distinct items drawn with ``rng``, in the order drawn; all of them if there are fewer."""
    idx = rng.permutation(len(items))[: min(n, len(items))]
    return [items[i] for i in idx]


def place_squares(rng: np.random.Generator, sizes: list[int], canvas: tuple[int, int], *,
                  gap: int = 16, tries: int = 2000) -> list[tuple[int, int, int, int]]:
    """Non-overlapping positions for squares of the given sides on a ``(width, height)`` canvas.

    Rejection sampling: each square in turn gets uniformly random positions until it keeps at
    least ``gap`` px from every square already placed and from the canvas edge. Returns one box
    ``(x1, y1, x2, y2)`` per size (exclusive ends). Raises ``ValueError`` when a square cannot be
    placed in ``tries`` attempts (the caller draws smaller squares).
    """
    w, h = canvas
    boxes: list[tuple[int, int, int, int]] = []
    for s in sizes:
        if s + 2 * gap > min(w, h):
            raise ValueError(f"a {s} px square does not fit a {w}x{h} canvas with a {gap} px gap")
        for _ in range(tries):
            x = int(rng.integers(gap, w - s - gap + 1))
            y = int(rng.integers(gap, h - s - gap + 1))
            if all(x >= bx2 + gap or x + s + gap <= bx1 or y >= by2 + gap or y + s + gap <= by1
                   for bx1, by1, bx2, by2 in boxes):
                boxes.append((x, y, x + s, y + s))
                break
        else:
            raise ValueError(f"no room for a {s} px square after {len(boxes)} others")
    return boxes


def neutral_background(rng: np.random.Generator, canvas: tuple[int, int]) -> np.ndarray:
    """A smooth linear gradient between two muted colours plus faint blurred noise (H × W × 3 uint8)."""
    w, h = canvas
    a, b = rng.uniform(90, 170, size=3), rng.uniform(90, 170, size=3)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx * np.cos(angle) + yy * np.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
    noise = Image.fromarray(rng.integers(0, 256, size=(h, w), dtype=np.uint8))
    noise = np.asarray(noise.filter(ImageFilter.GaussianBlur(3)), np.float32) - 127.5
    img += noise[..., None] * 0.15
    return np.clip(img, 0, 255).astype(np.uint8)


def feather_mask(side: int, border: int) -> np.ndarray:
    """A ``side × side`` float mask, 1 inside and falling linearly to 0 over ``border`` px at the edges."""
    ramp = np.clip((np.minimum(np.arange(side), np.arange(side)[::-1]) + 0.5) / max(border, 1), 0, 1)
    return np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)


def paste(canvas: np.ndarray, tile: np.ndarray, box: tuple[int, int, int, int], border: int = 8) -> None:
    """Blend a square RGB ``tile`` into ``canvas`` (in place) at ``box`` with feathered edges."""
    x1, y1, x2, y2 = box
    if tile.shape[:2] != (y2 - y1, x2 - x1):
        raise ValueError(f"tile {tile.shape[:2]} does not match box {box}")
    m = feather_mask(x2 - x1, border)[..., None]
    region = canvas[y1:y2, x1:x2].astype(np.float32)
    canvas[y1:y2, x1:x2] = np.round(tile.astype(np.float32) * m + region * (1 - m)).astype(np.uint8)


def compose(rng: np.random.Generator, sources: list[Path], canvas: tuple[int, int] = CANVAS
            ) -> tuple[np.ndarray, list[dict]]:
    """One composite of ``sources`` (one face each): the image and, per face, its source and box."""
    sizes = sorted((int(s) for s in rng.integers(TILE_SIZES[0], TILE_SIZES[1] + 1, len(sources))),
                   reverse=True)  # largest first packs best
    for _ in range(20):
        try:
            boxes = place_squares(rng, sizes, canvas)
            break
        except ValueError:
            sizes = [max(TILE_SIZES[0], int(s * 0.9)) for s in sizes]
    else:
        raise ValueError(f"cannot place {len(sources)} faces on a {canvas} canvas")
    img = neutral_background(rng, canvas)
    faces = []
    for src, box in zip(sources, boxes):
        side = box[2] - box[0]
        with Image.open(src) as im:
            tile = np.asarray(im.convert("RGB").resize((side, side), Image.BICUBIC))
        paste(img, tile, box)
        faces.append({"source": str(src), "box": list(box)})
    return img, faces


def _settings(shared: Path, split_file: Path, n_faces: int, n_multi: int, seed: int) -> dict:
    return {"version": MANIFEST_VERSION, "shared": str(shared.resolve()), "split_file": str(split_file.resolve()),
            "faces": n_faces, "multi": n_multi, "seed": seed, "upscaled": UPSCALED,
            "canvas": list(CANVAS), "tile_sizes": list(TILE_SIZES),
            "faces_per_photo": list(FACES_PER_PHOTO)}


def ensure_split(shared: Path, split_file: Path) -> None:
    """Write the UTKFace standard split with salface's own command if it is not there yet."""
    if split_file.exists():
        return
    from salface.data.splits import standard_split

    standard_split("utkface", shared, split_file.parent, verbose=False)
    if not split_file.exists():
        raise FileNotFoundError(f"salface splits utkface did not write {split_file}")


def build(shared: Path, out: Path, *, n_faces: int = 300, n_multi: int = 60, seed: int = 0,
          split_file: Path | None = None, log=print) -> dict:
    """Write the three sets under ``out`` (unless ``out/manifest.json`` has the same settings) and
    return the manifest."""
    split_file = split_file or ROOT / "cache" / "splits" / "utkface.jsonl"
    settings = _settings(shared, split_file, n_faces, n_multi, seed)
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        if old.get("settings") == settings and all((out / s).is_dir() for s in old["sets"]):
            return old
    ensure_split(shared, split_file)
    test = test_split_paths(split_file)
    adience = sorted((shared / "data" / "adience" / "aligned").glob("*/*.jpg"))
    rng = np.random.default_rng(seed)
    chosen = seeded_sample(test, n_faces, rng)
    sets: dict[str, dict] = {}

    def fresh(name: str) -> Path:
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        for old_file in d.iterdir():
            old_file.unlink()
        return d

    d = fresh("utk448")
    images = {}
    for i, src in enumerate(chosen):
        name = f"utk448_{i:04d}.jpg"
        with Image.open(src) as im:
            im.convert("RGB").resize((UPSCALED, UPSCALED), Image.BICUBIC).save(d / name, quality=95)
        images[name] = [{"source": str(src), "box": [0, 0, UPSCALED, UPSCALED]}]
    sets["utk448"] = {"what": f"UTKFace test faces upscaled 200 -> {UPSCALED} px (bicubic)",
                      "images": images}
    log(f"utk448: {len(images)} images")

    d = fresh("crops")
    images = {}
    for i, src in enumerate(chosen):
        name = f"crop_{i:04d}.jpg"
        os.symlink(src.resolve(), d / name)
        images[name] = [{"source": str(src), "box": [0, 0, 200, 200]}]
    sets["crops"] = {"what": "the same UTKFace test faces as they are (200 x 200 crops; symlinks)",
                     "images": images}
    log(f"crops: {len(images)} images")

    d = fresh("multi")
    images = {}
    taken = set(chosen)
    pool = [p for p in test if p not in taken]
    multi_rng = np.random.default_rng([seed, 1])
    for i in range(n_multi):
        k = int(multi_rng.integers(FACES_PER_PHOTO[0], FACES_PER_PHOTO[1] + 1))
        srcs = seeded_sample(pool, k, multi_rng)
        if adience and multi_rng.random() < 0.3:  # about one photo in three holds an Adience face
            srcs[-1] = adience[int(multi_rng.integers(len(adience)))]
        img, faces = compose(multi_rng, srcs)
        name = f"multi_{i:04d}.jpg"
        Image.fromarray(img).save(d / name, quality=92)
        images[name] = faces
    sets["multi"] = {"what": f"{CANVAS[0]}x{CANVAS[1]} composites of {FACES_PER_PHOTO[0]}-"
                             f"{FACES_PER_PHOTO[1]} real UTKFace/Adience faces ({TILE_SIZES[0]}-"
                             f"{TILE_SIZES[1]} px) pasted without overlap on a neutral gradient",
                     "images": images}
    log(f"multi: {len(images)} images, {sum(len(v) for v in images.values())} faces")

    manifest = {"settings": settings, "sets": sets}
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--out", type=Path, default=ROOT / "cache" / "bench_photos")
    ap.add_argument("--faces", type=int, default=300, help="UTKFace test faces (utk448/ and crops/)")
    ap.add_argument("--multi", type=int, default=60, help="multi-face composites (multi/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split-file", type=Path, default=None,
                    help="salface splits utkface output (default cache/splits/utkface.jsonl; "
                         "written if missing)")
    args = ap.parse_args(argv)
    if not (args.shared / "data" / "utkface").is_dir():
        sys.exit(f"error: no UTKFace at {args.shared / 'data' / 'utkface'}")
    m = build(args.shared, args.out, n_faces=args.faces, n_multi=args.multi, seed=args.seed,
              split_file=args.split_file)
    for name, s in m["sets"].items():
        print(f"{name}: {len(s['images'])} images, {sum(len(v) for v in s['images'].values())} faces "
              f"- {s['what']}")


if __name__ == "__main__":
    main()
