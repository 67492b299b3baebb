"""The runtime applies a shipped prior correction (logit_bias) only when asked, before the temperature."""

import numpy as np
import pytest

from salface.classify.base import Classifier
from salface.models.config import ClassifierConfig


def _clf(extra):
    cfg = ClassifierConfig(name="t", backbone="mobilenet_v2", tasks=("expression",), input_size=8,
                           saliency="none", extra=extra)
    logits = np.array([[2.0, 1.5, 0, 0, 0, 0, 0]], np.float32)
    return Classifier("t", cfg, lambda x: {"expression": np.repeat(logits, len(x), 0)})


def test_bias_applies_on_request_and_temperature_only_sharpens():
    crops = np.zeros((1, 8, 8, 3), np.uint8)
    bias = [0.0, 1.0, 0, 0, 0, 0, 0]
    clf = _clf({"logit_bias": {"expression": bias}})
    assert clf.predict(crops, None)["expression"][0].argmax() == 0          # off by default
    adj = clf.with_prior_correction().predict(crops, None)["expression"][0]
    assert adj.argmax() == 1
    z = np.array([2.0, 2.5, 0, 0, 0, 0, 0])
    assert adj == pytest.approx(np.exp(z) / np.exp(z).sum(), rel=1e-5)
    both = _clf({"logit_bias": {"expression": bias}, "temperature": {"expression": 0.5}}).with_prior_correction()
    p = both.predict(crops, None)["expression"][0]
    assert p == pytest.approx(np.exp(z / 0.5) / np.exp(z / 0.5).sum(), rel=1e-5)
    # uncalibrated logits (parity checks) are the network's own
    raw = both.logits(crops, None, calibrated=False)["expression"][0]
    assert raw[:2] == pytest.approx([2.0, 1.5])
    assert both.with_ratio(0.5).prior_correction and not both.with_prior_correction(False).prior_correction


def test_analyzer_passes_the_choice(monkeypatch):
    from salface import pipeline

    made = []

    class Fake:
        tasks = ("expression",)
        config = ClassifierConfig(name="t", backbone="mobilenet_v2", tasks=("expression",), saliency="none")

        def with_prior_correction(self):
            made.append(True)
            return self

    monkeypatch.setattr(pipeline, "load_classifier", lambda *a, **k: Fake())
    pipeline.Analyzer(detector="whole", tasks=("expression",), prior_correction=True)
    assert made == [True]
    pipeline.Analyzer(detector="whole", tasks=("expression",))
    assert made == [True]
