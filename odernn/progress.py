"""One progress protocol: the library emits events, one display draws them.

A long operation (simulating, training, evaluating, diagnosing gradients, the notes'
examples) takes ``progress`` and calls it with an :class:`Event` as it goes: which
``task`` is running, how far (``done`` of ``total``), a ``message`` a person can read,
and the ``values`` a program may want (losses, errors). ``progress`` is a callable
(receives every event), ``True`` (:class:`Display` on stderr) or ``False``/``None``
(nothing), normalised once by :func:`reporter`.

:class:`Display` draws with rich on a terminal (one bar per task, redrawn in place) and
writes plain lines otherwise (a log file, a batch job): only the events marked ``log``
(an epoch's validation, a finished stage), without escape codes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any


@dataclass(frozen=True)
class Event:
    """One report of a long operation. ``stage`` names what it is doing (``epoch``,
    ``validated``, ``block``, ``done``, ...); ``done`` of ``total`` (None: unknown) is how
    far; ``log`` marks a line worth keeping in a log; a task ends with stage ``done``."""

    task: str
    stage: str
    done: float = 0
    total: float | None = None
    message: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    log: bool = False


Progress = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The progress callback that draws nothing."""


def reporter(progress: bool | Progress | None) -> Progress:
    """The callback for ``progress``: the caller's own, a :class:`Display`, or nothing."""
    if callable(progress):
        return progress
    return Display() if progress else ignore


class Display:
    """Draws events on ``stream``: rich bars on a terminal, plain log lines otherwise."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self._live: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, event: Event) -> None:
        if not self.tty:
            if event.log and event.message:
                self.stream.write(f"{event.task}: {event.message}\n")
                self.stream.flush()
            return
        live = self._start()
        if event.task not in self._tasks:
            self._tasks[event.task] = live.add_task(event.task, total=event.total)
        task = self._tasks[event.task]
        text = f"{event.task} {event.message}".strip()
        live.update(task, completed=event.done, total=event.total, description=text)
        if event.log and event.stage != "done":
            live.console.print(text, highlight=False)
        if event.stage == "done":
            live.remove_task(self._tasks.pop(event.task))
            if not self._tasks:
                self.close()

    def _start(self) -> Any:
        if self._live is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

            self._live = Progress("{task.description}", BarColumn(), TaskProgressColumn(),
                                  TimeElapsedColumn(), console=Console(file=self.stream),
                                  transient=True)
            self._live.start()
        return self._live

    def close(self) -> None:
        """Stop drawing (idempotent): the bars vanish, the logged lines stay."""
        if self._live is not None:
            self._live.stop()
            self._live = None
            self._tasks.clear()

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
