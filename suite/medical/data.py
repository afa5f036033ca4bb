"""Labelled chest X-ray collections: folders or CSV manifests of PNG/JPEG/DICOM files, MedMNIST ``.npz``.

Patient ids come from a CSV column (``patient_col``) or a regular expression on file names
(``patient_pattern``, first capture group), and become the data's groups, so the core's splits keep
each patient's images together and its leakage check reports images shared across splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.data import LabeledData, from_npz, groups_from_pattern
from ..core.data.datasets import (_cell, _class_size_warnings, _existing_dir, _natural_key, _task_for,
                                  read_manifest)
from ..core.errors import SuiteError
from ..core.io import IMAGE_SUFFIXES
from .dicom import DICOM_SUFFIXES, is_dicom

XRAY_SUFFIXES = IMAGE_SUFFIXES + DICOM_SUFFIXES


@dataclass
class XrayData(LabeledData):
    """LabeledData whose file items may be DICOM: ``load`` returns the display-ready grayscale image."""

    def load(self, i: int):
        from .xray import load_xray

        item = self.items[i]
        if isinstance(item, (str, Path)):
            return load_xray(item, name=str(item)).image
        return super().load(i)


def _is_xray_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and (
        path.suffix.lower() in XRAY_SUFFIXES or (path.suffix == "" and is_dicom(path)))


def _problem(path: Path) -> str | None:
    """Why ``path`` is unusable, or None (DICOM: header and pixel-data presence; images: PIL verify)."""
    from ..core.data.datasets import _image_problem

    if not path.is_file():
        return "file not found"
    if not is_dicom(path):
        return _image_problem(path)
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as exc:  # pydicom raises several types for damaged files
        return f"not a readable DICOM ({type(exc).__name__}: {exc})"
    if not ds.get("Rows") or not ds.get("Columns"):
        return "DICOM without image dimensions (not an image)"
    return None


def _finish(items, labels, classes, task, groups, source, warnings, skip_bad) -> XrayData:
    problems = [_problem(Path(p)) for p in items]
    bad = [(str(p), why) for p, why in zip(items, problems) if why]
    if bad and not skip_bad:
        raise SuiteError(f"{bad[0][0]}: {bad[0][1]}")
    keep = np.array([why is None for why in problems])
    if not keep.any():
        raise SuiteError(f"{source}: none of the {len(items)} files is a readable image or DICOM "
                         f"(first: {bad[0][0]}: {bad[0][1]})")
    data = XrayData(items=[str(p) for p, k in zip(items, keep) if k], labels=np.asarray(labels)[keep],
                    classes=list(classes), modality="image",
                    groups=None if groups is None else [g for g, k in zip(groups, keep) if k],
                    source=source, task=task, skipped=bad)
    if bad:
        warnings.append(f"{source}: skipped {len(bad)} unreadable file(s), first: {bad[0][0]} ({bad[0][1]})")
    data.warnings = warnings + _class_size_warnings(data, "image")
    if data.groups is not None:
        data.warnings.append(f"{source}: {len(set(data.groups))} patients for {len(data)} images")
    return data


def from_xray_folder(path, patient_pattern: str | None = None, skip_bad: bool = True) -> XrayData:
    """One sub-folder per class of PNG/JPEG/DICOM files (searched recursively)."""
    root = _existing_dir(path)
    classes = sorted((p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=_natural_key)
    if not classes:
        raise SuiteError(f"{root}: no class folders; expected one sub-folder per class holding its X-rays")
    items, labels = [], []
    for k, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if _is_xray_file(p))
        items += files
        labels += [k] * len(files)
    if not items:
        raise SuiteError(f"{root}: no images or DICOM files ({', '.join(XRAY_SUFFIXES)}) in {classes}")
    groups = groups_from_pattern(items, patient_pattern) if patient_pattern else None
    return _finish(items, np.array(labels, dtype=np.int64), classes, _task_for(classes, False), groups,
                   f"X-ray folder {root}", [], skip_bad)


def from_xray_csv(path, path_col: str = "path", label_col: str = "label", patient_col: str | None = None,
                  patient_pattern: str | None = None, root=None, classes=None, skip_bad: bool = True) -> XrayData:
    """X-rays listed in a CSV: a path column (relative to the CSV's folder or ``root``), a label column
    (``Effusion|Edema`` makes the task multi-label, ChestX-ray14 style) and the patient id, from
    ``patient_col`` or from ``patient_pattern`` on the file names."""
    path, rows, lines, warnings, files, (labels, classes, task) = read_manifest(
        path, path_col, label_col, {"patient": patient_col}, root, classes)
    if patient_col:
        groups = [_cell(r, patient_col).strip() for r in rows]
        missing = [line for g, line in zip(groups, lines) if not g]
        if missing:
            raise SuiteError(f"{path}: empty patient id ({patient_col!r}) on line(s) {missing[:5]}")
    elif patient_pattern:
        groups = groups_from_pattern(files, patient_pattern)
    else:
        groups = None
    return _finish(files, labels, classes, task, groups, f"X-ray manifest {path}", warnings, skip_bad)


def load_xrays(path, patient_col: str | None = None, patient_pattern: str | None = None, **kw) -> LabeledData:
    """Chest X-rays from a class-folder tree, a CSV manifest, or a MedMNIST ``.npz`` (``split=...``)."""
    path = Path(path)
    if path.is_dir():
        return from_xray_folder(path, patient_pattern=patient_pattern, **kw)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return from_xray_csv(path, patient_col=patient_col, patient_pattern=patient_pattern, **kw)
    if suffix == ".npz":
        if patient_col or patient_pattern:
            raise SuiteError(f"{path}: a .npz carries no patient ids; its official splits are used instead")
        return from_npz(path, **kw)
    raise SuiteError(f"{path}: expected a folder of class folders, a .csv manifest or a MedMNIST .npz")
