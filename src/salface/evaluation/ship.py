"""Ship a training run: its best weights become a bundled classifier, with the metrics, flip TTA,
prior correction and temperatures of the report that judged it (:func:`ship_run`).
"""

from __future__ import annotations

import json
from pathlib import Path

from .metrics import compact_metrics
from .runs import PRIOR_KEY, TEMPERATURE_KEY, TTA_KEY


def ship_run(run_dir: str | Path, *, name: str, report: str | Path, data: str, license: str,
             command: str = "", directory: str | Path | None = None) -> Path:
    """Register a run's best weights as bundled classifier ``name``: safetensors + manifest entry,
    then its ONNX file, checked against torch (:func:`salface.models.onnx.bundle_onnx`), which
    the default runtime runs."""
    from dataclasses import replace

    from ..models.bundle import register_bundled
    from ..training.train import load_run

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
    priors = rep.get("extra", {}).get(PRIOR_KEY)
    if priors:                   # and the logit adjustment fitted on val (added before the temperature)
        extra["logit_bias"] = {t: [float(b) for b in v["bias"]] for t, v in priors.items()}
    cfg = replace(config, name=name, extra=extra).to_dict()
    from ..models.onnx import bundle_onnx

    path = register_bundled(name, model.state_dict(), kind="classifier", config=cfg, metrics=metrics,
                            data=data, license=license, command=command,
                            directory=str(directory) if directory else None)
    bundle_onnx(name, directory=directory)
    return path


__all__ = ["ship_run"]
