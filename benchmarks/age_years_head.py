"""How well a run's training-only age-in-years head (preset ``age_years``, session 19) reads ages.

The head is not part of the saved network; its weights sit beside it (``aux_age_years.safetensors``,
the last epoch's, for ``--resume``). This scores them with the last epoch's trunk on a split of the
run's crop cache: mean absolute error in years, and how often the group of the expected age
(``utk_age_to_group``, the rule the labels use) equals the label, beside the group head's accuracy on
the same faces with the same weights.

    python benchmarks/age_years_head.py runs/s19-years-s0 --split val --json cache/s19/years-head.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    import torch
    from safetensors.torch import load_file

    from salface.data.utkface import utk_age_to_group
    from salface.models.preprocess import to_input_tensor
    from salface.training.cache import open_crop_cache
    from salface.training.sampling import AgeYearsHead, expected_years, utkface_age_years
    from salface.training.train import _embed_features, load_run

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--split", default="val")
    ap.add_argument("--cache", default=None, help="crop cache (default: the run's)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    run = Path(a.run)
    model, config, _ = load_run(run, which="last")
    cc = open_crop_cache(a.cache or json.loads((run / "config.json").read_text())["cache"])
    head = AgeYearsHead(_embed_features(model))
    head.load_state_dict(load_file(str(run / "aux_age_years.safetensors")))
    model.eval(), head.eval()
    idx = cc.indices(a.split)
    paths = cc.paths
    years = np.array([utkface_age_years(paths[i]) for i in idx])
    groups = cc.task_labels("age")[idx]
    crops = np.asarray(cc.crops)
    maps = np.asarray(cc.saliency(config.saliency)) if config.saliency != "none" else None
    est, head_group = [], []
    with torch.inference_mode():
        for s in range(0, len(idx), 256):
            b = idx[s:s + 256]
            x = to_input_tensor(crops[b], maps[b] if maps is not None else None, config, "cpu")
            emb = model.embed(x)
            est.append(expected_years(head(emb)).numpy())
            head_group.append(model.heads(emb)["age"].argmax(1).numpy())
    est, head_group = np.concatenate(est), np.concatenate(head_group)
    ok = years >= 0
    from_years = np.array([utk_age_to_group(int(round(e))) for e in est])
    out = {"run": str(run), "split": a.split, "faces": int(ok.sum()), "weights": "last epoch",
           "mae_years": round(float(np.abs(est[ok] - years[ok]).mean()), 3),
           "group_of_expected_age_accuracy": round(float((from_years == groups)[groups >= 0].mean()), 4),
           "group_head_accuracy": round(float((head_group == groups)[groups >= 0].mean()), 4)}
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
