"""suite: ready-made transfer-learning solutions on one shared core."""

__version__ = "0.1.0"
