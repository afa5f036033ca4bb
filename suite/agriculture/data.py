"""Leaf photo data sets: PlantVillage-style ``Crop___Disease`` folders, plain class folders, CSV manifests.

Every loader returns the core's :class:`~suite.core.data.LabeledData`; when a leaf or plant id is
known (a CSV column, a file-name pattern, or PlantVillage's own file names) it becomes the data's
``groups``, so the core's splits keep every photo of one leaf on the same side.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from suite.core.data import LabeledData, from_csv, from_folder, groups_from_pattern
from suite.core.errors import SuiteError

PLANTVILLAGE_SEPARATOR = "___"
# "<uuid>___GHLB Leaf 4.1 Day 12.JPG": the photo index (".1") and the day are photos of leaf "GHLB Leaf 4"
_PHOTO_SUFFIX = re.compile(r"(?:\.\d+)?(?:\s+Day\s+\d+)?$", re.IGNORECASE)


def parse_class_name(name: str) -> tuple[str, str]:
    """``"Tomato___Early_blight"`` -> ``("Tomato", "Early blight")``; a plain name -> ``("", name)``.

    PlantVillage folders are ``Crop___Disease`` with underscores for spaces; ``healthy`` stays ``healthy``.
    """
    if PLANTVILLAGE_SEPARATOR in name:
        crop, disease = name.split(PLANTVILLAGE_SEPARATOR, 1)
        crop = crop.replace("_", " ").replace(",", "").strip()
        crop = re.sub(r"\s*\(.*\)$", "", crop)  # "Corn_(maize)" -> "Corn"
        return crop, disease.replace("_", " ").strip()
    return "", name.replace("_", " ").strip()


def is_healthy(label: str) -> bool:
    """True for a class that names a healthy plant (``Tomato___healthy``, ``healthy``)."""
    return parse_class_name(label)[1].lower() == "healthy"


def display_name(label: str) -> str:
    """A label as people read it: ``"Tomato: Early blight"``."""
    crop, disease = parse_class_name(label)
    return f"{crop}: {disease}" if crop else disease


def plantvillage_leaf_id(path: str | Path) -> str:
    """The leaf a PlantVillage photo shows, from its file name, with its class folder.

    ``"<uuid>___GHLB Leaf 4.1 Day 12.JPG"`` in ``Tomato___Late_blight`` -> ``"Tomato___Late_blight/GHLB Leaf 4"``.
    Names without the ``<uuid>___`` part are their own leaf (the stem of the file name).
    """
    path = Path(path)
    stem = path.stem
    tail = stem.split(PLANTVILLAGE_SEPARATOR, 1)[1] if PLANTVILLAGE_SEPARATOR in stem else stem
    tail = re.sub(r"\.?JPG$", "", tail, flags=re.IGNORECASE).strip()  # "Leaf 380.1JPG" typos
    return f"{path.parent.name}/{_PHOTO_SUFFIX.sub('', tail).strip() or tail}"


def looks_like_plantvillage(classes: list[str]) -> bool:
    """True when every class name is ``Crop___Disease``."""
    return bool(classes) and all(PLANTVILLAGE_SEPARATOR in c for c in classes)


def load_leaves(path, leaf_col: str | None = None, leaf_pattern: str | None = None, path_col: str = "path",
                label_col: str = "label", classes=None) -> LabeledData:
    """Leaf photos from a class-folder tree or a CSV manifest, with leaf ids as groups when known.

    ``leaf_col`` names a CSV column with a leaf or plant id; ``leaf_pattern`` is a regular expression
    whose first group (searched in each file name) is the id. Without either, PlantVillage folders
    (``Crop___Disease``) take the leaf id from PlantVillage's file names (:func:`plantvillage_leaf_id`).
    """
    path = Path(path)
    if path.is_dir():
        if leaf_col:
            raise SuiteError(f"{path}: leaf_col needs a CSV manifest; for folders give leaf_pattern")
        data = from_folder(path, classes=classes)
    elif path.suffix.lower() in (".csv", ".tsv"):
        data = from_csv(path, path_col=path_col, label_col=label_col, group_col=leaf_col, classes=classes)
    else:
        raise SuiteError(f"{path}: expected a folder with one sub-folder per class, or a .csv/.tsv manifest")
    if data.modality != "image":
        raise SuiteError(f"{path}: leaf data must be images, found {data.modality}")
    if leaf_pattern:
        data = replace(data, groups=groups_from_pattern(data.items, leaf_pattern))
    elif data.groups is None and looks_like_plantvillage(data.classes):
        data = replace(data, groups=[plantvillage_leaf_id(p) for p in data.items])
    return data


def crops_and_diseases(classes: list[str]) -> dict[str, list[str]]:
    """Diseases (and ``healthy``) by crop, in class order: ``{"Tomato": ["Early blight", ...]}``."""
    out: dict[str, list[str]] = {}
    for name in classes:
        crop, disease = parse_class_name(name)
        out.setdefault(crop or "(crop not named)", []).append(disease)
    return out
