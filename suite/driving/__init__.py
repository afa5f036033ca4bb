"""The driving vertical (being built; see the project's issues). Builds on suite.core only."""
