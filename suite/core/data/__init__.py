"""Data for training: loaders, splits, leakage checks, augmentations and corruptions."""

from .augment import CORRUPTIONS, PRESETS, augmentation, corruption
from .datasets import LabeledData, from_csv, from_folder, from_npz, from_text_csv, load_data, text_collate
from .leakage import find_leakage, find_leakage_across
from .splits import groups_from_pattern, split_indices

__all__ = [
    "CORRUPTIONS", "PRESETS", "LabeledData", "TorchDataset", "augmentation", "corruption", "find_leakage",
    "find_leakage_across", "from_csv", "from_folder", "from_npz", "from_text_csv", "groups_from_pattern", "load_data",
    "split_indices", "text_collate",
]


def __getattr__(name: str):
    if name == "TorchDataset":  # needs torch; built on first use
        from . import datasets

        return datasets.TorchDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
