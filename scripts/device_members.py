"""Train ensemble members on a lent GPU, in detached processes, and hand their weights back.

A lent GPU machine takes at most 64 MiB of tree a call, and the whole-split packs of both datasets
do not fit in one call. But a machine stays warm between calls, and a process that starts its own
session outlives the call that started it. So:

1. ``start`` (one call per pack): unpack the pack into ``cache/crops/<pack stem>`` (its decoded
   pixels checked), compute the ML-Net maps on the GPU, and start each ``--run`` as a detached
   ``salface train … --device cuda --threads 1`` (log in ``runs/<name>.log``); it returns at once.
2. ``collect`` (the last call): wait until every run has finished or ``--deadline`` seconds have
   passed since the first ``start``, then tar each run's records and best weights into
   ``$OUT/<name>.tar`` (one file a run: a file may hold at most 16 MiB). A run cut off by the
   deadline hands back its best epoch so far; its ``state.json`` says so.

A run is ``NAME:PRESET:PACK_STEM:SEED``. Usage (there)::

    SALFACE_COMMIT=<sha> TORCH_HOME=.device/torch EDGEFACE_WEIGHTS=.device/edgeface \\
        python3 scripts/device_members.py start --pack .device/utk96-trval-webp90.npz \\
        --run e1:edge-age-gender-long:utk96-trval-webp90:1
    python3 scripts/device_members.py collect --deadline 480

Back here: ``tar xf`` each returned file in the checkout; the runs land in ``runs/<name>``. The
commands are in docs/training.md ("Session 9").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
STATE = Path("runs/device_members.json")   # the started runs and the first start's time


def _load_state() -> dict:
    return json.loads(STATE.read_text()) if STATE.exists() else {"t0": time.time(), "runs": {}}


def start(args: argparse.Namespace) -> int:
    from salface.saliency import get_saliency
    from salface.training.cache import build_saliency_cache, unpack_cache

    state = _load_state()
    t0 = time.time()
    for pack in args.pack:
        cache = Path("cache/crops") / pack.stem
        cc = unpack_cache(pack, cache, progress=False)
        print(f"unpacked {len(cc)} crops into {cache} ({time.time() - t0:.1f}s); decoded pixels match the "
              f"packing machine's: {cc.meta['pack']['decoded_match']}", flush=True)
        build_saliency_cache(cc, "mlnet", batch=256, progress=False,
                             model=get_saliency("mlnet", device=args.device, backend="torch"))
        print(f"ML-Net maps for {cache} ({time.time() - t0:.1f}s)", flush=True)
    Path("runs").mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    for spec in args.run:
        name, preset, stem, seed = spec.split(":")
        out = Path("runs") / name
        cmd = [sys.executable, "-c", "from salface.cli import main; main()", "train", "--preset", preset,
               "--cache", f"cache/crops/{stem}", "--out", str(out), "--seed", seed, "--device", args.device,
               "--threads", "1", *args.train_args.split()]
        log = open(Path("runs") / f"{name}.log", "w")
        # a new session: the process outlives this call (the machine stays warm between calls)
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        state["runs"][name] = {"pid": p.pid, "preset": preset, "cache": stem, "seed": int(seed),
                               "started": time.time()}
        print(f"started {name}: {' '.join(cmd[3:])} (pid {p.pid})", flush=True)
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(state, indent=1))
    return 0


def _finished(name: str) -> bool:
    st = Path("runs") / name / "state.json"
    return st.exists() and bool(json.loads(st.read_text()).get("finished"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def collect(args: argparse.Namespace) -> int:
    state = _load_state()
    runs = state["runs"]
    out = Path(os.environ.get("OUT", "device-out"))
    out.mkdir(parents=True, exist_ok=True)
    last = 0.0
    while True:
        left = [n for n, r in runs.items() if not _finished(n) and _alive(r["pid"])]
        if not left or time.time() - state["t0"] > args.deadline:
            break
        if time.time() - last > 30:
            last = time.time()
            print(f"{time.time() - state['t0']:.0f}s: waiting for {', '.join(left)}", flush=True)
            for n in left:
                tail = (Path("runs") / f"{n}.log").read_text(errors="replace").strip().splitlines()[-1:]
                print(f"  {n}: {tail[0][:160] if tail else ''}", flush=True)
        time.sleep(5)
    for n, r in runs.items():
        if _alive(r["pid"]):
            os.killpg(r["pid"], 15)
            print(f"{n}: stopped at the deadline", flush=True)
    time.sleep(2)
    for n in runs:
        run = Path("runs") / n
        with tarfile.open(out / f"{n}.tar", "w") as tar:
            tar.add(Path("runs") / f"{n}.log", arcname=f"runs/{n}.log")
            for f in sorted(run.glob("*")):
                if f.is_file() and f.name not in ("last.safetensors", "ema.safetensors", "optimizer.pt"):
                    tar.add(f, arcname=str(f))
        print(f"{n}: finished {_finished(n)}, {(out / f'{n}.tar').stat().st_size / 2**20:.1f} MiB", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="unpack packs, compute their ML-Net maps, start runs detached")
    s.add_argument("--pack", type=Path, action="append", default=[])
    s.add_argument("--run", action="append", default=[], help="NAME:PRESET:PACK_STEM:SEED")
    s.add_argument("--device", default="cuda")
    s.add_argument("--train-args", default="", help="more `salface train` options for every run (e.g. a smoke "
                   "test's '--epochs 1 --max-steps 2')")
    c = sub.add_parser("collect", help="wait for the runs, tar each into $OUT/<name>.tar")
    c.add_argument("--deadline", type=float, default=480.0,
                   help="seconds after the first start at which unfinished runs are stopped")
    args = ap.parse_args()
    os.chdir(ROOT)
    return start(args) if args.cmd == "start" else collect(args)


if __name__ == "__main__":
    sys.exit(main())
