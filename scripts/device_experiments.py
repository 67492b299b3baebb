"""Train the experiments' runs on a lent GPU and hand the finished runs back.

This workplace can lend a GPU machine for a few minutes (the ``device`` tool: a copy of the tree
travels, at most 64 MiB a call, ``../shared`` does not, nothing outlives the session). So the
caches travel as packs (``salface cache pack``), and this script, run there, does:

1. unpack the pack into ``cache/crops/<pack name>`` (checking the decoded pixels' SHA-256);
2. train every run of the experiments on those datasets, ``--jobs`` at a time on the GPU
   (:func:`salface.experiments.train_runs`; each run is evaluated on the test split when done);
3. every ``--every`` seconds, and at the end, tar the finished runs' records (metrics, test
   predictions, config; no weights) into ``$OUT/runs.tgz``, so that a run cut off by
   the call's time limit still returns what finished; the best weights of the runs the CAM
   experiment explains go to ``$OUT/weights_<k>.tar``, one file each.

Back here, ``tar xzf`` the archive into the checkout, unpack the same pack into the same cache
folder (``salface cache unpack``), and the ``salface experiment …`` commands reuse the finished
runs (same cache key, same run names) and write the reports. Runs record the machine, device and
commit they were trained on (``$SALFACE_COMMIT`` where the copy has no git repository).

Usage (there): ``SALFACE_COMMIT=<sha> TORCH_HOME=.device/torch python3 scripts/device_experiments.py
--utk-pack .device/utkface-96-rgb-webp95.npz --fer-pack .device/ferplus-96-gray-webp90.npz``;
``--tiny`` for a smoke run of a few seconds. The commands that made the packs and read the results
back are in docs/experiments/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _records(runs_dir: Path, out: Path, name: str) -> None:
    """Tar the runs' small files (no weights, no optimizer state) atomically into ``out/name``."""
    from salface.utils import atomic_path

    with atomic_path(out / name) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for f in sorted(runs_dir.rglob("*")):
            if f.is_file() and f.suffix not in (".safetensors", ".pt", ".lock") and ".locks" not in f.parts:
                tar.add(f, arcname=str(f))


def specs_for(dataset: str, s):
    from salface import experiments as ex

    if dataset == "utkface":
        return (ex.onoff_specs(s, ("utkface",)) + ex.ratio_specs(s, "utkface") + ex.source_specs(s, "utkface")
                + ex.backbone_specs(s, "utkface") + ex.heads_specs(s) + [ex.cam_specs(s)[2]])
    return ex.onoff_specs(s, ("ferplus",)) + ex.ratio_specs(s, "ferplus")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utk-pack", type=Path, help="Pack of the UTKFace crop cache (age, gender).")
    ap.add_argument("--fer-pack", type=Path, help="Pack of the FER+ crop cache (expression).")
    ap.add_argument("--fer-full-pack", type=Path, help="Pack of the whole FER+ cache: experiment 1 on FER+ at full "
                    "size (whole train and val splits, --fer-full-epochs epochs: the shipped recipe).")
    ap.add_argument("--fer-full-epochs", type=int, default=20)
    ap.add_argument("--seeds", default="0,1,2", help="Comma-separated seeds.")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "device-out")))
    ap.add_argument("--runs-dir", type=Path, default=Path("runs/experiments"))
    ap.add_argument("--every", type=float, default=20.0, help="Seconds between snapshots of the finished runs.")
    ap.add_argument("--tiny", action="store_true", help="Smoke run: a few faces, one epoch of two batches.")
    args = ap.parse_args()
    os.chdir(ROOT)                      # run names, caches and archive paths are relative to the checkout
    packs = {d: p for d, p in (("utkface", args.utk_pack), ("ferplus", args.fer_pack)) if p is not None}
    if not packs and args.fer_full_pack is None:
        ap.error("give --utk-pack, --fer-pack and/or --fer-full-pack")

    from salface.training.cache import unpack_cache
    from salface.experiments import Settings, cam_specs, onoff_specs, train_runs

    t0 = time.time()
    kw = {"runs_dir": args.runs_dir, "jobs": args.jobs, "progress": False,
          "command": "scripts/device_experiments.py",
          "seeds": tuple(int(x) for x in args.seeds.split(",") if x.strip())}
    keys = {}
    for dataset, pack in packs.items():
        cache = Path("cache/crops") / pack.stem
        cc = unpack_cache(pack, cache, progress=False)
        keys[dataset] = cc.meta["key"]
        kw["utk_cache" if dataset == "utkface" else "fer_cache"] = cache
        print(f"unpacked {len(cc)} crops into {cache} ({time.time() - t0:.1f}s); "
              f"decoded pixels match the packing machine's: {cc.meta['pack']['decoded_match']}", flush=True)
    s = Settings.tiny(**kw) if args.tiny else Settings(**kw)
    specs = [sp for d in packs for sp in specs_for(d, s)]
    if args.fer_full_pack is not None:
        cache = Path("cache/crops") / args.fer_full_pack.stem
        cc = unpack_cache(args.fer_full_pack, cache, progress=False)
        print(f"unpacked {len(cc)} crops into {cache}; decoded pixels match: {cc.meta['pack']['decoded_match']}",
              flush=True)
        full = replace(s, fer_cache=cache, epochs=args.fer_full_epochs,
                       **({} if args.tiny else {"train_limit": None, "val_limit": None}))
        specs = onoff_specs(full, ("ferplus",)) + specs
    args.out.mkdir(parents=True, exist_ok=True)
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def snapshots() -> None:
        while not stop.wait(args.every):
            _records(args.runs_dir, args.out, "runs.tgz")

    th = threading.Thread(target=snapshots, daemon=True)
    th.start()
    err = 0
    try:
        train_runs(specs, s)
    except Exception as exc:  # noqa: BLE001 - report, still hand back what finished
        print(f"error: {exc}", flush=True)
        err = 1
    stop.set()
    th.join()
    _records(args.runs_dir, args.out, "runs.tgz")
    # the best weights of the runs experiment 5 (CAMs) explains, one file each (≤ 16 MiB a file)
    for k, sp in enumerate(sp for sp in cam_specs(s) if sp.dataset in packs):
        best = args.runs_dir / sp.name(keys[sp.dataset]) / "best.safetensors"
        if best.exists():
            with tarfile.open(args.out / f"weights_{k}.tar", "w") as tar:
                tar.add(best, arcname=str(best))
    done = sum(1 for _ in args.runs_dir.glob("*/eval_test.json"))
    print(f"{done} finished runs in {args.runs_dir}; {time.time() - t0:.0f}s in all", flush=True)
    return err


if __name__ == "__main__":
    sys.exit(main())
