"""The transfer advisor: which backbone and which strategy for a data set, measured rather than guessed.

``advise(data, ...) -> Advice`` profiles the data, measures how close it is to each candidate
backbone's source domain (linear probe and k-NN on cached features of a small subset, against raw
inputs; activation-statistics or tokenizer gap; domain gap to unlabelled target data), measures
throughput, recommends a strategy with its reasons and cost, and, given a time budget, runs a short
search and trains the winner.
"""

from .advice import Advice, adaptation_advice, advise, recommend

__all__ = ["Advice", "adaptation_advice", "advise", "recommend"]
