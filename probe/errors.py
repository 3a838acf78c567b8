"""One error hierarchy for everything a user can get wrong, and for what can fail while a command runs.

The CLI prints a `ProbeError` as one line on stderr and exits with its `exit_code`: 2 for bad input (a
usage error, a missing or malformed file, an unknown name), 3 for a runtime failure (a full disk, a
download that broke off, a run that failed). Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

from pathlib import Path


class ProbeError(Exception):
    """Base class: a problem with the user's input, files or environment."""

    exit_code = 2

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)

    def __reduce__(self):
        # pickled whole (a worker process raises it, the CLI prints it): the default would pass only the message
        return type(self), (self.path, self.reason)


class AudioError(ProbeError):
    """An audio file that cannot be read or holds unusable samples."""


class CheckpointError(ProbeError):
    """A checkpoint that is missing, corrupt or does not fit the model."""


class DatasetError(ProbeError):
    """A dataset folder or metadata file that is missing or malformed."""


class RuntimeFailure(ProbeError):
    """Something that failed while the command ran, with the input in order: exit code 3."""

    exit_code = 3


class WriteError(RuntimeFailure):
    """An output that could not be written (a full disk, a folder without write permission)."""


class NonFiniteTraining(RuntimeFailure):
    """A training step whose loss or gradient is NaN or infinite, or weights that became so: the run stops before
    anything of that step is saved."""


class DownloadError(RuntimeFailure):
    """A download that failed, was refused, or does not match its recorded hash."""


class ConfigError(ProbeError):
    """An unknown model name, a bad option value or an inconsistent configuration."""
