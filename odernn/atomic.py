"""The one owner of atomic writes and of the decision what an output may replace.

Every file odernn writes appears only when complete: it is written under a hidden name
beside its target (:func:`sibling`, always within the file system's name limit), flushed
to disk, and renamed into place (:func:`write_file`, :class:`AsideFile`); a directory is
built beside its target and swapped in (:func:`install_dir`), or, for the demo, the
previous one is set aside and put back on failure (:func:`set_aside`, :func:`put_back`).
A failure removes what was written aside and leaves the target as it was.

:func:`check_output` decides whether a path may receive an output of a kind (``dataset``,
``report``, ``demo``): a new path always; an existing one only with ``--overwrite``, and
only if it is recognisably odernn's own output of that kind (an HDF5 file of odernn's
schema; a directory holding only the files a report or a demo writes there) and no input
of the same command. Links, devices, FIFOs and directories of other files are never
replaced, ``--overwrite`` or not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from odernn import checks
from odernn.errors import OutputError
from odernn.interrupt import interrupt_guard

KINDS = ("dataset", "report", "demo", "model")
"""The kinds of output :func:`check_output` knows (a training run: :mod:`odernn.learn.rundir`);
``dataset`` and ``model`` (an ONNX file of ``odernn export``) are files, the others directories."""
FILES = {"dataset": "data.h5", "model": "model.onnx"}
REPORT_MARKER = ".odernn-report"
"""A report directory's own file: JSON naming every file the report wrote there."""
DEMO_MARKER = ".odernn-demo"
"""A demo directory's own file: it names the directory as a demo a later demo may replace."""
DEMO_FILES = frozenset((DEMO_MARKER, "train.h5", "test.h5", "stages.json"))
DEMO_DIRS = frozenset(("runs", "report"))
DEMO_WRITING = re.compile(r"\.(train\.h5|test\.h5|stages\.json|report)\.tmp-\d+-[0-9a-f]+")
"""The new copy (:func:`sibling`) of a demo's file or report that a demo killed outright was
writing: part of the unfinished demo, which the next one replaces or undoes."""
LEGACY_REPORT = re.compile(r"report\.html|report\.md|metrics\.json|[\w.-]+\.png")
"""Files of a report written before the marker existed (it has metrics.json of our schema)."""
_NOUNS = {"dataset": "datasets (HDF5 files of schema odernn.trajectories)",
          "model": "ONNX models written by odernn export",
          "report": "report directories", "demo": "demo directories"}


# -- names and files ---------------------------------------------------------------------------

def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def sibling(path: Path, tag: str) -> Path:
    """A new hidden name beside ``path``: ``.<name>.<tag>-<pid>-<random>``, the name shortened
    so that the whole fits the directory's NAME_MAX (a 255-byte target still gets one)."""
    path = Path(path)
    suffix = f".{tag}-{os.getpid()}-{secrets.token_hex(4)}"
    room = _name_max(path.parent if str(path.parent) else Path(".")) - 1 - len(suffix)
    stem = os.fsdecode(os.fsencode(path.name)[:max(room, 0)])
    return path.with_name(f".{stem}{suffix}")


def exclusive_lock(path: Path, flags: int, busy: str) -> int:
    """``path`` opened with ``flags``, exclusively flocked, or OutputError ``busy`` if held."""
    fd = os.open(path, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputError(busy) from None
    return fd


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (a rename) to disk; a file system that cannot is left be."""
    with contextlib.suppress(OSError):
        fsync_path(directory if str(directory) else Path("."), os.O_RDONLY | os.O_DIRECTORY)


def fsync_path(path: Path | str, flags: int = os.O_RDONLY) -> None:
    """Flush a file (or, with ``O_DIRECTORY``, a directory) to disk."""
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_exclusive(tmp: Path) -> int:
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)


def _renameat2(a: Path, b: Path, flag: int) -> int | None:
    """Linux ``renameat2(a, b, flag)``: 0, or the errno it failed with; None without it."""
    libc = ctypes.util.find_library("c")
    call = getattr(ctypes.CDLL(libc, use_errno=True), "renameat2", None) if libc else None
    if call is None:
        return None
    failed = call(-100, os.fsencode(a), -100, os.fsencode(b), flag)  # AT_FDCWD, AT_FDCWD
    return ctypes.get_errno() if failed else 0


def _replace(tmp: Path, target: Path, overwrite: bool = True) -> None:
    """Rename the finished ``tmp`` to ``target``, with a previous target's permissions (an
    ``--overwrite`` made a user's 600 file 644; given at the end, so a read-only one too);
    without ``overwrite`` never over a file that appeared there meanwhile (RENAME_NOREPLACE,
    where the file system has it, else a hard link, which fails on an existing name too)."""
    if not overwrite and _rename_noreplace(tmp, target):
        return
    with contextlib.suppress(OSError):
        os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode) & 0o1777)  # no setuid, setgid
    os.replace(tmp, target)


def _rename_noreplace(tmp: Path, target: Path) -> bool:
    """Rename ``tmp`` to ``target`` unless a file is there (OutputError); False where this
    file system can do neither atomically (the caller's check just before remains)."""
    failed = _renameat2(tmp, target, 1)  # RENAME_NOREPLACE
    if failed not in (0, errno.EEXIST):
        try:
            os.link(tmp, target)
        except FileExistsError:
            failed = errno.EEXIST
        except OSError:  # no hard links here (EPERM, EOPNOTSUPP)
            return False
        else:
            os.unlink(tmp)
            failed = 0
    if failed:
        raise OutputError(f"{target}: another file appeared there while this one was "
                          "written; it is kept (--overwrite replaces it)")
    return True


def _cannot(path: Path, err: OSError, what: str) -> OutputError:
    return OutputError(f"cannot write {what}{path}: {err.strerror or err}")


def write_file(path: Path, write: Callable[[BinaryIO], None], *, what: str = "",
               overwrite: bool = True) -> None:
    """Write ``path`` atomically: ``write(f)`` fills a new file beside it, which is flushed,
    fsynced and renamed into place (without ``overwrite`` never over a file that appeared
    there meanwhile). Any failure (KeyboardInterrupt too) removes the new file and leaves
    ``path`` as it was; an OSError becomes one OutputError line naming ``what``."""
    path = Path(path)
    tmp = sibling(path, "tmp")
    created = False
    try:
        fd = _create_exclusive(tmp)
        created = True
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path, overwrite)
        created = False
        fsync_dir(path.parent)
    except OSError as err:
        if created:
            tmp.unlink(missing_ok=True)
        if isinstance(err, OutputError):
            raise
        raise _cannot(path, err, f"{what} " if what else "") from err
    except BaseException:
        if created:
            tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes, *, what: str = "", overwrite: bool = True) -> None:
    """:func:`write_file` of ``data``."""
    write_file(path, lambda f: f.write(data), what=what, overwrite=overwrite)


def write_text(path: Path, text: str, *, what: str = "") -> None:
    """:func:`write_file` of ``text`` in UTF-8."""
    write_bytes(path, text.encode("utf-8"), what=what)


class AsideFile:
    """An empty file created beside ``path`` (``tmp``) for a writer that needs a path (HDF5);
    :meth:`publish` renames it into place once complete, :meth:`discard` removes it.

    Creating it first is the honest test of the directory: a read-only or pseudo file system
    (``/proc``) fails here with its own reason, before any work or space estimate."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.tmp = sibling(self.path, "tmp")
        try:
            os.close(_create_exclusive(self.tmp))
        except OSError as err:
            parent = self.path.parent if str(self.path.parent) else Path(".")
            raise OutputError(f"cannot write {self.path}: cannot create a file in {parent} "
                              f"({err.strerror or err})") from err

    def publish(self, check: Callable[[], None] | None = None, overwrite: bool = True) -> None:
        """fsync the finished file, call ``check`` (may still refuse), rename it into place."""
        fsync_path(self.tmp)
        if check is not None:
            check()
        _replace(self.tmp, self.path, overwrite)
        fsync_dir(self.path.parent)

    def discard(self) -> None:
        """Remove the file written aside (nothing at ``path`` changes)."""
        self.tmp.unlink(missing_ok=True)


# -- directories ------------------------------------------------------------------------------

def make_dir_beside(path: Path) -> Path:
    """A new, empty hidden directory beside ``path`` to build a directory output in."""
    tmp = sibling(Path(path), "tmp")
    os.mkdir(tmp, 0o777)  # the umask applies, as for any directory the user makes
    return tmp


def install_dir(new: Path, target: Path, check: Callable[[], None] | None = None) -> None:
    """Put the finished directory ``new`` at ``target``: a previous ``target`` is exchanged
    with it in one step (:func:`exchange_dirs`), then deleted; ``check`` runs just before, so
    a target that changed meanwhile is still refused."""
    for entry in os.scandir(new):  # the files reach the disk before the name does
        if entry.is_file(follow_symlinks=False):
            fsync_path(entry.path)
    fsync_dir(new)
    if check is not None:
        check()
    if not os.path.lexists(target):
        os.replace(new, target)
        fsync_dir(target.parent)
        return
    with interrupt_guard():  # a signal waits: never the previous output left under new's name
        exchange_dirs(new, target)
        shutil.rmtree(new, ignore_errors=True)


def set_aside(path: Path) -> Path:
    """Rename ``path`` to a hidden sibling and return it (undo with :func:`put_back`)."""
    aside = sibling(Path(path), "previous")
    os.replace(path, aside)
    return aside


def put_back(aside: Path, path: Path) -> None:
    """Undo :func:`set_aside` (``path`` must not exist again)."""
    os.replace(aside, path)


def exchange_dirs(a: Path, b: Path) -> None:
    """Swap two directories atomically (Linux ``renameat2(RENAME_EXCHANGE)``), or by three
    renames where the system has no such call."""
    if _renameat2(a, b, 2) == 0:  # RENAME_EXCHANGE
        fsync_dir(Path(b).parent)
        return
    aside = sibling(Path(b), "old")
    with interrupt_guard():  # a signal waits for the three; a failed one undoes the first
        os.replace(b, aside)
        try:
            os.replace(a, b)
        except BaseException:
            os.replace(aside, b)
            raise
        os.replace(aside, a)
        fsync_dir(Path(b).parent)


# -- what may be replaced -----------------------------------------------------------------------

def check_output(path: Path | str, kind: str, *, overwrite: bool,
                 inputs: Iterable[Path | str | None] = ()) -> bool:
    """Raise OutputError (one line) unless ``path`` may receive an output of ``kind``;
    return True when an existing output will be replaced.

    ``path`` is refused when it is one of ``inputs`` (the command's spec, config, data,
    shards, runs; compared as files, so links and other spellings count) or, for a
    directory kind, holds one; when it is a symbolic link (dangling too), device, FIFO or
    socket; when it exists and is not recognisably odernn's own output of ``kind``
    (``--overwrite`` or not); and when it is odernn's own but ``overwrite`` is false. A
    missing path, or an empty directory for a directory kind, is new. Nothing is opened for
    writing, and nothing that is not a regular file is opened at all.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    overwrite = checks.check_flag(overwrite, "overwrite")
    path = Path(path)
    noun = "file" if kind in FILES else "directory"
    if path.name in ("", ".", "..") or checks.holds_working_directory(path):
        raise OutputError(f"{path}: give the {kind} a {noun} of its own, e.g. "
                          f"{FILES.get(kind, 'odernn-' + kind)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        what = "is not a directory" if os.path.lexists(parent) else "does not exist"
        raise OutputError(f"cannot write {path}: {parent} {what}")
    for given in (g for g in inputs if g is not None):
        if checks.same_file(path, Path(given)):
            raise OutputError(f"{path} is also an input of this command ({given}); write the "
                              f"output elsewhere")
        if kind not in FILES and os.path.lexists(given) and checks.is_inside(Path(given), path):
            raise OutputError(f"{path} holds {given}, an input of this command; write the "
                              f"output elsewhere")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from err
    if stat.S_ISLNK(st.st_mode):
        checks.refuse_link(path)
    if kind in FILES and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: is a directory; give a file name such as {path / FILES[kind]}")
    wanted = stat.S_ISREG if kind in FILES else stat.S_ISDIR
    if not wanted(st.st_mode):
        raise OutputError(f"{path} is {checks.file_type(st.st_mode)}, not a {kind} {noun}; "
                          f"--overwrite replaces only odernn's own {_NOUNS[kind]}: give "
                          f"another path")
    if kind not in FILES:
        checks.refuse_mount_point(path)
    if kind not in FILES and checks.is_empty_dir(path):
        return False  # an empty directory: nothing to lose
    reason = foreign_reason(path, kind)
    if reason is not None:
        raise OutputError(f"{path} exists and is not an odernn {kind} ({reason}); --overwrite "
                          f"replaces only odernn's own {_NOUNS[kind]}: give another path")
    if not overwrite:
        if kind in FILES:
            raise OutputError(f"{path}: exists; pass --overwrite (in Python overwrite=True) to "
                              "replace it")
        raise OutputError(f"{path} already exists (a previous {kind}); pass --overwrite (in "
                          f"Python overwrite=True) to replace it")
    return True


def foreign_reason(path: Path, kind: str) -> str | None:
    """Why ``path`` (a regular file for a kind in :data:`FILES`, a directory otherwise) is not
    odernn's own output of ``kind``; None when it is."""
    if kind == "dataset":
        from odernn.data.schema import dataset_reason

        return dataset_reason(path)
    if kind == "model":
        from odernn.learn.export import model_reason

        return model_reason(path)
    from odernn.owned_dirs import demo_reason, report_reason

    return report_reason(path) if kind == "report" else demo_reason(path)


def remove_tree(path: Path) -> None:
    """Delete a directory this module set aside or built (errors ignored: it is ours)."""
    with contextlib.suppress(OSError):
        shutil.rmtree(path)
