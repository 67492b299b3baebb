"""Time the inference pipeline per stage: load, detect, crop, saliency, classify.

    python benchmarks/bench_pipeline.py [--images DIR] [--limit 256] [--batch-size 64] [--threads N]
                                        [--backend torch|onnx] [--repeats 3] [--device cpu|cuda]

Images default to the first ``--limit`` UTKFace files in ``../shared/data/utkface`` (200 × 200, one
face each, sorted by name) plus the scikit-image astronaut. Writes JSON to
``docs/benchmarks/pipeline_speed.json`` (``pipeline_speed_onnx.json`` with ``--backend onnx``) and
prints a Markdown table.

``--device cuda`` runs ML-Net and the classifiers on the GPU (detection and cropping stay on the
CPU, as in ``analyze --device cuda``; timers wait for the GPU to finish) and writes
``pipeline_speed_cuda.json``.

``--backend onnx`` runs the classifiers and ML-Net through ONNX Runtime (``pip install
salface[onnx]``), with as many intra-op threads as torch uses; they are exported to the salface
cache first if needed, before anything is timed. It times shipped classifiers only.

Each stage runs over the whole set, batched as the Analyzer batches it, after one warm-up batch;
detect … classify are timed ``--repeats`` times and each stage's median is reported (the machine is
a shared VM: single passes vary by ±20 %). Models shipped with flip TTA are timed with both passes,
as the Analyzer runs them.
When a shipped classifier is missing, the classify stage times the same architecture built from
its config with untrained weights and says so (the timing does not depend on the weight values;
nothing is predicted).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "utkface")
    ap.add_argument("--limit", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--saliency", default="mlnet")
    ap.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                    help="run the classifiers and ML-Net in PyTorch or ONNX Runtime")
    ap.add_argument("--repeats", type=int, default=3,
                    help="time detect..classify this many times and report each stage's median")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (PyTorch backend)")
    ap.add_argument("--detector-model", type=Path, default=None, help="YuNet .onnx file, if not installed")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON output (default docs/benchmarks/pipeline_speed[_onnx].json)")
    args = ap.parse_args()
    if args.out is None:
        suffix = "_onnx" if args.backend == "onnx" else ("_cuda" if args.device.startswith("cuda") else "")
        args.out = ROOT / "docs" / "benchmarks" / f"pipeline_speed{suffix}.json"

    import torch

    from salface.crop import crop_face
    from salface.detect import get_detector
    from salface.utils import git_commit
    from salface.io import load_image
    from salface.models.preprocess import forward_logits, prepare_crops, to_input_tensor
    from salface.models.registry import DEFAULT_MODELS, load_classifier
    from salface.hub import MissingModelError, load_manifest
    from salface.saliency import get_saliency

    if args.threads:
        torch.set_num_threads(args.threads)
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    paths = paths[: args.limit]
    results: dict = {"stages": {}}

    t0 = time.perf_counter()
    images = [load_image(p) for p in paths]
    try:
        import skimage.data

        images.append(np.ascontiguousarray(skimage.data.astronaut()))
    except ImportError:
        pass
    t_load = time.perf_counter() - t0
    n_img = len(images)

    device = args.device
    if device != "cpu" and args.backend == "onnx":
        raise SystemExit("--device applies to the PyTorch backend only")

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    det = get_detector("yunet", **({"model_path": str(args.detector_model)} if args.detector_model else {}))
    det.detect(images[0])
    faces = [det.detect(im) for im in images]
    pairs = [(im, f) for im, fs in zip(images, faces) for f in fs]
    n_faces = len(pairs)

    # one model per distinct shipped classifier
    models = []
    for name in dict.fromkeys(DEFAULT_MODELS.values()):
        try:
            if args.backend == "onnx":
                from salface.models.onnx import load_classifier_onnx

                net, cfg = load_classifier_onnx(name)
            else:
                net, cfg = load_classifier(name, device=device)
            note = "shipped weights"
        except MissingModelError:
            if args.backend == "onnx":
                raise SystemExit(f"{name} is not shipped: --backend onnx times shipped models only")
            # not shipped yet: time the same architecture from its training preset (the speed does
            # not depend on the weight values; nothing is predicted)
            from salface.models.backbones import build_classifier
            from salface.models.config import ClassifierConfig
            from salface.presets import PRESETS

            entry = load_manifest()["models"].get(name)
            if entry is not None:
                cfg = ClassifierConfig.from_dict(entry["config"])
            elif name in PRESETS:
                p = PRESETS[name]
                cfg = ClassifierConfig(name=name, backbone=p.backbone, tasks=p.tasks,
                                       input_size=p.input_size, color=p.color, saliency="mlnet",
                                       ratio=0.3)
            else:
                continue
            net = build_classifier(cfg).to(device).to(memory_format=torch.channels_last).eval()
            note = "not shipped yet: untrained weights of the same architecture, timing only"
        models.append((name, net, cfg, note))

    bs = args.batch_size
    sal = get_saliency(args.saliency, device=device)
    if args.backend == "onnx":
        from salface.models.onnx import onnx_saliency

        sal = onnx_saliency(sal)  # ML-Net through ONNX Runtime; other models unchanged

    def classify(net, x, cfg):
        with torch.inference_mode():  # both passes for models shipped with flip TTA, as analyze runs them
            forward_logits(net, x, tta_flip=bool(cfg.extra.get("tta_flip")), temperature=cfg.extra.get("temperature"))

    def measure() -> tuple[float, float, float, float]:
        t0 = time.perf_counter()
        for im in images:
            det.detect(im)
        t_det = time.perf_counter() - t0
        t_crop = t_sal = t_cls = 0.0
        for name, net, cfg, note in models or [(None, None, None, None)]:
            size = cfg.input_size if cfg else 112
            margin = cfg.margin if cfg else 0.3
            # warm-up: one untimed batch through every stage (allocator, oneDNN kernel selection)
            warm = np.stack([crop_face(im, f, size=size, margin=margin).pixels for im, f in pairs[:bs]])
            if cfg is not None:
                warm = prepare_crops(warm, cfg)
            warm_maps = sal(warm)
            if net is not None:
                classify(net, to_input_tensor(warm, warm_maps, cfg, device), cfg)
            sync()
            for start in range(0, n_faces, bs):
                chunk = pairs[start:start + bs]
                t0 = time.perf_counter()
                crops = np.stack([crop_face(im, f, size=size, margin=margin).pixels for im, f in chunk])
                if cfg is not None:
                    crops = prepare_crops(crops, cfg)
                t_crop += time.perf_counter() - t0
                t0 = time.perf_counter()
                maps = sal(crops)
                sync()
                t_sal += time.perf_counter() - t0
                if net is not None:
                    t0 = time.perf_counter()
                    classify(net, to_input_tensor(crops, maps, cfg, device), cfg)
                    sync()
                    t_cls += time.perf_counter() - t0
        return t_det, t_crop, t_sal, t_cls

    runs = [measure() for _ in range(max(1, args.repeats))]
    t_det, t_crop, t_sal, t_cls = (float(np.median(col)) for col in zip(*runs))

    def stage(seconds: float) -> dict:
        return {"seconds": round(seconds, 3), "images_per_s": round(n_img / seconds, 1) if seconds else None,
                "faces_per_s": round(n_faces / seconds, 1) if seconds else None}

    results["stages"] = {"load": stage(t_load), "detect (yunet)": stage(t_det), "crop": stage(t_crop),
                         f"saliency ({args.saliency})": stage(t_sal), "classify": stage(t_cls)}
    total = t_load + t_det + t_crop + t_sal + t_cls
    results["stages"]["total"] = stage(total)
    results.update({
        "images": n_img, "faces": n_faces, "batch_size": bs,
        "models": [{"name": n, "backbone": c.backbone, "input_size": c.input_size,
                    "flip_tta": bool(c.extra.get("tta_flip")), "weights": note}
                   for n, _, c, note in models],
        "repeats": len(runs), "statistic": "median over repeats, per stage (load: once)",
        "backend": args.backend, "device": device,
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "cpu": _cpu(), "cores": __import__("os").cpu_count(), "commit": git_commit(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "command": "python benchmarks/bench_pipeline.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
            if k not in ("images", "out", "detector_model")),
        "data": f"first {args.limit} files of {args.images.name} (sorted) + skimage astronaut",
    })
    if args.backend == "onnx":
        import onnxruntime

        results["onnxruntime"] = onnxruntime.__version__
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("| stage | s | images/s | faces/s |\n|---|---|---|---|")
    for k, v in results["stages"].items():
        print(f"| {k} | {v['seconds']} | {v['images_per_s']} | {v['faces_per_s']} |")
    print(f"\n{n_img} images, {n_faces} faces; written to {args.out}")


if __name__ == "__main__":
    main()
