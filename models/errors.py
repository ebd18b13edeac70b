"""Exception families of tailsynth.

Every error a user can cause by what they hand us (a file, a config, a bundle, an items table) is one of
these, with a message that names the file, column, key or rows and what was expected. The command-line
entry points print the message and exit non-zero instead of showing a traceback.

They live here because `models/` is the bottom of the dependency graph: `train/` and `gen/` import it.
`evaluate/` raises plain `ValueError` for bad arguments and never imports this package.
"""

from __future__ import annotations


class TailsynthError(Exception):
    """Base class: a problem with the user's input, not a bug in tailsynth."""


class ConfigError(TailsynthError):
    """A config file or override has an unknown key, a wrong type or an invalid value."""


class DataError(TailsynthError):
    """An input table is missing, malformed or inconsistent with the config."""


class EncodingError(TailsynthError):
    """A table cannot be encoded (too many categories, unseen labels, wrong dtype)."""


class BundleError(TailsynthError):
    """A model bundle is missing, corrupt or from an incompatible format version."""


class GateError(TailsynthError):
    """The fidelity gate refused to emit rows; the report says which measure failed and by how much."""


class TrainingInterrupted(TailsynthError):
    """Training was stopped by a signal before it finished; no bundle was written."""

    def __init__(self, message: str, signal_number: int = 15) -> None:
        super().__init__(message)
        self.signal_number = int(signal_number)
        """SIGTERM (15) or SIGINT (2, Ctrl-C): the CLI exits 128 + it, as a shell reports a killed process."""


class ColdStartError(TailsynthError):
    """A cold-start items table is invalid (unseen feature value, duplicate or already-known item ids)."""


class AugmentError(TailsynthError):
    """Bad input to tail augmentation: unknown item ids, ids of another bucket, an empty list, bad counts."""
