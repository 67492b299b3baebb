"""Experiment 4: backbones (MobileNetV2, GilNet, AlexNet and its GAP variant, VGG-16) on one task."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from ..evaluation.reports import pyplot
from .report import _pct, _runs_time, _savefig, _subset_text, write_experiment
from .runs import RunSpec, _spec, _task_of, run_one, train_runs
from .settings import PAPER, Settings

BACKBONE_SET = ("mobilenet_v2", "gilnet", "alexnet", "alexnet_gap", "vgg16")


def backbone_specs(s: Settings, dataset: str = "utkface", names: Sequence[str] = ()) -> list[RunSpec]:
    """The recipe's own backbone (MobileNetV2) gets ``backbone=None`` so that its run is the one
    the ratio sweep and the saliency-source experiment train too."""
    from ..training.presets import get_preset

    task = _task_of(dataset)
    own = get_preset("default", (task,)).backbone
    return [_spec(s, dataset, tasks=(task,), backbone=None if b == own else b, seed=s.seeds[0])
            for b in (names or [b for b in BACKBONE_SET if b != "vgg16"])]


def backbones(s: Settings, dataset: str = "utkface", names: Sequence[str] | None = None) -> Path:
    """Experiment 4: backbones on gender with saliency at r = 0.3 (VGG-16 only when its ImageNet
    weights are in the torch cache, unless asked for by name)."""
    from ..models.backbones import _have_weights

    t0 = time.time()
    task = _task_of(dataset)
    if names is None:
        names = [b for b in BACKBONE_SET if b != "vgg16" or _have_weights("vgg16")]
    specs = backbone_specs(s, dataset, names)
    train_runs(specs, s)
    runs = {b: run_one(sp, s) for b, sp in zip(names, specs)}
    rows = ["| backbone | ImageNet weights? | parameters | test accuracy | s / epoch | paper (Adience gender; "
            "different data) |", "|---|---|---|---|---|---|"]
    for b, r in runs.items():
        pre = "yes (ImageNet)" if r.info["pretrained"] else "no (from scratch)"
        paper = PAPER["backbones"].get(b.replace("_gap", ""), "–") if b != "alexnet_gap" else "– (CAM variant)"
        rows.append(f"| {b} | {pre} | {r.info['params'] / 1e6:.2f} M | {_pct(r.metrics[task]['accuracy'])} | "
                    f"{r.info['epoch_seconds']:.0f} | {paper} |")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar(range(len(runs)), [100 * r.metrics[task]["accuracy"] for r in runs.values()], color="tab:green")
    ax.set_xticks(range(len(runs)), [f"{b}\n({'IN' if r.info['pretrained'] else 'scratch'})"
                                     for b, r in runs.items()], fontsize=8)
    ax.set_ylabel(f"test accuracy (%), {task}")
    png = _savefig(fig, Path(s.out_dir) / "backbones" / "accuracy.png")
    first = next(iter(runs.values()))
    body = rows + ["", f"![accuracy per backbone]({png})", "", "Subset: " + _subset_text(first.spec, first),
                   "", f"Paper: {PAPER['backbones']['source']}. Here every backbone gets the same recipe, "
                   "epochs and input size; the ones without ImageNet weights here start from random weights "
                   "(no layer frozen), which the papers never did."]
    payload = {"task": task, "backbones": {b: {"accuracy": r.metrics[task]["accuracy"], **r.info}
                                            for b, r in runs.items()}}
    return write_experiment("backbones", s, f"Experiment 4 — backbones ({dataset} {task})", body, payload,
                            time.time() - t0, {"seed": s.seeds[0], "runs": _runs_time(list(runs.values()))},
                            summary=rows)
