"""The agriculture vertical: plant disease detection from leaf photos that survives the field.

- data: PlantVillage ``Crop___Disease`` folders, plain class folders, CSV manifests; leaf-aware groups
- diagnose: the shipped tomato solution, one-photo diagnosis with disease card and "unknown" verdict
- diseases: information cards (what it is, signs, usual management, source)
- robustness: accuracy under field-like corruptions, Grad-CAM share on the leaf
- train: the tomato recipe (``python -m suite.agriculture.train``)

Builds on suite.core only; public names load lazily.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_leaves": "data", "parse_class_name": "data", "plantvillage_leaf_id": "data", "display_name": "data",
    "diagnose": "diagnose", "load_tomato": "diagnose", "leaf_share": "diagnose", "Diagnosis": "diagnose",
    "card_for": "diseases", "DiseaseCard": "diseases",
    "corruption_accuracy": "robustness", "leaf_attention": "robustness",
    "Recipe": "train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
