"""Evaluation beyond one accuracy number: benchmarks that run the whole pipeline under controlled
changes to its input.

* :mod:`salface.evaluation.robustness` — the robustness benchmark (`salface robustness`): held-out
  test faces re-rendered the way real photos differ (resolution, compression, blur, noise,
  exposure, colour, occlusion, pose, framing, detector), run through ``analyze`` end to end, with
  accuracy per condition, severity and group, and how often predictions change.

Evaluation of trained models (was ``salface.evaluate`` and ``salface.stats``, kept as deprecated aliases):

* :mod:`salface.evaluation.metrics` — accuracy, per-class accuracy, confusion matrix, 1-off; mean ± std
  over runs (the per-task scoring itself is :mod:`salface.training.scoring`, which training shares);
* :mod:`salface.evaluation.calibration` — ECE, NLL, Brier; temperature scaling;
* :mod:`salface.evaluation.stats` — paired significance tests (McNemar, paired and two-stage bootstraps);
* :mod:`salface.evaluation.reports` — confusion heat maps, training curves, dated Markdown + JSON reports;
* :mod:`salface.evaluation.runs` — a training run on a split of its crop cache (``salface evaluate``);
* :mod:`salface.evaluation.pipeline` — shipped models on faces that went through ``analyze`` end to end;
* :mod:`salface.evaluation.ship` — a run's best weights as a bundled classifier (``salface ship``).
"""
