"""Errors a user can act on. The CLI prints them as one line and exits non-zero, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a file, a key, a value). The message names the problem."""


class FileFormatError(UserError):
    """A file is not what it should be (not HDF5, truncated, foreign, newer schema)."""

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        super().__init__(f"{path}: {problem}")
