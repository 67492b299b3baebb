"""Evaluation beyond one accuracy number: benchmarks that run the whole pipeline under controlled
changes to its input.

* :mod:`salface.evaluation.robustness` — the robustness benchmark (`salface robustness`): held-out
  test faces re-rendered the way real photos differ (resolution, compression, blur, noise,
  exposure, colour, occlusion, pose, framing, detector), run through ``analyze`` end to end, with
  accuracy per condition, severity and group, and how often predictions change.
"""
