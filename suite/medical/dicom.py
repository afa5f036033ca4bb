"""DICOM radiographs to display-ready grayscale images, through MONAI's ``PydicomReader``.

The reader applies the modality rescale (``RescaleSlope``/``RescaleIntercept``); this module then
applies the VOI transform the file asks for (a VOI LUT, else ``WindowCenter``/``WindowWidth`` with
its ``VOILUTFunction``, else the full range of the rescaled values) and inverts ``MONOCHROME1``, so
that bone is bright whatever the device stored. The result is what a viewer shows: a float array
in [0, 1] and an 8-bit PIL image.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import CorruptFileError, SuiteError

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
MAX_DICOM_PIXELS = 8192 * 8192


@dataclass
class DicomImage:
    """A DICOM image after rescale, VOI and MONOCHROME1 handling: ``pixels`` ``(H, W)`` in [0, 1]."""

    pixels: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def to_pil(self):
        """8-bit grayscale PIL image (mode ``L``)."""
        from PIL import Image

        return Image.fromarray(np.round(self.pixels * 255.0).astype(np.uint8), "L")


def is_dicom(source: Any) -> bool:
    """True for a path with a DICOM suffix or a DICOM preamble, or bytes with the ``DICM`` marker."""
    if isinstance(source, (bytes, bytearray)):
        return len(source) >= 132 and bytes(source[128:132]) == b"DICM"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix.lower() in DICOM_SUFFIXES:
            return True
        try:
            with open(path, "rb") as f:
                head = f.read(132)
        except OSError:
            return False
        return len(head) == 132 and head[128:132] == b"DICM"
    return False


def _first(value) -> float:
    """The first number of a possibly multi-valued DICOM element."""
    if value is None:
        raise ValueError("missing value")
    try:
        return float(value[0])
    except TypeError:
        return float(value)


def window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """DICOM VOI windowing (PS3.3 C.11.2.1.2) to [0, 1]: ``LINEAR``, ``LINEAR_EXACT`` or ``SIGMOID``."""
    values = np.asarray(values, dtype=np.float32)
    function = (function or "LINEAR").upper()
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        low, high = center - width / 2, center + width / 2
    else:
        if width < 1:
            raise SuiteError(f"window width {width} is below 1, which LINEAR windowing does not allow")
        low, high = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    if high <= low:
        return (values > low).astype(np.float32)
    out = values - np.float32(low)
    out *= np.float32(1.0 / (high - low))
    return np.clip(out, 0.0, 1.0, out=out)


def _voi(values: np.ndarray, ds) -> tuple[np.ndarray, dict]:
    """The VOI transform the dataset asks for, to [0, 1], and a description of what was applied."""
    if "VOILUTSequence" in ds and len(ds.VOILUTSequence):
        from pydicom.pixels import apply_voi

        item = ds.VOILUTSequence[0]
        bits = int(item.LUTDescriptor[2]) or 16
        out = apply_voi(values, ds, index=0).astype(np.float32)
        return np.clip(out / (2 ** bits - 1), 0.0, 1.0), {"voi": "lut", "lut_bits": bits}
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        c, w = _first(center), _first(width)
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
        return window(values, c, w, function), {"voi": "window", "window_center": c, "window_width": w,
                                                 "voi_function": function}
    lo, hi = float(values.min()), float(values.max())
    scaled = np.zeros_like(values) if hi <= lo else (values - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    return scaled, {"voi": "min-max", "range": [lo, hi]}


def _read_with_monai(path: Path):
    """(rescaled pixel array ``(rows, cols[, samples])``, dataset) via MONAI's PydicomReader."""
    from monai.data import PydicomReader

    reader = PydicomReader(swap_ij=False, prune_metadata=True)
    ds = reader.read(str(path))
    if isinstance(ds, list):
        raise SuiteError(f"{path}: a DICOM series folder, expected one radiograph file")
    rows, cols = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    if rows * cols > MAX_DICOM_PIXELS:
        raise SuiteError(f"{path}: image is {cols}x{rows}, larger than the {MAX_DICOM_PIXELS} pixel limit")
    with warnings.catch_warnings():  # radiographs carry no patient orientation: the identity affine is right
        warnings.filterwarnings("ignore", message=".*ImageOrientationPatient.*")
        array, _ = reader.get_data(ds)
    return np.asarray(array), ds


def read_dicom(source: Any, name: str | None = None) -> DicomImage:
    """Read one DICOM radiograph (a path or the file's bytes) into a :class:`DicomImage`.

    Multi-frame files give their first frame; colour files are reduced to luminance.
    """
    import pydicom

    if isinstance(source, (bytes, bytearray)):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.dcm"
            path.write_bytes(bytes(source))
            return read_dicom(path, name=name or "upload")
    path = Path(source)
    name = name or str(path)
    if not path.is_file():
        raise SuiteError(f"{name}: file not found")
    try:
        return _decode(path, name)
    except SuiteError:
        raise
    except pydicom.errors.InvalidDicomError:
        raise CorruptFileError(name, "not a DICOM file") from None
    except (NotImplementedError, RuntimeError) as exc:  # compressed pixel data without a decoder
        raise CorruptFileError(name, f"cannot decode the DICOM pixel data ({exc}); install pylibjpeg or gdcm "
                                     "for compressed transfer syntaxes") from None
    except Exception as exc:  # an untrusted file: any parser failure is a corrupt file, never a crash
        raise CorruptFileError(name, f"corrupt or incomplete DICOM ({type(exc).__name__}: {exc})") from None


def _decode(path: Path, name: str) -> DicomImage:
    """Pixels to [0, 1] with rescale, VOI and photometric interpretation applied (see read_dicom)."""
    array, ds = _read_with_monai(path)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(ds.get("SamplesPerPixel", 1))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        array = array[0]
    if samples == 3 and array.ndim == 3:
        array = array[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if array.ndim != 2:
        raise SuiteError(f"{name}: expected a 2D radiograph, got pixel data shaped {array.shape}")
    values = np.asarray(array, dtype=np.float32)
    pixels, voi = _voi(values, ds)
    if photometric == "MONOCHROME1":
        pixels = np.float32(1.0) - pixels
    meta = {"modality": str(ds.get("Modality", "")), "photometric": photometric,
            "bits_stored": int(ds.get("BitsStored", 0) or 0), "rows": int(values.shape[0]),
            "columns": int(values.shape[1]), "frames": frames,
            "rescale_slope": float(ds.get("RescaleSlope", 1) or 1),
            "rescale_intercept": float(ds.get("RescaleIntercept", 0) or 0),
            "view": str(ds.get("ViewPosition", "")), "body_part": str(ds.get("BodyPartExamined", "")), **voi}
    if not np.isfinite(pixels).all():
        raise SuiteError(f"{name}: pixel values are not finite after rescale/VOI")
    return DicomImage(np.asarray(pixels, dtype=np.float32), meta)


def describe(meta: dict) -> str:
    """One line for the UI: modality, size, bit depth, VOI and photometric interpretation."""
    voi = meta.get("voi")
    if voi == "window":
        how = f"window C={meta['window_center']:g} W={meta['window_width']:g} ({meta['voi_function']})"
    elif voi == "lut":
        how = "VOI LUT"
    else:
        how = "full range"
    slope, intercept = meta.get("rescale_slope", 1.0), meta.get("rescale_intercept", 0.0)
    rescale = "" if math.isclose(slope, 1.0) and math.isclose(intercept, 0.0) else \
        f", rescale {slope:g}x{intercept:+g}"
    return (f"DICOM {meta.get('modality') or '?'} {meta.get('columns')}x{meta.get('rows')}, "
            f"{meta.get('bits_stored')}-bit {meta.get('photometric')}{rescale}, {how}")


def write_radiograph(path, stored: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int = 16,
                     slope: float = 1.0, intercept: float = 0.0, window_center: float | None = None,
                     window_width: float | None = None, modality: str = "DX") -> Path:
    """Write ``stored`` (unsigned integer pixel values ``(H, W)``) as a minimal uncompressed DICOM radiograph.

    For examples and tests: a synthetic secondary-capture-like DX file with the given photometric
    interpretation, bit depth, rescale and optional window.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    stored = np.asarray(stored)
    if stored.ndim != 2 or stored.dtype.kind not in "ui":
        raise SuiteError(f"stored pixels must be a 2D integer array, got {stored.dtype} {stored.shape}")
    if stored.min() < 0 or stored.max() >= 2 ** bits_stored:
        raise SuiteError(f"stored pixels must lie in [0, 2**{bits_stored}), got [{stored.min()}, {stored.max()}]")
    allocated = 8 if bits_stored <= 8 else 16
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.BodyPartExamined, ds.PatientID = modality, "CHEST", "ANONYMOUS"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = allocated, bits_stored, bits_stored - 1, 0
    if slope != 1.0 or intercept != 0.0:
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
    if window_center is not None and window_width is not None:
        ds.WindowCenter, ds.WindowWidth = f"{window_center:g}", f"{window_width:g}"
    ds.PixelData = stored.astype(np.uint8 if allocated == 8 else np.uint16).tobytes()
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    return path
