"""How far ONNX Runtime's outputs are from PyTorch's, for the shipped classifiers and ML-Net.

    python benchmarks/onnx_parity.py [--random 61]

Inputs: the scikit-image astronaut's face (as is, mirrored, shifted a few pixels) plus ``--random``
uint8 noise crops (seed 0), prepared for each model as ``analyze`` prepares them. Reports the
largest absolute difference of the logits per task (with the largest logit magnitude, for scale),
whether every argmax agrees, and the largest difference of the ML-Net maps at 64, 96 and 128 px.
Writes ``docs/benchmarks/onnx_parity.json``. ``tests/test_onnx.py`` asserts the tolerances; this
script measures the actual gap the docs quote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import skimage.data
import torch

from salface.crop import crop_face
from salface.utils import git_commit, machine
from salface.models.onnx import load_classifier_onnx, onnx_saliency
from salface.models.preprocess import prepare_crops, to_input_tensor
from salface.models.registry import DEFAULT_MODELS, load_classifier
from salface.saliency import get_saliency
from salface.types import Box, Face

ROOT = Path(__file__).resolve().parents[1]


def crops_at(size: int, n_random: int) -> np.ndarray:
    img = np.ascontiguousarray(skimage.data.astronaut())
    face = crop_face(img, Face(Box(178, 63, 268, 176)), size=size).pixels
    shifted = crop_face(img, Face(Box(168, 70, 258, 183)), size=size).pixels
    noise = np.random.default_rng(0).integers(0, 256, (n_random, size, size, 3), dtype=np.uint8)
    return np.concatenate([np.stack([face, face[:, ::-1], shifted]), noise])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--random", type=int, default=61, help="noise crops added to the 3 astronaut crops")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "onnx_parity.json")
    args = ap.parse_args()

    sal_torch = get_saliency("mlnet")
    sal_onnx = onnx_saliency(get_saliency("mlnet"))
    result: dict = {"classifiers": {}, "mlnet_max_abs_map_diff": {}}
    for name in dict.fromkeys(DEFAULT_MODELS.values()):
        net, cfg = load_classifier(name)
        ort_net, _ = load_classifier_onnx(name)
        pixels = prepare_crops(crops_at(cfg.input_size, args.random), cfg)
        x = to_input_tensor(pixels, sal_torch(pixels), cfg)
        with torch.inference_mode():
            ref = net(x)
        got = ort_net(x)
        result["classifiers"][name] = {
            t: {"max_abs_logit_diff": float((got[t] - ref[t]).abs().max()),
                "max_abs_logit": float(ref[t].abs().max()),
                "argmax_agree": bool(torch.equal(got[t].argmax(1), ref[t].argmax(1)))}
            for t in cfg.tasks}
    for size in (64, 96, 128):
        c = crops_at(size, args.random)
        result["mlnet_max_abs_map_diff"][str(size)] = float(np.abs(sal_onnx(c) - sal_torch(c)).max())
    result.update({"crops": 3 + args.random, "commit": git_commit(), "machine": machine(),
                   "command": f"python benchmarks/onnx_parity.py --random {args.random}"})
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
