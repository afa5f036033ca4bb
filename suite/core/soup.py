"""Model soups: the weight average of several fine-tuned runs of one architecture (Wortsman et al. 2022).

Runs fine-tuned from the same pretrained weights (different input sizes, epochs or seeds) usually sit
in one basin of the loss, so their average is a single model, as cheap to run as one of them, that is
often better than each. ``uniform_soup`` averages every floating-point tensor, BatchNorm statistics
included; integer buffers (step counters) are taken from the first run.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import torch

from .errors import SuiteError
from .solution import Solution


def uniform_soup(solutions: Sequence[Solution], input_size: int | None = None) -> Solution:
    """A copy of ``solutions[0]`` whose weights are the mean of all runs' weights.

    The runs must share backbone spec, task and labels. ``input_size`` sets the square input side of
    the result (default: the first run's); pick it on validation data when the runs used different sizes.
    The result has no input guard, metrics or threshold of its own: fit and measure them on the soup.
    """
    if len(solutions) < 2:
        raise SuiteError("a soup needs at least two runs")
    first = solutions[0]
    for other in solutions[1:]:
        for what, a, b in (("backbone", first.model.spec, other.model.spec), ("task", first.task, other.task),
                           ("labels", first.labels, other.labels)):
            if a != b:
                raise SuiteError(f"runs to average must share their {what}: {a!r} vs {b!r}")
    states = [s.model.state_dict() for s in solutions]
    if any(set(state) != set(states[0]) for state in states[1:]):
        raise SuiteError("runs to average must have the same tensors (same architecture and head)")
    averaged = {}
    for key, value in states[0].items():
        if any(state[key].shape != value.shape for state in states[1:]):
            raise SuiteError(f"runs to average differ in the shape of {key}")
        averaged[key] = (torch.stack([state[key].double() for state in states]).mean(0).to(value.dtype)
                         if value.is_floating_point() else value.clone())
    soup = copy.deepcopy(first)
    soup.model.load_state_dict(averaged)
    if input_size is not None:
        channels = soup.preprocess.input_size[0]
        soup.model.preprocess = dataclasses.replace(soup.preprocess, input_size=(channels, input_size, input_size))
        soup._transform = None
    soup.guard, soup.metrics, soup.threshold = None, {}, 0.5
    soup.recipe = {"soup": [s.recipe for s in solutions], "input_size": soup.preprocess.input_size[-1]}
    return soup
