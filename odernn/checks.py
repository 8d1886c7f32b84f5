"""Checks of user input shared by every stage: choices with a "did you mean", seeds, small
text files (specs, configurations) read without trusting them."""

from __future__ import annotations

import difflib
import io
import json
import numbers
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from odernn.errors import DataError, OutputError, SpecError

MAX_SEED = 2**63 - 1
"""The largest seed: seeds are stored as 64-bit integers."""


def real_numbers(a: Any, name: str) -> np.ndarray:
    """``a`` as an array of its own dtype (a list as one), or one DataError line where it holds
    anything but real numbers: strings, a ragged list, complex numbers (which numpy would
    refuse with its own traceback, or cast later, dropping the imaginary part), booleans
    (numpy refuses their differences deep inside training)."""
    try:
        out = np.asarray(a)
    except (ValueError, TypeError, RuntimeError) as e:  # ragged; a tensor that needs grad
        raise DataError(f"{name} must be an array of real numbers: {e}") from None
    if out.dtype.kind not in "iuf":
        raise DataError(f"{name} must hold real numbers, not {out.dtype} values")
    return out


def real_array(a: Any, name: str) -> np.ndarray:
    """:func:`real_numbers` as float64."""
    return real_numbers(a, name).astype(np.float64, copy=False)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 trajectory``, ``3 trajectories``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelt ``word``, or ``""`` when
    none is close: appended to the one-line error that names the allowed values. First a
    choice that differs in case alone (difflib finds no 't' for 'T'), then one whose last
    path component is the word (``log/x`` for ``x``), then difflib's closest, then one that
    begins the word or that it begins, of 3 characters or more (``pos`` for ``position``)."""
    choices, w = [str(c) for c in choices], str(word).casefold()
    close = ([c for c in choices if c.casefold() == w]
             or [c for c in choices if c.rsplit("/", 1)[-1].casefold() == w]
             or difflib.get_close_matches(str(word), choices, n=1)
             or [c for c in choices if min(len(c), len(w)) >= 3
                 and (c.casefold().startswith(w) or w.startswith(c.casefold()))])
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(value: str, allowed: Iterable[str], what: str) -> str:
    """``value`` if it is one of ``allowed``, else one SpecError line naming ``what``, the
    allowed values and the closest of them (``--model 'lstn' unknown (did you mean
    'lstm'?); allowed: rnn, lstm, gru``)."""
    options = [str(a) for a in allowed]
    if value not in options:
        raise SpecError(f"{what} {value!r} unknown{did_you_mean(value, options)}; allowed: "
                        f"{', '.join(options)}")
    return value


def is_whole(value: object) -> bool:
    """Whether ``value`` is a whole number as Python or NumPy holds it (not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def path_of(value: object, what: str) -> Path:
    """``value`` as a :class:`~pathlib.Path`, or one SpecError line: a path is a ``str`` or an
    ``os.PathLike`` (pathlib's own error for a number or None named neither the argument nor
    what it takes)."""
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise SpecError(f"{what} must be a str or os.PathLike, got {type(value).__name__} "
                    f"{value!r}")


def check_flag(value: object, name: str) -> bool:
    """``value`` as a bool, or one SpecError line: True or False only (numpy's too). Any
    object has a truth value, and ``overwrite="no"`` replaced a file."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise SpecError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def is_empty_dir(path: Path | str) -> bool:
    """Whether directory ``path`` holds nothing (its listing closed at once: an unclosed one
    was a ResourceWarning)."""
    with os.scandir(path) as entries:
        return next(entries, None) is None


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number as Python or NumPy holds it (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_seed(seed: int, name: str = "seed") -> None:
    """Refuse a seed outside ``[0, 2**63 - 1]``: seeds are stored as 64-bit integers (HDF5
    attributes, checkpoints), and NumPy's and torch's generators take no negative seed."""
    if not is_whole(seed) or not 0 <= seed <= MAX_SEED:
        raise SpecError(f"{name} must be an integer in [0, 2**63 - 1], got {seed!r}")


MAX_TEXT_BYTES = 1 << 20
"""A spec or configuration file larger than this is refused unread (they are a few lines)."""


def refuse_link(path: Path | str) -> None:
    """One OutputError line where ``path`` is a symbolic link (dangling too): odernn never
    writes through or replaces one, whatever it points to."""
    if os.path.islink(path):
        raise OutputError(f"{path} is a symbolic link; odernn never writes through or replaces "
                          "a link (--overwrite or not): give another path")


def file_type(mode: int) -> str:
    """What a file of ``st_mode`` is, in words ("a FIFO (named pipe)"), for a refusal."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "not a regular file"


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (links and other spellings count)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def is_inside(inner: Path, outer: Path) -> bool:
    """Whether ``inner`` lies within directory ``outer`` (both resolved)."""
    try:
        return Path(os.path.realpath(inner)).is_relative_to(os.path.realpath(outer))
    except (OSError, ValueError):
        return False


def holds_working_directory(path: Path | str) -> bool:
    """Whether ``path`` is the working directory or one above it (however named: ``.``, its
    absolute path, ``..``): an output put there would remove the directory the shell is in."""
    try:
        return Path.cwd().is_relative_to(os.path.realpath(path))
    except (OSError, ValueError):  # a working directory removed already: none to protect
        return False


def refuse_mount_point(path: Path) -> None:
    """One OutputError line for an existing output that is a mount point (a container's
    ``-v ./out:/out``): outputs are put in place by renaming, which a mount point refuses
    (EBUSY), so it would fail only once the work is done."""
    if os.path.isdir(path) and not os.path.islink(path) and is_mount_point(path):
        raise OutputError(f"{path} is a mount point, which odernn cannot replace (an output is "
                          f"renamed into place): give a directory inside it, e.g. {path}/out")


def is_mount_point(path: Path | str) -> bool:
    """Whether ``path`` is where a file system is mounted, by the kernel's table where it is
    readable (a bind mount within one file system too; not a btrfs subvolume, which renames),
    else by device numbers (:func:`os.path.ismount`)."""
    try:
        table = Path("/proc/self/mountinfo").read_bytes()
    except OSError:
        return os.path.ismount(path)
    target = os.fsencode(os.path.realpath(path))
    points = (line.split(b" ")[4] for line in table.splitlines() if line.count(b" ") > 4)
    return any(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), point) == target
               for point in points)  # the table writes a space, tab or newline as \040 ...


def check_writable(path: Path, what: str) -> None:
    """One OutputError line, before any work, where nothing can be written beside ``path``
    (no permission, a read-only or missing file system): a hidden directory is made there
    and removed at once, as the output's own will be."""
    path = Path(path).absolute()
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".odernn-probe-", dir=path.parent))
    except OSError as err:
        raise OutputError(f"cannot write {what} {path}: {err.strerror or err}") from None


def read_small_text(path: Path, what: str, *, limit: int = MAX_TEXT_BYTES,
                    hint: str = "give a .toml file", follow: bool = True) -> str:
    """The UTF-8 text of a small regular file (a byte-order mark dropped), or one SpecError
    line: missing, a directory, a FIFO or device, larger than ``limit`` bytes, not text, or
    (``follow=False``: a file from a directory someone else may have made) a symbolic link.
    The file is opened without blocking and checked on the open descriptor, so a FIFO is
    never waited on and nothing is read past ``limit`` (``/dev/zero`` is endless)."""
    if not follow and os.path.islink(path):
        raise SpecError(f"{what} {path} is a symbolic link; odernn reads it only as a file "
                        "of its own (a link could name any file on the disk)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW))
    except FileNotFoundError:
        raise SpecError(f"{what} file {path} not found") from None
    except IsADirectoryError:
        raise SpecError(f"{what} {path} is a directory; {hint}") from None
    except OSError as exc:
        raise SpecError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise SpecError(f"{what} {path} is a directory; {hint}")
        raise SpecError(f"{what} {path} is not a regular file (a FIFO, socket or device); "
                        f"{hint}")
    size = min(limit, os.fstat(fd).st_size)  # a buffer of the file's size, not the limit's
    with os.fdopen(fd, "rb") as f:
        try:
            raw = f.read(size + 1)
            if len(raw) > size:  # grown since, or over the limit: read on up to it
                raw += f.read(limit + 1 - len(raw))
        except OSError as exc:
            raise SpecError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    from odernn.data.schema import hdf5_at

    if hdf5_at(io.BytesIO(raw)):  # a dataset (or a .mat file: HDF5 after a block) given
        raise SpecError(f"{what} {path} is an HDF5 file (a dataset?), not a {what} file")
    if len(raw) > limit:
        raise SpecError(f"{what} {path} is larger than {limit} bytes; a {what} file "
                        f"is at most {limit} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None


def parse_toml(text: str, what: str) -> dict[str, Any]:
    """The TOML document ``text``, or one SpecError line naming ``what``: malformed, or
    nested too deeply for the parser (tomllib recurses once per level: a few hundred ``[``
    ran out of Python's stack with a traceback of thousands of lines)."""
    from odernn._compat import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{what}: malformed TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{what}: arrays or tables nested too deeply to read") from None


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: JSON's escapes, which TOML shares, but a character
    beyond the Basic Multilingual Plane as ``\\UXXXXXXXX`` (JSON writes a surrogate pair,
    which TOML refuses: a name with an emoji made a spec that could not be read back)."""
    return re.sub(r"\\ud([89ab][0-9a-f]{2})\\ud([c-f][0-9a-f]{2})",
                  lambda m: "\\U%08X" % (0x10000 + ((int(m[1], 16) - 0x800) << 10)
                                          + int(m[2], 16) - 0xC00), json.dumps(text))
