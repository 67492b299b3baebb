"""The bundled BlazeFace detector and the `auto` detector choice. None of these needs ../shared
except the test that installs YuNet (skipped without it)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import salface.detect as detect
from salface.detect import auto_choice, get_detector
from salface.detect.blazeface import BlazeFaceDetector, ssd_anchor_centres
from salface.errors import ChecksumError
from salface.hub import bundled_dir, bundled_entry
from salface.io import load_image

EXAMPLE = bundled_dir() / "examples" / "astronaut.jpg"
# YuNet 2023mar (OpenCV 5.0) on the bundled astronaut.jpg, recorded from a run
YUNET_BOX = (178.3, 62.9, 268.4, 175.6)


def iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return load_image(EXAMPLE)


@pytest.fixture(scope="module")
def blaze() -> BlazeFaceDetector:
    return BlazeFaceDetector()


@pytest.fixture
def no_yunet(tmp_path, monkeypatch):
    """An empty salface cache: YuNet is not installed."""
    monkeypatch.setenv("SALFACE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(detect, "_auto_noted", False)
    return tmp_path / "home"


def test_anchors_follow_mediapipe_layout():
    full = ssd_anchor_centres(192, [4], [1])
    short = ssd_anchor_centres(128, [8, 16, 16, 16], [2, 2, 2, 2])
    assert full.shape == (48 * 48, 2) and short.shape == (16 * 16 * 2 + 8 * 8 * 6, 2)
    np.testing.assert_allclose(full[:2], [[0.5 / 48, 0.5 / 48], [1.5 / 48, 0.5 / 48]])
    # short-range: 2 anchors per cell of the 16×16 grid, then 6 per cell of the 8×8 grid
    np.testing.assert_allclose(short[:3], [[1 / 32, 1 / 32], [1 / 32, 1 / 32], [3 / 32, 1 / 32]])
    np.testing.assert_allclose(short[512:519], [[1 / 16, 1 / 16]] * 6 + [[3 / 16, 1 / 16]])


def test_astronaut_one_face_near_yunet(blaze, image):
    found = blaze.detect_keypoints(image)
    assert len(found) == 1
    face, kp = found[0]
    assert iou(face.box.as_tuple(), YUNET_BOX) >= 0.8, face.box
    assert 0.6 <= face.score <= 1.0
    assert face.landmarks is None  # no mouth corners from BlazeFace: nothing invented
    right_eye, left_eye, nose, mouth = kp[:4]
    assert right_eye[0] < left_eye[0], "subject's right eye on the image's left"
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    np.testing.assert_array_equal(face.eyes, kp[:2])  # the two eyes travel with the face


@pytest.mark.parametrize("turn", [-25.0, 30.0])
def test_eyes_follow_a_turned_photo_and_level_the_crop(blaze, image, turn):
    import cv2

    from salface.crop import crop_face, eye_angle

    h, w = image.shape[:2]
    # cv2 turns counter-clockwise for a positive angle, which tilts the eye line by −turn
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), turn, 1.0), (w, h),
                            borderMode=cv2.BORDER_REFLECT)
    face = blaze.detect(turned)[0]
    upright = eye_angle(blaze.detect(image)[0])
    assert eye_angle(face) == pytest.approx(upright - turn, abs=6.0)
    crop = crop_face(turned, face, size=96, align=True, min_tilt=10.0)
    assert crop.angle == pytest.approx(eye_angle(face))
    assert crop_face(turned, face, size=96).angle == 0.0   # levelling only on request


def test_sessions_run_on_one_quiet_thread(blaze):
    """The detector runs beside the classifiers: one intra-op thread each, no spinning, no arena
    (ONNX Runtime's defaults made the whole pipeline ~25 % slower); ``threads`` still overrides."""
    for m in blaze.models.values():
        o = m.session.get_session_options()
        assert o.intra_op_num_threads == 1 and not o.enable_cpu_mem_arena
        assert o.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    two = BlazeFaceDetector(threads=2)
    assert all(m.session.get_session_options().intra_op_num_threads == 2 for m in two.models.values())


def test_no_face_on_blank_or_noise(blaze):
    assert blaze.detect(np.full((240, 320, 3), 127, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    assert blaze.detect(noise) == []
    assert blaze.detect(np.zeros((0, 10, 3), np.uint8)) == []
    with pytest.raises(ValueError, match="blazeface"):
        blaze.detect(np.zeros((10, 10), np.uint8))


def test_tiled_face_found_twice(blaze, image):
    tiled = np.concatenate([image, image], axis=1)
    faces = blaze.detect(tiled)
    assert len(faces) == 2
    left, right = sorted(faces, key=lambda f: f.box.x1)
    w = image.shape[1]
    shifted = (YUNET_BOX[0] + w, YUNET_BOX[1], YUNET_BOX[2] + w, YUNET_BOX[3])
    assert iou(left.box.as_tuple(), YUNET_BOX) >= 0.5
    assert iou(right.box.as_tuple(), shifted) >= 0.5


@pytest.mark.parametrize("which", ["full", "short"])
def test_calibration_applied(image, which):
    entry = bundled_entry("blazeface")
    cfg = entry["config"] if which == "full" else entry["short_range"]["config"]
    c = cfg["box_calibration"]
    assert 0.7 < c["sx"] < 1.3 and 0.7 < c["sy"] < 1.3  # a fitted mapping, not a placeholder
    (raw,) = get_detector("blazeface", ranges=(which,), calibrate=False).detect(image)
    (cal,) = get_detector("blazeface", ranges=(which,)).detect(image)
    b = raw.box
    w, h = b.x2 - b.x1, b.y2 - b.y1
    cx, cy = (b.x1 + b.x2) / 2 + c["dx"] * w, (b.y1 + b.y2) / 2 + c["dy"] * h
    want = (cx - c["sx"] * w / 2, cy - c["sy"] * h / 2, cx + c["sx"] * w / 2, cy + c["sy"] * h / 2)
    np.testing.assert_allclose(cal.box.as_tuple(), want, atol=1e-3)
    assert iou(cal.box.as_tuple(), YUNET_BOX) > iou(raw.box.as_tuple(), YUNET_BOX)


def test_tampered_model_fails_checksum(tmp_path, monkeypatch):
    src = bundled_dir()
    for name in ("manifest.json", "blazeface-full-range.onnx", "blazeface-short-range.onnx"):
        shutil.copy(src / name, tmp_path / name)
    data = bytearray((tmp_path / "blazeface-short-range.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "blazeface-short-range.onnx").write_bytes(bytes(data))
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(tmp_path))
    with pytest.raises(ChecksumError, match="blazeface.*fails its checksum"):
        get_detector("blazeface")
    assert "checksum" in detect.available_detectors()["blazeface"]


def test_auto_without_yunet_is_blazeface(no_yunet, capsys):
    assert auto_choice() == "blazeface"
    det = get_detector("auto", max_side=1280, min_face=20)  # YuNet-only options are dropped
    assert isinstance(det, BlazeFaceDetector)
    note = capsys.readouterr().err
    assert "YuNet" in note and "salface fetch yunet" in note
    get_detector("auto")
    assert capsys.readouterr().err == ""  # the note comes once per process
    assert "[ok: blazeface]" in detect.available_detectors()["auto"]


def test_auto_with_corrupt_yunet_is_blazeface(no_yunet):
    from salface.hub import remote_path

    p = remote_path("yunet")
    p.parent.mkdir(parents=True)
    p.write_bytes(b"not a model")
    assert auto_choice() == "blazeface"


def test_auto_with_yunet_installed_is_yunet_with_a_second_look(no_yunet, yunet_model, capsys):
    from salface.detect.cascade import SecondLook
    from salface.detect.yunet import YuNetDetector
    from salface.hub import ensure_file

    ensure_file("yunet", source=str(yunet_model), progress=False)
    assert auto_choice() == "yunet+blazeface"
    det = get_detector("auto", max_side=320, score_threshold=0.7)  # YuNet's options reach YuNet
    assert isinstance(det, SecondLook) and det.name == "yunet+blazeface"
    assert isinstance(det.primary, YuNetDetector) and det.primary.max_side == 320
    assert det.primary.score_threshold == 0.7 and det.second.score_threshold == 0.2
    assert det.second.max_side == 320 and isinstance(det.witness, BlazeFaceDetector)
    assert capsys.readouterr().err == ""


def test_analyzer_default_records_detector(no_yunet):
    from salface.pipeline import Analyzer

    (res,) = list(Analyzer(model=None).analyze_batch([EXAMPLE]))
    d = res.to_dict()
    assert d["detector"] == "blazeface" and len(d["faces"]) == 1
    assert "landmarks" not in d["faces"][0]


def test_demo_offline_fresh_install(no_yunet, tmp_path, monkeypatch):
    """A fresh install, no network, no YuNet: the demo runs on the bundled BlazeFace."""
    from salface.cli import app

    monkeypatch.setenv("SALFACE_OFFLINE", "1")
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout[r.stdout.index("{"):r.stdout.rindex("}") + 1])
    assert result["detector"] == "blazeface" and len(result["faces"]) == 1
    face = result["faces"][0]
    assert {"age", "gender", "expression"} <= set(face)
    assert face["expression"]["label"] == "happy"
    box = tuple(face["box"][k] for k in ("x1", "y1", "x2", "y2"))
    assert iou(box, YUNET_BOX) >= 0.8
    assert (tmp_path / "out" / "astronaut.jpg").is_file()


# ------------------------------------------------------------------------------------ tiles

def test_tile_grid_covers_large_pictures_with_overlapping_tiles():
    from salface.detect.blazeface import tile_grid

    assert tile_grid(800, 600, 640) == []                 # ≤ 1.25 × tile_size: the whole picture only
    assert tile_grid(2560, 1920, 0) == []                 # tiles off
    tiles = tile_grid(1280, 960, 640)                     # 2 × 2 tiles, each 1.25 × its share
    assert tiles == [(0, 0, 800, 600), (480, 0, 1280, 600), (0, 360, 800, 960), (480, 360, 1280, 960)]
    big = tile_grid(2560, 1920, 640)
    assert len(big) == 12 and all(x2 - x1 == 800 and y2 - y1 == 800 for x1, y1, x2, y2 in big)
    huge = tile_grid(8000, 6000, 640)                     # at most 4 per side, larger tiles
    assert len(huge) == 16 and huge[-1] == (5500, 4125, 8000, 6000)
    # every pixel is in some tile
    cover = np.zeros((1920, 2560), bool)
    for x1, y1, x2, y2 in big:
        cover[y1:y2, x1:x2] = True
    assert cover.all()


def test_a_face_cut_by_an_inner_tile_edge_is_left_to_the_neighbour():
    from salface.detect.blazeface import _cut_by_tile_edge

    tile = (480, 0, 1280, 600)                            # left and bottom edges are inner edges
    assert _cut_by_tile_edge(np.array([481.0, 100, 560, 200]), tile, 1280, 960)       # at the left edge
    assert _cut_by_tile_edge(np.array([700.0, 520, 800, 599]), tile, 1280, 960)       # at the bottom edge
    assert not _cut_by_tile_edge(np.array([700.0, 0, 800, 100]), tile, 1280, 960)     # top: the picture's
    assert not _cut_by_tile_edge(np.array([1180.0, 100, 1280, 200]), tile, 1280, 960)  # right: the picture's
    assert not _cut_by_tile_edge(np.array([700.0, 100, 800, 200]), tile, 1280, 960)


def _small_faces(image: np.ndarray, blaze: BlazeFaceDetector, side: int = 140):
    """A 2560 × 1920 grey picture with the example face pasted three times at ``side`` px."""
    import cv2

    b = blaze.detect(image)[0].box
    face = cv2.resize(image[int(b.y1) - 40:int(b.y2) + 40, int(b.x1) - 40:int(b.x2) + 40], (side, side))
    canvas = np.full((1920, 2560, 3), 128, np.uint8)
    where = [(300, 400), (900, 1100), (1200, 1900)]       # (y, x); the middle one straddles tile edges
    for y, x in where:
        canvas[y:y + side, x:x + side] = face
    return canvas, [(x, y, x + side, y + side) for y, x in where]


def test_tiles_find_small_faces_in_a_large_picture_once_each(image, blaze):
    canvas, truth = _small_faces(image, blaze)
    assert BlazeFaceDetector(tile_size=0).detect(canvas) == []   # 1/18 of the side: too small whole
    faces = blaze.detect(canvas)
    assert len(faces) == 3                                       # each found, none twice
    for x1, y1, x2, y2 in truth:                                 # one box centred in each pasted square
        assert sum(x1 < (f.box.x1 + f.box.x2) / 2 < x2 and y1 < (f.box.y1 + f.box.y2) / 2 < y2
                   for f in faces) == 1


def test_small_pictures_are_searched_as_before(image, blaze):
    a, b = blaze.detect(image), BlazeFaceDetector(tile_size=0).detect(image)
    assert [(f.box, f.score) for f in a] == [(f.box, f.score) for f in b]
    with pytest.raises(ValueError, match="tile_size"):
        BlazeFaceDetector(tile_size=64)
