"""Errors that reach users as one line and exit status 2.

Every problem caused by the input (a broken file, a bad option, an unknown
protocol) raises :class:`EmgtoolError` or a subclass.  The command-line
interface prints ``emgtool: error: <message>`` and exits with status 2; a
traceback is shown only with ``--debug``.  Anything else escaping is a bug.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EmgtoolError", "ReadError", "ConfigError", "EmgtoolWarning"]


class EmgtoolError(Exception):
    """A problem with the user's input, reported without a traceback."""


class ReadError(EmgtoolError):
    """A file cannot be read correctly.

    The message always names the file, e.g.
    ``"rec.csv: line 12, column 3: 'abc' is not a number"``.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class ConfigError(EmgtoolError):
    """An invalid option, configuration file, montage or site list."""


class EmgtoolWarning(UserWarning):
    """A visible warning: the result is correct but something degraded."""
