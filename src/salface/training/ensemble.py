"""Training runs combined into one ensemble run folder (:mod:`salface.models.ensemble`).

:func:`ensemble_runs` writes ``best.safetensors`` (each member's best weights under
``members.<i>.``), ``config.json`` (the ensemble's classifier config with the members' configs,
the first run's preset, the cache of the first run at the ensemble's input size) and
``state.json``, so ``salface evaluate``, ``robustness``
scratch bundles and ``ship`` treat the ensemble like any run. Member weights, like any setting,
are chosen on val.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence


def ensemble_runs(runs: Sequence[str | Path], out_dir: str | Path, *, tasks: Sequence[str] | None = None,
                  weights: Sequence[float] | None = None, input_size: int | None = None) -> Path:
    """Combine the best weights of ``runs`` (networks on the same crop, possibly at different input
    sizes; the ensemble's crop is the largest member's, or ``input_size``) into run folder
    ``out_dir``."""
    from safetensors.numpy import load_file, save_file

    from ..hub import sha256_file
    from ..models.config import ClassifierConfig
    from ..models.ensemble import ensemble_config
    from ..utils import atomic_write_json

    dirs = [Path(r) for r in runs]
    if len(dirs) < 2:
        raise ValueError("an ensemble needs at least two runs")
    if weights is not None and len(weights) != len(dirs):
        raise ValueError(f"{len(weights)} weights for {len(dirs)} runs")
    cfgs, tensors, members = [], {}, []
    for i, d in enumerate(dirs):
        wp = d / "best.safetensors"
        if not (d / "config.json").is_file() or not wp.is_file():
            raise FileNotFoundError(f"{d} is not a finished training run (config.json and best.safetensors)")
        c = json.loads((d / "config.json").read_text())
        cfg = ClassifierConfig.from_dict(c["classifier"])
        cfgs.append((c, cfg))
        for k, v in load_file(str(wp)).items():
            tensors[f"members.{i}.{k}"] = v
        members.append({"run": str(d), "sha256": sha256_file(wp), "backbone": cfg.backbone})
    first, first_cfg = cfgs[0]
    out = Path(out_dir)
    config = ensemble_config(out.name, [c for _, c in cfgs], tasks, weights,
                             extra={"tta_flip": bool(first_cfg.extra.get("tta_flip", False))},
                             input_size=input_size)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "best.safetensors"))
    preset = {**first["preset"], "name": "ensemble", "backbone": "ensemble", "tasks": list(config.tasks),
              "notes": "ensemble of " + ", ".join(f"{m['run']} ({m['backbone']})" for m in members)}
    # the crop cache the ensemble is evaluated on: the first run's at the ensemble's input size
    # (none at another size: `salface evaluate --cache` names one)
    cache = next((c.get("cache") for c, cfg in cfgs if cfg.input_size == config.input_size), None)
    atomic_write_json(out / "config.json", {"preset": preset, "classifier": config.to_dict(),
                                            "cache": cache,
                                            "ensemble": {"members": members, "weights": list(weights or [])}})
    atomic_write_json(out / "state.json", {"ensemble": [m["run"] for m in members], "finished": True})
    return out


__all__ = ["ensemble_runs"]
