"""What an evaluation records of where its numbers come from: the versions that computed
them and the test set it measured (``metrics.json``'s ``versions`` and ``data``)."""

from __future__ import annotations

import contextlib
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import scipy

import odernn
from odernn.data.systems import parameter_names
from odernn.data.trajectories import Trajectories
from odernn.jsonio import plain


def versions() -> dict[str, str]:
    """The versions of what computes the numbers and draws the figures (the report's)."""
    out = {"odernn": odernn.__version__, "python": platform.python_version(),
           "numpy": np.__version__, "scipy": scipy.__version__, "platform": platform.platform()}
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch"] = torch.__version__
    for name in ("h5py", "matplotlib", "pysindy"):  # installed, loaded yet or not
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def data_info(test: Trajectories, data_path: str | Path | None, digest: str,
               ref: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any]:
    """What the test set is, where it came from, and how far its stored values are from the
    reference ``ref = (x, v)`` (None where the stored values are the reference: no
    distance, not a distance of 0)."""
    ranges = {name: [float(np.min(test.params[name])), float(np.max(test.params[name]))]
              for name in parameter_names(test.system, test.params)}
    x, v = np.asarray(test.x), np.asarray(test.v)
    return {
        "path": None if data_path is None else str(data_path),
        "sha256": digest,  # the content's fingerprint, as a run records its data's
        "n_trajectories": test.n, "n_steps": test.n_steps, "dt": test.dt,
        "t_end": float(test.t[-1]), "forcing": str(test.attrs.get("forcing", "none")),
        "system": test.system, "parameter_ranges": ranges,
        "stored_vs_exact_rmse": None if ref is None else {
            "x": float(np.sqrt(np.mean(np.square(x - ref[0])))),
            "v": float(np.sqrt(np.mean(np.square(v - ref[1]))))},
        "attrs": plain(dict(test.attrs)),
    }
