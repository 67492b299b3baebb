"""Weight interpolation between two runs of one network ("WiSE-FT", Wortsman et al. 2022).

A model fine-tuned for robustness from a starting model lies in the same basin as it, so the
straight line between their weights, ``(1 − α) · A + α · B``, is a family of models between the
two: α = 0 is A, α = 1 is B. Intermediate α often keep most of B's robustness at A's clean
accuracy. :func:`interpolate_runs` writes that model as a run folder (``best.safetensors``,
``config.json`` from B with the recipe recorded) so ``salface evaluate`` / ``ship`` treat it like
any run; α is chosen on val like any other setting.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def interpolate_runs(run_a: str | Path, run_b: str | Path, alpha: float, out_dir: str | Path) -> Path:
    """``(1 − alpha) · A + alpha · B`` of two runs' best weights (same network) into ``out_dir``."""
    from safetensors.numpy import load_file, save_file

    from ..hub import sha256_file
    from ..utils import atomic_write_json

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    a_dir, b_dir, out = Path(run_a), Path(run_b), Path(out_dir)
    wa, wb = load_file(str(a_dir / "best.safetensors")), load_file(str(b_dir / "best.safetensors"))
    if wa.keys() != wb.keys() or any(wa[k].shape != wb[k].shape for k in wa):
        raise ValueError(f"{a_dir} and {b_dir} are not the same network (keys or shapes differ)")
    ca, cb = (json.loads((d / "config.json").read_text()) for d in (a_dir, b_dir))
    for k in ("backbone", "tasks", "input_size", "color", "saliency", "ratio", "crop_mode", "margin"):
        if ca["classifier"].get(k) != cb["classifier"].get(k):
            raise ValueError(f"{a_dir} and {b_dir} differ in {k}: {ca['classifier'].get(k)!r} vs {cb['classifier'].get(k)!r}")
    mixed = {}
    for k, va in wa.items():
        vb = wb[k]
        if np.issubdtype(va.dtype, np.floating):
            mixed[k] = ((1.0 - alpha) * va.astype(np.float64) + alpha * vb.astype(np.float64)).astype(va.dtype)
        else:  # integer buffers (BatchNorm's batch counters): B's
            mixed[k] = vb
    out.mkdir(parents=True, exist_ok=True)
    save_file(mixed, str(out / "best.safetensors"))
    cfg = dict(cb)
    cfg["classifier"] = {**cb["classifier"], "name": out.name}
    cfg["soup"] = {"a": str(a_dir), "b": str(b_dir), "alpha": alpha,
                   "a_sha256": sha256_file(a_dir / "best.safetensors"),
                   "b_sha256": sha256_file(b_dir / "best.safetensors")}
    st_b = json.loads((b_dir / "state.json").read_text()) if (b_dir / "state.json").exists() else {}
    atomic_write_json(out / "config.json", cfg)
    atomic_write_json(out / "state.json", {**st_b, "soup_alpha": alpha})
    return out


__all__ = ["interpolate_runs"]
