"""Lazy public names for a package: ``import suite.core`` (or a vertical) stays cheap until used."""

from __future__ import annotations

import importlib
import sys
from typing import Iterable


def lazy_exports(package: str, exports: dict[str, str], also: Iterable[str] = ()):
    """``(__getattr__, __dir__, __all__)`` for ``package``: each name in ``exports`` (name -> submodule)
    is imported from its submodule on first use and then kept; ``also`` lists names defined eagerly."""
    names = sorted([*exports, *also])

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
            setattr(sys.modules[package], name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return names

    return __getattr__, __dir__, names
