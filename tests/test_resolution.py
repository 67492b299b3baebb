"""The resolution cap (``ClassifierConfig.max_crop_px``, ``salface models set-resolution``): a model
trained on small pictures gets a large face at the resolution it learned from."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from salface.crop import crop_face, crop_for_config
from salface.models.config import ClassifierConfig
from salface.pipeline import _crop_key
from salface.types import Box, Face


def test_config_field_is_validated_and_omitted_when_unset():
    base = dict(name="x", backbone="mobilenet_v2", tasks=("expression",), input_size=96)
    assert "max_crop_px" not in ClassifierConfig(**base).to_dict()      # older configs read as before
    cfg = ClassifierConfig(**base, max_crop_px=60)
    assert cfg.to_dict()["max_crop_px"] == 60.0
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="max_crop_px"):
        ClassifierConfig(**base, max_crop_px=-1)
    # the cap changes a model's input, not the crop (and saliency map) the pipeline shares
    assert _crop_key(cfg) == _crop_key(ClassifierConfig(**base))


def test_set_resolution_is_recorded_for_the_model_and_its_members_and_used(scratch_bundle, cli, astronaut):
    W = scratch_bundle
    if "age-gender-ensemble" not in W.load_manifest().get("models", {}):
        pytest.skip("age-gender-ensemble is not bundled")
    r = cli("models", "set-resolution", "age-gender-ensemble", "40", "--reason", "a report")
    assert r.exit_code == 0 and "at no more than 40 photo pixels" in r.output, r.output
    entry = W.bundled_entry("age-gender-ensemble")
    assert entry["config"]["max_crop_px"] == 40.0 and entry["resolution_reason"] == "a report"
    assert [m["max_crop_px"] for m in entry["config"]["extra"]["members"]] == [40.0, 40.0]
    config = ClassifierConfig.from_dict(entry["config"])
    face = Face(box=Box(178, 63, 268, 176), score=0.9)               # the astronaut's face: a 147-px square
    got = crop_for_config(astronaut, face, config).pixels
    size = config.input_size
    small = crop_face(astronaut, face, size=40, margin=config.margin, align=config.align,
                      min_tilt=config.align_min_tilt).pixels          # cut at 40 px, then enlarged
    assert np.array_equal(got, cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR))
    assert cli("models", "set-resolution", "age-gender-ensemble", "none", "--reason", "r").exit_code == 0
    cfg = W.bundled_entry("age-gender-ensemble")["config"]
    assert "max_crop_px" not in cfg and all("max_crop_px" not in m for m in cfg["extra"]["members"])
    assert np.array_equal(crop_for_config(astronaut, face, ClassifierConfig.from_dict(cfg)).pixels,
                          crop_face(astronaut, face, size=size, margin=config.margin,
                                    align=config.align, min_tilt=config.align_min_tilt).pixels)
    for bad in ("0", "-5", "abc", "0.5"):
        r = cli("models", "set-resolution", "age-gender-ensemble", bad, "--reason", "r")
        assert r.exit_code == 2 and "pixels" in r.output, r.output
    r = cli("models", "set-resolution", "blazeface", "60", "--reason", "x")
    assert r.exit_code == 1 and "not a classifier" in r.output
