"""How fast could salface be on these cores? The per-stage cost against issue 13's 5× goal.

    python benchmarks/speed_budget.py [--peer docs/benchmarks/peer_speed.json]
        [--stages docs/benchmarks/pipeline_speed_utk448.json] [--out docs/benchmarks/speed_budget]

Reads two committed measurements and does arithmetic on them, nothing else:

* ``--peer``: `bench_peer.py`'s report; the faster peer configuration's faces/s on the ``utk448``
  set (whole processes) and so the faces/s that 5× of it means;
* ``--stages``: `bench_pipeline.py`'s per-stage times on the same 448-px photos, in one process
  after start-up (``python benchmarks/bench_pipeline.py --images cache/bench_photos/utk448
  --detector yunet --limit 300 --out docs/benchmarks/pipeline_speed_utk448.json``).

It then gives the faces/s salface would reach (a) as measured in one process, (b) if decoding and
detection cost nothing (only the networks: crop, ML-Net, the classifiers), and (c) if, in addition,
the classifiers cost nothing (ML-Net alone), each with its ratio to the peer. Stage times are wall
times with the networks on both cores, so (b) and (c) are upper bounds on any amount of overlap.
Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 5.0


def budget(peer: dict, stages: dict, set_name: str = "utk448") -> dict:
    """The arithmetic, from the two reports (see the module docstring)."""
    s = peer["sets"][set_name]
    best = s["best_peer"]
    peer_fps = s["configs"][best]["summary"]["faces_per_s"]["median"]
    st = stages["stages"]
    ms = {k: st[k]["ms_per_face"] for k in ("decode", "detect", "crop", "saliency", "classify")}
    rows = {
        "measured, one process after start-up": st["end_to_end"]["ms_per_face"],
        "decode and detection free (crop + ML-Net + classifiers)": ms["crop"] + ms["saliency"] + ms["classify"],
        "decode, detection and classifiers free (crop + ML-Net)": ms["crop"] + ms["saliency"],
    }
    out = {"set": set_name, "peer": best, "peer_faces_per_s": peer_fps, "goal_ratio": GOAL,
           "goal_faces_per_s": round(GOAL * peer_fps, 1), "stage_ms_per_face": ms,
           "stage_commit": stages.get("commit"), "peer_commit": peer.get("commit"), "cases": {}}
    for name, v in rows.items():
        fps = 1000.0 / v
        out["cases"][name] = {"ms_per_face": round(v, 3), "faces_per_s": round(fps, 1),
                              "ratio_to_peer": round(fps / peer_fps, 2)}
    return out


def markdown(b: dict, peer_path: Path, stages_path: Path, command: str) -> str:
    ms = b["stage_ms_per_face"]
    lines = [
        "# Speed budget: what 5× the peer asks of each stage", "",
        f"Command: `{command}`. Inputs: `{peer_path}` (whole processes, commit `{b['peer_commit']}`) and "
        f"`{stages_path}` (per-stage wall time in one process, both cores, commit `{b['stage_commit']}`), "
        f"both on the `{b['set']}` photos (300 UTKFace test faces at 448 px).", "",
        f"The faster peer configuration ({b['peer']}) runs at **{b['peer_faces_per_s']} faces/s**, so "
        f"issue 13's {b['goal_ratio']:.0f}× is **{b['goal_faces_per_s']} faces/s** = "
        f"{1000 / b['goal_faces_per_s']:.2f} ms of wall time per face on the two cores.", "",
        "Measured stage costs, ms per face: " + ", ".join(f"{k} {v:.3f}" for k, v in ms.items()) + ".", "",
        "| case | ms per face | faces/s | × the peer |", "|---|---|---|---|"]
    for name, c in b["cases"].items():
        lines.append(f"| {name} | {c['ms_per_face']:.3f} | {c['faces_per_s']:.0f} | {c['ratio_to_peer']:.2f}× |")
    lines += ["", "Whole processes are slower still (start-up, and on a 300-photo folder it weighs). "
              "The rows below the first are bounds: no overlap of threads can beat them.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", type=Path, default=ROOT / "docs" / "benchmarks" / "peer_speed.json")
    ap.add_argument("--stages", type=Path, default=ROOT / "docs" / "benchmarks" / "pipeline_speed_utk448.json")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "speed_budget")
    args = ap.parse_args(argv)
    b = budget(json.loads(args.peer.read_text()), json.loads(args.stages.read_text()))
    command = "python benchmarks/speed_budget.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = markdown(b, args.peer.relative_to(ROOT) if args.peer.is_relative_to(ROOT) else args.peer,
                  args.stages.relative_to(ROOT) if args.stages.is_relative_to(ROOT) else args.stages,
                  command.strip())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(b, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
