"""Errors that mean "the user's input is wrong", as opposed to bugs or failed trials.

Every one of them ends the CLI with a single line and exit code 2, and is raised before
anything is written to the store, so a typo never leaves a half-made sweep behind.
"""

from __future__ import annotations

USAGE_EXIT_CODE = 2


class UsageError(Exception):
    """Bad input: a spec field, a data file, a column, a label or a model the user named."""


class SpecError(UsageError):
    """The YAML spec does not describe a runnable sweep."""


class DataError(UsageError):
    """The data files or columns do not match what the spec says."""


class ModelNotFoundError(UsageError):
    """The model named in the spec cannot be loaded from disk, a package or the hub."""
