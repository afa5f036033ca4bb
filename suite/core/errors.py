"""Errors the suite raises for users: one clear line, no traceback needed."""


class SuiteError(Exception):
    """A problem the user can act on (bad spec, bad file, bad argument)."""


class OfflineError(SuiteError):
    """A hub model was requested but neither the network nor a local cache has it."""


class UnsafeFileError(SuiteError):
    """A file would need unpickling arbitrary objects (or is otherwise untrusted) and was refused."""
