"""The shared core: model hub, Solution bundles (and, as they land, strategies, trainer, data,
evaluation, adaptation, export).

Public names load lazily, so ``import suite.core`` stays cheap until a model is built.
"""

from __future__ import annotations

from .lazy import lazy_exports

_EXPORTS = {
    "create_model": "hub", "list_models": "hub", "parse_spec": "hub", "register_source": "hub",
    "sources": "hub", "Spec": "hub", "ModelInfo": "hub",
    "TransferModel": "model", "Backbone": "model",
    "Preprocess": "preprocess",
    "Solution": "solution", "is_solution_dir": "solution",
    "SuiteError": "errors", "OfflineError": "errors", "UnsafeFileError": "errors", "InputError": "errors",
    "CorruptFileError": "errors", "TooLargeError": "errors", "DataError": "errors", "TrainingError": "errors",
    "load_state_dict": "weights", "save_state_dict": "weights",
    "read_image": "io",
    "teacher_targets": "distill",
    "ensemble_solutions": "ensemble", "EnsembleModel": "ensemble", "uniform_soup": "soup",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
