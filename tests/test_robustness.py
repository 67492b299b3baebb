"""The robustness benchmark: conditions (deterministic, right amount of change), framing, subset,
aggregation on a hand-made table, and a tiny end-to-end run on real UTKFace images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from salface.crop import crop_face
from salface.data.base import Sample, age_to_group
from salface.evaluation import robustness as rb
from salface.types import Box, Face

from conftest import shared_path

PIXEL_CONDITIONS = [c for c in rb.CONDITIONS if c.fn is not None]


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, Face]:
    """A 200 × 200 textured colour image with a 112-px-wide face box and five landmarks."""
    rng = np.random.default_rng(7)
    base = cv2.GaussianBlur(rng.uniform(40, 215, (200, 200, 3)), (0, 0), 2.0)
    yy, xx = np.mgrid[0:200, 0:200]
    base[..., 0] += 0.2 * xx
    img = np.clip(base, 0, 255).astype(np.uint8)
    lm = np.array([[80, 85], [120, 85], [100, 110], [85, 135], [115, 135]], np.float32)
    return img, Face(Box(44, 40, 156, 170), 0.95, lm)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a.astype(float) - b.astype(float)) ** 2).mean())


# ------------------------------------------------------------------------------ the conditions

def test_conditions_have_three_severities_and_the_issue_minimums_in_the_middle():
    by = {c.name: c for c in rb.CONDITIONS}
    for c in rb.CONDITIONS:
        assert len(c.levels) == 3 or c.name.startswith("detector-"), c.name
    mid = {n: by[n].params(by[n].middle) for n in by}
    assert mid["resolution"]["face_width"] <= 32
    assert mid["jpeg"]["quality"] <= 20
    assert mid["gaussian-blur"]["sigma_112"] >= 1.5
    assert mid["noise"]["sigma"] >= 10
    assert mid["underexposure"]["gain"] <= 0.6 and mid["overexposure"]["gain"] >= 1.4
    assert all(mid[n]["share"] >= 0.2 for n in ("sunglasses", "mask", "hand"))
    assert mid["rotation"]["angle"] >= 20
    assert mid["margin-tight"]["margin"] <= 0.0 and mid["margin-loose"]["margin"] >= 0.6
    with pytest.raises(ValueError, match="unknown condition"):
        rb.get_conditions("jpeg,nope")
    with pytest.raises(ValueError, match="framing condition"):
        by["margin-tight"].apply(np.zeros((8, 8, 3), np.uint8), Face(Box(0, 0, 8, 8)), 1)


@pytest.mark.parametrize("cond", PIXEL_CONDITIONS, ids=lambda c: c.name)
def test_every_condition_is_deterministic_and_changes_the_image(scene, cond):
    img, face = scene
    before = img.copy()
    for sev in cond.severities:
        a, rec_a = cond.apply(img, face, sev, seed=3)
        b, rec_b = cond.apply(img, face, sev, seed=3)
        assert a.shape == img.shape and a.dtype == np.uint8
        assert np.array_equal(a, b) and rec_a == rec_b, (cond.name, sev)
        assert not np.array_equal(a, img), (cond.name, sev)
        assert rec_a[next(iter(cond.levels[sev - 1]))] == cond.levels[sev - 1][next(iter(cond.levels[sev - 1]))]
    assert np.array_equal(img, before)   # pure: the input is not touched
    # a harsher severity changes the image more (occluders grow, blur widens, ...)
    errs = [mse(cond.apply(img, face, s, seed=3)[0], img) for s in cond.severities]
    assert errs[0] < errs[1] < errs[2], (cond.name, errs)


@pytest.mark.parametrize("name", ["noise", "motion-blur", "colour-cast", "rotation", "yaw", "hand"])
def test_seeded_conditions_depend_on_the_seed(scene, name):
    img, face = scene
    c = rb.get_conditions(name)[0]
    outs = [c.apply(img, face, 2, seed=s)[0] for s in range(4)]
    assert any(not np.array_equal(outs[0], o) for o in outs[1:])


def test_seeded_choices_are_the_same_at_every_severity(scene):
    img, face = scene
    rot = rb.get_conditions("rotation")[0]
    signs = {math.copysign(1, rot.apply(img, face, s, seed=5)[1]["angle_deg"]) for s in (1, 2, 3)}
    assert len(signs) == 1


def test_jpeg_round_trip_differs_and_q10_is_worse_than_q50(scene):
    img, face = scene
    c = rb.get_conditions("jpeg")[0]
    e = {s: mse(c.apply(img, face, s)[0], img) for s in (1, 2, 3)}
    assert e[2] > 1.0 and e[1] < e[2] < e[3]
    out, rec = c.apply(img, face, 2)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 20])
    assert rec["bytes"] == buf.size


def test_resolution_gives_the_stated_face_width(scene):
    img, face = scene   # face 112 px wide in a 200 px image
    c = rb.get_conditions("resolution")[0]
    out, rec = c.apply(img, face, 2)          # 32 px
    assert rec["small_size"] == [round(200 * 32 / 112)] * 2 == [57, 57]
    assert rec["effective_face_width"] == pytest.approx(32, abs=0.5)
    assert out.shape == img.shape
    # detail finer than the 57-px grid (2-px stripes) is gone; 40-px waves survive
    x = np.arange(200)
    fine = np.repeat(np.tile(np.where(x % 2 == 0, 60, 190), (200, 1))[..., None], 3, 2).astype(np.uint8)
    wave = np.repeat(np.tile(128 + 60 * np.sin(2 * np.pi * x / 40), (200, 1))[..., None], 3, 2).astype(np.uint8)
    assert c.apply(fine, face, 2)[0][20:180, 20:180].std() < 0.15 * fine.std()
    w_out = c.apply(wave, face, 2)[0][20:180, 20:180, 0].astype(float).ravel()
    assert np.corrcoef(w_out, wave[20:180, 20:180, 0].astype(float).ravel())[0, 1] > 0.97
    # a face already narrower than the target is left alone
    small_face = Face(Box(90, 90, 110, 110))
    same, rec = c.apply(img, small_face, 1)   # 64 px > 20 px
    assert np.array_equal(same, img) and rec["factor"] == 1.0


def test_blur_lengths_scale_with_the_face_width(scene):
    img, _ = scene
    half = Face(Box(72, 72, 128, 128))          # 56 px wide: half the 112-px reference
    _, rec = rb.get_conditions("gaussian-blur")[0].apply(img, half, 2)
    assert rec["sigma_px"] == pytest.approx(0.75)
    _, rec = rb.get_conditions("motion-blur")[0].apply(img, half, 2)
    assert rec["length_px"] == pytest.approx(4.5)
    k = rb.motion_kernel(9.0, 0.0)
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    assert (k.sum(axis=1) > 1e-6).sum() == 1             # horizontal: one row
    assert (k.sum(axis=0) > 1e-6).sum() in (9, 10)       # about 9 px long


def test_photometric_known_answers():
    grey = np.full((32, 32, 3), 128, np.uint8)
    face = Face(Box(0, 0, 32, 32))
    by = {c.name: c for c in rb.CONDITIONS}
    # sRGB 128 → linear 0.2159; × 0.6 = 0.1295 → sRGB 0.3952 × 255 = 100.8
    assert np.all(by["underexposure"].apply(grey, face, 2)[0] == 101)
    noisy = by["noise"].apply(grey, face, 2)[0].astype(float) - 128
    assert noisy.std() == pytest.approx(10.0, rel=0.05) and abs(noisy.mean()) < 0.5
    ramp = np.repeat(np.linspace(50, 200, 32)[None, :, None], 32, 0).repeat(3, 2).astype(np.uint8)
    low = by["low-contrast"].apply(ramp, face, 2)[0]
    assert low.astype(float).std() == pytest.approx(0.5 * ramp.astype(float).std(), rel=0.02)
    cast, rec = by["colour-cast"].apply(grey, face, 2)
    lin = rb._srgb_to_linear(cast[0, 0].astype(float))
    assert float(rb._LUMA @ lin) == pytest.approx(float(rb._srgb_to_linear(np.array(128.0))), rel=0.02)
    assert len(set(cast[0, 0].tolist())) > 1


def test_grayscale_makes_the_channels_equal(scene):
    img, face = scene
    g = rb.get_conditions("grayscale")[0]
    full, _ = g.apply(img, face, 3)
    assert np.array_equal(full[..., 0], full[..., 1]) and np.array_equal(full[..., 1], full[..., 2])
    assert np.array_equal(full[..., 0], cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
    half, _ = g.apply(img, face, 1)
    assert not np.array_equal(half[..., 0], half[..., 2])


@pytest.mark.parametrize("name", ["sunglasses", "mask", "hand"])
def test_occlusion_covers_the_stated_share_of_the_face_box(scene, name):
    img, face = scene
    c = rb.get_conditions(name)[0]
    for sev in c.severities:
        out, rec = c.apply(img, face, sev, seed=1)
        assert rec["achieved_share"] == pytest.approx(c.levels[sev - 1]["share"], abs=0.01)
        changed = np.abs(out.astype(int) - img.astype(int)).max(axis=2) > 12
        x1, y1, x2, y2 = (int(v) for v in face.box.as_tuple())
        # changed pixels inside the box: the occluder, less where its colour happens to match
        assert changed[y1:y2, x1:x2].mean() == pytest.approx(rec["achieved_share"], abs=0.04)


def test_occluders_sit_on_their_landmarks(scene):
    img, face = scene
    lm = face.landmarks
    glasses, _ = rb.get_conditions("sunglasses")[0].apply(img, face, 2)
    mask, _ = rb.get_conditions("mask")[0].apply(img, face, 2)
    for x, y in lm[:2]:                    # eyes hidden by dark lenses
        assert glasses[int(y), int(x)].max() < 60
        assert np.array_equal(mask[int(y), int(x)], img[int(y), int(x)])
    mouth = ((lm[3] + lm[4]) / 2).astype(int)
    assert not np.array_equal(mask[mouth[1], mouth[0]], img[mouth[1], mouth[0]])
    assert np.array_equal(glasses[mouth[1], mouth[0]], img[mouth[1], mouth[0]])


def test_box_share_known_answer():
    alpha = np.zeros((10, 10), np.float32)
    alpha[:, :5] = 1.0
    assert rb.box_share(alpha, Box(0, 0, 10, 10)) == pytest.approx(0.5)
    assert rb.box_share(alpha, Box(2.5, 0, 7.5, 10)) == pytest.approx(0.5)   # fractional edges
    assert rb.box_share(alpha, Box(5, 0, 20, 10)) == 0.0                     # outside part ignored


def test_rotation_moves_a_landmark_where_it_should(scene):
    img, face = scene
    dot = np.zeros((200, 200, 3), np.uint8)
    cx, cy = face.box.center                         # (100, 105)
    px, py = cx + 40.0, cy                           # 40 px right of the centre
    cv2.circle(dot, (int(px), int(py)), 3, (255, 255, 255), -1)
    out, rec = rb.get_conditions("rotation")[0].apply(dot, face, 2, seed=0)
    a = math.radians(rec["angle_deg"])
    assert abs(rec["angle_deg"]) == 20.0
    g = out[..., 0].astype(float)
    ys, xs = np.nonzero(g > 60)
    w = g[ys, xs]
    got = (float((xs * w).sum() / w.sum()), float((ys * w).sum() / w.sum()))
    # counter-clockwise on screen for a positive angle: the point rises (y decreases)
    want = (cx + 40 * math.cos(a), cy - 40 * math.sin(a))
    assert got == pytest.approx(want, abs=0.6)


def test_yaw_keeps_the_face_centre_and_narrows_it(scene):
    _, face = scene
    h = rb.yaw_homography(face, 20.0)
    b = face.box
    corners = np.array([[[b.x1, b.y1], [b.x2, b.y1], [b.x2, b.y2], [b.x1, b.y2]]], np.float32)
    out = cv2.perspectiveTransform(corners, h)[0]
    centre = cv2.perspectiveTransform(np.array([[face.box.center]], np.float32), h)[0, 0]
    assert centre == pytest.approx(face.box.center, abs=0.5)
    width = out[:, 0].max() - out[:, 0].min()
    assert 0.85 * math.cos(math.radians(20)) * b.width < width < b.width
    # the near side grows, the far side shrinks
    left_h, right_h = out[3, 1] - out[0, 1], out[2, 1] - out[1, 1]
    assert min(left_h, right_h) < b.height < max(left_h, right_h)


# ------------------------------------------------------------------------------ framing

@pytest.mark.parametrize("margin", [0.0, 0.15, 0.6, 0.8])
def test_margin_by_box_scaling_equals_the_config_margin(scene, margin):
    img, face = scene
    scaled = rb.margin_transform(margin, 0.30)(face, np.random.default_rng(0))
    a = crop_face(img, scaled, size=96, margin=0.30).box
    b = crop_face(img, face, size=96, margin=margin).box
    assert np.allclose(a.as_tuple(), b.as_tuple(), atol=1.0)


def test_negative_margin_crops_inside_the_box(scene):
    img, face = scene
    scaled = rb.margin_transform(-0.10, 0.30)(face, None)
    side = crop_face(img, scaled, size=96, margin=0.30).box.width
    assert side == pytest.approx(0.9 * max(face.box.width, face.box.height), abs=1.0)


def test_off_centre_shift_and_cached_faces(scene):
    img, face = scene
    det = rb.CachedFaces({rb._pixel_digest(img): [face]}, rb.offcentre_transform(0.2), seed=0, label="off-centre")
    f1, f2 = det.detect(img)[0], det.detect(img.copy())[0]
    assert f1.box.as_tuple() == f2.box.as_tuple()
    dx = (f1.box.center[0] - face.box.center[0]) / face.box.width
    dy = (f1.box.center[1] - face.box.center[1]) / face.box.height
    assert math.hypot(dx, dy) == pytest.approx(0.2)
    assert f1.box.width == pytest.approx(face.box.width)
    with pytest.raises(KeyError, match="not among the cached"):
        det.detect(np.zeros_like(img))


# ------------------------------------------------------------------------------ subset

def test_stratified_subset_keeps_shares_and_is_seeded():
    samples = [Sample(f"{i:03d}.jpg", {"gender": int(i % 4 == 0)}) for i in range(200)]   # 25 % class 1
    key = lambda s: s.labels["gender"]
    a = rb.stratified_subset(samples, 40, 0, key)
    assert len(a) == 40 and sum(key(s) for s in a) == 10
    assert [s.path for s in a] == [s.path for s in rb.stratified_subset(samples, 40, 0, key)]
    assert [s.path for s in a] != [s.path for s in rb.stratified_subset(samples, 40, 1, key)]
    assert [s.path for s in a] == sorted(s.path for s in a)
    assert len(rb.stratified_subset(samples, None, 0, key)) == 200


# ------------------------------------------------------------------------------ aggregation

def test_summary_on_a_hand_made_table():
    truth = {"gender": np.array([0, 1, 0, 1, 1, 0])}
    clean = {"gender": np.array([0, 1, 0, 0, 1, 0])}                      # 5/6
    cells = {"A": {1: {"gender": np.array([0, 1, 1, 0, 1, 0])},           # 4/6, same as clean 5/6
                   2: {"gender": np.array([0, 0, 0, 1, 1, 0])},           # 5/6, same 4/6
                   3: {"gender": np.array([-1, 1, 0, 0, -1, 0])}},        # 3/6, same 4/6 (missing = changed)
             "B": {1: {"gender": np.array([1, 1, 0, 1, 0, 0])}}}          # 4/6, same 3/6
    groups = {"gender": {"women": np.array([1, 1, 1, 0, 0, 0], bool), "men": np.array([0, 0, 0, 1, 1, 1], bool)}}
    s = rb.summarize(truth, clean, cells, {"A": 2, "B": 1}, groups)["gender"]
    assert s["clean"] == pytest.approx(5 / 6)
    assert s["conditions"]["A"]["accuracy"] == pytest.approx({1: 4 / 6, 2: 5 / 6, 3: 3 / 6})
    assert s["conditions"]["A"]["mean"] == pytest.approx(2 / 3)
    assert s["conditions"]["A"]["consistency"] == pytest.approx({1: 5 / 6, 2: 4 / 6, 3: 4 / 6})
    assert s["conditions"]["B"]["middle"] == pytest.approx(4 / 6)
    assert s["mean_over_conditions"] == pytest.approx(2 / 3)
    assert s["mean_drop"] == pytest.approx(100 / 6)
    assert s["mean_middle"] == pytest.approx((5 / 6 + 4 / 6) / 2)
    assert s["worst_middle"]["condition"] == "B" and s["worst_middle"]["drop"] == pytest.approx(100 / 6)
    assert s["consistency_overall"] == pytest.approx(2 / 3)
    assert s["stable_all_middle"] == pytest.approx(1 / 3)   # faces 2 and 5
    w, m = s["groups"]["gender"]["women"], s["groups"]["gender"]["men"]
    assert (w["n"], w["clean"], w["mean_over_conditions"]) == (3, pytest.approx(1.0), pytest.approx(2 / 3))
    assert (m["n"], m["clean"], m["mean_over_conditions"]) == (3, pytest.approx(2 / 3), pytest.approx(2 / 3))
    checks = {c["check"].split(" (")[0] + (" clean" if "(clean" in c["check"] else ""): c
              for c in rb.done_when_checks({"gender": s})}
    mean_c = checks["gender: mean over conditions within 4 points of clean"]
    assert mean_c["value"] == pytest.approx(100 / 6) and not mean_c["passed"]
    gap = checks["gender accuracy: women within 2 points of men clean"]
    assert gap["value"] == pytest.approx(-100 / 3) and not gap["passed"]
    assert gap["standard_error"] == pytest.approx(100 * math.sqrt((2 / 3) * (1 / 3) / 3))
    gap_mean = [c for c in rb.done_when_checks({"gender": s}) if "women" in c["check"] and "mean over" in c["check"]][0]
    assert gap_mean["value"] == pytest.approx(0.0) and gap_mean["passed"]


# ------------------------------------------------------------------------------ end to end

def test_tiny_end_to_end_run_on_three_utkface_images(tmp_path, yunet_model):
    from salface.data.splits import read_split, write_split

    root = shared_path("data", "utkface")
    names = ["26_0_0_20170102233359482.jpg.chip.jpg", "8_1_0_20161220223020578.jpg.chip.jpg", "61_1_1_20170113001835467.jpg.chip.jpg"]
    samples = []
    for n in names:
        age, gender, race = (int(v) for v in n.split("_")[:3])
        samples.append(Sample(str(root / n), {"age": age_to_group(age), "gender": gender},
                              meta={"age_years": age, "race": race}))
    split = write_split({"val": samples}, tmp_path / "tiny.jsonl")   # val: the split candidates are chosen on
    assert len(read_split(split)["val"]) == 3
    with pytest.raises(ValueError, match="no test split"):
        rb.benchmark("utkface", split_file=split)
    kw = dict(split_file=split, split="val", limit=None, seed=0, conditions="jpeg,mask,margin-tight,detector-whole",
              backend="torch", out_dir=tmp_path / "out", work_dir=tmp_path / "work", detector_model=yunet_model,
              command="test", verbose=False)
    md = rb.benchmark("utkface", **kw)
    rep = json.loads(md.with_suffix(".json").read_text())
    assert rep["faces"] == 3 and rep["conditions_version"] == rb.CONDITIONS_VERSION and rep["split"] == "val"
    s = rep["summary"]["gender"]
    assert set(s["conditions"]) == {"jpeg", "mask", "margin-tight", "detector-whole"}
    assert len(rep["per_face"]["clean"]["gender"]) == 3
    assert rep["records"]["mask"]["2"]["achieved_share"]["mean"] == pytest.approx(0.2, abs=0.01)
    assert any("women within 2 points" in c["check"] for c in rep["checks"])
    assert {m["role"].split(":")[0] for m in rep["models"]} >= {"classifier", "saliency"}
    text = md.read_text()
    assert "## Done-when checks" in text and "| margin-tight |" in text
    # resumed from the work folder: the same predictions, nothing recomputed
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "work").glob("cell_*.json"))
    rep2 = json.loads(rb.benchmark("utkface", **kw).with_suffix(".json").read_text())
    assert rep2["per_face"] == rep["per_face"]
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "work").glob("cell_*.json")) == before
