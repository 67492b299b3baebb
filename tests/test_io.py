"""load_image / iter_image_paths: odd modes decoded right, bad files rejected with named reasons."""

from __future__ import annotations

import io
import warnings
import zlib
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from salface.io import ImageError, apply_orientation, iter_image_paths, load_image


def _check_rgb(a: np.ndarray) -> None:
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and a.flags.c_contiguous


def _asym(h: int = 40, w: int = 60) -> np.ndarray:
    """An asymmetric RGB pattern: a red block in the top-left corner, green top-right."""
    a = np.full((h, w, 3), 255, np.uint8)
    a[:10, :15] = (255, 0, 0)
    a[:10, -15:] = (0, 255, 0)
    return a


# ------------------------------------------------------------------ errors


def test_missing_file(tmp_path):
    p = tmp_path / "nope.jpg"
    with pytest.raises(ImageError) as ei:
        load_image(p)
    assert ei.value.source == str(p) and "not found" in ei.value.reason
    assert str(ei.value) == f"{p}: {ei.value.reason}"


def test_directory(tmp_path):
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_zero_bytes(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="empty file") as ei:
        load_image(p)
    assert str(p) in str(ei.value)


def test_text_file_renamed_jpg(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageError, match="not a recognised image format"):
        load_image(p)


def test_truncated_jpeg(tmp_path, astronaut):
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    p = tmp_path / "cut.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated") as ei:
        load_image(p)
    assert ei.value.source == str(p)


def test_corrupt_png(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(_asym()).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    i = data.index(b"IDAT") + 10  # scramble compressed pixel data
    data[i:i + 20] = b"\x00" * 20
    p = tmp_path / "bad.png"
    p.write_bytes(bytes(data))
    with pytest.raises(ImageError) as ei:
        load_image(p)
    assert ei.value.source == str(p)
    assert "corrupt" in ei.value.reason or "truncated" in ei.value.reason


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(tag: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + tag + payload
                + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) \
        + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [12_000, 50_000])  # 144 MP (Pillow only warns), 2.5 GP (Pillow errors)
def test_decompression_bomb(tmp_path, side):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(side, side))
    limit_before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow DecompressionBombWarning may escape
        with pytest.raises(ImageError, match="too large") as ei:
            load_image(p)
    assert ei.value.source == str(p)
    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_max_pixels_above_pillow_limit_is_honoured(tmp_path):
    # 196 MP is over Pillow's own hard limit (2 × 89.5 MP): with max_pixels=200 MP the header is
    # accepted, so the failure is the missing pixel data, and Pillow's global is left as it was
    p = tmp_path / "big.png"
    p.write_bytes(_png_header_only(14_000, 14_000))
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError) as ei:
        load_image(p, max_pixels=200_000_000)
    assert "too large" not in ei.value.reason
    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_max_pixels_is_ours(tmp_path):
    p = tmp_path / "small.png"
    Image.fromarray(_asym(40, 60)).save(p)
    assert load_image(p).shape == (40, 60, 3)
    with pytest.raises(ImageError, match="2,400 pixels exceeds the limit of 1,000"):
        load_image(p, max_pixels=1000)


@pytest.mark.parametrize("bad, why", [
    (np.zeros((4, 4, 2), np.uint8), "shape"),
    (np.zeros((4,), np.uint8), "shape"),
    (np.zeros((4, 4, 3), np.int32), "dtype"),
    (np.zeros((4, 4, 3), np.uint16), "dtype"),
    (np.full((4, 4, 3), 2.0, np.float32), r"\[0, 1\]"),
    (np.full((4, 4), np.nan, np.float64), "NaN"),
])
def test_bad_arrays(bad, why):
    with pytest.raises(ImageError, match=why) as ei:
        load_image(bad)
    assert ei.value.source == "<ndarray>"


def test_unsupported_type():
    with pytest.raises(ImageError, match="unsupported input type"):
        load_image(12345)  # type: ignore[arg-type]


# ------------------------------------------------------------------ modes


def test_rgb_png_roundtrip(tmp_path):
    a = _asym()
    p = tmp_path / "a.png"
    Image.fromarray(a).save(p)
    out = load_image(str(p))
    _check_rgb(out)
    np.testing.assert_array_equal(out, a)


def test_gray_and_bilevel(tmp_path):
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    p = tmp_path / "g.png"
    Image.fromarray(g).save(p)
    out = load_image(p)
    _check_rgb(out)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)
    b = tmp_path / "b.png"
    Image.fromarray(g >= 128).convert("1").save(b)
    outb = load_image(b)
    assert set(np.unique(outb)) == {0, 255}
    np.testing.assert_array_equal(outb[..., 0] == 255, g >= 128)


def test_16bit_gray_png_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257, 65535, 1000, 32768, 128]], dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(a).save(p)  # Pillow writes mode I;16 as a 16-bit PNG
    out = load_image(p)
    # round(v / 257): 0, 1, 255, 3.89→4, 127.5→128 (round half even of 127.50..), 0.498→0
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 255, 4, 128, 0])


def test_16bit_colour_png_and_tiff(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb = np.zeros((2, 3, 3), np.uint16)
    rgb[0, 0] = (65535, 0, 300)
    rgb[0, 1] = (511, 255, 256)
    rgb[1, 2] = (40000, 20000, 60000)
    expected = np.rint(rgb / 257.0).astype(np.uint8)
    for ext in ("png", "tif"):
        p = tmp_path / f"c16.{ext}"
        assert cv2.imwrite(str(p), rgb[..., ::-1])  # OpenCV writes BGR
        out = load_image(p)
        _check_rgb(out)
        np.testing.assert_array_equal(out, expected, err_msg=ext)


def test_palette_with_transparency_over_white(tmp_path):
    a = np.zeros((4, 4), np.uint8)
    a[:2] = 1
    im = Image.fromarray(a, mode="L").convert("P")
    im.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    im.info["transparency"] = 0  # index 0 transparent
    p = tmp_path / "pal.png"
    im.save(p, transparency=0)
    out = load_image(p)
    np.testing.assert_array_equal(out[0, 0], [200, 100, 50])
    np.testing.assert_array_equal(out[3, 3], [255, 255, 255])


def test_palette_without_transparency(tmp_path):
    im = Image.fromarray(_asym()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    p = tmp_path / "pal.gif"
    im.save(p)
    out = load_image(p)
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[-1, -1], [255, 255, 255])


def test_la_and_rgba_composited_over_white(tmp_path):
    la = np.zeros((2, 2, 2), np.uint8)
    la[0, 0] = (100, 255)   # opaque gray 100
    la[0, 1] = (0, 0)       # fully transparent → white
    la[1, 0] = (0, 128)     # half black over white → 255·127/255 = 127
    p = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(p)
    out = load_image(p)
    assert tuple(out[0, 0]) == (100, 100, 100)
    assert tuple(out[0, 1]) == (255, 255, 255)
    assert tuple(out[1, 0]) == (127, 127, 127)
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    rgba[0, 1] = (0, 0, 255, 0)
    q = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(q)
    np.testing.assert_array_equal(load_image(q)[0], [[255, 0, 0], [255, 255, 255]])
    np.testing.assert_array_equal(load_image(rgba)[0], [[255, 0, 0], [255, 255, 255]])


def test_cmyk_jpeg(tmp_path):
    cmyk = np.zeros((16, 16, 4), np.uint8)
    cmyk[:, :8, 0] = 255  # cyan left half, white (no ink) right half
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(cmyk, mode="CMYK").save(p, quality=95)
    assert Image.open(p).mode == "CMYK"
    out = load_image(p)
    _check_rgb(out)
    left, right = out[4:12, 1:6].mean((0, 1)), out[4:12, 10:15].mean((0, 1))
    assert left[0] < 40 and left[1] > 215 and left[2] > 215, left  # cyan
    assert (right > 215).all(), right


def test_float_and_int32_modes(tmp_path):
    f = np.array([[0.0, 0.5, 1.0]], np.float32)
    p = tmp_path / "f.tif"
    Image.fromarray(f, mode="F").save(p)
    np.testing.assert_array_equal(load_image(p)[0, :, 0], [0, 128, 255])
    i = np.array([[0, 257, 65535]], np.int32)
    q = tmp_path / "i.tif"
    Image.fromarray(i, mode="I").save(q)
    np.testing.assert_array_equal(load_image(q)[0, :, 0], [0, 1, 255])


def test_ycbcr_pil_input():
    im = Image.fromarray(_asym()).convert("YCbCr")
    out = load_image(im)
    _check_rgb(out)
    assert abs(int(out[0, 0, 0]) - 255) <= 3 and out[0, 0, 1] <= 3


def test_exif_orientation_6(tmp_path):
    a = _asym(40, 60)  # red top-left, green top-right
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    p = tmp_path / "rot.jpg"
    im.save(p, quality=95, exif=exif)
    out = load_image(p)
    assert out.shape == (60, 40, 3)
    # after a clockwise quarter turn the top-left corner goes to the top-right, top-right to bottom-right
    tr, br, tl = out[3, -3], out[-3, -3], out[3, 3]
    assert tr[0] > 200 and tr[1] < 60 and tr[2] < 60, tr      # red
    assert br[1] > 200 and br[0] < 60 and br[2] < 60, br      # green
    assert (tl > 200).all(), tl                                # white


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow(orientation):
    a = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    ref = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(apply_orientation(a, orientation), ref)


def test_ndarray_inputs():
    g = np.array([[0, 255]], np.uint8)
    np.testing.assert_array_equal(load_image(g), [[[0, 0, 0], [255, 255, 255]]])
    f = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    np.testing.assert_array_equal(load_image(f), [[[0, 128, 255]]])
    nc = np.zeros((4, 6, 3), np.uint8)[:, ::2]  # non-contiguous view
    _check_rgb(load_image(nc))


def test_real_shared_images(shared):
    fer = sorted(shared("data", "ferplus", "FER2013Test").glob("*.png"))[0]
    a = load_image(fer)
    assert a.shape == (48, 48, 3) and (a[..., 0] == a[..., 2]).all()
    utk = sorted(shared("data", "utkface").glob("*.jpg"))[0]
    assert load_image(utk).shape == (200, 200, 3)


# ------------------------------------------------------------------ paths


def test_iter_image_paths(tmp_path):
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for rel in ("b.jpg", "a.PNG", "sub/c.webp", "sub/deep/d.tiff", "sub/notes.txt", ".hidden/e.jpg",
                "sub/.f.jpg"):
        (tmp_path / rel).write_bytes(b"x")
    got = iter_image_paths([str(tmp_path)])
    names = [p.relative_to(tmp_path).as_posix() for p in got]
    assert names == ["a.PNG", "b.jpg", "sub/c.webp", "sub/deep/d.tiff"]
    # file + folder + glob overlapping: deduplicated and sorted
    got2 = iter_image_paths([str(tmp_path / "b.jpg"), str(tmp_path / "sub"), str(tmp_path / "*.jpg"),
                             str(tmp_path / "sub" / "notes.txt")])
    assert [p.name for p in got2] == ["b.jpg", "c.webp", "d.tiff", "notes.txt"]
    assert iter_image_paths(str(tmp_path / "**" / "*.tiff"))[0].name == "d.tiff"


def test_iter_image_paths_errors(tmp_path):
    with pytest.raises(ImageError, match="no such file or folder"):
        iter_image_paths([str(tmp_path / "missing.jpg")])
    with pytest.raises(ImageError, match="pattern matches no files"):
        iter_image_paths([str(tmp_path / "*.jpg")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="no image files") as ei:
        iter_image_paths([str(empty)])
    assert ei.value.source == str(empty)


def test_image_error_pickles():
    import pickle

    e = pickle.loads(pickle.dumps(ImageError("x.jpg", "broken")))
    assert isinstance(e, ImageError) and str(e) == "x.jpg: broken" and e.reason == "broken"


def test_path_like_and_str(tmp_path):
    p = tmp_path / "x.bmp"
    Image.fromarray(_asym()).save(p)
    assert load_image(Path(p)).shape == load_image(str(p)).shape == (40, 60, 3)


def test_multiframe_gif_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), c, np.uint8)) for c in ((255, 0, 0), (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(load_image(p)[0, 0], [255, 0, 0])
    im = Image.open(p)
    im.seek(1)
    np.testing.assert_array_equal(load_image(im)[0, 0], [0, 0, 255])
