"""The console script and ``python -m odernn``: signals handled from the first moment.

Importing the command line (typer, numpy) takes a noticeable fraction of a second; a
Ctrl-C or SIGTERM in that time, before any work has started, ends the command with the
documented exit code 130 and one line instead of a traceback or death by the signal.
"""

from __future__ import annotations

import signal
import sys

EARLY = "interrupted before the command started: nothing was written"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Run ``odernn`` as a program (exits with its exit code)."""
    signal.signal(signal.SIGTERM, _interrupt)  # SIGINT raises KeyboardInterrupt already
    try:
        from odernn.cli.app import main as run
    except KeyboardInterrupt:
        print(EARLY, file=sys.stderr)
        sys.exit(130)
    try:
        run()
    except KeyboardInterrupt:  # between the command's own handling and the exit
        print(EARLY.split(":")[0], file=sys.stderr)
        sys.exit(130)
