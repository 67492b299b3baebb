"""Face detectors on real faces (skimage astronaut, UTKFace, FER+) and on images without faces."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from salface.detect import available_detectors, canonical_name, get_detector
from salface.detect.given import GivenBoxes, WholeImage
from salface.io import load_image
from salface.hub import MissingModelError
from salface.types import Box, Face

# Checked by eye once (YuNet 2023mar, OpenCV 5.0): the astronaut's face spans about
# x 178–268, y 63–176 in the 512×512 image (hairline to chin, ear to ear).
ASTRONAUT_FACE = (178.0, 63.0, 268.0, 176.0)
TOL = 15.0


def _near(box: Box, ref: tuple[float, float, float, float], tol: float = TOL) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(box.as_tuple(), ref))


@pytest.fixture(scope="module")
def yunet(yunet_model):
    return get_detector("yunet", model_path=yunet_model)


def _check_face_geometry(f: Face) -> None:
    lm = f.landmarks
    assert lm is not None and lm.shape == (5, 2)
    b = f.box
    assert ((lm[:, 0] >= b.x1) & (lm[:, 0] <= b.x2) & (lm[:, 1] >= b.y1) & (lm[:, 1] <= b.y2)).all()
    right_eye, left_eye, nose, mouth_r, mouth_l = lm
    assert right_eye[0] < left_eye[0], "subject's right eye must be on the image's left"
    assert mouth_r[0] < mouth_l[0]
    eyes_y = max(right_eye[1], left_eye[1])
    assert eyes_y < nose[1] < min(mouth_r[1], mouth_l[1])


# ------------------------------------------------------------------ YuNet


def test_yunet_astronaut(yunet, astronaut):
    faces = yunet.detect(astronaut)
    assert len(faces) == 1
    f = faces[0]
    assert _near(f.box, ASTRONAUT_FACE), f.box
    assert 0.6 <= f.score <= 1.0
    _check_face_geometry(f)


def test_yunet_no_face(yunet):
    skd = pytest.importorskip("skimage.data")
    assert yunet(skd.coffee()) == []
    assert yunet(np.full((240, 320, 3), 127, np.uint8)) == []


def test_yunet_max_side_maps_back(yunet_model, astronaut):
    """A 5× enlarged astronaut is shrunk to 1280 px for detection; boxes come back ×5."""
    big = cv2.resize(astronaut, (2560, 2560), interpolation=cv2.INTER_LINEAR)
    det = get_detector("yunet", model_path=yunet_model, max_side=1280)
    faces = det(big)
    assert len(faces) == 1
    assert _near(faces[0].box, tuple(5 * v for v in ASTRONAUT_FACE), tol=5 * TOL)
    _check_face_geometry(faces[0])


def test_yunet_min_side_on_fer_crops(yunet_model, shared):
    folder = shared("data", "ferplus", "FER2013Test")
    files = sorted(folder.glob("*.png"))[:20]
    det = get_detector("yunet", model_path=yunet_model, min_side=128)
    hits = 0
    for p in files:
        img = load_image(p)
        faces = det(img)
        if faces:
            hits += 1
            b = faces[0].box
            assert 0 <= b.x1 < b.x2 <= 48 and 0 <= b.y1 < b.y2 <= 48
            assert b.width > 20  # a tight crop: the face fills most of the 48×48 image
    assert hits >= 18, f"{hits}/20 FER+ crops detected with min_side=128"
    one = load_image(files[0])
    assert len(det(one)) == 1


def test_yunet_utkface_detection_rate(yunet, shared):
    folder = shared("data", "utkface")
    names = sorted(p.name for p in folder.glob("*.jpg"))
    chosen = names[::790][:30]  # 30 fixed files spread over ages (names sort by age first)
    assert len(chosen) == 30
    found = 0
    for n in chosen:
        faces = yunet(load_image(folder / n))
        if faces:
            found += 1
            # UTKFace chips are centred faces: the best box holds the image centre
            b = faces[0].box
            assert b.x1 < 100 < b.x2 and b.y1 < 100 < b.y2, (n, b)
    assert found >= 27, f"YuNet found faces in only {found}/30 UTKFace images"


def test_yunet_rejects_bad_input(yunet):
    with pytest.raises(ValueError, match="uint8 RGB"):
        yunet(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        yunet(np.zeros((10, 10, 3), np.float32))


def test_yunet_bad_params(yunet_model):
    with pytest.raises(ValueError, match="score_threshold"):
        get_detector("yunet", model_path=yunet_model, score_threshold=2)
    with pytest.raises(FileNotFoundError):
        get_detector("yunet", model_path="/nonexistent/yunet.onnx")


def test_yunet_missing_model_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("SALFACE_BUNDLED_DIR", str(tmp_path / "no_bundle"))
    monkeypatch.setenv("SALFACE_HOME", str(tmp_path / "empty_home"))
    monkeypatch.setenv("SALFACE_OFFLINE", "1")
    with pytest.raises(MissingModelError, match="salface fetch yunet --from"):
        get_detector("yunet")


def test_yunet_from_cache(yunet_model, astronaut, monkeypatch, tmp_path):
    from salface.hub import ensure_file

    monkeypatch.setenv("SALFACE_HOME", str(tmp_path / "home"))
    ensure_file("yunet", source=str(yunet_model), progress=False)
    monkeypatch.setenv("SALFACE_OFFLINE", "1")
    assert len(get_detector("yunet")(astronaut)) == 1


# ------------------------------------------------------------------ dlib HOG


def test_dlib_astronaut(astronaut):
    pytest.importorskip("dlib")
    det = get_detector("dlib-hog", upsample=0, pad=0)
    faces = det(astronaut)
    assert len(faces) == 1 and faces[0].landmarks is None
    assert _near(faces[0].box, ASTRONAUT_FACE, tol=25), faces[0].box
    # other settings can also find a weak false positive on the suit's mission patch (0.1-0.2,
    # at upsample=1 without the border or upsample=0 with it): the face must rank first
    faces1 = get_detector("dlib-hog", pad=0)(astronaut)
    assert _near(faces1[0].box, ASTRONAUT_FACE, tol=25)
    assert all(a.score >= b.score for a, b in zip(faces1, faces1[1:]))


def test_dlib_pad_finds_face_filling_the_picture(astronaut):
    pytest.importorskip("dlib")
    # a 72-px square around the astronaut's face, tighter than dlib's own box: dlib's window
    # needs background around the face, so without the border it finds nothing
    tight = np.ascontiguousarray(astronaut[85:157, 184:256])
    assert get_detector("dlib-hog", pad=0)(tight) == []
    faces = get_detector("dlib-hog")(tight)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].box.as_tuple()
    # back in the crop's coordinates and clipped to it: the face is (most of) the whole crop
    assert 0 <= x1 <= 5 and 0 <= y1 <= 5 and 67 <= x2 <= 72 and 67 <= y2 <= 72, faces[0].box
    # the border shifts nothing on a normal photo: the same face as without it
    a0 = get_detector("dlib-hog", pad=0)(astronaut)[0].box.as_tuple()
    a1 = get_detector("dlib-hog")(astronaut)[0].box.as_tuple()
    assert all(abs(u - v) <= 12 for u, v in zip(a0, a1)), (a0, a1)
    with pytest.raises(ValueError, match="pad must be between 0 and 1"):
        get_detector("dlib-hog", pad=-0.1)


def test_dlib_no_face():
    pytest.importorskip("dlib")
    skd = pytest.importorskip("skimage.data")
    assert get_detector("dlib-hog")(skd.coffee()) == []


def test_dlib_missing_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    with pytest.raises(ImportError, match=r"pip install salface\[dlib\]"):
        get_detector("dlib-hog")


# ------------------------------------------------------------------ MediaPipe


def test_mediapipe_missing_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(ImportError, match=r"pip install salface\[mediapipe\]"):
        get_detector("mediapipe")


def test_mediapipe_real(astronaut):
    try:
        from mediapipe.python.solutions import face_detection  # noqa: F401
    except Exception as exc:  # not installed, or built against another numpy
        pytest.skip(f"mediapipe 0.10.21 not usable here: {exc}")
    det = get_detector("mediapipe", approximate_landmarks=True)
    faces = det(astronaut)
    assert len(faces) == 1 and _near(faces[0].box, ASTRONAUT_FACE, tol=25)
    lm = faces[0].landmarks
    assert lm[0, 0] < lm[1, 0] and np.allclose(lm[3], lm[4])
    assert get_detector("mediapipe")(astronaut)[0].landmarks is None


# ------------------------------------------------------------------ given / whole / registry


def test_given_boxes_clip_sort_and_faces():
    img = np.zeros((100, 80, 3), np.uint8)
    lm = np.array([[30, 40], [50, 40], [40, 50], [32, 60], [48, 60]], np.float32)
    det = GivenBoxes([(10, 10, 50, 60), Face(Box(20, 30, 70, 90), 0.9, lm), (-10, -5, 200, 40, 2.0),
                      (90, 0, 120, 10)])  # the last lies outside the 80-wide image
    faces = det(img)
    assert [f.score for f in faces] == [2.0, 1.0, 0.9]
    assert faces[0].box.as_tuple() == (0.0, 0.0, 80.0, 40.0)
    assert faces[1].box.as_tuple() == (10.0, 10.0, 50.0, 60.0)
    np.testing.assert_array_equal(faces[2].landmarks, lm)
    assert get_detector("given", boxes=np.array([[1, 2, 3, 4]]))(img)[0].box.as_tuple() == (1, 2, 3, 4)
    assert get_detector("given")(img) == []


def test_given_boxes_bad_input():
    with pytest.raises(ValueError, match="x2 < x1"):
        GivenBoxes([(50, 10, 10, 60)])
    with pytest.raises(ValueError, match="got 3 numbers"):
        GivenBoxes([(1, 2, 3)])
    with pytest.raises(ValueError, match="N×4"):
        GivenBoxes(np.zeros((2, 3)))


def test_whole_image():
    faces = get_detector("full-image")(np.zeros((48, 64, 3), np.uint8))
    assert len(faces) == 1 and faces[0].box.as_tuple() == (0, 0, 64, 48) and faces[0].score == 1.0
    assert isinstance(get_detector("whole"), WholeImage)


def test_registry():
    assert canonical_name("full_image") == "whole" and canonical_name("DLIB") == "dlib-hog"
    with pytest.raises(ValueError, match="unknown detector 'retina'"):
        get_detector("retina")
    av = available_detectors()
    assert set(av) == {"auto", "yunet", "blazeface", "yunet+blazeface", "dlib-hog", "mediapipe", "given", "whole"}
    assert all(isinstance(v, str) and v for v in av.values())
    assert av["given"].endswith("[ok]")


def test_yunet_detection_scale_follows_min_face(yunet_model):
    """Detection runs at 10/min_face of the image size, within max_side and min_side."""
    det = get_detector("yunet", model_path=yunet_model, min_face=20)  # max_side 640, min_side 128
    assert det._scale_for(448, 448) == pytest.approx(0.5)
    assert det._scale_for(960, 1280) == pytest.approx(0.5)
    assert det._scale_for(3000, 4000) == pytest.approx(640 / 4000)
    assert det._scale_for(200, 200) == pytest.approx(128 / 200)   # min_side wins over half size
    assert det._scale_for(48, 48) == pytest.approx(128 / 48)
    full = get_detector("yunet", model_path=yunet_model)  # the default: full size
    assert full._scale_for(448, 448) == 1.0 and full._scale_for(200, 200) == 1.0
    with pytest.raises(ValueError, match="min_face"):
        get_detector("yunet", model_path=yunet_model, min_face=0)
