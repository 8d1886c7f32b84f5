"""Ctrl-C and SIGTERM as a flag checked at safe points, so long work stops cleanly.

Raising from a signal handler can land anywhere, even inside a garbage
collection callback that swallows the exception; a flag checked between
blocks (simulation) or batches (training) cannot be lost. A second signal
aborts at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def interrupt_guard() -> Iterator[Callable[[], bool]]:
    """Within the block, the first SIGINT or SIGTERM sets a flag; yields ``flag.is_set``."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set
        return

    def handler(signum: int, frame: object) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag.is_set
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
