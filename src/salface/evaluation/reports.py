"""Reports: confusion-matrix heat maps and training curves (PNG), and dated Markdown + JSON reports
tied to a commit, machine and command — one run's (:func:`write_report`) or several side by side
with paired tests (:func:`write_comparison`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..utils import git_commit, machine, optional_import
from .stats import compare_paired


def pyplot():
    """matplotlib's ``pyplot`` on the non-interactive Agg backend (a clear error naming the
    ``train`` extra when matplotlib is not installed)."""
    matplotlib = optional_import("matplotlib", "train", "drawing report figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    pyplot().close(fig)
    return path


def plot_confusion(cm: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path,
                   title: str = "") -> Path:
    """Row-normalised confusion-matrix heat map (counts written in the cells) as PNG."""
    plt = pyplot()

    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * k, 0.8 + 0.7 * k), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return _save(fig, path)


def plot_curves(history: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Training loss and validation accuracies per epoch (from ``metrics.json``) as PNG."""
    plt = pyplot()

    if not history:
        raise ValueError("no epochs to plot")
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    a1.plot(ep, [h["train_loss"] for h in history], marker="o", label="train loss")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend()
    for k in sorted(history[-1]):
        if k.startswith("val_") and k.endswith("accuracy"):
            a2.plot(ep, [h.get(k) for h in history], marker="o", label=k[4:])
    a2.set_xlabel("epoch")
    a2.set_ylabel("validation accuracy")
    a2.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f} %"


def markdown_report(title: str, results: dict[str, dict[str, Any]], *, command: str = "",
                    extra: dict[str, Any] | None = None, images: dict[str, str] | None = None) -> str:
    """A dated Markdown report of ``{task: task_metrics}`` with commit, machine and command."""
    lines = [f"# {title}", "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- commit: `{git_commit()}`",
             f"- machine: {machine()}"]
    if command:
        lines.append(f"- command: `{command}`")
    for k, v in (extra or {}).items():
        lines.append(f"- {k}: {v}")
    lines += ["", "| task | n | accuracy | 1-off | mean per-class |", "|---|---|---|---|---|"]
    for t, m in results.items():
        lines.append(f"| {t} | {m['n']} | {_pct(m['accuracy'])} | {_pct(m.get('one_off_accuracy'))} | "
                     f"{_pct(m['mean_class_accuracy'])} |")
    cal = {t: m["calibration"] for t, m in results.items() if m.get("calibration")}
    if cal:
        lines += ["", "## Calibration (temperature fitted on val; accuracy does not change)", "",
                  "| task | temperature | ECE before → after | NLL before → after | Brier before → after | "
                  "mean confidence before → after |", "|---|---|---|---|---|---|"]
        for t, c in cal.items():
            b, a = c["before"], c["after"]
            lines.append(f"| {t} | {c['temperature']:.3f} | {100 * b['ece']:.2f} → {100 * a['ece']:.2f} % | "
                         f"{b['nll']:.4f} → {a['nll']:.4f} | {b['brier']:.4f} → {a['brier']:.4f} | "
                         f"{_pct(b['mean_confidence'])} → {_pct(a['mean_confidence'])} |")
    shipped = {t: m["calibration_as_shipped"] for t, m in results.items() if m.get("calibration_as_shipped")}
    if shipped:
        lines += ["", "## Calibration of the probabilities as `analyze` reports them", "",
                  "| task | ECE | NLL | Brier | mean confidence |", "|---|---|---|---|---|"]
        for t, c in shipped.items():
            lines.append(f"| {t} | {100 * c['ece']:.2f} % | {c['nll']:.4f} | {c['brier']:.4f} | "
                         f"{_pct(c['mean_confidence'])} |")
    for t, m in results.items():
        lines += ["", f"## {t}: per-class accuracy", "", "| class | support | accuracy |", "|---|---|---|"]
        for c, a in m["per_class_accuracy"].items():
            lines.append(f"| {c} | {m['support'][c]} | {_pct(a)} |")
    for name, rel in (images or {}).items():
        lines += ["", f"![{name}]({rel})"]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, title: str, results: dict[str, dict[str, Any]], *,
                 command: str = "", extra: dict[str, Any] | None = None,
                 history: Sequence[dict[str, Any]] | None = None, stem: str = "report",
                 per_image: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``<stem>.json``, ``<stem>.md``, one confusion PNG per task and the training curves.

    ``per_image`` (``{task: bool array}``, whether each labelled image was classified correctly, in
    split order) goes into the JSON as ``"per_image_correct"`` strings of 0/1, so paired tests
    between two reports on the same split can be recomputed from the committed files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = {}
    for t, m in results.items():
        p = plot_confusion(m["confusion_matrix"], m["labels"], out / f"{stem}_confusion_{t}.png",
                           title=f"{title}: {t}")
        images[f"{t} confusion matrix"] = p.name
    if history:
        images["training curves"] = plot_curves(history, out / f"{stem}_curves.png", title=title).name
    payload = {"title": title, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "commit": git_commit(), "machine": machine(), "command": command,
               "extra": extra or {}, "results": results}
    if per_image:
        payload["per_image_correct"] = {t: "".join("1" if v else "0" for v in np.asarray(c, bool))
                                        for t, c in per_image.items()}
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=1))
    md = out / f"{stem}.md"
    md.write_text(markdown_report(title, results, command=command, extra=extra, images=images))
    return md


def read_per_image(report_json: str | Path) -> dict[str, np.ndarray]:
    """The ``per_image_correct`` of a report written by :func:`write_report` (``{}`` if absent)."""
    d = json.loads(Path(report_json).read_text())
    return {t: np.frombuffer(v.encode(), np.uint8) == ord("1")
            for t, v in d.get("per_image_correct", {}).items()}


def write_comparison(results: Sequence[tuple[str, dict[str, Any]]], out_dir: str | Path, *,
                     split: str = "test", command: str = "", stem: str | None = None,
                     per_image: Sequence[dict[str, np.ndarray]] | None = None) -> Path:
    """A side-by-side Markdown + JSON table of several runs' ``{task: task_metrics}``.

    With ``per_image`` (one ``{task: bool array}`` per run, same images in the same order), every
    run after the first is compared with the first on each task by exact McNemar and a paired
    bootstrap of the accuracy difference (:func:`salface.evaluation.stats.compare_paired`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or ("comparison_" + "_vs_".join(n for n, _ in results))[:120]
    tasks = sorted({t for _, r in results for t in r})
    lines = [f"# Side by side — {split}", "",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- commit: `{git_commit()}`", f"- machine: {machine()}"]
    if command:
        lines.append(f"- command: `{command}`")
    head = ["run"] + [f"{t} acc" for t in tasks] + (["age 1-off"] if "age" in tasks else [])
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, r in results:
        cells = [n] + [_pct(r[t]["accuracy"]) if t in r else "–" for t in tasks]
        if "age" in tasks:
            cells.append(_pct(r["age"].get("one_off_accuracy")) if "age" in r else "–")
        lines.append("| " + " | ".join(cells) + " |")
    paired: dict[str, Any] = {}
    if per_image and len(per_image) == len(results) and len(results) > 1:
        base_name, base = results[0][0], per_image[0]
        lines += ["", f"Paired tests against `{base_name}` on the same {split} images (exact McNemar; "
                      f"paired bootstrap of the accuracy difference, 10,000 resamples, 95 % interval):", "",
                  "| run | task | difference | only this right | only base right | McNemar p | bootstrap 95 % CI |",
                  "|---|---|---|---|---|---|---|"]
        for (n, _), pi in zip(results[1:], per_image[1:]):
            for t in tasks:
                if t not in base or t not in pi or len(base[t]) != len(pi[t]):
                    continue
                c = compare_paired(base[t], pi[t])   # A = the base run, B = this run
                paired.setdefault(n, {})[t] = c
                mc, bs = c["mcnemar_exact"], c["bootstrap"]
                lines.append(f"| {n} | {t} | {100 * bs['difference']:+.2f} pts | {mc['n01']} | {mc['n10']} | "
                             f"{mc['p_value']:.3g} | [{100 * bs['ci_low']:+.2f}, {100 * bs['ci_high']:+.2f}] |")
    payload: dict[str, Any] = {n: r for n, r in results}
    if paired:
        payload["_paired_vs_" + results[0][0]] = paired
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=1))
    p = out / f"{stem}.md"
    p.write_text("\n".join(lines) + "\n")
    return p


__all__ = ["pyplot", "plot_confusion", "plot_curves", "markdown_report", "write_report", "read_per_image",
           "write_comparison"]
