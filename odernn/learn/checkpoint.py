"""Self-describing checkpoints: plain tensors and dicts, written atomically, loaded without pickle.

A checkpoint is a dict saved with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (no code runs at load time). It holds

- ``format``, ``format_version``, ``odernn_version``;
- ``family``, ``args`` (constructor arguments: layout, normalisation
  statistics, hyperparameters), ``state_dict``: enough to rebuild the model
  (:func:`odernn.learn.models.load_surrogate`);
- ``data``: the training data's fingerprint (shape, dt, a content hash);
- for ``last.pt`` also ``resume``: optimiser state, RNG state, the data
  position (epoch, batch) and the training history so far.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch

import odernn
from odernn import atomic
from odernn.data.schema import HDF5_SIGNATURE
from odernn.errors import DataError, OutputError
from odernn.zip_directory import declared_entries

FORMAT = "odernn.checkpoint"
FORMAT_VERSION = 1
BEST, LAST = "best.pt", "last.pt"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (:func:`odernn.atomic.write_file`)."""
    path = Path(path)
    record = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "odernn_version": odernn.__version__, **payload}
    try:
        atomic.write_file(path, lambda f: torch.save(record, f), what="checkpoint")
    except RuntimeError as err:
        # torch.save reports a failed write (a full disk) as a RuntimeError raised while
        # handling the OSError
        cause = err.__context__
        if isinstance(cause, OSError):
            raise OutputError(f"cannot write checkpoint {path}: {cause.strerror or cause}"
                              ) from err
        raise


def checkpoint_path(path: Path) -> Path:
    """The checkpoint file: ``path`` itself, or ``best.pt`` inside a run directory."""
    path = Path(path)
    if path.is_dir():
        from odernn.learn.rundir import best_checkpoint  # rundir names a run's files

        return best_checkpoint(path)
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "does not exist"  # a FIFO, device
        raise DataError(f"checkpoint {path} {what} (give a run directory or a .pt file)")
    return path


SAFE_TORCH = (2, 6)
"""The first torch whose ``weights_only=True`` loading cannot be bypassed (CVE-2025-32434)."""


def check_safe_loading(version: str) -> None:
    """Refuse to unpickle anything under a torch whose safe loading has a known bypass."""
    release = tuple(int(p) for p in version.split("+")[0].split(".")[:2] if p.isdigit())
    if release < SAFE_TORCH:
        raise DataError(f"torch {version} cannot load checkpoints safely (CVE-2025-32434); "
                        f"odernn needs torch >= {SAFE_TORCH[0]}.{SAFE_TORCH[1]}")


PICKLE_OBJECT_BYTES = 256
"""The most memory one byte of a checkpoint's pickle can make when unpickled: an opcode of
one byte makes an object (an empty set, 216 bytes, the largest that the weights-only
unpickler allows) and the slot that holds it."""


MAX_ENTRIES = 10_000
"""The most entries a checkpoint's zip directory may list: odernn's hold a few dozen (one per
tensor, a pickle and torch's records)."""


def load_bytes(path: Path) -> tuple[int, int]:
    """The bytes a checkpoint's entries take unpacked, from its zip directory (torch's
    format; the sizes torch's reader allocates), and the memory loading it may take: twice
    each entry (its bytes, then its tensors) and :data:`PICKLE_OBJECT_BYTES` per byte of its
    pickle. A compressed entry of a small file can unpack to gigabytes, and a pickle of
    ``}}}}...`` makes an object per byte. A file that is no zip is refused (odernn writes
    zip archives only, and torch would unpickle its legacy format whole), and so is one of
    more than :data:`MAX_ENTRIES` entries, counted before the directory is parsed."""
    try:
        declared = declared_entries(path) or 0  # a budget error is no ValueError of zipfile's
    except OSError as err:
        raise DataError(f"cannot read checkpoint {path}: {err.strerror or err}") from None
    entries: list[zipfile.ZipInfo] = []
    if declared <= MAX_ENTRIES:
        try:
            with zipfile.ZipFile(path) as archive:
                entries = archive.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise DataError(f"{path} is not a readable odernn checkpoint (not a torch archive: "
                            "corrupt, truncated, zero-filled or another program's)") from None
    if max(declared, len(entries)) > MAX_ENTRIES:
        raise DataError(f"{path} is not an odernn checkpoint: its zip directory lists "
                        f"{max(declared, len(entries))} entries (odernn writes a few dozen; "
                        f"it reads at most {MAX_ENTRIES})")
    unpacked = sum(entry.file_size for entry in entries)
    pickled = sum(entry.file_size for entry in entries if entry.filename.endswith(".pkl"))
    return unpacked, 2 * unpacked + PICKLE_OBJECT_BYTES * pickled


def check_integrity(path: Path) -> None:
    """Refuse a checkpoint whose bytes changed after it was written: torch does not check
    the CRC-32 that its zip writer stores for every entry, and a flipped bit in a tensor's
    bytes loaded silently as one wrong weight."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error):
        bad = "its directory"
    if bad is not None:
        raise DataError(f"{path} is corrupt: {bad} does not match its CRC-32 (a damaged copy "
                        "or disk); train again or restore the file")


def read_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint (a file or a run directory's best) onto ``device``."""
    path = checkpoint_path(path)
    check_safe_loading(torch.__version__)
    from odernn import budget

    try:  # torch.load holds the file's tensors (and, briefly, its bytes) in memory
        file_size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(len(HDF5_SIGNATURE))
    except OSError as err:
        raise DataError(f"cannot read checkpoint {path}: {err.strerror or err}") from err
    if head == HDF5_SIGNATURE:  # e.g. a dataset given where a run goes
        raise DataError(f"{path} is an HDF5 file (a dataset?), not an odernn checkpoint: "
                        "give a run directory or its best.pt")
    budget.check(f"checkpoint {path} ({budget.size(file_size)})", 2 * file_size,
                 "that is for loading its tensors")
    unpacked, need = load_bytes(path)
    budget.check(f"checkpoint {path} ({budget.size(unpacked)} unpacked)", need,
                 "that is for loading its tensors and unpickling its records")
    check_integrity(path)
    where = torch.device(device)  # torch restores no tensor to "cpu:0", which is the CPU
    where = torch.device("cpu") if where.type == "cpu" else where
    try:
        with warnings.catch_warnings():  # a foreign file's warnings: the error says it all
            warnings.simplefilter("ignore")
            record = torch.load(path, map_location=where, weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        if isinstance(err, pickle.UnpicklingError) and "Unsupported global" in str(err):
            # a torch file of objects: not torch's advice to load it unsafely
            raise DataError(f"{path} is not a readable odernn checkpoint: it holds objects "
                            "other than tensors and plain data, which odernn never unpickles "
                            "(a foreign or forged file)") from err
        text = str(err)
        if "WeightsUnpickler error:" in text:  # torch's own words advise the unsafe load
            text = text.split("WeightsUnpickler error:", 1)[1].strip()
        said = text.splitlines()[0][:200] if text else ""
        if "weights_only" in said:  # never torch's advice to load unsafely
            said = "corrupt, or another program's"
        raise DataError(f"{path} is not a readable odernn checkpoint ({said})") from err
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise DataError(f"{path} is not an odernn checkpoint (no format = {FORMAT!r})")
    version = record.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise DataError(f"{path} has checkpoint format_version {version!r}, not an integer "
                        f"(a corrupt or forged checkpoint)")
    if version > FORMAT_VERSION:
        raise DataError(f"{path} has checkpoint format {record['format_version']}; this odernn "
                        f"({odernn.__version__}) reads up to {FORMAT_VERSION}: upgrade odernn")
    if record.get("odernn_version") != odernn.__version__:
        warnings.warn(f"{path} was written by odernn {record.get('odernn_version')}, "
                      f"this is {odernn.__version__}", stacklevel=2)
    return record
