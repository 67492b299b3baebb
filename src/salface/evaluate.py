"""Deprecated: evaluation is now the package :mod:`salface.evaluation`; this alias goes in the next
release. Where each name went:

* :mod:`salface.training.scoring` (shared with training): ``confusion_matrix``, ``task_metrics``,
  ``predict_arrays``, ``evaluate_arrays``;
* :mod:`salface.evaluation.metrics`: ``mean_std``, ``summarize_runs``, ``compact_metrics``;
* :mod:`salface.evaluation.calibration`: ``calibration_metrics``, ``fit_temperature``;
* :mod:`salface.evaluation.reports`: ``plot_confusion``, ``plot_curves``, ``markdown_report``,
  ``write_report``, ``read_per_image``, ``write_comparison``;
* :mod:`salface.evaluation.runs`: ``evaluate_run``, ``TTA_KEY``, ``TEMPERATURE_KEY``;
* :mod:`salface.evaluation.ship`: ``ship_run``;
* :mod:`salface.evaluation.pipeline`: ``evaluate_pipeline``;
* :mod:`salface.utils`: ``git_commit``, ``machine``.
"""

from __future__ import annotations

import warnings

from .evaluation.calibration import calibration_metrics, fit_temperature
from .evaluation.calibration import softmax as _softmax  # noqa: F401
from .evaluation.metrics import compact_metrics, mean_std, summarize_runs
from .evaluation.pipeline import evaluate_pipeline
from .evaluation.reports import (markdown_report, plot_confusion, plot_curves, read_per_image,  # noqa: I001
                                 write_comparison, write_report)
from .evaluation.runs import TEMPERATURE_KEY, TTA_KEY, evaluate_run
from .evaluation.ship import ship_run
from .training.scoring import confusion_matrix, evaluate_arrays, predict_arrays, task_metrics
from .utils import git_commit, machine

__all__ = ["confusion_matrix", "task_metrics", "predict_arrays", "evaluate_arrays", "calibration_metrics",
           "fit_temperature", "mean_std", "summarize_runs", "compact_metrics", "plot_confusion", "plot_curves",
           "markdown_report", "write_report", "read_per_image", "write_comparison", "evaluate_run", "TTA_KEY",
           "TEMPERATURE_KEY", "ship_run", "evaluate_pipeline", "git_commit", "machine"]

warnings.warn("salface.evaluate moved to the package salface.evaluation (and salface.training.scoring for what training "
              "shares); the old name goes in the next release", DeprecationWarning, stacklevel=2)
