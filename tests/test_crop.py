"""Margin / padding geometry against hand-computed boxes."""

import cv2
import numpy as np
import pytest

from salface.crop import crop_face, crop_for_config, enlarged_box, eye_angle
from salface.models.config import ClassifierConfig
from salface.types import Box, Face


def test_enlarged_box_hand_computed():
    # w=40, h=60 -> square side 60, x1.3 = 78; centre (30, 50) -> x1 = round(30-39) = -9, y1 = 11
    assert enlarged_box(Box(10, 20, 50, 80), 0.30).as_tuple() == (-9, 11, 69, 89)
    # 100x100 at the origin: side 130, 15 px added on every side
    assert enlarged_box(Box(0, 0, 100, 100), 0.30).as_tuple() == (-15, -15, 115, 115)
    # no margin keeps a square box unchanged
    assert enlarged_box(Box(5, 5, 25, 25), 0.0).as_tuple() == (5, 5, 25, 25)
    # non-square option grows each side by its own length
    assert enlarged_box(Box(0, 0, 10, 20), 0.5, square=False).as_tuple() == (-2, -5, 13, 25)


def test_negative_margin_rejected():
    with pytest.raises(ValueError):
        enlarged_box(Box(0, 0, 10, 10), -0.1)


def test_replicate_padding_exact():
    img = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    # box = whole image, margin 0.2 -> side 12, region (-1, -1, 11, 11); crop at 12 px = no resize
    c = crop_face(img, Face(Box(0, 0, 10, 10)), size=12, margin=0.2)
    assert c.box.as_tuple() == (-1, -1, 11, 11)
    np.testing.assert_array_equal(c.pixels[1:11, 1:11], img)
    np.testing.assert_array_equal(c.pixels[0, 1:11], img[0])          # top row replicated
    np.testing.assert_array_equal(c.pixels[11, 1:11], img[9])         # bottom row replicated
    np.testing.assert_array_equal(c.pixels[1:11, 0], img[:, 0])       # left column replicated
    np.testing.assert_array_equal(c.pixels[0, 0], img[0, 0])          # corner = corner pixel
    np.testing.assert_array_equal(c.pixels[11, 11], img[9, 9])


def test_region_far_outside_uses_nearest_edge():
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, 7] = 200
    c = crop_face(img, Face(Box(20, 2, 24, 6)), size=5, margin=0.0)  # entirely right of the image
    assert (c.pixels == 200).all()


def test_mapping_and_resize():
    img = np.zeros((100, 200, 3), np.uint8)
    face = Face(Box(50, 20, 90, 60), landmarks=np.array([[60, 35], [80, 35], [70, 45], [62, 52], [78, 52]]))
    c = crop_face(img, face, size=104, margin=0.3)  # side 52 -> scale 2
    assert c.box.as_tuple() == (44, 14, 96, 66)
    assert c.pixels.shape == (104, 104, 3)
    np.testing.assert_allclose(c.to_crop_coords(np.array([[44, 14], [96, 66]])), [[0, 0], [104, 104]])
    np.testing.assert_allclose(c.landmarks[0], [(60 - 44) * 2, (35 - 14) * 2])


def test_resize_content_follows_box():
    img = np.zeros((60, 60, 3), np.uint8)
    img[20:40, 20:40] = 255  # a white square exactly filling the box
    c = crop_face(img, Face(Box(20, 20, 40, 40)), size=26, margin=0.3)  # region (17,17,43,43)
    assert c.pixels[13, 13].tolist() == [255, 255, 255]
    assert c.pixels[1, 1].tolist() == [0, 0, 0]


def test_align_levels_the_eyes():
    img = np.random.default_rng(0).integers(0, 255, (120, 120, 3), dtype=np.uint8)
    lm = np.array([[40, 40], [70, 70], [60, 60], [50, 80], [70, 85]], float)
    face = Face(Box(30, 30, 90, 90), landmarks=lm)
    assert eye_angle(face) == pytest.approx(45.0)
    c = crop_face(img, face, size=64, align=True)
    eyes = c.landmarks[:2]
    assert eyes[0][1] == pytest.approx(eyes[1][1], abs=1e-4)      # level
    assert eyes[0][0] < eyes[1][0]                                  # right eye stays on the left
    # the crop's pixel at a landmark equals the image's pixel there (nearest, smooth enough)
    unaligned = crop_face(img, face, size=64, align=False)
    assert unaligned.angle == 0.0 and c.angle == pytest.approx(45.0)


@pytest.mark.parametrize("tilt,levelled", [(4.0, False), (-9.9, False), (10.2, True), (-25.0, True)])
def test_min_tilt_levels_only_tilted_eye_lines(tilt, levelled):
    img = np.random.default_rng(1).integers(0, 255, (120, 120, 3), dtype=np.uint8)
    a = np.radians(tilt)
    lm = np.array([[60 - 15 * np.cos(a), 55 - 15 * np.sin(a)], [60 + 15 * np.cos(a), 55 + 15 * np.sin(a)],
                   [60, 62], [50, 75], [70, 75]])
    face = Face(Box(30, 30, 90, 90), landmarks=lm)
    assert eye_angle(face) == pytest.approx(tilt, abs=1e-3)
    c = crop_face(img, face, size=64, align=True, min_tilt=10.0)
    if levelled:
        assert c.angle == pytest.approx(tilt, abs=1e-3)
        assert np.array_equal(c.pixels, crop_face(img, face, size=64, align=True).pixels)
    else:                                    # a face about as upright as the training photos
        assert c.angle == 0.0
        assert np.array_equal(c.pixels, crop_face(img, face, size=64).pixels)
    # min_tilt alone does nothing without align
    assert crop_face(img, face, size=64, min_tilt=10.0).angle == 0.0


def test_eyes_alone_level_the_crop_and_landmarks_win():
    img = np.random.default_rng(2).integers(0, 255, (120, 120, 3), dtype=np.uint8)
    eyes = np.array([[45, 50], [75, 62]], float)                    # BlazeFace-style: eyes only
    face = Face(Box(30, 30, 90, 90), eyes=eyes)
    want = np.degrees(np.arctan2(12, 30))
    assert eye_angle(face) == pytest.approx(want, abs=1e-3)
    assert crop_face(img, face, size=64, align=True).angle == pytest.approx(want, abs=1e-3)
    lm = np.array([[45, 50], [75, 50], [60, 60], [50, 75], [70, 75]], float)
    assert eye_angle(Face(Box(30, 30, 90, 90), landmarks=lm, eyes=eyes)) == pytest.approx(0.0)
    assert eye_angle(Face(Box(30, 30, 90, 90), eyes=np.full((2, 2), np.nan))) == 0.0
    with pytest.raises(ValueError, match="eyes"):
        Face(Box(30, 30, 90, 90), eyes=np.zeros((3, 2)))


def test_bad_inputs():
    with pytest.raises(ValueError):
        crop_face(np.zeros((10, 10), np.uint8), Face(Box(0, 0, 5, 5)))
    with pytest.raises(ValueError):
        Box(5, 5, 1, 1)


def _textured(h: int, w: int) -> np.ndarray:
    import cv2
    noise = np.random.default_rng(3).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 0.7)  # fine detail that aliases when point-sampled


@pytest.mark.parametrize("box", [Box(200, 150, 400, 350), Box(30, 30, 60, 60)])
def test_aligned_crop_of_level_eyes_matches_the_plain_crop(box):
    # eyes a hair's breadth from level: the rotated path must give (almost) the plain crop, both
    # when it shrinks the face (200 px → 96: area-averaged, not four-pixel samples) and when it
    # enlarges it (30 px → 96: the same pixel grid, no half-pixel shift). Before session 15 the
    # rotated path differed by 16 and 8 grey levels on average here.
    img = _textured(600, 600)
    cx, cy, s = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2, box.x2 - box.x1
    lm = np.array([[cx - s / 4, cy - s / 8], [cx + s / 4, cy - s / 8 + 1e-3], [cx, cy],
                   [cx - s / 5, cy + s / 4], [cx + s / 5, cy + s / 4]])
    face = Face(box, landmarks=lm)
    aligned, plain = crop_face(img, face, size=96, align=True), crop_face(img, face, size=96)
    assert aligned.angle != 0.0
    diff = np.abs(aligned.pixels.astype(float) - plain.pixels.astype(float)).mean()
    assert diff < 2.0


def test_aligned_crop_undoes_a_quarter_turn():
    # the same face turned 90° (exactly, by rot90): aligning brings back the upright crop
    img = _textured(400, 400)
    box = Box(100, 120, 300, 320)
    lm = np.array([[150, 180], [250, 180], [200, 230], [160, 280], [240, 280]], float)
    upright = crop_face(img, Face(box, landmarks=lm), size=64)
    turned = np.ascontiguousarray(np.rot90(img))  # counter-clockwise: (x, y) → (y, W − 1 − x)
    tlm = np.stack([lm[:, 1], 399 - lm[:, 0]], axis=1)
    tbox = Box(box.y1, 400 - box.x2, box.y2, 400 - box.x1)
    back = crop_face(turned, Face(tbox, landmarks=tlm), size=64, align=True)
    assert back.angle == pytest.approx(-90.0)
    diff = np.abs(back.pixels.astype(float) - upright.pixels.astype(float)).mean()
    assert diff < 2.0


def _cut_up(image, face, side, size=96, **kw):
    small = crop_face(image, face, size=side, **kw).pixels
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


def test_max_side_sees_a_large_face_at_the_training_resolution():
    # a fine checkerboard: a sharp crop keeps its contrast, one capped at 20 px loses it
    yy, xx = np.mgrid[0:400, 0:400]
    img = np.repeat((((yy // 3 + xx // 3) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    face = Face(Box(100, 100, 300, 300))                      # the square spans 260 image pixels
    sharp = crop_face(img, face, size=96)
    capped = crop_face(img, face, size=96, max_side=20)
    assert capped.pixels.shape == sharp.pixels.shape
    assert np.array_equal(capped.pixels, _cut_up(img, face, 20))   # cut at 20 px, then enlarged
    assert capped.pixels.std() < 0.5 * sharp.pixels.std()
    assert capped.box.as_tuple() == sharp.box.as_tuple()
    assert capped.matrix == pytest.approx(sharp.matrix)       # the same image → crop mapping
    # a square no wider than the cap, or a cap at or above the crop size, is cut as before
    assert np.array_equal(crop_face(img, face, size=96, max_side=300).pixels, sharp.pixels)
    assert np.array_equal(crop_face(img, face, size=96, max_side=96).pixels, sharp.pixels)
    small = Face(Box(190, 190, 210, 210))                     # a 26-px square, under a 40-px cap
    assert np.array_equal(crop_face(img, small, size=96, max_side=40).pixels,
                          crop_face(img, small, size=96).pixels)
    # crop_for_config follows the config; use_cap=False gives the crop the pipeline maps
    cfg = ClassifierConfig(name="x", backbone="mobilenet_v2", tasks=("expression",), input_size=96,
                           max_crop_px=20)
    assert np.array_equal(crop_for_config(img, face, cfg, use_cap=False).pixels, sharp.pixels)
    assert np.array_equal(crop_for_config(img, face, cfg).pixels, capped.pixels)


def test_max_side_also_applies_to_levelled_crops():
    img = np.random.default_rng(3).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    lm = np.array([[160, 160], [240, 200], [200, 210], [170, 250], [230, 260]], float)
    face = Face(Box(100, 100, 300, 300), landmarks=lm)
    c = crop_face(img, face, size=96, align=True, max_side=30)
    sharp = crop_face(img, face, size=96, align=True)
    assert c.angle == pytest.approx(sharp.angle) and abs(c.angle) > 20
    assert np.array_equal(c.pixels, _cut_up(img, face, 30, align=True))
    assert c.matrix == pytest.approx(sharp.matrix)
    assert c.landmarks[:2, 1] == pytest.approx([c.landmarks[0, 1]] * 2, abs=1e-3)   # still level
