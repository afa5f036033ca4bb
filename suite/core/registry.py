"""A named registry of small dataclass pieces (strategies, adaptation methods)."""

from __future__ import annotations

import dataclasses

from .errors import SuiteError


class Registry:
    """``register`` a class under its ``name``; ``create(name, **options)`` builds one, and unknown
    names or options raise a SuiteError that lists the valid choices."""

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type] = {}

    def register(self, cls):
        self._classes[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        return sorted(self._classes)

    def create(self, name: str, **options):
        if name not in self._classes:
            raise SuiteError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}")
        cls = self._classes[name]
        try:
            return cls(**options)
        except TypeError as exc:
            valid = [f.name for f in dataclasses.fields(cls)]
            raise SuiteError(f"{self.kind} {name!r}: {exc}; valid options: {', '.join(valid)}") from None
