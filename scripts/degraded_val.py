"""Val accuracy of training runs on clean crops and on crops damaged by the training-time
"wild" augmentation (salface.training.augment, fixed seed) — a quick in-distribution check, not the
robustness benchmark (`salface robustness` re-renders whole test photos; this damages cached
crops with the very distribution the wild recipe trains on, so it favours that recipe).

    python scripts/degraded_val.py runs/A runs/B --split val --seed 0 [--threads 2]

Each run is evaluated with its best (val-chosen) weights; the damage is the same for every run
(same seed, same crops): a ±20° / ±6 % / ±10 % warp of crop and map, then :func:`degrade_batch`
with the default settings. The saliency map follows the warp and stays the clean crop's map
(as in training).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from salface.training.augment import degrade_batch
from salface.training.cache import open_crop_cache
from salface.evaluate import evaluate_arrays
from salface.training.presets import Augment
from salface.training.train import augment_batch, load_run


def damaged(crops: np.ndarray, maps: np.ndarray | None, face_w: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    c, m = augment_batch(crops, maps, Augment(flip=False, rotate=20.0, shift=0.06, scale=0.10), rng)
    return degrade_batch(c, rng, face_widths=face_w), m


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--split", default="val")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    for run in a.runs:
        model, cfg, _ = load_run(run)
        cc = open_crop_cache(json.loads((run / "config.json").read_text())["cache"])
        idx = cc.indices(a.split)
        crops = np.asarray(cc.crops[idx])
        maps = np.asarray(cc.saliency(cfg.saliency)[idx]) if cfg.saliency != "none" else None
        labels = {t: cc.task_labels(t)[idx] for t in cfg.tasks}
        face_w = np.asarray(cc.boxes[idx, 2] - cc.boxes[idx, 0], np.float32)
        dc, dm = damaged(crops, maps, face_w, a.seed)
        clean = evaluate_arrays(model, cfg, crops, maps, labels)
        dirty = evaluate_arrays(model, cfg, dc, dm, labels)
        row = {"run": run.name, "split": a.split, "n": int(len(idx)), "seed": a.seed}
        for t in cfg.tasks:
            row[f"{t}_clean"] = clean[t]["accuracy"]
            row[f"{t}_damaged"] = dirty[t]["accuracy"]
            if "one_off_accuracy" in clean[t]:
                row[f"{t}_one_off_clean"] = clean[t]["one_off_accuracy"]
                row[f"{t}_one_off_damaged"] = dirty[t]["one_off_accuracy"]
        rows.append(row)
        print(json.dumps(row))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
