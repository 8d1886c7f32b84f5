"""The console script and ``python -m odernn``: signals handled from the first moment.

Importing the command line (typer, numpy) takes a noticeable fraction of a second; a
Ctrl-C or SIGTERM in that time, before any work has started, ends the command with the
documented exit code 130 and one line instead of a traceback or death by the signal.
"""

from __future__ import annotations

import os
import signal
import sys

EARLY = "interrupted before the command started: nothing was written"


def main() -> None:
    """Run ``odernn`` as a program (exits with its exit code)."""
    from odernn.interrupt import raise_interrupt, wraps_interrupt  # light: signal, threading

    sys.unraisablehook = quiet_lost_interrupts
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, raise_interrupt)
    try:
        from odernn.cli.app import main as run
    except KeyboardInterrupt:
        _exit_interrupted(EARLY)
    except Exception as exc:  # one raised in a class body comes wrapped (__set_name__)
        if not wraps_interrupt(exc):
            raise
        _exit_interrupted(EARLY)
    try:
        run()
    except KeyboardInterrupt:  # outside the command's own handling (its set-up, the exit)
        _exit_interrupted(EARLY.split(":")[0])
    except Exception as exc:  # the command modules' imports (numpy's class bodies), wrapped
        if not wraps_interrupt(exc):
            raise
        _exit_interrupted(EARLY.split(":")[0])


def quiet_lost_interrupts(unraisable: object) -> None:
    """``sys.unraisablehook`` of the command line: a KeyboardInterrupt that Python could not
    raise (the signal's handler ran inside a weakref callback of the import machinery, or a
    finaliser) is not printed as "Exception ignored ... Traceback": the request it carried
    is held in :data:`odernn.interrupt.REQUESTED`, and the command ends with 130 at its next
    safe point. Nor is any error a finaliser raises once an interrupt was requested: the
    interrupt may have cut an object's construction short (llvmlite's, while numba compiled:
    its finaliser then fails), and the command ends with its one line. Anything else is
    reported as Python reports it."""
    from odernn.interrupt import REQUESTED

    if not (isinstance(getattr(unraisable, "exc_value", None), KeyboardInterrupt)
            or REQUESTED.is_set()):
        sys.__unraisablehook__(unraisable)


def _exit_interrupted(message: str) -> None:
    """Exit 130 at once: the interpreter's own shutdown would turn an interrupt it has seen
    into death by SIGINT; nothing is open that needs closing (the with-blocks have run)."""
    from odernn.interrupt import say_interrupted

    say_interrupted(message)
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(130)
