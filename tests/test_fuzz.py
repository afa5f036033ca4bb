"""Property-based fuzzing of every input loader (short CI version of benchmarks/fuzz_loaders.py):
whatever the bytes, a loader returns data or raises a SuiteError, nothing else."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import fuzz_loaders  # noqa: E402

EXAMPLES = {"solution_config": 30, "dicom": 15, "leaves": 30, "driving_frames": 30}  # the others get DEFAULT_EXAMPLES; a few hundred in all
DEFAULT_EXAMPLES = 60
KNOWN_BUGS = {  # loader: what the long run found and is not fixed yet (the test turns green once it is)
}


def _case(loader):
    marks = [pytest.mark.xfail(reason=KNOWN_BUGS[loader.name])] if loader.name in KNOWN_BUGS else []
    return pytest.param(loader, id=loader.name, marks=marks)


@pytest.mark.parametrize("loader", [_case(x) for x in fuzz_loaders.LOADERS + fuzz_loaders.vertical_loaders()])
def test_loader_raises_only_suite_errors(loader):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names it is fed
        ran = fuzz_loaders.fuzz(loader, EXAMPLES.get(loader.name, DEFAULT_EXAMPLES))  # fixed seed: reproducible
    assert ran >= EXAMPLES.get(loader.name, DEFAULT_EXAMPLES) // 2


def test_the_harness_reports_an_unhandled_exception():
    from hypothesis import strategies as st

    def fragile(data: bytes) -> None:
        if len(data) > 3:
            raise ValueError("unhandled")

    failures: list = []
    loader = fuzz_loaders.Loader("fragile", "a loader with a bug", fragile, lambda: st.binary(max_size=10))
    fuzz_loaders.fuzz(loader, 50, failures)
    assert failures and "ValueError: unhandled" in failures[0][1]
    with pytest.raises(ValueError):
        fuzz_loaders.fuzz(loader, 50)
