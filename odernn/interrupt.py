"""Ctrl-C and SIGTERM as a flag checked at safe points, so long work stops cleanly.

Raising from a signal handler can land anywhere, even inside a garbage
collection callback that swallows the exception; a flag checked between
blocks (simulation) or batches (training) cannot be lost. A second signal,
a second or more after the first, aborts at once (one Ctrl-C can reach a
process twice within that second: from the terminal and from a launcher that
passes it on to the processes it started).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

REPEAT_S = 1.0
"""A second signal within this many seconds of the first is the same request."""
REQUESTED = threading.Event()
"""Set by the command line's own handlers (:func:`raise_interrupt`) before they raise: a
KeyboardInterrupt raised where an extension's import swallows it (Cython's best-effort
registration of numpy.random's classes, seen losing Ctrl-C shortly after start) still ends
the command at its first safe point (:func:`interrupt_guard`). A guard that replaced those
handlers sets it too: a KeyboardInterrupt that :func:`raising_signals` raises inside the
guard can cut an object's construction short (llvmlite's, while numba compiles), and the
command line's ``sys.unraisablehook`` keeps that object's failing finaliser quiet once a
request is noted. The command line clears it when a command starts and when it ends; the
Python API never sets it."""


LAUNCHER_ENV = "ODERNN_LAUNCHER_PID"
"""The process id of ``odernn train --nproc``, given to torchrun and its workers."""
SAID_ENV = "ODERNN_INTERRUPT_SAID"
"""A path ``odernn train --nproc`` gives its launcher and workers: the first of them to say
that the run was interrupted creates it, so that the run says so once (and the command
itself, where none of them did)."""


def signal_marker(said: str) -> str:
    """The file ``odernn train --nproc`` creates beside ``said`` (:data:`SAID_ENV`'s path)
    before it passes a user's signal on, so that a worker whose collective fails because a
    peer reached by the signal left first knows it was an interrupt, not a crash (torchrun
    stops the other workers alike when one fails)."""
    return f"{said}.signal"


def say_interrupted(message: str) -> None:
    """Print ``message``, the one line an interrupted command ends with, on stderr: among
    torchrun's processes rank 0 alone, and under :data:`SAID_ENV` only the first to speak."""
    import os
    import sys

    if os.environ.get("WORLD_SIZE", "1") != "1" and os.environ.get("RANK", "0") != "0":
        return
    said = os.environ.get(SAID_ENV)
    if said and process_alive(os.environ.get(LAUNCHER_ENV, "")):  # else none reads it
        try:
            os.close(os.open(said, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return
        except OSError:  # a directory gone or read-only: better twice than never
            pass
    print(message, file=sys.stderr)


def process_alive(pid: str | int) -> bool:
    """Whether process ``pid`` is there and not a zombie (e.g. the command that started the
    workers, to read and remove the marker; the writer of a temporary file, to own it still).
    Unknown (no /proc): assumed alive."""
    import os

    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")  # not a zombie
    except (OSError, ValueError, IndexError):
        return not os.path.isdir("/proc/self")


def raise_interrupt(signum: int, frame: object) -> None:
    """A SIGINT or SIGTERM handler: note the request in :data:`REQUESTED`, raise
    KeyboardInterrupt."""
    REQUESTED.set()
    raise KeyboardInterrupt


def wraps_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` was raised because of a KeyboardInterrupt that a SIGINT or SIGTERM
    raised (:func:`raise_interrupt`): one in its chain of causes (one raised in a class
    body while a module is imported comes as "RuntimeError: Error calling __set_name__")."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 16:
        if isinstance(cause, KeyboardInterrupt):
            return REQUESTED.is_set()
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


@contextmanager
def interrupt_guard() -> Iterator[Callable[[], bool]]:
    """Within the block, the first SIGINT or SIGTERM sets a flag; yields a function that says
    whether it, or an earlier request (:data:`REQUESTED`), is set. A signal the block never
    saw (it came after the block's last look at the flag) is not lost: on leaving the block
    it is raised again, for the handler outside (the command line's: exit 130; Python's:
    KeyboardInterrupt; an enclosing guard's: its flag)."""
    flag = threading.Event()
    seen = [False]  # the block saw the flag set: it acts on it

    def interrupted() -> bool:
        if flag.is_set():
            seen[0] = True
            return True
        return REQUESTED.is_set()

    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    first, received = [0.0], [signal.SIGINT]

    def handler(signum: int, frame: object) -> None:
        if previous.get(signum) is raise_interrupt:  # the command line's: its request too
            REQUESTED.set()
        if not flag.is_set():
            first[0], received[0] = time.monotonic(), signum
            flag.set()
        elif time.monotonic() - first[0] >= REPEAT_S:
            raise KeyboardInterrupt

    previous: dict[int, object] = {}  # before the handler can run: it reads it
    previous.update({s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)})
    try:
        yield interrupted
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if flag.is_set() and not seen[0]:
        signal.raise_signal(received[0])


@contextmanager
def raising_signals(interrupted: Callable[[], bool]) -> Iterator[None]:
    """Within the block (pure computation, nothing written), the first SIGINT or SIGTERM
    raises KeyboardInterrupt at once, after the handler outside has seen it (so an
    :func:`interrupt_guard` flag is set even if the exception is lost):
    one block of a long trajectory (an integrator's run in an evaluation) can take minutes,
    and a signal must end it in a second (a scheduler's SIGTERM is followed by SIGKILL). A
    signal the guard saw before (``interrupted()``) raises on entry: the block is not
    started."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = [False]
    outer = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: object) -> None:
        previous = outer[signum]
        if callable(previous):
            previous(signum, frame)
        if not fired[0]:
            fired[0] = True
            raise KeyboardInterrupt

    for s in outer:
        signal.signal(s, handler)
    try:
        if interrupted():
            raise KeyboardInterrupt
        yield
    finally:
        for s, h in outer.items():
            signal.signal(s, h)
