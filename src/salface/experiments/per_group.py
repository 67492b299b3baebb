"""Experiment 6 (fairness): accuracy per UTKFace race, gender and age group; expression per class."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..training.cache import open_crop_cache
from ..evaluation.reports import pyplot
from ..labels import labels_for
from ..backends.torch import resolve_device
from .report import _pct, _savefig, write_experiment
from .settings import Settings, _limit
from .views import ensure_saliency, subset_index


def _group_table(title: str, groups: dict[str, np.ndarray], correct: np.ndarray) -> tuple[list[str], dict]:
    rows = [f"| {title} | n | accuracy |", "|---|---|---|"]
    data = {}
    for g, m in groups.items():
        n = int(m.sum())
        acc = float(correct[m].mean()) if n else None
        data[g] = {"n": n, "accuracy": acc}
        rows.append(f"| {g} | {n} | {_pct(acc)} |")
    sizes = [v["n"] for v in data.values() if v["n"]]
    if sizes:
        small = min(data, key=lambda g: data[g]["n"] if data[g]["n"] else 1 << 60)
        accs = [v["accuracy"] for v in data.values() if v["n"]]
        rows.append(f"\nSmallest group: {small} (n = {data[small]['n']}); gap between best and worst group: "
                    f"{100 * (max(accs) - min(accs)):.2f} pp.")
    return rows, data


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60]


def _group_figure(data: dict[str, dict[str, Any]], title: str, path: Path) -> str:
    """Bar chart of accuracy per group, each bar labelled with the group's size."""
    plt = pyplot()
    names = [g for g, v in data.items() if v["n"]]
    accs = [100 * data[g]["accuracy"] for g in names]
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(names), 3.2))
    ax.bar(range(len(names)), accs, color="tab:purple")
    for i, g in enumerate(names):
        ax.text(i, accs[i] + 1, f"n={data[g]['n']}", ha="center", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=8)
    return _savefig(fig, path)


def fairness(s: Settings, run_dirs: Sequence[str | Path] = (), shipped: bool = True) -> Path:
    """Experiment 6: per-group accuracy of the shipped models (and/or training runs) on the test
    split of their dataset's cache: UTKFace race × task, gender, age group; FER+ per class."""
    from ..data.utkface import UTK_RACES, parse_utk_name
    from ..training.scoring import predict_arrays, task_metrics
    from ..training.train import load_run

    t0 = time.time()
    device = resolve_device(s.device)
    models: list[tuple[str, Any, Any]] = []
    if shipped:
        from ..models.registry import list_classifiers, load_classifier

        for name in list_classifiers():
            net, cfg = load_classifier(name, device=device)
            models.append((f"bundled `{name}`", net, cfg))
    for rd in run_dirs:
        net, cfg, _ = load_run(rd, "best", device=device)
        models.append((f"run `{Path(rd).name}`", net, cfg))
    if not models:
        raise ValueError("no shipped classifier found and no --run given: train and ship the default models "
                         "first (`salface ship`), or pass run folders")
    body: list[str] = []
    payload: dict[str, Any] = {"models": {}}
    summary: list[str] = []
    for label, net, cfg in models:
        is_utk = any(t in cfg.tasks for t in ("age", "gender"))
        cc = open_crop_cache(s.utk_cache if is_utk else s.fer_cache)
        if cc.size != cfg.input_size or cc.color != cfg.color:
            raise ValueError(f"{label} wants {cfg.input_size} px {cfg.color} crops; {cc.root} holds "
                             f"{cc.size} px {cc.color}")
        te = subset_index(cc, {"train": 0, "val": 0, "test": _limit(s.test_limit, None)})
        ensure_saliency(cc, cfg.saliency, s.log, s.progress, device)
        maps = np.asarray(cc.saliency(cfg.saliency)[te]) if cfg.saliency != "none" else None
        tta = bool(cfg.extra.get("tta_flip", False))   # as the model runs in `analyze`
        probs = predict_arrays(net, cfg, np.asarray(cc.crops[te]), maps, tta_flip=tta, device=device)
        body += [f"## {label} ({cfg.backbone}, {cfg.input_size} px {cfg.color}, saliency {cfg.saliency} "
                 f"r = {cfg.ratio}{', flip TTA' if tta else ''})", "",
                 f"Test split of `{cc.root.name}`: {len(te)} faces.", ""]
        entry: dict[str, Any] = {}
        paths = cc.paths
        for t in cfg.tasks:
            if t not in cc.tasks:
                continue
            y = cc.task_labels(t)[te]
            keep = y >= 0
            pred = probs[t].argmax(1)
            correct = (pred == y)
            entry[t] = {"overall": task_metrics(t, y, pred)["accuracy"]}
            if is_utk:
                race = np.array([(parse_utk_name(Path(paths[i]).name) or {}).get("race") for i in te], dtype=object)
                groups = {"race": {UTK_RACES[k]: keep & (race == k) for k in range(len(UTK_RACES))}}
                if "race" in groups and np.any(race == None):  # noqa: E711  (names without a race field)
                    groups["race"]["(unknown)"] = keep & (race == None)  # noqa: E711
                for other in ("gender", "age"):
                    if other in cc.tasks:
                        yo = cc.task_labels(other)[te]
                        groups[other] = {n: keep & (yo == k) for k, n in enumerate(labels_for(other))}
            else:
                groups = {"class": {n: keep & (y == k) for k, n in enumerate(labels_for(t))}}
            entry[t]["groups"] = {}
            body += [f"### {t}: overall {_pct(entry[t]['overall'])}", ""]
            for gname, g in groups.items():
                rows, data = _group_table(f"{t} accuracy by {gname}", g, correct)
                entry[t]["groups"][gname] = data
                body += rows + [""]
                if gname in ("race", "class"):
                    summary += [f"**{label}, {t} by {gname}**", ""] + rows + [""]
                    png = _group_figure(data, f"{label.split('`')[1] if '`' in label else label}: {t} by {gname}",
                                        Path(s.out_dir) / "fairness" / f"{_slug(label)}_{t}_{gname}.png")
                    body += [f"![{t} accuracy by {gname}]({png})", ""]
        payload["models"][label] = entry
    body += ["UTKFace race labels as the file names give them (white, black, asian, indian, others); the "
             "papers report no per-group numbers."]
    return write_experiment("fairness", s, "Experiment 6 — accuracy per group", body, payload, time.time() - t0,
                            {"models": [m[0] for m in models]}, summary=summary)
