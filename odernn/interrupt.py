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


@contextmanager
def interrupt_guard() -> Iterator[Callable[[], bool]]:
    """Within the block, the first SIGINT or SIGTERM sets a flag; yields ``flag.is_set``."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set
        return
    first = [0.0]

    def handler(signum: int, frame: object) -> None:
        if not flag.is_set():
            first[0] = time.monotonic()
            flag.set()
        elif time.monotonic() - first[0] >= REPEAT_S:
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag.is_set
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
