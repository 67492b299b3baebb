"""Give training runs the shipped classifiers' eye levelling (``config.align``, ``align_min_tilt``).

Runs trained on a cache of upright crops record ``align = False``, while every shipped classifier
levels eye lines tilted 10° or more (session 17, ``salface models set-align``). ``salface
ensemble`` needs its members to share the crop, so a candidate member paired with a shipped one
gets the same setting first. Scores on a crop cache do not change (its crops are already cut);
the pipeline, when the run is shipped, then levels tilted faces as the shipped models do.

    python benchmarks/run_align.py runs/s19-ctrl-s0 runs/s19-years-s0 --min-tilt 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    from salface.utils import atomic_write_json

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--min-tilt", type=float, default=10.0)
    a = ap.parse_args()
    for run in a.runs:
        p = Path(run) / "config.json"
        cfg = json.loads(p.read_text())
        cfg["classifier"]["align"] = True
        cfg["classifier"]["align_min_tilt"] = a.min_tilt
        atomic_write_json(p, cfg)
        print(f"{run}: align on from {a.min_tilt:g} degrees")


if __name__ == "__main__":
    main()
