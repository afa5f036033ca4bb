"""Reading user inputs (images, text) with clear errors that name the file and the problem.

Every failure is a :class:`~suite.core.errors.SuiteError` subclass: :class:`CorruptFileError`
(empty, truncated, not an image), :class:`TooLargeError` (over the pixel limit: decompression
bombs are refused from the header, before any pixel is decoded).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CorruptFileError, SuiteError, TooLargeError

MAX_IMAGE_PIXELS = 8192 * 8192  # larger images are refused (decompression bombs)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I;16S", "I", "F")


def _scale_to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """Min-max scale any real array to uint8; non-finite values take the minimum."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise CorruptFileError(name, f"pixel values of type {arr.dtype} are not numbers an image can hold")
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        raise CorruptFileError(name, "no finite pixel values (all NaN or infinite)")
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    arr = np.where(finite, arr, lo)
    arr = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
    return arr.round().astype(np.uint8)


def _to_rgb_or_gray(img, name: str):
    """Normalise PIL modes: palette/RGBA/CMYK/LA -> RGB, 16-bit/32-bit/float -> 8-bit L."""
    from PIL import Image

    if img.mode in _HIGH_DEPTH_MODES:
        return Image.fromarray(_scale_to_uint8(np.asarray(img), name), "L")
    if img.mode in ("L", "RGB"):
        return img
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


def _from_array(arr: np.ndarray, name: str):
    from PIL import Image

    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or arr.size == 0:
        raise CorruptFileError(name, f"expected an image array (H, W) or (H, W, 1|3|4), got shape {arr.shape}")
    if arr.shape[0] * arr.shape[1] > MAX_IMAGE_PIXELS:
        raise TooLargeError(name, f"image is {arr.shape[1]}x{arr.shape[0]}, larger than the "
                                  f"{MAX_IMAGE_PIXELS} pixel limit")
    return _to_rgb_or_gray(Image.fromarray(np.ascontiguousarray(_scale_to_uint8(arr, name))), name)


def _open_checked(data, name: str):
    """Open (header only) and refuse images over the pixel limit before any decoding."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    img = Image.open(data)
    if img.width * img.height > MAX_IMAGE_PIXELS:
        img.close()
        raise TooLargeError(name, f"image is {img.width}x{img.height}, larger than the {MAX_IMAGE_PIXELS} "
                                  "pixel limit (a decompression bomb guard)")
    if img.width == 0 or img.height == 0:
        img.close()
        raise CorruptFileError(name, f"image has no pixels ({img.width}x{img.height})")
    return img


def _decode(data, name: str, draft: bool = False, convert=None):
    """Open, check and fully decode; every decoder failure becomes a :class:`CorruptFileError`.

    ``convert(img, name)`` turns the decoded image into the result (default: RGB or 8-bit gray).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with _open_checked(data, name) as img:
            if draft and img.format == "JPEG":  # decode at 1/8 scale: still reads every byte
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
            return (convert or _to_rgb_or_gray)(img, name)
    except SuiteError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own guard, at twice the limit, fires first
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1))} pixels" if pixels else "too many pixels"
        raise TooLargeError(name, f"image has {size}, more than the {MAX_IMAGE_PIXELS} pixel limit "
                                  "(a decompression bomb guard)") from None
    except UnidentifiedImageError:
        raise CorruptFileError(name, "not an image file the suite can read (is it really "
                                     f"{Path(name).suffix or 'an image'}?)") from None
    except MemoryError:
        raise TooLargeError(name, "image needs more memory than is available") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, struct.error... for bad bytes
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CorruptFileError(name, f"corrupt or truncated image ({detail})") from None


def _source_bytes(source: Any, name: str | None):
    """``(name, path or BytesIO)`` for a path or bytes, after the empty-file check."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = name or "upload"
        if len(source) == 0:
            raise CorruptFileError(name, "the file is empty (0 bytes)")
        return name, io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or str(path)
        if not path.is_file():
            raise CorruptFileError(name, "file not found" if not path.exists() else "not a file")
        if path.stat().st_size == 0:
            raise CorruptFileError(name, "the file is empty (0 bytes)")
        return name, path
    raise SuiteError(f"{name or type(source).__name__}: cannot read an image from {type(source).__name__}")


def read_label_map(source: Any, name: str | None = None) -> np.ndarray:
    """The raw integer values ``(H, W)`` of a single-channel label image (8/16-bit ids, palette indices),
    with the same checks as :func:`read_image` (size limit, corrupt files named)."""
    name, data = _source_bytes(source, name)
    labels = _decode(data, name, convert=lambda img, _name: np.asarray(img))
    if labels.ndim != 2:
        raise CorruptFileError(name, f"expected a single-channel label image of ids, got shape {labels.shape}")
    return labels


def read_image(source: Any, name: str | None = None):
    """A PIL image (mode ``RGB`` or ``L``) from a path, bytes, a PIL image or an array ``(H, W[, C])``.

    RGBA and palette images are composited on white, CMYK converted to RGB, 16-bit and float images
    scaled to 8 bits. Raises :class:`CorruptFileError` or :class:`TooLargeError` naming the file.
    """
    from PIL import Image

    if isinstance(source, Image.Image):
        name = name or "image"
        try:
            return _to_rgb_or_gray(source, name)
        except SuiteError:
            raise
        except Exception as exc:
            raise CorruptFileError(name, f"cannot convert a {source.mode} image ({exc})") from None
    if isinstance(source, np.ndarray):
        return _from_array(source, name or "array")
    name, data = _source_bytes(source, name)
    return _decode(data, name)


def check_image(source: Any, name: str | None = None) -> str | None:
    """Why ``source`` (a path or bytes) is not a usable image, or ``None`` when it decodes.

    Decodes every byte (JPEGs at 1/8 scale, which is about as fast as a header check), so a file that
    passes never fails later in the middle of training.
    """
    try:
        name, data = _source_bytes(source, name)
        _decode(data, name, draft=True)
    except SuiteError as exc:
        return getattr(exc, "problem", str(exc))
    return None
