"""Errors that the command line turns into one line on stderr and exit code 2.

Library code raises these for anything a user can get wrong (a bad spec, a bad
file, a bad option); every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class OdernnError(Exception):
    """Base class: a problem with the user's input, reported as one line."""


class SpecError(OdernnError, ValueError):
    """A dataset specification or an option is invalid."""


class DataError(OdernnError, ValueError):
    """A data file, run directory or checkpoint is missing, corrupt or mismatched."""


class OutputError(OdernnError, OSError):
    """An output cannot be written (exists without --overwrite, unwritable, disk full)."""


class MissingDependency(OdernnError, ImportError):
    """An optional dependency is not installed; the message says which extra installs it."""


class StiffProblem(OdernnError):
    """A problem too stiff for the SciPy method asked for (or forced far faster than its
    grid): it would crawl for hours. An evaluation leaves SciPy's runs out of its
    comparison; elsewhere one line, exit 2."""


class Interrupted(Exception):
    """A command stopped by Ctrl-C or SIGTERM after saving what it had; the message (may be
    empty) says what was kept. The command line prints it and exits with code 130."""
