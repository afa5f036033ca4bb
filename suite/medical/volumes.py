"""3D inputs: NIfTI volumes read and prepared with MONAI transforms, and volume data sets.

A :class:`VolumePrep` says how a raw volume becomes model input: reorient (``RAS``), resample to a
voxel spacing, scale intensities, then crop/pad or resize to a fixed shape. It is stored with a
Solution (``extra["volume"]``) so prediction prepares volumes exactly as training did.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import logging
import os
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from suite.core.errors import CorruptFileError, SuiteError, TooLargeError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
MAX_VOXELS = 512 ** 3  # larger volumes are refused
MAX_BYTES = 1 << 30  # 1 GiB uncompressed
INTENSITY_MODES = ("foreground_z", "minmax", "none")


@dataclass
class Volume:
    """A volume ``(X, Y, Z)`` in the orientation ``axcodes`` with voxel ``spacing`` in mm."""

    array: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, ...]
    axcodes: tuple[str, ...]
    name: str = "volume"


@dataclass
class VolumePrep:
    """How a raw volume becomes model input (stored with a Solution).

    ``orientation``: axis codes to reorient to (``None`` keeps the file's). ``spacing``: voxel size in
    mm to resample to (``None`` keeps it). ``intensity``: ``foreground_z`` (z-score over voxels above
    the volume's minimum, then ``window`` in z units mapped to [0, 1], background 0), ``minmax``
    (to [0, 1]) or ``none``. ``size`` + ``fit``: a fixed shape by ``pad_crop`` (centred) or ``resize``.
    """

    orientation: str | None = "RAS"
    spacing: tuple[float, ...] | None = (1.0, 1.0, 1.0)
    intensity: str = "foreground_z"
    window: tuple[float, float] = (-2.5, 6.5)
    size: tuple[int, ...] | None = None
    fit: str = "pad_crop"

    def __post_init__(self):
        if self.intensity not in INTENSITY_MODES:
            raise SuiteError(f"intensity must be one of {INTENSITY_MODES}, got {self.intensity!r}")
        if self.fit not in ("pad_crop", "resize"):
            raise SuiteError(f"fit must be pad_crop or resize, got {self.fit!r}")
        if self.spacing is not None:
            self.spacing = tuple(float(s) for s in self.spacing)
        if self.size is not None:
            self.size = tuple(int(s) for s in self.size)
        self.window = tuple(float(w) for w in self.window)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VolumePrep":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known})


# ----------------------------------------------------------------------------- reading


def _suffix(name: str) -> str:
    lower = name.lower()
    return ".nii.gz" if lower.endswith(".nii.gz") else Path(lower).suffix


def _check_nifti_bytes(raw: bytes, name: str) -> None:
    """Refuse what is not a NIfTI-1/2 file before any reader sees it (a clear message, no traceback)."""
    if not raw:
        raise CorruptFileError(name, "the file is empty")
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                head = f.read(544)
        except (OSError, EOFError, zlib.error) as exc:
            raise CorruptFileError(name, f"not a readable gzip file ({exc})") from None
    else:
        head = raw[:544]
    if len(head) < 348:
        raise CorruptFileError(name, f"too short for a NIfTI header ({len(head)} bytes)")
    sizes = {int.from_bytes(head[:4], order) for order in ("little", "big")}
    if not sizes & {348, 540}:
        raise CorruptFileError(name, "not a NIfTI file (no NIfTI-1/2 header); upload a .nii or .nii.gz volume")


def _read_source(source, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), name or "upload.nii.gz"
    if hasattr(source, "read"):  # an uploaded file object (Streamlit UploadedFile, BytesIO)
        return source.read(), name or getattr(source, "name", "upload.nii.gz")
    path = Path(source)
    if not path.is_file():
        raise SuiteError(f"{path}: file not found")
    if path.stat().st_size > MAX_BYTES:
        raise TooLargeError(path, f"{path.stat().st_size} bytes, more than the {MAX_BYTES} byte limit")
    return path.read_bytes(), name or str(path)


def load_nifti(source, name: str | None = None, orientation: str | None = None) -> Volume:
    """A NIfTI volume (path, bytes or file object) as float32 ``(X, Y, Z)``, read with MONAI.

    Only ``.nii``/``.nii.gz`` are accepted; NaN or infinite voxels, 4D+ data and volumes over
    ``MAX_VOXELS`` are refused with a message naming the file. ``orientation`` (e.g. ``"RAS"``)
    reorients with MONAI's ``Orientation``.
    """
    raw, name = _read_source(source, name)
    if _suffix(name) not in NIFTI_SUFFIXES:
        raise CorruptFileError(name, f"{_suffix(name) or 'no suffix'} is not supported; upload a NIfTI volume "
                                     f"({' or '.join(NIFTI_SUFFIXES)})")
    _check_nifti_bytes(raw, name)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("volume" + _suffix(name))
        path.write_bytes(raw)
        _check_shape(path, name)
        from monai.transforms import LoadImage

        logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)  # GPU codec notice
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*nvImageCodec.*")  # DICOM GPU decoder, unused here
                img = LoadImage(reader="NibabelReader", image_only=True, ensure_channel_first=True,
                                dtype=np.float32)(str(path))
        except Exception as exc:  # nibabel raises many types for broken files
            raise CorruptFileError(name, f"not a readable NIfTI volume ({type(exc).__name__}: {exc})") from None
    if orientation:
        from monai.transforms import Orientation

        img = Orientation(axcodes=orientation, labels=(("L", "R"), ("P", "A"), ("I", "S")))(img)
    return _as_volume(img, name)


def _check_shape(path: Path, name: str) -> None:
    import nibabel as nib

    try:
        header = nib.load(str(path)).header
    except Exception as exc:
        raise CorruptFileError(name, f"not a readable NIfTI volume ({type(exc).__name__}: {exc})") from None
    shape = tuple(int(s) for s in header.get_data_shape())
    spatial = shape[:3]
    if len(shape) < 3 or min(spatial) < 1:
        raise CorruptFileError(name, f"expected a 3D volume, got shape {shape}")
    if len(shape) > 3 and int(np.prod(shape[3:])) > 1:
        raise CorruptFileError(name, f"expected one 3D volume, got shape {shape} (a 4D series); "
                                     "save one volume per file")
    if int(np.prod(spatial)) > MAX_VOXELS:
        raise TooLargeError(name, f"volume {spatial} has more than {MAX_VOXELS} voxels")


def _as_volume(img, name: str) -> Volume:
    import nibabel as nib

    array = np.asarray(img.detach().cpu().numpy() if hasattr(img, "detach") else img, dtype=np.float32)
    array = array.reshape(array.shape[-3:]) if array.ndim > 3 else array
    check_finite(array, name)
    affine = np.asarray(img.affine, dtype=np.float64) if hasattr(img, "affine") else np.eye(4)
    spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    return Volume(array, affine, spacing, tuple(nib.aff2axcodes(affine)), name)


def check_finite(array: np.ndarray, name: str = "volume") -> None:
    """Refuse volumes holding NaN or infinite voxels, saying how many."""
    bad = ~np.isfinite(array)
    if bad.any():
        n_nan, n_inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        raise CorruptFileError(name, f"{n_nan} NaN and {n_inf} infinite voxel(s) of {array.size}; "
                                     "fix or mask them before use")


# ----------------------------------------------------------------------------- preparing


def scale_intensity(array: np.ndarray, mode: str = "foreground_z",
                    window: tuple[float, float] = (-2.5, 6.5)) -> np.ndarray:
    """Intensities to [0, 1] (see :class:`VolumePrep`): the same mapping for skull-stripped volumes
    whose background is a constant minimum and for raw scans whose background is near zero."""
    array = np.asarray(array, dtype=np.float32)
    if mode == "none":
        return array
    lo, hi = float(array.min()), float(array.max())
    if hi <= lo:
        return np.zeros_like(array)
    if mode == "minmax":
        return (array - lo) / (hi - lo)
    foreground = array > lo + 1e-6 * (hi - lo)
    values = array[foreground]
    mean, std = float(values.mean()), float(values.std()) or 1.0
    z = (array - mean) / std
    out = np.clip((z - window[0]) / (window[1] - window[0]), 0.0, 1.0).astype(np.float32)
    out[~foreground] = 0.0
    return out


def prepare_volume(volume: Volume, prep: VolumePrep) -> np.ndarray:
    """A :class:`Volume` as model-ready float32 ``(X, Y, Z)`` following ``prep`` (MONAI transforms)."""
    import torch
    from monai.data import MetaTensor
    from monai.transforms import Orientation, ResizeWithPadOrCrop, Resize, Spacing

    img = MetaTensor(torch.as_tensor(volume.array, dtype=torch.float32)[None], affine=torch.as_tensor(volume.affine))
    if prep.orientation:
        img = Orientation(axcodes=prep.orientation, labels=(("L", "R"), ("P", "A"), ("I", "S")))(img)
    if prep.spacing is not None and not np.allclose(_spacing_of(img), prep.spacing, atol=1e-3):
        img = Spacing(pixdim=prep.spacing, mode="bilinear")(img)
    array = scale_intensity(np.asarray(img[0].detach().cpu().numpy()), prep.intensity, prep.window)
    if prep.size is not None:
        fit = ResizeWithPadOrCrop(prep.size) if prep.fit == "pad_crop" else Resize(prep.size, mode="trilinear")
        array = np.asarray(fit(torch.as_tensor(array)[None])[0].detach().cpu().numpy(), dtype=np.float32)
    return np.ascontiguousarray(array, dtype=np.float32)


def _spacing_of(img) -> tuple[float, ...]:
    affine = np.asarray(img.affine, dtype=np.float64)
    return tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))


def axial_slices(array: np.ndarray) -> np.ndarray:
    """Axial slices ``(Z, H, W)`` of an RAS volume ``(X, Y, Z)``, displayed radiologically
    (anterior up, patient's right on the image's left), each padded to a square."""
    slices = np.ascontiguousarray(np.transpose(array, (2, 1, 0))[:, ::-1, ::-1])
    h, w = slices.shape[1:]
    side = max(h, w)
    if h == w:
        return slices
    pad = ((0, 0), ((side - h) // 2, side - h - (side - h) // 2), ((side - w) // 2, side - w - (side - w) // 2))
    return np.pad(slices, pad)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """[0, 1] floats as 8-bit gray values (what the 2D image pipeline reads)."""
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- data sets


def from_nifti_files(paths: Sequence[str | os.PathLike], labels: Sequence[int], classes: Sequence[str],
                     groups: Sequence[str] | None = None, prep: VolumePrep | None = None, source: str = ""):
    """Labelled volumes as :class:`~suite.core.data.LabeledData` (``modality="volume"``): every file is
    read and prepared once (``prep`` needs a fixed ``size`` so volumes stack). ``groups`` (patient or
    subject ids) keep a subject's scans in one split and let the leakage check see them."""
    from suite.core.data import LabeledData

    prep = prep or VolumePrep(size=(64, 64, 64), fit="resize")
    if prep.size is None:
        raise SuiteError("from_nifti_files: VolumePrep.size must be set so that volumes share one shape")
    if len(paths) != len(labels) or (groups is not None and len(groups) != len(paths)):
        raise SuiteError(f"from_nifti_files: {len(paths)} paths, {len(labels)} labels, "
                         f"{len(groups) if groups is not None else 'no'} groups: lengths must match")
    items = [prepare_volume(load_nifti(p), prep) for p in paths]
    return LabeledData(items=items, labels=np.asarray(labels, dtype=np.int64), classes=list(classes),
                       modality="volume", groups=None if groups is None else [str(g) for g in groups],
                       source=source or f"{len(paths)} NIfTI volumes",
                       task="binary" if len(classes) == 2 else "multiclass")


def from_nifti_csv(path, path_col: str = "path", label_col: str = "label", group_col: str | None = "subject",
                   prep: VolumePrep | None = None, classes: Sequence[str] | None = None):
    """Volumes listed in a CSV manifest (paths relative to the CSV), with an optional subject column."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SuiteError(f"{path}: no rows under the header")
    header = list(rows[0])
    wanted = [c for c in (path_col, label_col, group_col) if c]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise SuiteError(f"{path}: missing column(s) {missing}; available columns: {header}")
    names = [r[label_col].strip() for r in rows]
    classes = list(classes) if classes else sorted(set(names), key=lambda s: (not s.isdigit(), s.zfill(8)))
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise SuiteError(f"{path}: labels {unknown} are not among the classes {classes}")
    return from_nifti_files([path.parent / r[path_col].strip() for r in rows], [classes.index(n) for n in names],
                            classes, [r[group_col].strip() for r in rows] if group_col else None, prep,
                            source=f"NIfTI manifest {path}")
