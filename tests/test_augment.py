"""Photo-like training augmentation (salface.training.augment): determinism and each kind of damage."""

from __future__ import annotations

import numpy as np
import pytest

from salface.training.augment import DEFAULT_WILD, WildAugment, degrade, degrade_batch

OFF = dict(p_lowres=0.0, p_blur=0.0, p_noise=0.0, p_exposure=0.0, p_cast=0.0, p_gray=0.0,
           p_jpeg=0.0, p_occlude=0.0)


@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    base = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1).clip(0, 255).astype(np.uint8)
    return np.stack([np.roll(base, int(rng.integers(0, 64)), axis=1) for _ in range(16)])


def test_same_seed_same_batch_other_seed_other_batch(crops):
    a = degrade_batch(crops, np.random.default_rng(7))
    b = degrade_batch(crops, np.random.default_rng(7))
    c = degrade_batch(crops, np.random.default_rng(8))
    assert a.shape == crops.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, crops)
    before = crops.copy()
    degrade_batch(crops, np.random.default_rng(7))
    assert np.array_equal(crops, before)                 # input untouched


def test_all_off_is_the_identity(crops):
    out = degrade_batch(crops, np.random.default_rng(0), WildAugment(**OFF))
    assert np.array_equal(out, crops)


def test_grayscale_gives_equal_channels(crops):
    out = degrade(crops[0], np.random.default_rng(0), WildAugment(**{**OFF, "p_gray": 1.0}))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_occlusion_changes_one_rectangle(crops):
    cfg = WildAugment(**{**OFF, "p_occlude": 1.0})
    for seed in range(5):
        out = degrade(crops[1], np.random.default_rng(seed), cfg)
        ys, xs = np.nonzero(np.any(out != crops[1], axis=-1))
        assert len(ys) > 0
        h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        assert 0.15 * 64 - 1 <= h <= 0.40 * 64 + 1 and 0.15 * 64 - 1 <= w <= 0.40 * 64 + 1
        outside = np.ones(out.shape[:2], bool)
        outside[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = False
        assert np.array_equal(out[outside], crops[1][outside])


def test_low_resolution_loses_detail_in_proportion(crops):
    # a face 60 px wide brought to 16 px: the fine checkerboard cannot survive
    checker = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    img = np.repeat(checker[..., None], 3, axis=-1)
    cfg = WildAugment(**{**OFF, "p_lowres": 1.0, "face_width": (16.0, 16.0)})
    out = degrade(img, np.random.default_rng(0), cfg, face_width=60.0)
    assert out.std() < 0.2 * img.std()
    # a face already smaller than the target is left as is
    same = degrade(img, np.random.default_rng(0), WildAugment(**{**OFF, "p_lowres": 1.0,
                                                                 "face_width": (64.0, 64.0)}), face_width=40.0)
    assert np.array_equal(same, img)


def test_jpeg_noise_blur_exposure_change_pixels_boundedly(crops):
    for key in ("p_jpeg", "p_noise", "p_blur", "p_exposure", "p_cast"):
        out = degrade(crops[2], np.random.default_rng(3), WildAugment(**{**OFF, key: 1.0}))
        diff = np.abs(out.astype(int) - crops[2].astype(int))
        assert diff.max() > 0, key
        assert diff.mean() < 60, key


def test_bad_settings_and_inputs():
    with pytest.raises(ValueError, match="p_jpeg"):
        WildAugment(p_jpeg=1.5)
    with pytest.raises(ValueError, match="jpeg_quality"):
        WildAugment(jpeg_quality=(0, 50))
    with pytest.raises(ValueError, match="uint8"):
        degrade(np.zeros((8, 8, 3), np.float32), np.random.default_rng(0))
    assert DEFAULT_WILD.jpeg_quality == (10, 90) and DEFAULT_WILD.face_width == (16.0, 64.0)


def test_replicated_margin_finds_the_real_pixels_and_context_replaces_the_rest(tmp_path):
    import cv2

    from salface.training.augment import BackgroundBank, context_paths, paste_context, replicated_margin

    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)          # a textured "photo"
    # the crop reaches past the photo: 10 px left, 6 px top, 4 px right, 0 bottom, edge-replicated
    crop = cv2.copyMakeBorder(face, 6, 0, 10, 4, cv2.BORDER_REPLICATE)
    crop = cv2.resize(crop, (64, 46), interpolation=cv2.INTER_NEAREST)[:46, :64]
    assert crop.shape == (46, 64, 3)
    x0, y0, x1, y1 = replicated_margin(crop)
    # 64 / 64 and 46 / 46: no scaling; the replicated runs are the borders (± 1 px at a seam)
    assert abs(x0 - 10) <= 1 and abs(y0 - 6) <= 1 and abs(x1 - 60) <= 1 and y1 == 46
    flat = np.full((32, 32, 3), 7, np.uint8)
    assert replicated_margin(flat) == (0, 0, 32, 32)
    assert replicated_margin(face[:32, :32]) == (0, 0, 32, 32)     # no padding

    for i in range(10):
        cv2.imwrite(str(tmp_path / f"{i:03d}.jpg"), rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    train_bg, held = context_paths(tmp_path), context_paths(tmp_path, held_out=True)
    assert [p.name for p in held] == ["000.jpg", "005.jpg"] and len(train_bg) == 8
    bank = BackgroundBank(train_bg, gray=True)
    sq = cv2.copyMakeBorder(face[:30, :30], 10, 10, 10, 10, cv2.BORDER_REPLICATE)   # 50 × 50
    r = replicated_margin(sq)
    out = paste_context(sq, bank, np.random.default_rng(1), r)
    x0, y0, x1, y1 = r
    inner = (slice(y0 + 3, y1 - 3), slice(x0 + 3, x1 - 3))
    np.testing.assert_array_equal(out[inner], sq[inner])            # the face is untouched
    assert np.all(out[:5, :5, 0] == out[:5, :5, 1])                  # grey scene in the corner
    assert not np.array_equal(out[:5], sq[:5])                       # the streaks are gone
    nopad = face[:32, :32].copy()
    assert paste_context(nopad, bank, np.random.default_rng(1)) is nopad


@pytest.mark.parametrize("kind", ["eyes", "lower", "side"])
def test_occlude_part_covers_the_named_part(kind):
    from salface.training.augment import occlude_part

    crop = np.full((96, 96, 3), 128, np.uint8)
    lm = np.array([[31, 40], [64, 40], [47, 58], [35, 70], [62, 70]], np.float32)
    out = occlude_part(crop, lm, np.random.default_rng(0), kind)
    changed = np.abs(out.astype(int) - crop).max(axis=2) > 20
    ys, xs = np.nonzero(changed)
    assert changed.mean() > 0.02
    if kind == "eyes":       # a band about the eye line
        assert abs(ys.mean() - 40) < 4 and not changed[80:].any()
    if kind == "lower":      # below the eyes, over the mouth
        assert ys.min() > 45 and changed[70, 47]
    grey = occlude_part(crop, lm, np.random.default_rng(0), kind)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    nan = np.full((5, 2), np.nan, np.float32)
    assert occlude_part(crop, nan, np.random.default_rng(0)) is crop
