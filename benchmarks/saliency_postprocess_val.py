"""Choose ML-Net's map post-processing on the NUS *val* split (never test).

    TORCH_HOME=cache/torch .venv/bin/python benchmarks/saliency_postprocess_val.py

Variants: a Gaussian blur of σ = b × the map's longer side, then a floor f added to the
[0, 1] map ((m + f) / (1 + f)). Prints mean NSS, CC, KL, SIM, AUC-Judd on val for each and
writes docs/saliency/postprocess_val.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from salface.saliency import get_saliency
from salface.saliency.evaluate import prepare, score_maps
from salface.saliency.fixations import load_nus, load_split
from salface.saliency.mlnet import postprocess

DATA = "../shared/data/nus-saliency"


def main() -> None:
    images = load_nus(DATA)
    data = prepare([images[i] for i in load_split()["val"]])
    model = get_saliency("mlnet", scene=True, blur=0.0, floor=0.0)
    raw = [model(d.rgb) for d in data]
    out = {}
    for b in (0.0, 0.02, 0.04, 0.06):
        for f in (0.0, 0.02, 0.05, 0.1):
            maps = [postprocess(m, b, f) for m in raw]
            rows = score_maps(data, maps)
            s = {k: float(np.mean([r[k] for r in rows])) for k in ("auc_judd", "nss", "cc", "kld", "sim")}
            out[f"blur={b},floor={f}"] = s
            print(f"blur {b:.2f} floor {f:.2f}: " + ", ".join(f"{k} {v:.3f}" for k, v in s.items()),
                  flush=True)
    Path("docs/saliency").mkdir(parents=True, exist_ok=True)
    Path("docs/saliency/postprocess_val.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
