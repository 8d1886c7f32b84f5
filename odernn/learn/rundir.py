"""A training run's directory on disk: its files, who may write it, how it is read and replaced.

The format (the only module that names these files):

- ``config.json``: ``{"config": the training options, "data": the data's fingerprint}``
  (shape, dt and a content hash of the training and validation sets);
- ``history.csv``: numbers under a header of column names, one row per epoch (``epoch``,
  the losses, ``val_nrmse_x`` the closed-loop validation error, ``time``, ...) or per ridge
  candidate of a reservoir (``ridge``, ``val_nrmse_x``, ``time``);
- ``best.pt``: the checkpoint with the lowest closed-loop validation error;
- ``last.pt``: the latest checkpoint, a gradient family's with the resume state
  (optimiser, RNG, data position, history; a reservoir refits); both are
  :mod:`odernn.learn.checkpoint` files holding a run record (:func:`run_record`: the
  model, ``config``, ``data`` and the ``metrics`` at which it was saved);
- ``.odernn-lock``: empty; the file a writer holds an exclusive lock on.

Readers: :func:`read_config`, :func:`read_history`, :func:`best_checkpoint`,
:func:`last_checkpoint`, and :func:`name_runs` for a list of runs. :class:`RunWriter` is
the only writer:

- one process at a time: a second writer (another ``odernn train`` into the same
  directory, with or without ``--overwrite``) fails at once with one line;
- a directory that holds anything else is never written into, ``--overwrite`` or
  not: only a new or empty directory, or a previous run, is used;
- a new run never destroys the previous one before it has something to put in
  its place: with ``--overwrite`` the new run is written beside it (a hidden
  sibling ``.NAME.odernn-new``) and the two are swapped when the new run saves its
  first checkpoint; an interrupt or error before that leaves the previous run as
  it was, after it a resumable new run; a file it was writing when killed is its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from odernn import atomic, budget, checks, jsonio
from odernn.checks import (
    MAX_TEXT_BYTES,
    check_flag,
    holds_working_directory,
    read_small_text,
    refuse_link,
)
from odernn.errors import DataError, OutputError, SpecError
from odernn.learn.checkpoint import BEST, LAST, read_checkpoint, save_checkpoint
from odernn.learn.history_text import history_columns, history_csv
from odernn.learn.resume import check_resume

CONFIG, HISTORY = "config.json", "history.csv"
LOCK = ".odernn-lock"
RUN_FILES = (CONFIG, HISTORY, BEST, LAST)
OURS = frozenset((*RUN_FILES, LOCK))
WRITING = re.compile(rf"\.({'|'.join(map(re.escape, RUN_FILES))})\.tmp-\d+-[0-9a-f]+")
"""The temporary name of a run file being written (:func:`odernn.atomic.sibling`)."""


def read_config(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's ``config.json``; None if it has none, DataError if it is unreadable."""
    path = Path(run_dir) / CONFIG
    if not os.path.lexists(path):
        return None
    try:
        return jsonio.loads(_run_text(path, "run config", MAX_TEXT_BYTES), str(path))
    except budget.BudgetError:
        raise
    except ValueError as err:
        raise DataError(f"{path}: not valid JSON ({err}); rerun `odernn train` or remove it") \
            from None


MAX_HISTORY_BYTES = 1 << 26
"""A run's history larger than this is refused unread (a row an epoch: about 100 bytes)."""


def _run_text(path: Path, what: str, limit: int) -> str:
    """A run file's text, read as :func:`~odernn.checks.read_small_text` reads a spec, but
    never through a link (a run directory from elsewhere could point its files anywhere on
    the disk, and a report would carry them), or one DataError line."""
    try:
        return read_small_text(path, what, limit=limit, follow=False,
                               hint="a run's files are regular files")
    except SpecError as err:
        raise DataError(str(err)) from None


def read_history(run_dir: str | Path) -> dict[str, np.ndarray]:
    """A run's history as numeric columns (a column that is not numeric is left out); empty
    if the run has none. ``history.csv`` is what odernn writes; ``history.json`` (records or
    a mapping of columns) and ``history.jsonl`` (one record a line) from other tools are
    read too. Parsed within the memory budget: a small file of short rows under a wide
    header makes many values."""
    stem = Path(run_dir) / Path(HISTORY).stem
    for suffix in (".csv", ".json", ".jsonl"):
        path = stem.with_suffix(suffix)
        if os.path.lexists(path):
            break
    else:
        return {}
    return history_columns(path, _run_text(path, "training history", MAX_HISTORY_BYTES))


def best_checkpoint(run_dir: str | Path) -> Path:
    """The run's ``best.pt`` (lowest closed-loop validation error); DataError if it has none."""
    path = Path(run_dir) / BEST
    if not path.is_file():
        raise DataError(f"{path.parent} is not a run directory: no {BEST} in it")
    return path


def last_checkpoint(run_dir: str | Path) -> Path:
    """The run's ``last.pt`` (the latest; a gradient run's with the resume state); DataError if
    it has none."""
    path = Path(run_dir) / LAST
    if not path.is_file():
        raise DataError(f"{path.parent} holds no {LAST}: not a run directory, or a run that "
                        "saved no checkpoint")
    return path


def name_runs(run_dirs: Sequence[str | Path], reserved: Collection[str] = ()) -> dict[str, Path]:
    """Unique display names for run directories (their folder names, ``-2``, ``-3``, ... on a
    clash with each other or with a ``reserved`` name), each checked to exist, and none given
    twice."""
    names: dict[str, Path] = {}
    for run in map(Path, run_dirs):
        if run.is_file():  # e.g. runs/lstm/best.pt for runs/lstm
            hint = f"; give its directory {run.parent}" if run.suffix == ".pt" else ""
            raise DataError(f"{run} is a file: a run directory (or a seed group) written by "
                            f"`odernn train` is expected, not a checkpoint file{hint}")
        if not run.is_dir():
            raise DataError(f"run directory {run} not found; pass directories written by "
                            "`odernn train`")
        same = next((n for n, p in names.items() if os.path.samefile(p, run)), None)
        if same is not None:  # it was scored twice, as lstm and lstm-2
            raise DataError(f"run directory {run} is given twice (also as {names[same]})")
        base = run.resolve().name
        name, k = base, 2
        while name in names or name in reserved:
            name, k = f"{base}-{k}", k + 1
        names[name] = run
    return names


def is_ours(entry: os.DirEntry[str] | Path) -> bool:
    """Whether a directory entry is a run's file: one the format names, or a file it was
    writing when killed (:data:`WRITING`, removed by the next run that takes the lock)."""
    return (entry.name in OURS or WRITING.fullmatch(entry.name) is not None) \
        and entry.is_file() and not entry.is_symlink()


def foreign_files(path: Path) -> list[str]:
    """Entries of directory ``path`` that odernn's run format does not name (sorted)."""
    return sorted(p.name for p in path.iterdir() if not is_ours(p))


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> list[str]:
    """Refuse a run directory that cannot be used as asked; the run files it already holds."""
    resume, overwrite = check_flag(resume, "resume"), check_flag(overwrite, "overwrite")
    refuse_link(run_dir)
    if overwrite and run_dir.is_dir() and holds_working_directory(run_dir):
        raise OutputError(f"{run_dir} holds the working directory, which --overwrite would "
                          "replace (the shell left in a removed directory): run from elsewhere")
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"{run_dir} exists and is not a directory; a run is a directory")
    if not run_dir.exists():
        if resume:
            raise DataError(f"cannot resume: {run_dir} does not exist")
        return []
    others = foreign_files(run_dir)
    existing = [n for n in RUN_FILES if (run_dir / n).exists()]
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise OutputError(f"{run_dir} holds files that are not an odernn run ({shown}); runs "
                          "are written only into a new or empty directory or over a previous "
                          "run: choose another -o")
    if resume:
        if not (run_dir / LAST).is_file():
            raise DataError(f"cannot resume: {run_dir / LAST} does not exist")
    elif existing and not (run_dir / LOCK).is_file():  # a run odernn wrote keeps its lock file
        raise OutputError(f"{run_dir} holds {', '.join(existing)} but no {LOCK}: not a run "
                          "odernn wrote, so not replaced; runs are written only into a new or "
                          "empty directory or over a previous run: choose another -o")
    elif existing and overwrite:
        checks.refuse_mount_point(run_dir)  # the new run is staged beside it and swapped in
    elif existing:
        resumable = LAST in existing  # a run killed before its first checkpoint is not
        raise OutputError(f"run directory {run_dir} already holds {', '.join(existing)}; pass "
                          + ("--overwrite or --resume (in Python overwrite=True or resume=True)"
                             if resumable else "--overwrite (in Python overwrite=True): it has "
                             f"no {LAST} to resume from"))
    return existing


def _remove_staging(staging: Path) -> None:
    """Remove a staging directory a killed run left, or refuse: a link, or a directory
    holding anything but a run's files, is not one odernn made."""
    others = foreign_files(staging) if staging.is_dir() and not staging.is_symlink() \
        else [staging.name]
    if others:  # a run's files, and those it was writing when killed
        raise OutputError(f"{staging} is in the way of the new run and is not one odernn left "
                          "(a link, or files that are not a run's); move it")
    shutil.rmtree(staging)


def staging_dir(run_dir: Path) -> Path:
    """Where an ``--overwrite`` run is written until its first checkpoint: the hidden sibling
    ``.NAME.odernn-new``; a NAME too long for the file system's name limit is shortened and
    marked with a digest of it, so that two long names never share one."""
    suffix = ".odernn-new"
    try:
        name_max = int(os.pathconf(run_dir.parent, "PC_NAME_MAX"))
    except (OSError, ValueError):
        name_max = 255
    name = os.fsencode(run_dir.name)
    if 1 + len(name) + len(suffix) > name_max:
        digest = hashlib.sha256(name).hexdigest()[:16]
        name = name[:name_max - 2 - len(digest) - len(suffix)] + b"-" + digest.encode()
    return run_dir.with_name("." + os.fsdecode(name) + suffix)


class RunWriter:
    """Writes one run directory (see the module docstring): lock, staging, swap, clean-up."""

    def __init__(self, run_dir: Path, *, resume: bool, overwrite: bool) -> None:
        self.target = Path(run_dir)
        self.resume = resume
        self.overwrite = overwrite
        self.staging: Path | None = None
        self.created = False
        self.parents: list[Path] = []  # the directories above it this run made, deepest first
        self._locks: list[int] = []
        self._new_lock_files: list[Path] = []

    @property
    def path(self) -> Path:
        """Where the run's files go now: the staging directory until the swap, then the run's."""
        return self.staging if self.staging is not None else self.target

    def open(self) -> None:
        """Check the directory, take its lock and prepare where the new files go."""
        existing = check_run_dir(self.target, self.resume, self.overwrite)
        try:
            self.created = not self.target.exists()
            self.parents = [p for p in self.target.parents if not p.exists()]
            self.target.mkdir(parents=True, exist_ok=True)
            self._lock(self.target)
            existing = check_run_dir(self.target, self.resume, self.overwrite)  # now we own it
            for entry in self.target.iterdir():  # what a killed run was writing: we hold the lock
                if WRITING.fullmatch(entry.name) and is_ours(entry):
                    entry.unlink()
            if existing and not self.resume:
                staging = staging_dir(self.target)
                if os.path.lexists(staging):  # left by a killed run (none runs: the lock)
                    _remove_staging(staging)
                staging.mkdir()
                self.staging = staging
                self._lock(staging)
        except OutputError:
            self.close()
            raise
        except OSError as err:  # a full disk, or no inode left for the lock file
            if self.created:
                self.discard()  # the directories it made, empty again
            self.close()
            raise OutputError(f"cannot prepare run directory {self.target}: "
                              f"{err.strerror or err}") from err

    def _lock(self, directory: Path) -> None:
        if not (directory / LOCK).exists():
            self._new_lock_files.append(directory / LOCK)
        self._locks.append(atomic.exclusive_lock(
            directory / LOCK, os.O_RDWR | os.O_CREAT, f"run directory {self.target} is being "
            "written by another process (one writer at a time)"))

    def write_config(self, doc: dict[str, Any]) -> None:
        """``config.json``: the options and the data's fingerprint."""
        atomic.write_text(self.path / CONFIG, jsonio.dumps(doc, indent=2) + "\n")

    def save_best(self, record: dict[str, Any]) -> None:
        """``best.pt``: the model with the lowest closed-loop validation error so far."""
        save_checkpoint(self.path / BEST, record)

    def save_last(self, record: dict[str, Any], history: list[dict[str, Any]]) -> None:
        """``last.pt`` and ``history.csv``, then publish (the first replaces a previous run)."""
        save_checkpoint(self.path / LAST, record)
        self.write_history(history)
        self.published()

    def write_history(self, history: list[dict[str, Any]]) -> None:
        """``history.csv`` (also rewritten on resume: one lost to a full disk comes back)."""
        atomic.write_text(self.path / HISTORY, history_csv(history))

    def published(self) -> None:
        """Called after each checkpoint is saved: the first replaces the previous run."""
        if self.staging is None:
            return
        atomic.exchange_dirs(self.staging, self.target)
        old, self.staging = self.staging, None
        shutil.rmtree(old, ignore_errors=True)  # the previous run, now under the staging name

    def discard(self) -> None:
        """After a failure: the previous run stays; a new run with no checkpoint goes. The
        lock files this run made go last, while their locks are still held: a writer that
        arrives once one is gone finds nothing of this run left to remove, and keeps its own
        files (the directory is then not empty, and stays)."""
        remove_dir = False
        if self.staging is not None:  # a private name: no other writer locks there
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        elif not any(os.path.exists(self.target / n) for n in (BEST, LAST)):
            remove_dir = self.created  # else a directory the user made: as empty as it was
            names = [CONFIG, HISTORY]
            if remove_dir:
                with contextlib.suppress(OSError):
                    names = [p.name for p in self.target.iterdir() if p.name != LOCK]
            for name in names:
                path = self.target / name
                if os.path.isdir(path) and not os.path.islink(path):  # never raise: a failure
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        path.unlink()
        kept = any(os.path.exists(self.target / n) for n in (BEST, LAST))  # a run: its lock
        for lock in [] if kept else self._new_lock_files:  # file marks it (else none is left)
            with contextlib.suppress(OSError):
                lock.unlink()
        for directory in [self.target, *self.parents] if remove_dir else []:
            with contextlib.suppress(OSError):  # as it found them (those still empty)
                directory.rmdir()

    def close(self) -> None:
        """Release the locks (the lock files stay: they are part of the format)."""
        for fd in self._locks:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._locks.clear()


class MemoryRun:
    """A run without a directory (``odernn.fit(data)`` writes nothing): the calls of
    :class:`RunWriter`, the best record kept."""

    target = None

    def __init__(self) -> None:
        self.best: dict[str, Any] | None = None
        self.history: list[dict[str, Any]] = []

    def open(self) -> None:
        """Nothing to prepare."""

    def write_config(self, doc: dict[str, Any]) -> None:
        """Nothing to write: the options are the caller's."""

    def save_best(self, record: dict[str, Any]) -> None:
        """Keep a copy of ``record``: its tensors are the model's own, which training goes on
        to change in place (a file is written at once; a record kept in memory must not
        follow the model to its last epoch)."""
        self.best = {**record, "state_dict": {k: v.detach().clone()
                                              for k, v in record["state_dict"].items()}}

    def save_last(self, record: dict[str, Any], history: list[dict[str, Any]]) -> None:
        self.history = list(history)

    def write_history(self, history: list[dict[str, Any]]) -> None:
        self.history = list(history)

    def discard(self) -> None:
        """Nothing to remove."""

    def close(self) -> None:
        """Nothing to release."""


def run_record(model: Any, config: Any, source: dict[str, Any],
               metrics: dict[str, float]) -> dict[str, Any]:
    """A checkpoint record of a run: the model, its options, its data, its metrics."""
    from odernn.learn.models import surrogate_record

    return {**surrogate_record(model), "config": config.to_dict(), "data": source,
            "metrics": {k: float(v) for k, v in metrics.items()}}


def resumable(run_dir: Path, config: Any, source: dict[str, Any]) -> dict[str, Any]:
    """``last.pt`` of ``run_dir``, checked to come from the same data and options (``config``
    a :class:`~odernn.learn.config.TrainConfig`)."""
    record = read_checkpoint(run_dir / LAST)
    data, old = record.get("data", {}), record.get("config", {})
    if not (isinstance(data, dict) and isinstance(old, dict) and all(
            isinstance(data.get(k) or {}, dict) for k in ("train", "val"))):
        raise DataError(f"cannot resume: {run_dir / LAST} has a malformed data or config "
                        f"record (a corrupt or forged checkpoint)")
    trained_on = (data.get("train") or {}).get("sha256")
    if trained_on != source["train"]["sha256"]:
        raise DataError(f"cannot resume {run_dir}: it was trained on other data "
                        f"(sha256 {trained_on})")
    validated_on = (data.get("val") or {}).get("sha256")
    if validated_on != (source["val"] or {}).get("sha256") or \
            data.get("val_fraction", source["val_fraction"]) != source["val_fraction"]:
        was = (f"validation data with sha256 {validated_on}" if validated_on else
               f"a holdout of val_fraction = {data.get('val_fraction')}" if
               data.get("val_fraction") is not None else "folds of its training trajectories")
        raise DataError(f"cannot resume {run_dir}: it was validated on {was}; resume with "
                        "the same validation data")
    new = config.to_dict()
    # a run from an earlier odernn lacks the options added since: they take their defaults (an
    # option since removed or changed is compared as stored, and reported below)
    with contextlib.suppress(SpecError, TypeError, ValueError, AttributeError):
        old = type(config).from_dict(old).to_dict()  # else compared as stored
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if "epochs" in changed:  # val_every follows epochs unless given: not the user's change
            changed = [k for k in changed if k != "val_every"] or changed
        raise SpecError(f"cannot resume {run_dir} with other options ({', '.join(changed)}); "
                        f"resume with the options in {run_dir / CONFIG}")
    if config.recipe == "gradient":
        if "resume" not in record:
            raise DataError(f"cannot resume: {run_dir / LAST} holds no resume state")
        check_resume(record["resume"], run_dir / LAST)
    return record
