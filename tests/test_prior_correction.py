"""The runtime applies a shipped prior correction (logit_bias) before the temperature."""

import numpy as np
import pytest

from salface.classify.base import Classifier
from salface.models.config import ClassifierConfig


def _clf(extra):
    cfg = ClassifierConfig(name="t", backbone="mobilenet_v2", tasks=("expression",), input_size=8,
                           saliency="none", extra=extra)
    logits = np.array([[2.0, 1.5, 0, 0, 0, 0, 0]], np.float32)
    return Classifier("t", cfg, lambda x: {"expression": np.repeat(logits, len(x), 0)})


def test_bias_moves_the_decision_and_temperature_only_sharpens():
    crops = np.zeros((1, 8, 8, 3), np.uint8)
    plain = _clf({}).predict(crops, None)["expression"][0]
    assert plain.argmax() == 0
    bias = [0.0, 1.0, 0, 0, 0, 0, 0]
    adj = _clf({"logit_bias": {"expression": bias}}).predict(crops, None)["expression"][0]
    assert adj.argmax() == 1
    z = np.array([2.0, 2.5, 0, 0, 0, 0, 0])
    assert adj == pytest.approx(np.exp(z) / np.exp(z).sum(), rel=1e-5)
    both = _clf({"logit_bias": {"expression": bias}, "temperature": {"expression": 0.5}})
    p = both.predict(crops, None)["expression"][0]
    assert p == pytest.approx(np.exp(z / 0.5) / np.exp(z / 0.5).sum(), rel=1e-5)
    # uncalibrated logits (parity checks) are the network's own
    raw = both.logits(crops, None, calibrated=False)["expression"][0]
    assert raw[:2] == pytest.approx([2.0, 1.5])


def test_without_prior_correction_drops_only_the_bias():
    crops = np.zeros((1, 8, 8, 3), np.uint8)
    clf = _clf({"logit_bias": {"expression": [0.0, 1.0, 0, 0, 0, 0, 0]}, "tta_flip": False})
    plain = clf.without_prior_correction()
    assert "logit_bias" not in plain.config.extra and plain.config.extra["tta_flip"] is False
    assert plain.predict(crops, None)["expression"][0].argmax() == 0
    assert clf.predict(crops, None)["expression"][0].argmax() == 1      # the original is unchanged
