"""Training throughput on this machine's CPU cores: one run with all threads against several
one-thread runs side by side (what ``salface experiment --jobs N`` does).

    python benchmarks/train_throughput.py [--size 96] [--batch 64] [--steps 15]

The training step of the default age-gender recipe (MobileNetV2, first two blocks frozen,
channels-last memory as in ``salface.training.train``, AdamW) on random batches at ``--size`` px, so data
loading is left out: this measures only how well the
network's forward and backward passes use the cores. Each configuration runs in fresh processes;
the first 3 steps are warm-up. Writes ``docs/benchmarks/train_throughput.json``. Run it with
nothing else busy on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import sys, time, torch, torchvision
threads, size, batch, steps = (int(v) for v in sys.argv[1:5])
torch.manual_seed(0)
torch.set_num_threads(threads)
m = torchvision.models.mobilenet_v2(num_classes=8)
for p in m.features[:2].parameters():
    p.requires_grad_(False)
m = m.to(memory_format=torch.channels_last)
opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], 1e-3)
x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 8, (batch,))
def step():
    opt.zero_grad()
    torch.nn.functional.cross_entropy(m(x), y).backward()
    opt.step()
for _ in range(3):
    step()
t0 = time.perf_counter()
for _ in range(steps):
    step()
print(steps * batch / (time.perf_counter() - t0))
"""


def run(procs: int, threads: int, size: int, batch: int, steps: int) -> list[float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    ps = [subprocess.Popen([sys.executable, "-c", WORKER, str(threads), str(size), str(batch), str(steps)],
                           stdout=subprocess.PIPE, text=True, env=env) for _ in range(procs)]
    out = []
    for p in ps:
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"worker failed with exit code {p.returncode}")
        out.append(float(stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    from salface.utils import command_line, git_commit, machine

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "train_throughput.json")
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    configs = [(1, cores), (1, 1)] + ([(cores, 1)] if cores > 1 else [])
    rows = []
    for procs, threads in configs:
        rates = run(procs, threads, a.size, a.batch, a.steps)
        rows.append({"processes": procs, "threads_each": threads, "img_per_s_each": [round(r, 1) for r in rates],
                     "img_per_s_total": round(sum(rates), 1)})
        print(f"{procs} process(es) × {threads} thread(s): {sum(rates):.1f} training images/s in all")
    base = rows[0]["img_per_s_total"]
    for r in rows:
        r["speedup_vs_one_run_all_threads"] = round(r["img_per_s_total"] / base, 2)
    res = {"benchmark": "train_throughput", "command": command_line("python benchmarks/train_throughput.py"),
           "commit": git_commit(), "machine": machine(), "cores": cores,
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "model": "mobilenet_v2, features[:2] frozen, channels_last, AdamW, random batches", "input_size": a.size,
           "batch": a.batch, "steps": a.steps, "results": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"→ {a.out}")


if __name__ == "__main__":
    main()
