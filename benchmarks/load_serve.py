"""Load test of ``salface serve`` over loopback: good and bad uploads from concurrent clients.

    python benchmarks/load_serve.py [--clients 8] [--duration 60] [--bad-fraction 0.3]
                                    [--max-concurrent 2] [--max-queue 16] [--timeout 30]
                                    [--workers 1] [--seed 0] [--out docs/benchmarks/serve_load]

Starts ``salface serve`` in a subprocess on a free loopback port (its own settings from the
options above; everything else at the CLI's defaults), waits for ``/health``, then runs
``--clients`` asyncio clients (httpx, one keep-alive connection each) for ``--duration`` seconds.
Each client loops: pick an upload at random (seeded), POST it to ``/v1/analyze``, record status and
latency. Requests under way when the time is up are finished and counted.

Uploads (all made here from the scikit-image astronaut, no data needed):

* good: the astronaut as PNG and as JPEG (one face), two astronauts side by side (two faces), a
  flat grey image (no face) — each answer is checked against the answer fetched once before the
  run (same labels and face count); a different answer counts as *wrong*;
* bad, with the status each must get: random bytes (422), a truncated PNG (422), an empty body
  (400), a text/plain body (415), an upload over ``--max-upload-mb`` (413), a 48-megapixel PNG of
  a few KB over ``max_pixels`` (413).

A request is *lost* when the client gets no HTTP answer at all (connection error, or no answer
within the server's timeout + 30 s). The report gives throughput, p50/p95/p99 latency (all requests,
and good ones alone), counts of 2xx/4xx/5xx and lost, per upload kind the statuses seen, and the
server's resident memory before and after; it is written to ``<out>.json`` and ``<out>.md`` with
the machine and the commit. Run it ``nice -n 10`` on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shlex
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

try:
    from salface.utils import git_commit, machine
except ImportError:  # older tree
    from salface.evaluate import git_commit, machine


@dataclass(frozen=True)
class Payload:
    name: str
    good: bool
    data: bytes | None          # None: a body too large to keep; built from size on the fly
    ctype: str
    expect: int                 # the status it must get
    multipart: bool = True


def _encode(arr: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def payloads(max_upload_mb: float) -> list[Payload]:
    import skimage.data

    astro = np.ascontiguousarray(skimage.data.astronaut())
    png = _encode(astro, "PNG")
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, int((max_upload_mb + 1) * 1024 * 1024), np.uint8).tobytes()
    return [
        Payload("astronaut.png", True, png, "image/png", 200),
        Payload("astronaut.jpg", True, _encode(astro, "JPEG"), "image/jpeg", 200, multipart=False),
        Payload("two_faces.png", True, _encode(np.concatenate([astro, astro], 1), "PNG"), "image/png", 200),
        Payload("no_face.png", True, _encode(np.full((240, 320, 3), 128, np.uint8), "PNG"), "image/png", 200),
        Payload("garbage.jpg", False, rng.integers(0, 256, 20_000, np.uint8).tobytes(), "image/jpeg", 422),
        Payload("truncated.png", False, png[: len(png) // 2], "image/png", 422),
        Payload("empty.png", False, b"", "image/png", 400, multipart=False),
        Payload("notes.txt", False, b"not an image\n" * 50, "text/plain", 415, multipart=False),
        Payload("oversize.jpg", False, big, "image/jpeg", 413),
        Payload("48mp.png", False, _encode(np.zeros((6000, 8000), np.uint8), "PNG"), "image/png", 413),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    a = np.asarray(values) * 1000
    return {"p50": round(float(np.percentile(a, 50)), 1), "p95": round(float(np.percentile(a, 95)), 1),
            "p99": round(float(np.percentile(a, 99)), 1), "mean": round(float(a.mean()), 1),
            "max": round(float(a.max()), 1)}


def _labels(body: dict) -> list[tuple]:
    return [tuple((t, f[t]["label"]) for t in ("age", "gender", "expression") if t in f)
            for f in body.get("faces", [])]


async def send(client, p: Payload):
    if p.multipart:
        return await client.post("/v1/analyze", files={"file": (p.name, p.data, p.ctype)})
    return await client.post("/v1/analyze", content=p.data, headers={"content-type": p.ctype})


async def run_clients(url: str, items: list[Payload], n_clients: int, duration: float,
                      bad_fraction: float, seed: int, client_timeout: float,
                      reference: dict[str, list]) -> list[dict]:
    import httpx

    good = [p for p in items if p.good]
    bad = [p for p in items if not p.good]
    records: list[dict] = []
    stop_at = time.perf_counter() + duration

    async def client(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        async with httpx.AsyncClient(base_url=url, timeout=client_timeout) as c:
            while time.perf_counter() < stop_at:
                p = rng.choice(bad if rng.random() < bad_fraction else good)
                t0 = time.perf_counter()
                rec = {"client": k, "name": p.name, "good": p.good, "expect": p.expect}
                try:
                    r = await send(c, p)
                    rec["status"] = r.status_code
                    if p.good and r.status_code == 200:
                        rec["wrong"] = _labels(r.json()) != reference[p.name]
                    elif not p.good:
                        body = r.json()
                        rec["has_reason"] = bool(body.get("error")) and bool(body.get("detail"))
                except Exception as exc:  # no HTTP answer: lost
                    rec["status"] = None
                    rec["lost"] = f"{type(exc).__name__}: {exc}"
                rec["latency"] = time.perf_counter() - t0
                records.append(rec)

    await asyncio.gather(*(client(k) for k in range(n_clients)))
    return records


def start_server(args, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from salface.cli import main; main()", "serve",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
           "--max-concurrent", str(args.max_concurrent), "--max-queue", str(args.max_queue),
           "--timeout", str(args.timeout), "--max-upload-mb", str(args.max_upload_mb),
           "--log-level", "warning"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(url: str, proc: subprocess.Popen, limit: float = 300) -> dict:
    import httpx

    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        try:
            r = httpx.get(f"{url}/health", timeout=2)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError("the server did not answer /health in time")


def report(records: list[dict], items: list[Payload], wall: float, args, server: dict) -> dict:
    answered = [r for r in records if r["status"] is not None]
    classes = Counter(f"{r['status'] // 100}xx" for r in answered)
    good = [r for r in answered if r["good"]]
    bad = [r for r in answered if not r["good"]]
    per: dict[str, dict] = {}
    by_name = defaultdict(list)
    for r in records:
        by_name[r["name"]].append(r)
    for p in items:
        rs = by_name[p.name]
        per[p.name] = {"kind": "good" if p.good else "bad", "expect": p.expect, "n": len(rs),
                       "statuses": dict(Counter(str(r["status"]) for r in rs)),
                       "latency_ms": summary([r["latency"] for r in rs if r["status"] is not None])}
    return {
        "benchmark": "salface serve load test (loopback)",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git_commit(), "machine": machine(),
        "command": "python benchmarks/load_serve.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "settings": {"clients": args.clients, "duration_s": args.duration,
                     "bad_fraction": args.bad_fraction, "workers": args.workers,
                     "max_concurrent": args.max_concurrent, "max_queue": args.max_queue,
                     "timeout_s": args.timeout, "max_upload_mb": args.max_upload_mb, "seed": args.seed},
        "server": server,
        "wall_s": round(wall, 2),
        "requests": len(records),
        "throughput_rps": round(len(answered) / wall, 2),
        "good_throughput_rps": round(sum(r["status"] == 200 for r in good) / wall, 2),
        "latency_ms": {"all": summary([r["latency"] for r in answered]),
                       "good": summary([r["latency"] for r in good]),
                       "bad": summary([r["latency"] for r in bad])},
        "counts": {"2xx": classes.get("2xx", 0), "4xx": classes.get("4xx", 0),
                   "5xx": classes.get("5xx", 0), "lost": len(records) - len(answered)},
        "good_requests": len(good), "good_not_200": sum(r["status"] != 200 for r in good),
        "wrong_answers": sum(bool(r.get("wrong")) for r in good),
        "bad_requests": len(bad),
        "bad_all_4xx": all(400 <= r["status"] < 500 for r in bad),
        "bad_expected_status": sum(r["status"] == r["expect"] for r in bad),
        "bad_with_reason": sum(bool(r.get("has_reason")) for r in bad),
        "lost_examples": [r["lost"] for r in records if r.get("lost")][:5],
        "per_upload": per,
    }


def markdown(res: dict) -> str:
    s, c, lat = res["settings"], res["counts"], res["latency_ms"]
    lines = [
        "# `salface serve` load test (loopback)", "",
        f"- command: `{res['command']}` (run with `nice -n 10`)",
        f"- commit: `{res['commit']}`",
        f"- machine: {res['machine']} (a VM shared with other jobs)",
        f"- date: {res['date']}",
        f"- server: `salface serve --workers {s['workers']} --max-concurrent {s['max_concurrent']} "
        f"--max-queue {s['max_queue']} --timeout {s['timeout_s']:g} --max-upload-mb "
        f"{s['max_upload_mb']:g}` (other limits at their defaults), backend {res['server'].get('backend')}; "
        f"resident memory {res['server'].get('rss_mb_before')} MB after start-up, "
        f"{res['server'].get('rss_mb_after')} MB at the end",
        f"- load: {s['clients']} clients for {s['duration_s']:g} s, {100 * s['bad_fraction']:.0f} % bad "
        f"uploads, seed {s['seed']}", "",
        "| requests | throughput | good 200/s | 2xx | 4xx | 5xx | lost | wrong answers | bad uploads answered 4xx |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {res['requests']} | {res['throughput_rps']:.2f} req/s | {res['good_throughput_rps']:.2f} | "
        f"{c['2xx']} | {c['4xx']} | {c['5xx']} | {c['lost']} | {res['wrong_answers']} | "
        f"{res['bad_expected_status']}/{res['bad_requests']} with the expected status"
        f"{', all with a reason' if res['bad_with_reason'] == res['bad_requests'] else ''} |", "",
        "| latency (ms) | p50 | p95 | p99 | max |", "|---|---|---|---|---|",
    ]
    for k in ("all", "good", "bad"):
        v = lat[k]
        lines.append(f"| {k} requests | {v['p50']} | {v['p95']} | {v['p99']} | {v['max']} |")
    lines += ["", "| upload | kind | must get | requests | statuses seen | p50 ms | p95 ms |",
              "|---|---|---|---|---|---|---|"]
    for name, v in res["per_upload"].items():
        st = ", ".join(f"{k}: {n}" for k, n in sorted(v["statuses"].items()))
        lines.append(f"| `{name}` | {v['kind']} | {v['expect']} | {v['n']} | {st} | "
                     f"{v['latency_ms']['p50']} | {v['latency_ms']['p95']} |")
    lines += ["", "Latency is measured by the client, from sending the request to the full answer, "
              "so it includes waiting in the server's queue (at most `max_concurrent` requests "
              "are analysed at once; with more clients than that, the rest wait their turn)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--bad-fraction", type=float, default=0.3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-concurrent", type=int, default=2)
    ap.add_argument("--max-queue", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--max-upload-mb", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "serve_load"))
    args = ap.parse_args()

    import httpx

    items = payloads(args.max_upload_mb)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args, port)
    try:
        health = wait_ready(url, proc)
        models = httpx.get(f"{url}/v1/models", timeout=10).json()
        reference = {}
        for p in items:  # one answer per good upload, fetched before the load
            if p.good:
                r = asyncio.run(_once(url, p))
                if r.status_code != 200:
                    raise RuntimeError(f"{p.name}: {r.status_code} {r.text}")
                reference[p.name] = _labels(r.json())
        server = {"pid": health["pid"], "backend": models.get("backend"),
                  "rss_mb_before": rss_mb(proc.pid)}
        t0 = time.perf_counter()
        records = asyncio.run(run_clients(url, items, args.clients, args.duration,
                                          args.bad_fraction, args.seed, args.timeout + 30, reference))
        wall = time.perf_counter() - t0
        server["rss_mb_after"] = rss_mb(proc.pid)
        after = httpx.get(f"{url}/health", timeout=10).json()
        server.update(alive_after=after["status"] == "ok", refused_503=after["refused"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    res = report(records, items, wall, args, server)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    md = markdown(res)
    out.with_suffix(".md").write_text(md)
    print(md)
    ok = (res["counts"]["lost"] == 0 and res["counts"]["5xx"] == 0 and res["bad_all_4xx"]
          and res["wrong_answers"] == 0 and res["good_not_200"] == 0)
    return 0 if ok else 1


async def _once(url: str, p: Payload):
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        return await send(c, p)


if __name__ == "__main__":
    sys.exit(main())
