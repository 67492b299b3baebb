"""Evaluate a training run on a split of its crop cache (:func:`evaluate_run`): accuracy per task,
temperatures fitted on val and the calibration they give, per-image correctness for paired tests,
and the report (``<run>_<split>.{json,md}`` + figures).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .calibration import calibration_metrics, fit_prior_correction, fit_temperature, softmax
from .reports import write_report

TTA_KEY = "flip TTA"
"""The report field (``extra``) that records whether flip TTA was used; :func:`ship_run` reads it."""


TEMPERATURE_KEY = "temperature (fit on val)"
PRIOR_KEY = "prior correction (fit on val)"
"""The report field (``extra``) with the per-task temperatures fitted on val; :func:`ship_run` ships them."""


def evaluate_run(run_dir: str | Path, *, split: str = "test", which: str = "best", tta: bool | None = None,
                 out_dir: str | Path = "docs/benchmarks", cache: str | Path | None = None,
                 command: str = "", threads: int | None = None, write: bool = True,
                 calibrate: bool = True, prior_correction: Sequence[str] = ()
                 ) -> tuple[dict[str, Any], Path | None]:
    """Evaluate a training run's ``which`` weights on ``split`` of its crop cache and write
    ``<run>_<split>.{json,md}`` + confusion PNGs + training curves into ``out_dir``.

    With ``calibrate`` (and a split other than val) a temperature per task is fitted on the val
    split (:func:`fit_temperature`) and each task's ``calibration`` (ECE, NLL, Brier before and
    after) is measured on ``split``; accuracy is unchanged by it. :func:`ship_run` ships the
    temperatures with the weights.

    ``prior_correction`` (tasks; not for the val split): a logit adjustment against the training
    split's class shares is fitted on val (:func:`fit_prior_correction`) and ``split`` is also
    judged with the adjusted decision, in ``results[task]["prior_corrected"]``; the headline
    metrics and the temperature stay those of the network's own decision, which is what a shipped
    model does unless the user asks for the correction (``Analyzer(prior_correction=True)``)."""
    import os

    import torch

    from ..training.cache import open_crop_cache
    from ..training.scoring import predict_arrays, task_metrics
    from ..training.train import load_run

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
    priors: dict[str, dict[str, Any]] = {}
    if prior_correction and split == "val":
        raise ValueError("the prior correction is fitted on val: evaluate it on another split")
    unknown = [t for t in prior_correction if t not in config.tasks]
    if unknown:
        raise ValueError(f"prior correction for {unknown}: {run} answers {list(config.tasks)}")
    if (calibrate or prior_correction) and split != "val":
        vi = cc.indices("val")
        if len(vi):
            vmaps = np.asarray(cc.saliency(config.saliency)[vi]) if config.saliency != "none" else None
            vlogp = predict_arrays(model, config, np.asarray(cc.crops[vi]), vmaps, tta_flip=use_tta, log=True)
            tri = cc.indices("train")
            for t, v in vlogp.items():
                vy = cc.task_labels(t)[vi]
                if not (vy >= 0).any():
                    continue
                if t in prior_correction:
                    ty = cc.task_labels(t)[tri]
                    prior = np.bincount(ty[ty >= 0], minlength=v.shape[1]) + 1.0  # +1: no empty class
                    priors[t] = fit_prior_correction(v, vy, prior / prior.sum())
                if calibrate:
                    temps[t] = round(fit_temperature(v, vy), 4)
    results, correct = {}, {}
    for t in logp:
        y = np.asarray(labels.get(t, []))
        if len(y) and (y >= 0).any():
            pred = logp[t].argmax(1)
            results[t] = task_metrics(t, y, pred)
            if t in priors:
                adj = task_metrics(t, y, (logp[t] + np.asarray(priors[t]["bias"], np.float32)).argmax(1))
                results[t]["prior_corrected"] = {"tau": priors[t]["tau"], "accuracy": adj["accuracy"],
                                                 "mean_class_accuracy": adj["mean_class_accuracy"],
                                                 "per_class_accuracy": adj["per_class_accuracy"]}
            correct[t] = (pred == y)[y >= 0]
            if t in temps:
                results[t]["calibration"] = {
                    "temperature": temps[t], "before": calibration_metrics(softmax(logp[t].astype(np.float64)), y),
                    "after": calibration_metrics(softmax(logp[t].astype(np.float64) / temps[t]), y)}
    if not write:
        return results, None
    hist_p = run / "metrics.json"
    history = json.loads(hist_p.read_text()) if hist_p.exists() else None
    state = json.loads((run / "state.json").read_text()) if (run / "state.json").exists() else {}
    det_rate = float(np.asarray(cc.detected[idx]).mean())
    if state.get("ensemble"):
        chosen = f"an ensemble of {len(state['ensemble'])} runs' best weights: {', '.join(state['ensemble'])}"
    elif which == "best":
        chosen = f"epoch {state.get('best_epoch')} of {state.get('epochs')}, chosen on val"
    else:
        chosen = f"epoch {state.get('epoch')} of {state.get('epochs')}"
    extra = {"run": run.name, "split": f"{split} ({len(idx)} faces) of cache `{cc.root.name}`; "
                                      f"{100 * det_rate:.2f} % found by the detector, the rest cropped "
                                      f"from the dataset box",
             "weights": f"{which} ({chosen})",
             "preset": preset.name, "saliency": f"{config.saliency} (r = {config.ratio})",
             "input": f"{config.input_size} px {config.color}", TTA_KEY: use_tta}
    if temps:
        extra[TEMPERATURE_KEY] = temps
    if priors:
        extra[PRIOR_KEY] = priors
    md = write_report(out_dir, f"{run.name} — {split}", results, command=command, extra=extra,
                      history=history, stem=f"{run.name}_{split}", per_image=correct)
    return results, md


__all__ = ["PRIOR_KEY", "TTA_KEY", "TEMPERATURE_KEY", "evaluate_run"]
