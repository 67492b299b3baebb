"""Image input: decode any reasonable picture into ``H×W×3`` uint8 RGB, or fail with a clear error.

Choices made here (the papers say nothing about input handling):

* **EXIF orientation** is applied (the pixels are rotated/flipped the way a photo viewer shows them).
  A malformed EXIF block is ignored rather than fatal.
* **Transparency** (modes ``RGBA``, ``LA``, ``PA``, palette images with a transparent colour, and
  ``H×W×4`` arrays) is composited **over white**. Face photos with alpha are nearly always cut-outs
  on a transparent background; white is what a viewer shows and keeps the face's own pixels intact.
* **Grayscale** (``1``, ``L``) is replicated to three channels.
* **16-bit** images are scaled to 8 bit with ``round(v / 257)`` (so 65535 → 255, 257 → 1, never
  clipped). Grayscale 16-bit is read through Pillow; 16-bit *colour* PNG/TIFF, which Pillow can
  only truncate to its high byte, is decoded again with OpenCV at full depth.
* 32-bit integer images (mode ``I``) are taken as 16-bit data when their values fit in
  ``0..65535`` (what Pillow produces for 16-bit PNG/TIFF), otherwise stretched min..max.
  Float images (mode ``F``) in ``[0, 1]`` are scaled by 255, in ``[0, 255]`` kept, otherwise
  stretched min..max.
* ``CMYK`` and ``YCbCr`` go through Pillow's own conversion (no ICC colour management).
* Multi-frame files (GIF, TIFF) give their first frame (a PIL image passed in gives its current
  frame).
* The **size limit** is ``max_pixels`` (default 100 megapixels), checked from the header before any
  pixel is decoded. Pillow's own decompression-bomb warning/error is caught and turned into an
  :class:`ImageError`; Pillow's global limit is never changed except, for the duration of one
  ``open``, when a caller explicitly asks for a ``max_pixels`` above it.
"""

from __future__ import annotations

import glob
import os
import threading
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

DEFAULT_MAX_PIXELS = 100_000_000

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".gif",
     ".ppm", ".pgm", ".pbm", ".pnm"}
)
"""File name endings (lower case) that folder expansion in :func:`iter_image_paths` picks up."""

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray]

_PIL_LIMIT_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------
# public API


def load_image(src: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read ``src`` into a C-contiguous ``H×W×3`` uint8 RGB array.

    ``src`` may be a file path, a :class:`PIL.Image.Image` or a numpy array (``H×W`` gray,
    ``H×W×3`` taken as RGB, ``H×W×4`` RGBA; uint8, or float in ``[0, 1]``).
    Raises :class:`ImageError` naming the source and the reason for anything unreadable.
    """
    if max_pixels is None or max_pixels <= 0:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    if isinstance(src, np.ndarray):
        return _from_array(src, "<ndarray>", max_pixels)
    if isinstance(src, Image.Image):
        name = getattr(src, "filename", "") or "<PIL.Image>"
        _check_pixels(src.size, name, max_pixels)
        try:
            return _from_pil(src, name)
        except ImageError:
            raise
        except Exception as exc:  # decoding of a lazily loaded PIL image
            raise ImageError(name, f"could not decode image ({_describe(exc)})") from exc
    if isinstance(src, (str, os.PathLike)):
        return _from_path(Path(os.fspath(src)), max_pixels)
    raise ImageError(repr(type(src).__name__),
                     "unsupported input type (expected a path, a PIL image or a numpy array)")


def iter_image_paths(inputs: list[str] | tuple[str, ...] | str) -> list[Path]:
    """Expand files, folders (recursively, by :data:`IMAGE_EXTENSIONS`) and glob patterns.

    A file named explicitly is kept whatever its extension (:func:`load_image` will say if it is
    not an image). Hidden files and folders (name starting with ``.``) are skipped inside folders.
    The result is sorted and free of duplicates (two spellings of the same file count once).
    Raises :class:`ImageError` for an input that matches nothing, or a folder without images.
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [os.fspath(inputs)]
    found: dict[Path, Path] = {}

    def add(p: Path) -> None:
        key = p.resolve()
        found.setdefault(key, p)

    for raw in inputs:
        raw = os.fspath(raw)
        p = Path(raw).expanduser()
        if p.is_file():
            add(p)
        elif p.is_dir():
            n = 0
            for f in _walk_images(p):
                add(f)
                n += 1
            if n == 0:
                raise ImageError(raw, "folder contains no image files "
                                      f"({', '.join(sorted(IMAGE_EXTENSIONS))})")
        elif glob.has_magic(raw):
            matches = sorted(glob.glob(os.path.expanduser(raw), recursive=True))
            n = 0
            for m in matches:
                mp = Path(m)
                if mp.is_file():
                    add(mp)
                    n += 1
                elif mp.is_dir():
                    for f in _walk_images(mp):
                        add(f)
                        n += 1
            if n == 0:
                raise ImageError(raw, "pattern matches no files")
        else:
            raise ImageError(raw, "no such file or folder")
    return sorted(found.values(), key=lambda q: str(q))


# --------------------------------------------------------------------------------------------
# paths


def _walk_images(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in filenames:
            if fn.startswith("."):
                continue
            if os.path.splitext(fn)[1].lower() in IMAGE_EXTENSIONS:
                out.append(Path(dirpath) / fn)
    return out


def _from_path(path: Path, max_pixels: int) -> np.ndarray:
    name = str(path)
    if not path.exists():
        raise ImageError(name, "file not found")
    if path.is_dir():
        raise ImageError(name, "is a directory, not an image file")
    try:
        fh = open(path, "rb")
    except PermissionError as exc:
        raise ImageError(name, "permission denied") from exc
    except OSError as exc:
        raise ImageError(name, f"could not read file ({_describe(exc)})") from exc
    with fh:
        if not fh.read(1):
            raise ImageError(name, "empty file (0 bytes)")
        fh.seek(0)
        im = _open_checked(fh, name, max_pixels)  # reads the header only
        try:
            if _is_16bit_colour(im):
                arr = _decode_16bit_colour(path, im)
                if arr is not None:
                    return arr
            return _from_pil(im, name)
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
            msg = str(exc)
            if "truncated" in msg.lower() or isinstance(exc, EOFError):
                raise ImageError(name, f"truncated image file ({_describe(exc)})") from exc
            raise ImageError(name, f"corrupt image data ({_describe(exc)})") from exc
        finally:
            im.close()


def _open_checked(fh: BinaryIO, name: str, max_pixels: int) -> Image.Image:
    """``Image.open`` on an open file, with the pixel limit enforced and Pillow's bomb guard contained."""
    pil_hard = Image.MAX_IMAGE_PIXELS * 2 if Image.MAX_IMAGE_PIXELS else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if pil_hard is not None and max_pixels > pil_hard:
                # the caller explicitly allows more than Pillow's hard limit: lift it for this open only
                with _PIL_LIMIT_LOCK:
                    old = Image.MAX_IMAGE_PIXELS
                    Image.MAX_IMAGE_PIXELS = max_pixels
                    try:
                        im = Image.open(fh)
                    finally:
                        Image.MAX_IMAGE_PIXELS = old
            else:
                im = Image.open(fh)
    except Image.DecompressionBombError as exc:
        raise ImageError(name, f"image too large: decompression bomb guard ({exc}); "
                               f"limit is {max_pixels:,} pixels") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(name, "not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise ImageError(name, f"corrupt image header ({_describe(exc)})") from exc
    try:
        _check_pixels(im.size, name, max_pixels)
    except ImageError:
        im.close()
        raise
    return im


def _check_pixels(size: tuple[int, int], name: str, max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageError(name, f"image has no pixels ({w}×{h})")
    if w * h > max_pixels:
        raise ImageError(name, f"image too large: {w}×{h} = {w * h:,} pixels exceeds the limit of "
                               f"{max_pixels:,} (possible decompression bomb; raise max_pixels "
                               "if the file is genuine)")


def _describe(exc: BaseException) -> str:
    msg = str(exc).strip()
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


# --------------------------------------------------------------------------------------------
# PIL → array


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # malformed EXIF is not fatal
        return 1


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip an ``H×W[×C]`` array the way EXIF ``orientation`` (1..8) asks for display.

    Same result as :func:`PIL.ImageOps.exif_transpose`; used where pixels are decoded without Pillow.
    """
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = np.swapaxes(arr, 0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, k=-1)
    elif orientation == 7:
        arr = np.swapaxes(arr[::-1, ::-1], 0, 1)
    elif orientation == 8:
        arr = np.rot90(arr, k=1)
    return arr


def _from_pil(im: Image.Image, name: str) -> np.ndarray:
    im.load()  # surfaces truncation/corruption here, before any conversion
    try:
        im = ImageOps.exif_transpose(im) or im
    except Exception:  # malformed EXIF is not fatal: keep the stored orientation
        pass
    return _pil_to_rgb(im, name)


def _pil_to_rgb(im: Image.Image, name: str) -> np.ndarray:
    mode = im.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    if mode in ("1", "L"):
        return _gray_to_rgb(np.asarray(im.convert("L"), dtype=np.uint8))
    if mode == "P":
        has_alpha = "transparency" in im.info or im.palette is not None and im.palette.mode == "RGBA"
        if has_alpha:
            return _composite_white(np.asarray(im.convert("RGBA"), dtype=np.uint8))
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _composite_white(np.asarray(im.convert("RGBA"), dtype=np.uint8))
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im).astype(np.float64)
        if mode == "I" and (a.min() < 0 or a.max() > 65535):
            return _gray_to_rgb(_stretch(a))
        return _gray_to_rgb(_scale16(a))
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and hi <= 1.0:
            g = np.rint(a * 255.0)
        elif lo >= 0.0 and hi <= 255.0:
            g = np.rint(a)
        else:
            return _gray_to_rgb(_stretch(a))
        return _gray_to_rgb(g.astype(np.uint8))
    if mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    try:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except Exception as exc:
        raise ImageError(name, f"unsupported image mode {mode!r} ({_describe(exc)})") from exc


def _scale16(a: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(a, 0, 65535) / 257.0).astype(np.uint8)


def _stretch(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _gray_to_rgb(g: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))


def _composite_white(rgba: np.ndarray) -> np.ndarray:
    """Composite straight (non-premultiplied) RGBA uint8 over a white background, rounding."""
    rgb = rgba[..., :3].astype(np.uint32)
    a = rgba[..., 3:4].astype(np.uint32)
    out = (rgb * a + 255 * (255 - a) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


def _is_16bit_colour(im: Image.Image) -> bool:
    if im.mode not in ("RGB", "RGBA") or im.format not in ("PNG", "TIFF"):
        return False
    try:
        rawmodes = [t[3] if isinstance(t[3], str) else t[3][0] for t in im.tile]
    except Exception:
        return False
    return any(isinstance(r, str) and "16" in r for r in rawmodes)


def _decode_16bit_colour(path: Path, im: Image.Image) -> np.ndarray | None:
    """Decode a 16-bit colour PNG/TIFF at full depth with OpenCV; ``None`` to fall back to Pillow."""
    import cv2

    buf = np.fromfile(path, dtype=np.uint8)  # (not cv2.imread: non-ASCII paths on Windows)
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        return None
    if arr.shape[:2] != (im.size[1], im.size[0]):
        return None
    if arr.shape[2] == 4:
        rgba16 = arr[..., [2, 1, 0, 3]].astype(np.float64)
        a = rgba16[..., 3:4] / 65535.0
        rgb = rgba16[..., :3] * a + 65535.0 * (1.0 - a)
        out = _scale16(rgb)
    else:
        out = _scale16(arr[..., ::-1].astype(np.float64))
    out = apply_orientation(out, _orientation(im))
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------------
# ndarray


def _from_array(a: np.ndarray, name: str, max_pixels: int) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(name, f"unsupported array shape {a.shape}: expected H×W, H×W×3 (RGB) "
                               "or H×W×4 (RGBA)")
    h, w = a.shape[:2]
    _check_pixels((w, h), name, max_pixels)
    if a.dtype == np.uint8:
        u8 = a
    elif a.dtype == np.bool_:
        u8 = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ImageError(name, "float array contains NaN or infinity")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            raise ImageError(name, f"float array values must lie in [0, 1], got [{lo:g}, {hi:g}] "
                                   "(convert 0..255 data to uint8 first)")
        u8 = np.rint(a.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise ImageError(name, f"unsupported array dtype {a.dtype}: expected uint8 or float in [0, 1]")
    if u8.ndim == 2:
        return _gray_to_rgb(u8)
    if u8.shape[2] == 4:
        return _composite_white(u8)
    return np.ascontiguousarray(u8)
