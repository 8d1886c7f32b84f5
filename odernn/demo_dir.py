"""The demo's output directory: one demo at a time writes it (a lock on the directory),
a previous demo is set aside while the new one is written and put back if it fails, and a
demo killed outright (SIGKILL: no handler runs) is undone by the next
(:func:`odernn.demo.run_demo`)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from odernn import atomic, jsonio
from odernn.errors import OutputError
from odernn.interrupt import interrupt_guard

MARKER = atomic.DEMO_MARKER
DONE = "stages.json"
"""Written last: a demo directory without it did not finish."""


def claim(directory: Path, locks: list[int]) -> None:
    """Hold an exclusive lock on ``directory`` itself (``flock`` on its descriptor: it travels
    with the directory when that is set aside), or one OutputError line where another demo
    holds it: two demos into one directory mixed their files, and the first lost its report."""
    locks.append(atomic.exclusive_lock(directory, os.O_RDONLY | os.O_DIRECTORY,
                                       f"{directory} is being written by another odernn demo; "
                                       "wait for it to finish, or give another -o"))


def release(locks: list[int]) -> None:
    while locks:
        os.close(locks.pop())


def finish(out: Path, stages: dict[str, float]) -> None:
    """Mark the demo at ``out`` finished: :data:`DONE`, written whole or not at all (a demo
    killed while writing it is unfinished, and :func:`recover` puts the previous one back)."""
    atomic.write_text(out / DONE, jsonio.dumps(stages, indent=2) + "\n", what="demo")


def recover(out: Path) -> None:
    """Put back the finished demo that a demo killed by SIGKILL (no handler ran) had set aside
    under a hidden name, in place of that demo's unfinished one at ``out``: the state any
    other interruption leaves. Demos still running (their directories locked) are left be."""
    aside = re.compile(rf"\.{re.escape(out.name)}\.previous-\d+-[0-9a-f]+")
    locks: list[int] = []
    try:
        if (out / DONE).exists() or atomic.foreign_reason(out, "demo") is not None:
            return
        found = [p for p in out.parent.iterdir() if aside.fullmatch(p.name)]
        claim(out, locks)
        if (out / DONE).exists():  # it finished meanwhile: it is the newest demo
            return
        for entry in sorted(found, key=lambda p: p.lstat().st_mtime, reverse=True):
            if not entry.is_symlink() and entry.is_dir() and (entry / DONE).is_file() \
                    and atomic.foreign_reason(entry, "demo") is None:
                with contextlib.suppress(OutputError):
                    claim(entry, locks)
                    with interrupt_guard():
                        _restore(entry, out)
                    return
    except (OSError, OutputError):
        return  # nothing to recover from here: the checks that follow say why
    finally:
        release(locks)


@contextmanager
def demo_output(out: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> Iterator[None]:
    """A fresh ``out`` for the demo to write: afterwards it holds the complete new demo or, if
    the demo fails or is interrupted, the previous one (set aside meanwhile) or nothing.

    A new path or an empty directory is used as is; an existing demo (it holds
    :data:`MARKER` and only what a demo writes) is replaced only with ``overwrite``;
    anything else never, nor a directory holding one of ``inputs``
    (:func:`odernn.atomic.check_output`). One demo at a time writes ``out`` (:func:`claim`);
    one killed outright is undone by the next (:func:`recover`).
    """
    out = Path(out)
    if out.is_dir() and not out.is_symlink():  # a demo, none of the inputs: then recover
        atomic.check_output(out, "demo", overwrite=True, inputs=inputs)
        recover(out)
    atomic.check_output(out, "demo", overwrite=overwrite, inputs=inputs)
    backup = None
    made = False
    locks: list[int] = []
    try:
        with interrupt_guard() as interrupted:  # a signal cannot split the swap
            if out.exists():
                claim(out, locks)  # refused while another demo writes it
                backup = atomic.set_aside(out)
            try:
                out.mkdir()
            except OSError as err:  # a read-only file system: the one line, not Python's
                parent = out.parent if str(out.parent) else Path(".")
                raise OutputError(f"cannot write {out}: cannot create a directory in {parent} "
                                  f"({err.strerror or err})") from err
            claim(out, locks)
            made = True
            (out / MARKER).write_text("written by odernn demo; a later demo replaces this "
                                      "directory with --overwrite\n")
        if interrupted():
            raise KeyboardInterrupt
        yield
    except BaseException:
        with interrupt_guard():  # nor the restore
            if made and backup is not None and backup.exists():
                _restore(backup, out)
            elif made:
                _remove_unfinished(out)
            elif backup is not None and backup.exists() and not out.exists():
                atomic.put_back(backup, out)
        release(locks)
        raise
    if backup is not None:
        _discard(backup)
    release(locks)


def _restore(previous: Path, out: Path) -> None:
    """Put the finished demo set aside at ``previous`` back at ``out`` in one step (the two
    directories exchanged), then delete the unfinished one, now at ``previous``. A demo
    killed while it deleted the unfinished one in place lost its marker first: ``out`` was
    then no demo, refused by every later one, and the previous demo hidden for good."""
    atomic.exchange_dirs(previous, out)
    _discard(previous)


def _discard(demo: Path) -> None:
    """Delete a demo set aside: its :data:`DONE` first, so that a deletion killed half way
    leaves no directory that reads as a finished demo (the next demo put one such remnant
    back in place of a previous demo)."""
    with contextlib.suppress(OSError):
        (demo / DONE).unlink(missing_ok=True)
    atomic.remove_tree(demo)


def _remove_unfinished(out: Path) -> None:
    """Delete the unfinished demo at ``out``, its marker last: killed half way, it is still
    a demo, which the next one replaces."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(out):
            if entry.name != MARKER:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
        (out / MARKER).unlink(missing_ok=True)
        out.rmdir()
