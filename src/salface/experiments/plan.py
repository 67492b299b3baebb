"""The runs experiments 1-5 and the heads comparison need, whether each is done, and the time left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..training.cache import CropCache
from .cam import cam_specs
from .networks import backbone_specs
from .onoff import onoff_specs
from .ratios import ratio_specs
from .runs import _estimate_minutes, _open_cache
from .settings import Settings
from .sources import source_specs
from .two_heads import heads_specs


def plan(s: Settings, rate64: float = 107.0) -> dict[str, Any]:
    """The runs of experiments 1-5 (shared runs listed once), whether each is done, and the
    estimated training time at ``rate64`` training images/s at 64 px, scaled by pixel count for
    other sizes (MobileNetV2's measured 64 → 96 px ratio, 325 → 143 img/s, is 0.44 ≈ (64/96)²)."""
    groups = {"saliency-onoff": onoff_specs(s), "ratio-sweep": ratio_specs(s), "saliency-source": source_specs(s),
              "backbones": backbone_specs(s), "heads": heads_specs(s), "cam": cam_specs(s)}
    seen: set[str] = set()
    out: dict[str, Any] = {"experiments": {}, "total_minutes": 0.0, "todo_minutes": 0.0, "rate64": rate64}
    caches: dict[str, CropCache] = {}
    for name, specs in groups.items():
        rows = []
        for sp in specs:
            cc = caches.setdefault(sp.cache, _open_cache(sp.cache))
            rd = Path(s.runs_dir) / sp.name(cc.meta["key"])
            if rd.name in seen:
                continue
            seen.add(rd.name)
            minutes = _estimate_minutes(sp, cc, rate64)
            if (rd / "eval_test.json").exists():
                status, left = "done", 0.0
            elif (rd / "state.json").exists():
                ep = json.loads((rd / "state.json").read_text()).get("epoch", 0)
                status, left = f"{ep}/{sp.epochs} epochs", minutes * (1 - ep / sp.epochs)
            else:
                status, left = "to do", minutes
            rows.append({"run": rd.name, "status": status, "minutes": round(minutes, 1)})
            out["total_minutes"] += minutes
            out["todo_minutes"] += left
        out["experiments"][name] = rows
    out["total_minutes"] = round(out["total_minutes"], 1)
    out["todo_minutes"] = round(out["todo_minutes"], 1)
    return out
