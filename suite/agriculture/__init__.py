"""The agriculture vertical: plant disease detection from leaf photos that survives the field.

- data: PlantVillage ``Crop___Disease`` folders, plain class folders, CSV manifests; leaf-aware groups
- diagnose: the shipped tomato solutions (one network, or an ensemble of three), one-photo diagnosis with disease card and "unknown" verdict
- diseases: information cards (what it is, signs, usual management, source)
- robustness: accuracy under field-like corruptions, Grad-CAM share on the leaf
- train: the tomato recipe (``python -m suite.agriculture.train``)

Builds on suite.core only; public names load lazily.
"""

from __future__ import annotations

from suite.core.lazy import lazy_exports

_EXPORTS = {
    "load_leaves": "data", "parse_class_name": "data", "plantvillage_leaf_id": "data", "display_name": "data",
    "diagnose": "diagnose", "load_tomato": "diagnose", "TOMATO": "diagnose", "TOMATO_ENSEMBLE": "diagnose", "leaf_share": "diagnose", "Diagnosis": "diagnose",
    "card_for": "diseases", "DiseaseCard": "diseases",
    "corruption_accuracy": "robustness", "leaf_attention": "robustness",
    "Recipe": "train",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
