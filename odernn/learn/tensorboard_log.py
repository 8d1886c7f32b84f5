"""``odernn train --tensorboard DIR``: a run's per-epoch figures as TensorBoard scalars.

``history.csv`` stays the run's own record; this copy is for the tools that read
TensorBoard event files (``tensorboard --logdir DIR``, experiment trackers). It is a
progress callback (:mod:`odernn.progress`) in front of the display: each ``validated``
event's values (a gradient family's history row; a reservoir's chosen readout, as epoch
1) are written at global step = epoch, under the tags of :func:`tag`. A value that was
not measured (NaN: an epoch without closed-loop validation, Hessian-free's learning
rate) is left out. Only rank 0 of a data-parallel run writes (the caller makes it so).

Each run (or resumed part of one) adds an event file to DIR and marks its first step as
a restart, so TensorBoard shows the latest value of a step written twice (a resume after
a hard kill, an ``--overwrite`` run into the same DIR) and never deletes anything there.
The ``tensorboard`` extra is imported only when asked for; without it the option is
refused before anything is written.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any

from odernn.checks import path_of
from odernn.errors import MissingDependency, OutputError
from odernn.progress import Event, Progress

INSTALL = "pip install 'odernn[tensorboard]'"
RUN_FIGURES = frozenset(("lr", "horizon", "ridge", "steps_per_s", "time"))
"""History columns that describe the run rather than a loss: tagged by their own name."""


def tag(name: str) -> str:
    """The TensorBoard tag of a history column: ``val_X`` -> ``val/X``, the run's settings
    and speed (:data:`RUN_FIGURES`) as they are, every other value (the training losses,
    the gradient norm, Hessian-free's statistics) ``train/NAME``."""
    if name.startswith("val_"):
        return "val/" + name[len("val_"):]
    return name if name in RUN_FIGURES else "train/" + name


def summary_writer(what: str = "--tensorboard") -> Any:
    """torch's ``SummaryWriter`` class, or MissingDependency saying how to install it."""
    try:
        import tensorboard  # noqa: F401  (torch's writer needs it; its own message is vaguer)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MissingDependency(f"{what} needs the tensorboard extra: {INSTALL}") from None
    return SummaryWriter


def check(log_dir: str | Path, run_dir: str | Path | None, what: str = "--tensorboard") -> None:
    """Refuse, before anything is written: the extra missing, a ``log_dir`` that cannot be
    created as a directory, or one inside the run directory (which holds only the run's
    own files: ``--resume`` would refuse it) or inside another odernn output (a report, a
    demo, a run, a seed group: its ``--overwrite`` would refuse to replace it)."""
    summary_writer(what)
    path = path_of(log_dir, what)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path.cwd())
    if not existing.is_dir():
        raise OutputError(f"{what} {path}: {existing} exists and is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: {existing} is not writable")
    if run_dir is not None and path.resolve().is_relative_to(Path(run_dir).resolve()):
        raise OutputError(f"{what} {path} is inside the run directory {run_dir}, which holds "
                          "only the run's own files; choose a directory outside it")
    for place in (p for p in (path, *path.parents) if p.is_dir()):
        owner = _owner(place)
        if owner is not None:  # its --overwrite would then refuse it: a file not its own
            raise OutputError(f"{what} {path} is inside {place}, {owner}, which holds only "
                              "its own files; choose a directory outside it")


def _owner(directory: Path) -> str | None:
    """What odernn output ``directory`` is (a report, a demo, a training run, a seed group),
    by the file each writes first, or None."""
    from odernn import atomic
    from odernn.learn.rundir import BEST, LAST
    from odernn.learn.seeds import SEEDS_FILE

    for name, what in ((atomic.REPORT_MARKER, "an odernn report"),
                       (atomic.DEMO_MARKER, "an odernn demo"), (LAST, "a training run"),
                       (BEST, "a training run"), (SEEDS_FILE, "a seed group")):
        if os.path.lexists(directory / name):
            return what
    return None


class TensorBoardLog:
    """Writes the ``validated`` events' values to ``log_dir``, passing every event on."""

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self.created = False
        self._writer: Any = None
        self._report: Progress | None = None

    def open(self, report: Progress) -> Progress:
        """Create ``log_dir`` (if new); return the progress callback that passes each event
        to ``report`` and writes the validated ones."""
        try:
            self.created = not self.log_dir.exists()
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create the TensorBoard directory {self.log_dir}: "
                              f"{err.strerror or err}") from err
        self._report = report
        return self

    def __call__(self, event: Event) -> None:
        if self._report is not None:
            self._report(event)
        if event.stage == "validated":
            self.write(int(event.values.get("epoch", 1)), event.values)

    def write(self, step: int, values: Any) -> None:
        """The numeric ``values`` (but ``epoch``, the step; NaN left out) at ``step``,
        flushed so a TensorBoard watching DIR shows the epoch at once."""
        if self._writer is None:  # created at the first step: a restart from there on
            self._writer = summary_writer()(str(self.log_dir), purge_step=step)
        for name, value in values.items():
            if name == "epoch" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isnan(value):
                self._writer.add_scalar(tag(name), value, step)
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (idempotent); a DIR this run created and never
        wrote into goes."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        elif self.created:
            with contextlib.suppress(OSError):
                self.log_dir.rmdir()
        self.created = False
