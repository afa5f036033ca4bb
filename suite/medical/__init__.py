"""The medical vertical: chest X-ray classification (2D: PNG/JPEG/DICOM, MedMNIST) and volumes (3D).

2D in five lines::

    from suite.medical import load_pneumonia
    solution = load_pneumonia()                 # the shipped pneumonia-from-chest-X-ray model
    solution.predict("xray.dcm")                # label, probs, input warnings, guard score, notice

Not for clinical use: every model here is for research and demonstration only.
Public names load lazily, so importing this package stays cheap.
"""

from __future__ import annotations

from pathlib import Path

from suite.core.lazy import lazy_exports

SOLUTIONS = Path(__file__).resolve().parent / "solutions"
PNEUMONIA = SOLUTIONS / "pneumonia_xray"

_EXPORTS = {
    "read_dicom": "dicom", "write_radiograph": "dicom", "is_dicom": "dicom",
    "load_xray": "xray", "XraySolution": "xray", "load_solution": "xray", "NOT_FOR_CLINICAL_USE": "xray",
    "input_warnings": "xray",
    "load_xrays": "data", "from_xray_folder": "data", "from_xray_csv": "data", "XrayData": "data",
    "adapt_xrays": "recipes", "choose_threshold": "recipes", "BACKBONES_2D": "recipes",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, also=("load_pneumonia", "PNEUMONIA"))


def load_pneumonia():
    """The shipped pneumonia-vs-normal chest X-ray Solution (an :class:`XraySolution`)."""
    from .xray import load_solution

    return load_solution(PNEUMONIA)
