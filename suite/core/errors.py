"""Errors the suite raises for users: one clear line, no traceback needed.

Every error a user can act on is a :class:`SuiteError`. Problems with one input file name the
file and the problem (``.path``, ``.problem``), so a loader can skip the file and report why.
"""


class SuiteError(Exception):
    """A problem the user can act on (bad spec, bad file, bad argument)."""


class OfflineError(SuiteError):
    """A hub model was requested but neither the network nor a local cache has it."""


class UnsafeFileError(SuiteError):
    """A file would need unpickling arbitrary objects (or is otherwise untrusted) and was refused."""


class InputError(SuiteError):
    """One input (a file, an upload, a table row) the suite cannot use: ``"<path>: <problem>"``."""

    def __init__(self, path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):  # keeps the two fields through pickling (data-loader worker processes)
        return type(self), (self.path, self.problem)


class CorruptFileError(InputError):
    """Empty, truncated or not the format its name claims (a text file named ``.png``)."""


class TooLargeError(InputError):
    """Over a size limit: an image's pixel count (decompression bomb), a zip's files or bytes."""


class DataError(InputError):
    """A data set or table that cannot be used as given: malformed CSV, unknown labels, no rows."""


class TrainingError(SuiteError):
    """Training stopped on a fault it cannot continue from (a NaN or infinite loss)."""
