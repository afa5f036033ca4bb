"""The medical vertical: chest X-ray classification (2D: PNG/JPEG/DICOM, MedMNIST) and volumes (3D).

2D in five lines::

    from suite.medical import load_pneumonia
    solution = load_pneumonia()                 # the shipped pneumonia-from-chest-X-ray model
    solution.predict("xray.dcm")                # label, probs, input warnings, guard score, notice

Not for clinical use: every model here is for research and demonstration only.
Public names load lazily, so importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parent / "solutions"
PNEUMONIA = SOLUTIONS / "pneumonia_xray"

_EXPORTS = {
    "read_dicom": "dicom", "write_radiograph": "dicom", "is_dicom": "dicom",
    "load_xray": "xray", "XraySolution": "xray", "load_solution": "xray", "NOT_FOR_CLINICAL_USE": "xray",
    "input_warnings": "xray",
    "load_xrays": "data", "from_xray_folder": "data", "from_xray_csv": "data", "XrayData": "data",
    "adapt_xrays": "recipes", "choose_threshold": "recipes", "BACKBONES_2D": "recipes",
}

__all__ = sorted([*_EXPORTS, "load_pneumonia", "PNEUMONIA"])


def load_pneumonia():
    """The shipped pneumonia-vs-normal chest X-ray Solution (an :class:`XraySolution`)."""
    from .xray import load_solution

    return load_solution(PNEUMONIA)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
