"""Landmark-aligned crops (crop mode "arcface"): the similarity transform onto the ArcFace template."""

from __future__ import annotations

import math

import numpy as np
import pytest

from salface.crop import (ARCFACE_TEMPLATE, DEFAULT_MARGIN, align_face, alignment_matrix,
                          arcface_template, crop_face, crop_for_config)
from salface.models.config import ClassifierConfig
from salface.types import Box, Face


def _similar(points: np.ndarray, angle_deg: float, scale: float, shift) -> np.ndarray:
    a = math.radians(angle_deg)
    r = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return points @ r.T + np.asarray(shift, float)


def test_template_scaling_and_margin():
    assert arcface_template(112, 0.0) == pytest.approx(ARCFACE_TEMPLATE)
    t = arcface_template(224, 0.0)
    assert t == pytest.approx(ARCFACE_TEMPLATE * 2)
    m = arcface_template(112, 1.0)                       # shrunk by half about the centre (56, 56)
    assert m == pytest.approx((ARCFACE_TEMPLATE - 56) / 2 + 56)
    with pytest.raises(ValueError):
        arcface_template(112, -0.1)


@pytest.mark.parametrize("size,margin", [(112, 0.0), (96, 0.0), (112, 0.25)])
def test_alignment_maps_landmarks_onto_the_template(size, margin):
    # landmarks = the template under a known similarity: the fit must undo it exactly
    lm = _similar(ARCFACE_TEMPLATE, 23.0, 1.8, (140.0, 60.0))
    m = alignment_matrix(lm, size, margin)
    assert lm @ m[:, :2].T + m[:, 2] == pytest.approx(arcface_template(size, margin), abs=1e-3)
    scale = math.hypot(m[0, 0], m[1, 0])
    assert scale == pytest.approx(size / 112 / (1 + margin) / 1.8, rel=1e-4)


def test_alignment_is_least_squares_over_all_five_points():
    rng = np.random.default_rng(0)
    lm = _similar(ARCFACE_TEMPLATE, -12.0, 2.5, (30.0, 10.0)) + rng.normal(0, 4.0, (5, 2))
    m = alignment_matrix(lm)
    # closed-form least squares for x' = a x − b y + tx, y' = b x + a y + ty
    rows, rhs = [], []
    for (x, y), (u, v) in zip(lm, ARCFACE_TEMPLATE):
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
        rhs += [u, v]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    assert m == pytest.approx(np.array([[a, -b, tx], [b, a, ty]]), abs=1e-3)


def test_aligned_pixels_land_on_template_points():
    size = 112
    lm = _similar(ARCFACE_TEMPLATE, 30.0, 2.0, (100.0, 20.0))
    img = np.zeros((400, 400, 3), np.uint8)
    for (x, y) in lm:                                    # a bright 5×5 dot on each landmark
        xi, yi = int(round(x)), int(round(y))
        img[yi - 2:yi + 3, xi - 2:xi + 3] = 255
    face = Face(box=Box(100, 20, 300, 300), score=0.9, landmarks=lm)
    crop = align_face(img, face, size=size)
    assert crop.pixels.shape == (size, size, 3) and crop.pixels.dtype == np.uint8
    assert crop.landmarks == pytest.approx(ARCFACE_TEMPLATE, abs=1e-3)
    for (x, y) in ARCFACE_TEMPLATE:
        assert crop.pixels[int(round(y)), int(round(x))].min() > 150
    assert crop.pixels[5, 5].max() == 0                  # away from the dots: black
    assert crop.angle == pytest.approx(30.0, abs=1e-3)   # the face was tilted by +30°


def test_fallback_without_landmarks_is_the_margin_crop(astronaut):
    face = Face(box=Box(178, 63, 268, 176), score=0.9)
    a = align_face(astronaut, face, size=64)
    b = crop_face(astronaut, face, size=64, margin=DEFAULT_MARGIN)
    assert np.array_equal(a.pixels, b.pixels)
    nan_face = Face(box=face.box, score=0.9, landmarks=np.full((5, 2), np.nan))
    assert np.array_equal(align_face(astronaut, nan_face, size=64).pixels, b.pixels)
    degenerate = Face(box=face.box, score=0.9, landmarks=np.full((5, 2), 200.0))
    assert np.array_equal(align_face(astronaut, degenerate, size=64).pixels, b.pixels)


def test_crop_for_config_dispatches_on_crop_mode(astronaut):
    lm = _similar(ARCFACE_TEMPLATE, 5.0, 1.2, (160.0, 50.0))
    face = Face(box=Box(178, 63, 268, 176), score=0.9, landmarks=lm)
    aligned = ClassifierConfig(name="a", backbone="edgeface_xs", tasks=("gender",), input_size=112,
                               margin=0.0, crop_mode="arcface")
    boxed = ClassifierConfig(name="b", backbone="mobilenet_v2", tasks=("gender",), input_size=96)
    assert np.array_equal(crop_for_config(astronaut, face, aligned).pixels, align_face(astronaut, face, 112).pixels)
    assert np.array_equal(crop_for_config(astronaut, face, boxed).pixels,
                          crop_face(astronaut, face, 96, margin=0.30).pixels)


def test_config_crop_mode_is_backwards_compatible():
    d = ClassifierConfig(name="x", backbone="mobilenet_v2", tasks=("age", "gender")).to_dict()
    d.pop("crop_mode")                                   # a manifest written before the field existed
    assert ClassifierConfig.from_dict(d).crop_mode == "margin"
    with pytest.raises(ValueError, match="crop_mode"):
        ClassifierConfig(name="x", backbone="mobilenet_v2", tasks=("gender",), crop_mode="tight")



def test_set_align_records_it_for_the_model_and_its_members(scratch_bundle, cli):
    W = scratch_bundle
    if "age-gender-ensemble" not in W.load_manifest().get("models", {}):
        pytest.skip("age-gender-ensemble is not bundled")
    for value in ("on", "off", "ON"):
        r = cli("models", "set-align", "age-gender-ensemble", value, "--reason", "a report")
        assert r.exit_code == 0, r.output
        entry = W.bundled_entry("age-gender-ensemble")
        want = value.lower() == "on"
        assert entry["config"]["align"] is want and entry["align_reason"] == "a report"
        assert [m["align"] for m in entry["config"]["extra"]["members"]] == [want, want]
        assert ClassifierConfig.from_dict(entry["config"]).align is want
    assert cli("models", "set-align", "age-gender-ensemble", "maybe", "--reason", "x").exit_code == 2
    r = cli("models", "set-align", "blazeface", "on", "--reason", "x")
    assert r.exit_code == 1 and "not a classifier" in r.output


def test_set_align_min_tilt_is_recorded_validated_and_used(scratch_bundle, cli, astronaut):
    W = scratch_bundle
    if "age-gender-ensemble" not in W.load_manifest().get("models", {}):
        pytest.skip("age-gender-ensemble is not bundled")
    r = cli("models", "set-align", "age-gender-ensemble", "on", "--min-tilt", "10", "--reason", "r")
    assert r.exit_code == 0 and "from 10° of tilt" in r.output, r.output
    cfg = W.bundled_entry("age-gender-ensemble")["config"]
    assert cfg["align_min_tilt"] == 10.0
    assert [m["align_min_tilt"] for m in cfg["extra"]["members"]] == [10.0, 10.0]
    config = ClassifierConfig.from_dict(cfg)
    assert config.align and config.align_min_tilt == 10.0
    # the pipeline's crop follows the config: a 5° eye line stays upright, a 20° one is levelled
    for tilt, want in ((5.0, 0.0), (20.0, 20.0)):
        a = math.radians(tilt)
        lm = np.array([[223 - 25 * math.cos(a), 100 - 25 * math.sin(a)],
                       [223 + 25 * math.cos(a), 100 + 25 * math.sin(a)], [223, 125], [205, 143], [240, 143]])
        face = Face(box=Box(178, 63, 268, 176), score=0.9, landmarks=lm)
        assert crop_for_config(astronaut, face, config).angle == pytest.approx(want, abs=1e-3)
    # back to levelling every face, and off: the field goes away
    assert cli("models", "set-align", "age-gender-ensemble", "on", "--reason", "r").exit_code == 0
    assert "align_min_tilt" not in W.bundled_entry("age-gender-ensemble")["config"]
    for bad in (("off", "--min-tilt", "10"), ("on", "--min-tilt", "95"), ("on", "--min-tilt", "-1")):
        r = cli("models", "set-align", "age-gender-ensemble", *bad, "--reason", "r")
        assert r.exit_code == 2 and "min-tilt" in r.output, r.output
    d = ClassifierConfig(name="x", backbone="mobilenet_v2", tasks=("gender",)).to_dict()
    assert "align_min_tilt" not in d                     # configs written before the field read as before
    with pytest.raises(ValueError, match="align_min_tilt"):
        ClassifierConfig(name="x", backbone="mobilenet_v2", tasks=("gender",), align=True, align_min_tilt=-2)


def test_set_frame_records_and_removes_a_frame(scratch_bundle, cli):
    W = scratch_bundle
    if "default-expression" not in W.load_manifest().get("models", {}):
        pytest.skip("default-expression is not bundled")
    r = cli("models", "set-frame", "default-expression", "0.1,0,0.2,0.05", "--reason", "r")
    assert r.exit_code == 0, r.output
    entry = W.bundled_entry("default-expression")
    assert entry["config"]["frame"] == [0.1, 0.0, 0.2, 0.05] and entry["frame_reason"] == "r"
    assert cli("models", "set-frame", "default-expression", "none", "--reason", "r").exit_code == 0
    assert "frame" not in W.bundled_entry("default-expression")["config"]
    for bad in ("0.1,x,0,0", "0,-1,0,0"):
        r = cli("models", "set-frame", "default-expression", bad, "--reason", "r")
        assert r.exit_code == 1 and "error" in r.output
