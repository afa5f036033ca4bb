"""Reading user inputs (images, text) with clear errors that name the file and the problem."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SuiteError

MAX_IMAGE_PIXELS = 8192 * 8192  # larger images are refused (decompression bombs)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _to_rgb_or_gray(img, name: str):
    """Normalise PIL modes: palette/RGBA/CMYK/LA -> RGB, 16-bit/float -> 8-bit L."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = np.nanmin(arr), np.nanmax(arr)
        arr = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        return Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode in ("L", "RGB"):
        return img
    if img.mode in ("RGBA", "LA", "P", "PA") and ("transparency" in img.info or img.mode in ("RGBA", "LA", "PA")):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


def read_image(source: Any, name: str | None = None):
    """A PIL image (mode ``RGB`` or ``L``) from a path, bytes, a PIL image or an array ``(H, W[, C])``."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, Image.Image):
        return _to_rgb_or_gray(source, name or "image")
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            arr = arr.astype(np.float64)
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
            arr = arr.astype(np.uint8)
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3):
            raise SuiteError(f"{name or 'array'}: expected an image array (H, W) or (H, W, C), got {arr.shape}")
        return _to_rgb_or_gray(Image.fromarray(arr), name or "array")
    if isinstance(source, (bytes, bytearray)):
        name, data = name or "upload", io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or str(path)
        if not path.is_file():
            raise SuiteError(f"{name}: file not found")
        if path.stat().st_size == 0:
            raise SuiteError(f"{name}: the file is empty (0 bytes)")
        data = path
    else:
        raise SuiteError(f"{name or type(source).__name__}: cannot read an image from {type(source).__name__}")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(data) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise SuiteError(f"{name}: image is {img.width}x{img.height}, larger than the "
                                 f"{MAX_IMAGE_PIXELS} pixel limit")
            img.load()
            return _to_rgb_or_gray(img, name)
    except SuiteError:
        raise
    except Image.DecompressionBombError:
        raise SuiteError(f"{name}: image is too large (decompression bomb guard)") from None
    except UnidentifiedImageError:
        raise SuiteError(f"{name}: not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise SuiteError(f"{name}: corrupt or truncated image ({exc})") from None
