"""Evaluation: metrics, confusion matrices, curves and a Markdown report.

* :func:`predict_cache` runs a classifier over cached crops (through the one preprocessing path,
  :func:`salface.models.preprocess.to_input_tensor`), optionally with flip test-time augmentation.
* :func:`task_metrics` gives accuracy, per-class accuracy (recall), the confusion matrix and, for
  age groups, the 1-off accuracy (prediction within one group of the truth; the Adience convention).
* :func:`mean_std` summarises one metric over seeds or folds (sample standard deviation, ddof=1;
  0 for a single run).
* :func:`plot_confusion`, :func:`plot_curves` and :func:`write_report` produce the PNG heat maps,
  training curves and a dated Markdown report tied to a commit, machine and command.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .labels import labels_for
from .utils import git_commit, machine  # noqa: F401 (re-exported: the old home of both)


# ------------------------------------------------------------------------------------ metrics

def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of samples of true class ``i`` predicted as ``j`` (labels < 0 skipped)."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    keep = t >= 0
    t, p = t[keep], p[keep]
    if t.size and (t.max() >= n_classes or p.min() < 0 or p.max() >= n_classes):
        raise ValueError(f"labels outside 0..{n_classes - 1}")
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def task_metrics(task: str, y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, Any]:
    """Accuracy, per-class accuracy, confusion matrix (and 1-off accuracy for ``age``)."""
    names = labels_for(task)
    cm = confusion_matrix(y_true, y_pred, len(names))
    n = int(cm.sum())
    if n == 0:
        raise ValueError(f"no labelled samples for task {task!r}")
    out: dict[str, Any] = {"n": n, "accuracy": float(np.trace(cm) / n)}
    support = cm.sum(axis=1)
    out["per_class_accuracy"] = {c: (float(cm[i, i] / support[i]) if support[i] else None)
                                 for i, c in enumerate(names)}
    present = support > 0
    out["mean_class_accuracy"] = float(np.mean(np.diag(cm)[present] / support[present]))
    out["support"] = {c: int(support[i]) for i, c in enumerate(names)}
    if task == "age":
        i, j = np.indices(cm.shape)
        out["one_off_accuracy"] = float(cm[np.abs(i - j) <= 1].sum() / n)
    out["confusion_matrix"] = cm.tolist()
    out["labels"] = list(names)
    return out


def _labelled(scores: np.ndarray, y: Sequence[int], what: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``scores`` (float64) and ``y`` whose label is ≥ 0; an error naming ``what`` if none."""
    yy = np.asarray(y, np.int64)
    keep = yy >= 0
    if not keep.any():
        raise ValueError(f"{what}: no labelled rows")
    return np.asarray(scores, np.float64)[keep], yy[keep]


def calibration_metrics(probs: np.ndarray, y: Sequence[int], n_bins: int = 15) -> dict[str, float]:
    """How well the probabilities match the outcomes, over the labelled rows (``y`` ≥ 0).

    ``ece``: expected calibration error, Σ_b (n_b / n) · |accuracy_b − mean confidence_b| over
    ``n_bins`` equal-width bins of the top probability (Guo et al. 2017); ``nll``: mean negative log
    probability of the true class; ``brier``: mean squared distance between the probability vector
    and the one-hot truth (summed over classes); ``mean_confidence``: mean top probability."""
    pr, yy = _labelled(probs, y, "calibration_metrics")
    conf = pr.max(1)
    right = pr.argmax(1) == yy
    bins = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)   # conf = 1.0 goes to the last bin
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.sum() / len(yy) * abs(right[m].mean() - conf[m].mean())
    onehot = np.eye(pr.shape[1])[yy]
    return {"ece": float(ece), "nll": float(-np.mean(np.log(np.clip(pr[np.arange(len(yy)), yy], 1e-300, None)))),
            "brier": float(np.mean(np.sum((pr - onehot) ** 2, axis=1))), "mean_confidence": float(conf.mean())}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(log_probs: np.ndarray, y: Sequence[int]) -> float:
    """The temperature ``T`` that minimises the negative log-likelihood of ``softmax(z / T)`` on the
    labelled rows (temperature scaling, Guo et al. 2017). ``log_probs`` may be logits or log
    probabilities (they differ by a constant per row, which the softmax ignores). The NLL is convex
    in 1/T; it is minimised over T ∈ [0.05, 20]."""
    from scipy.optimize import minimize_scalar

    z, yy = _labelled(log_probs, y, "fit_temperature")
    rows = np.arange(len(yy))

    def nll(beta: float) -> float:
        s = beta * z
        m = s.max(axis=1)
        return float(np.mean(m + np.log(np.exp(s - m[:, None]).sum(axis=1)) - s[rows, yy]))

    res = minimize_scalar(nll, bounds=(1 / 20, 1 / 0.05), method="bounded", options={"xatol": 1e-6})
    return float(1.0 / res.x)


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("mean_std of no values")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def summarize_runs(results: Sequence[dict[str, Any]], keys: Sequence[str] = ("accuracy", "one_off_accuracy")
                   ) -> dict[str, dict[str, dict[str, float]]]:
    """``{task: {metric: {"mean", "std", "n"}}}`` over several runs' ``{task: task_metrics}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    tasks = sorted({t for r in results for t in r})
    for t in tasks:
        out[t] = {}
        for k in keys:
            vals = [r[t][k] for r in results if t in r and k in r[t]]
            if vals:
                m, s = mean_std(vals)
                out[t][k] = {"mean": m, "std": s, "n": len(vals)}
    return out


# ------------------------------------------------------------------------------------ prediction

TTA_KEY = "flip TTA"
"""The report field (``extra``) that records whether flip TTA was used; :func:`ship_run` reads it."""
TEMPERATURE_KEY = "temperature (fit on val)"
"""The report field (``extra``) with the per-task temperatures fitted on val; :func:`ship_run` ships them."""

@torch.no_grad()
def predict_arrays(model: torch.nn.Module, config, crops: np.ndarray, maps: np.ndarray | None, *,
                   batch_size: int = 256, tta_flip: bool = False, device: str = "cpu",
                   progress: bool = False, log: bool = False) -> dict[str, np.ndarray]:
    """Softmax probabilities ``{task: (N, C)}`` for uint8 crops ``(N, S, S, 3)`` (+ maps); their
    logarithms with ``log``. A temperature in ``config.extra["temperature"]`` (a shipped model's)
    is applied, as ``analyze`` applies it."""
    from .models.preprocess import forward_logits, to_input_tensor

    model.eval()
    outs: dict[str, list[np.ndarray]] = {}
    rng = range(0, len(crops), batch_size)
    if progress:
        from tqdm import tqdm
        rng = tqdm(rng, desc="predict", unit="batch", mininterval=5)
    use_maps = config.saliency != "none"
    for i in rng:
        c = np.asarray(crops[i:i + batch_size])
        m = np.asarray(maps[i:i + batch_size]) if (use_maps and maps is not None) else None
        x = to_input_tensor(c, m, config, device)
        logits = forward_logits(model, x, tta_flip=tta_flip, temperature=config.extra.get("temperature"))
        for t, v in logits.items():
            f = torch.log_softmax if log else torch.softmax
            outs.setdefault(t, []).append(f(v.float(), dim=1).cpu().numpy())
    return {t: np.concatenate(v) for t, v in outs.items()}


def evaluate_arrays(model, config, crops, maps, labels: dict[str, np.ndarray], **kw) -> dict[str, Any]:
    """Per-task :func:`task_metrics` of ``model`` on arrays; ``labels[task]`` has −1 for missing."""
    probs = predict_arrays(model, config, crops, maps, **kw)
    return {t: task_metrics(t, labels[t], probs[t].argmax(1)) for t in probs if t in labels
            and (np.asarray(labels[t]) >= 0).any()}


# ------------------------------------------------------------------------------------ plots

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    _pyplot().close(fig)
    return path


def plot_confusion(cm: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path,
                   title: str = "") -> Path:
    """Row-normalised confusion-matrix heat map (counts written in the cells) as PNG."""
    plt = _pyplot()

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
    plt = _pyplot()

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


# ------------------------------------------------------------------------------------ report

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


# ------------------------------------------------------------------------------------ runs

def evaluate_run(run_dir: str | Path, *, split: str = "test", which: str = "best", tta: bool | None = None,
                 out_dir: str | Path = "docs/benchmarks", cache: str | Path | None = None,
                 command: str = "", threads: int | None = None, write: bool = True,
                 calibrate: bool = True) -> tuple[dict[str, Any], Path | None]:
    """Evaluate a training run's ``which`` weights on ``split`` of its crop cache and write
    ``<run>_<split>.{json,md}`` + confusion PNGs + training curves into ``out_dir``.

    With ``calibrate`` (and a split other than val) a temperature per task is fitted on the val
    split (:func:`fit_temperature`) and each task's ``calibration`` (ECE, NLL, Brier before and
    after) is measured on ``split``; accuracy is unchanged by it. :func:`ship_run` ships the
    temperatures with the weights."""
    import os

    from .cache import open_crop_cache
    from .train import load_run

    torch.set_num_threads(threads or os.cpu_count() or 1)
    run = Path(run_dir)
    model, config, preset = load_run(run, which)
    runcfg = json.loads((run / "config.json").read_text())
    cc = open_crop_cache(cache or runcfg["cache"])
    idx = cc.indices(split)
    if len(idx) == 0:
        raise ValueError(f"split {split!r} of {cc.root} is empty")
    crops = np.asarray(cc.crops[idx])
    maps = np.asarray(cc.saliency(config.saliency)[idx]) if config.saliency != "none" else None
    labels = {t: cc.task_labels(t)[idx] for t in config.tasks}
    use_tta = preset.tta_flip if tta is None else tta
    logp = predict_arrays(model, config, crops, maps, tta_flip=use_tta, log=True)
    temps: dict[str, float] = {}
    if calibrate and split != "val":
        vi = cc.indices("val")
        if len(vi):
            vmaps = np.asarray(cc.saliency(config.saliency)[vi]) if config.saliency != "none" else None
            vlogp = predict_arrays(model, config, np.asarray(cc.crops[vi]), vmaps, tta_flip=use_tta, log=True)
            for t, v in vlogp.items():
                vy = cc.task_labels(t)[vi]
                if (vy >= 0).any():
                    temps[t] = round(fit_temperature(v, vy), 4)
    results, correct = {}, {}
    for t in logp:
        y = np.asarray(labels.get(t, []))
        if len(y) and (y >= 0).any():
            pred = logp[t].argmax(1)
            results[t] = task_metrics(t, y, pred)
            correct[t] = (pred == y)[y >= 0]
            if t in temps:
                results[t]["calibration"] = {
                    "temperature": temps[t], "before": calibration_metrics(np.exp(logp[t]), y),
                    "after": calibration_metrics(_softmax(logp[t].astype(np.float64) / temps[t]), y)}
    if not write:
        return results, None
    hist_p = run / "metrics.json"
    history = json.loads(hist_p.read_text()) if hist_p.exists() else None
    state = json.loads((run / "state.json").read_text()) if (run / "state.json").exists() else {}
    det_rate = float(np.asarray(cc.detected[idx]).mean())
    chosen = (f"epoch {state.get('best_epoch')} of {state.get('epochs')}, chosen on val" if which == "best"
              else f"epoch {state.get('epoch')} of {state.get('epochs')}")
    extra = {"run": run.name, "split": f"{split} ({len(idx)} faces) of cache `{cc.root.name}`; "
                                      f"{100 * det_rate:.2f} % found by the detector, the rest cropped "
                                      f"from the dataset box",
             "weights": f"{which} ({chosen})",
             "preset": preset.name, "saliency": f"{config.saliency} (r = {config.ratio})",
             "input": f"{config.input_size} px {config.color}", TTA_KEY: use_tta}
    if temps:
        extra[TEMPERATURE_KEY] = temps
    md = write_report(out_dir, f"{run.name} — {split}", results, command=command, extra=extra,
                      history=history, stem=f"{run.name}_{split}", per_image=correct)
    return results, md


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
    bootstrap of the accuracy difference (:func:`salface.stats.compare_paired`)."""
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
        from .stats import compare_paired

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


def compact_metrics(results: dict[str, Any]) -> dict[str, Any]:
    """Accuracy (+ 1-off, per-class) per task, without confusion matrices, for manifests."""
    out = {}
    for t, m in results.items():
        d = {"accuracy": round(m["accuracy"], 4), "n": m["n"],
             "per_class_accuracy": {k: (None if v is None else round(v, 4))
                                    for k, v in m["per_class_accuracy"].items()}}
        if "one_off_accuracy" in m:
            d["one_off_accuracy"] = round(m["one_off_accuracy"], 4)
        if m.get("calibration"):
            c = m["calibration"]
            d["calibration"] = {"temperature": c["temperature"], "ece_before": round(c["before"]["ece"], 4),
                                "ece_after": round(c["after"]["ece"], 4)}
        out[t] = d
    return out


def ship_run(run_dir: str | Path, *, name: str, report: str | Path, data: str, license: str,
             command: str = "", directory: str | Path | None = None) -> Path:
    """Register a run's best weights as bundled classifier ``name`` (safetensors + manifest)."""
    from dataclasses import replace

    from .hub import register_bundled
    from .train import load_run

    run = Path(run_dir)
    model, config, _ = load_run(run, "best")
    rep = json.loads(Path(report).read_text())
    metrics = compact_metrics(rep["results"])
    metrics["split"] = rep.get("extra", {}).get("split", "")
    metrics["report_commit"] = rep.get("commit", "")
    # the shipped model runs as it was evaluated: with flip TTA if the report used it
    tta = bool(rep.get("extra", {}).get(TTA_KEY, False))
    extra = {**config.extra, "tta_flip": tta}
    temps = rep.get("extra", {}).get(TEMPERATURE_KEY)
    if temps:                    # and with the temperatures fitted on val, if the report has them
        extra["temperature"] = {t: float(v) for t, v in temps.items()}
    cfg = replace(config, name=name, extra=extra).to_dict()
    return register_bundled(name, model.state_dict(), kind="classifier", config=cfg, metrics=metrics,
                            data=data, license=license, command=command,
                            directory=str(directory) if directory else None)


# ------------------------------------------------------------------------------------ end to end

def evaluate_pipeline(samples: Sequence[Any], tasks: Sequence[str], analyzer: Any, *,
                      progress: bool = False) -> dict[str, Any]:
    """Judge shipped models on faces that went through ``analyze`` end to end.

    Each sample's image goes through ``analyzer.analyze_batch`` (detector → crop → saliency →
    classifier); the face overlapping the dataset box most (the whole image without one) is scored.
    Images where the detector finds no face count as misses in ``end_to_end_accuracy`` and are
    left out of ``accuracy`` (which then matches the cached-crop evaluation's population minus
    the fallbacks). Returns ``{task: task_metrics + end_to_end_accuracy}`` plus ``"_detection"``."""
    from .types import Box

    paths = [s.path for s in samples]
    preds: dict[str, list[int]] = {t: [] for t in tasks}
    truth: dict[str, list[int]] = {t: [] for t in tasks}
    probs: dict[str, list[list[float]]] = {t: [] for t in tasks}
    found = 0
    it = analyzer.analyze_batch(paths)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=len(paths), desc="analyze", unit="img", mininterval=5)
    for s, res in zip(samples, it):
        if not res.ok:
            raise RuntimeError(f"{s.path}: {res.error}")
        ref = s.box if getattr(s, "box", None) is not None else Box(0, 0, res.width, res.height)
        face = max(res.faces, key=lambda f: f.face.box.iou(ref), default=None)
        if face is not None:
            found += 1
        for t in tasks:
            y = s.labels.get(t)
            if y is None:
                continue
            p = face.predictions().get(t) if face is not None else None
            truth[t].append(int(y))
            preds[t].append(-1 if p is None else int(p.index))
            if p is not None:
                probs[t].append([p.probabilities[n] for n in labels_for(t)])
    out: dict[str, Any] = {"_detection": {"images": len(samples), "with_face": found,
                                          "rate": found / max(1, len(samples))}}
    for t in tasks:
        y, p = np.asarray(truth[t]), np.asarray(preds[t])
        if y.size == 0:
            continue
        hit = p >= 0
        m = task_metrics(t, y[hit], p[hit])
        m["end_to_end_accuracy"] = float((p == y).sum() / y.size)
        if probs[t]:    # the probabilities analyze reports (with the shipped model's temperature)
            m["calibration_as_shipped"] = calibration_metrics(np.asarray(probs[t]), y[hit])
        out[t] = m
    return out
