"""Source frame: cropping a photo as if it ended where the training photos end around the face."""

import json

import numpy as np
import pytest

from salface.crop import crop_face, crop_for_config, frame_region
from salface.models.config import ClassifierConfig
from salface.training.framing import FrameStats, measure_frames, photo_frame
from salface.types import Box, Face


def _gradient(h=40, w=40):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 5, y * 5, (x + y) * 3], -1).astype(np.uint8)


def test_frame_region_hand_computed():
    r = frame_region(Box(10, 20, 30, 60), (0.5, 0.25, 0.0, 0.1))  # box 20 wide, 40 high
    assert r.as_tuple() == (0.0, 10.0, 30.0, 64.0)
    with pytest.raises(ValueError):
        frame_region(Box(0, 0, 1, 1), (0, -0.1, 0, 0))


def test_no_frame_is_the_whole_photo():
    img = _gradient()
    face = Face(Box(12, 10, 28, 30))
    a = crop_face(img, face, size=24, margin=0.3)
    b = crop_face(img, face, size=24, margin=0.3, frame=None)
    np.testing.assert_array_equal(a.pixels, b.pixels)
    # a frame reaching past the photo on every side changes nothing either
    c = crop_face(img, face, size=24, margin=0.3, frame=(5, 5, 5, 5))
    np.testing.assert_array_equal(a.pixels, c.pixels)


def test_frame_zero_replicates_the_box_edges():
    img = _gradient()
    face = Face(Box(10, 10, 30, 30))  # margin 0.2: side 24, region (8, 8, 32, 32); no resize
    c = crop_face(img, face, size=24, margin=0.2, frame=(0, 0, 0, 0))
    assert c.box.as_tuple() == (8, 8, 32, 32)
    np.testing.assert_array_equal(c.pixels[2:22, 2:22], img[10:30, 10:30])  # inside: the photo
    np.testing.assert_array_equal(c.pixels[0, 2:22], img[10, 10:30])        # above: the box's top row
    np.testing.assert_array_equal(c.pixels[23, 2:22], img[29, 10:30])       # below: its bottom row
    np.testing.assert_array_equal(c.pixels[2:22, 0], img[10:30, 10])       # left: its left column
    np.testing.assert_array_equal(c.pixels[0, 0], img[10, 10])
    # the photo itself, where the frame does not reach, is not used
    full = crop_face(img, face, size=24, margin=0.2)
    assert not np.array_equal(full.pixels[0], c.pixels[0])


def test_frame_one_side_only():
    img = _gradient()
    face = Face(Box(10, 10, 30, 30))
    c = crop_face(img, face, size=24, margin=0.2, frame=(5, 0.0, 5, 5))  # only the top is cut
    full = crop_face(img, face, size=24, margin=0.2)
    np.testing.assert_array_equal(c.pixels[2:], full.pixels[2:])
    np.testing.assert_array_equal(c.pixels[0], full.pixels[2])  # rows above the box replicate its top row


def test_frame_with_rotation_uses_the_same_pixels():
    img = _gradient(60, 60)
    lm = np.array([[22, 26], [38, 28], [30, 34], [24, 42], [36, 43]], float)  # slightly tilted eyes
    face = Face(Box(15, 15, 45, 50), landmarks=lm)
    a = crop_face(img, face, size=40, margin=0.3, align=True, frame=(9, 9, 9, 9))
    b = crop_face(img, face, size=40, margin=0.3, align=True)
    np.testing.assert_allclose(a.matrix, b.matrix)
    np.testing.assert_array_equal(a.pixels, b.pixels)  # a frame past the photo: identical
    c = crop_face(img, face, size=40, margin=0.3, align=True, frame=(0, 0, 0, 0))
    assert np.abs(c.pixels.astype(int) - b.pixels.astype(int))[:, :4].max() > 0  # edges replaced
    np.testing.assert_allclose(c.pixels[20, 20].astype(int), b.pixels[20, 20].astype(int), atol=1)


def test_config_frame_round_trip_and_validation():
    cfg = ClassifierConfig(name="m", backbone="mobilenet_v2", tasks=("gender",), frame=[0.1, 0, 0.1, 0.02])
    assert cfg.frame == (0.1, 0.0, 0.1, 0.02)
    d = cfg.to_dict()
    assert d["frame"] == [0.1, 0.0, 0.1, 0.02]
    assert ClassifierConfig.from_dict(json.loads(json.dumps(d))) == cfg
    plain = ClassifierConfig(name="m", backbone="mobilenet_v2", tasks=("gender",))
    assert "frame" not in plain.to_dict()  # old configs read and write as before
    for bad in ([0.1, 0.1, 0.1], [0.1, -0.1, 0.1, 0.1]):
        with pytest.raises(ValueError):
            ClassifierConfig(name="m", backbone="mobilenet_v2", tasks=("gender",), frame=bad)


def test_crop_for_config_uses_the_frame_only_when_told():
    img = _gradient()
    face = Face(Box(10, 10, 30, 30))
    cfg = ClassifierConfig(name="m", backbone="mobilenet_v2", tasks=("gender",), input_size=24,
                           margin=0.2, frame=(0, 0, 0, 0))
    framed = crop_for_config(img, face, cfg, use_frame=True)
    whole = crop_for_config(img, face, cfg)  # the default, as Analyzer() and the CAMs crop
    np.testing.assert_array_equal(framed.pixels, crop_face(img, face, 24, 0.2, frame=(0, 0, 0, 0)).pixels)
    np.testing.assert_array_equal(whole.pixels, crop_face(img, face, 24, 0.2).pixels)


def test_photo_frame_and_measure():
    assert photo_frame(Box(20, 10, 60, 90), 100, 100).tolist() == [0.5, 0.125, 1.0, 0.125]
    boxes = {"a": Box(20, 10, 60, 90), "b": Box(10, 0, 50, 80), "c": None}

    def detector(img):
        b = boxes[img.tobytes()[:1].decode()]
        return [] if b is None else [Face(b, score=0.9)]

    st = measure_frames(["a", "b", "c", "bad"], detector, progress=False,
                        load=lambda p: np.full((100, 100, 3), ord(p[0]), np.uint8) if p != "bad" else 1 / 0)
    assert st.found.tolist() == [True, True, False, False]
    np.testing.assert_allclose(st.frames[1], [0.25, 0.0, 1.25, 0.25])
    assert st.median == (0.375, 0.0625, 1.125, 0.1875)
    d = st.to_dict()
    assert d["n_photos"] == 4 and d["n_found"] == 2 and d["frame"] == [0.375, 0.0625, 1.125, 0.1875]
    with pytest.raises(ValueError):
        _ = FrameStats(frames=np.full((2, 4), np.nan), paths=["x", "y"]).median


def test_analyzer_crops_to_the_frame_only_when_asked(astronaut):
    """The shipped configs carry a frame; ``Analyzer()`` ignores it, ``source_frame=True`` uses it
    (rows above the frame repeat its top row), with every model on the same crop."""
    from salface.crop import frame_region
    from salface.hub import bundled_entry
    from salface.pipeline import Analyzer

    frame = tuple(bundled_entry("age-gender-ensemble")["config"]["frame"])
    assert frame == tuple(bundled_entry("default-expression")["config"]["frame"])  # one crop, one map
    box = (178.0, 63.0, 268.0, 176.0)
    kw = dict(detector="given", detector_options={"boxes": [box]}, tasks=("gender",), return_saliency=True)
    whole = Analyzer(**kw).analyze(astronaut)[0]
    framed = Analyzer(source_frame=True, **kw).analyze(astronaut)[0]
    assert len({g.crop_key for g in Analyzer(source_frame=True, **{**kw, "tasks": ("gender", "expression")}).groups}) == 1
    size = whole.crop.shape[0]
    np.testing.assert_array_equal(whole.crop, crop_face(astronaut, Face(Box(*box)), size, 0.3).pixels)
    np.testing.assert_array_equal(framed.crop, crop_face(astronaut, Face(Box(*box)), size, 0.3, frame=frame).pixels)
    top = frame_region(Box(*box), frame).y1  # 61.87: the square starts ~12 px higher, at y ≈ 46
    assert top > whole.crop_box.y1
    assert not np.array_equal(whole.crop, framed.crop)
