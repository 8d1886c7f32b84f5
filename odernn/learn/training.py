"""Training a surrogate: ``train(data, TrainConfig(...), run_dir)``, the one entry point.

``odernn train`` is this call plus argument parsing. It splits validation trajectories
off (by trajectory), computes the normalisation on the training split, builds the model
and hands it to its family's recipe: :mod:`odernn.learn.gradient` (BPTT, the RNN, LSTM,
GRU and FFN) or :mod:`odernn.learn.ridge` (the reservoir's readout). The options are
:class:`~odernn.learn.config.TrainConfig`; the run directory's format and its writer are
:mod:`odernn.learn.rundir` (``resume=True`` continues from ``last.pt`` to the same result
as an uninterrupted run). Without a run directory nothing is written.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, OutputError, SpecError
from odernn.learn import distributed as dd
from odernn.learn import gradient, ridge
from odernn.learn.config import TrainConfig
from odernn.learn.models import build
from odernn.learn.models.layout import check_data
from odernn.learn.outcome import Progress, TrainResult
from odernn.learn.rundir import MemoryRun, RunWriter, check_run_dir, resumable
from odernn.learn.windows import compute_stats, fingerprint, split_by_trajectory

RECIPES = {"gradient": gradient, "ridge": ridge}
"""Recipe name (a family's ``recipe``) -> its module: ``check(data, config)`` before anything
is written, ``fit(model, config, train, val, out, source, previous, report)``."""


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecError("device 'cuda' requested but no CUDA GPU is available; allowed here: cpu")
    return torch.device(name)


def train(train: Trajectories, config: TrainConfig, run_dir: Path | None, *,
          val: Trajectories | None = None, resume: bool = False,
          progress: bool | Progress = True, overwrite: bool = False) -> TrainResult:
    """Train ``config.model`` on ``train`` and write the run directory ``run_dir`` (None:
    nothing is written, the best checkpoint's record is kept in ``result.best_record``).

    Validation is ``val`` or, when None, ``config.val_fraction`` of the
    trajectories of ``train`` (whole trajectories). ``progress`` is True (one
    line on stderr), False, or a callable receiving a dict per batch.
    """
    device, created = dd.setup(resolve_device(config.device))
    try:
        path = None if run_dir is None else Path(run_dir)
        return _train(train, config, path, val, resume, progress, overwrite, device)
    finally:
        dd.teardown(created)


def _train(train, config, run_dir, val, resume, progress, overwrite, device) -> TrainResult:
    """:func:`train` on ``device``, inside the process group when distributed (rank 0 alone
    prepares and writes the run directory; the others wait at a barrier)."""
    main = dd.rank() == 0
    source = {"train": fingerprint(train), "val": None if val is None else fingerprint(val),
              "val_fraction": None if val is not None else config.val_fraction}
    if val is None:
        train, val = split_by_trajectory(train, config.val_fraction, config.seed)
    layout = config.layout(train.dt)
    stats = compute_stats(train, layout)
    check_data(val, layout, where="validation data")
    recipe = RECIPES[config.recipe]
    recipe.check(train, config)
    model = build(config.model, layout, stats, **config.model_args()).to(device)
    # everything that can be refused has been checked: only now is the run directory touched
    if resume:  # read-only checks first: a refused resume touches nothing
        check_run_dir(run_dir, resume, overwrite)
    if resume and run_dir is None:
        raise SpecError("resume needs a run directory")
    previous = resumable(run_dir, config, source) if resume else None
    out = (MemoryRun() if run_dir is None else
           RunWriter(run_dir, resume=resume, overwrite=overwrite))
    error = None
    if main:
        try:
            out.open()
        except (OutputError, DataError) as err:
            error = err
    if dd.any_rank(error is not None):
        raise error or OutputError(f"rank 0 could not prepare run directory {run_dir}")
    try:
        report = _reporter(progress if main else False)
        if main:
            out.write_config({"config": config.to_dict(), "data": source})
        result = recipe.fit(model, config, train, val, out, source, previous, report)
        if isinstance(out, MemoryRun):
            result.best_record = out.best
        return result
    except BaseException:  # a full disk, an error: the previous run stays, or a new run with
        # no checkpoint to resume from leaves nothing
        if main:
            out.discard()
        raise
    finally:
        out.close()


def _reporter(progress: bool | Progress) -> Progress:
    """The progress callback: the caller's, a stderr display, or nothing. On a terminal one
    line is redrawn in place as the batches go; otherwise (a log file, a batch job) a plain
    line is written per epoch, with its validation, and per stage, without escape codes."""
    if callable(progress):
        return progress
    if not progress:
        return lambda info: None
    tty = sys.stderr.isatty()
    last = [0.0]

    def line(info: dict[str, Any]) -> str:
        if info["stage"] == "epoch":
            frac = info["batch"] / info["batches"]
            bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
            return (f"epoch {info['epoch']}/{info['epochs']} [{bar}] loss {info['loss']:.3g} "
                    f"(tf {info['tf_loss']:.3g}, closed loop {info['cl_loss']:.3g}) "
                    f"{info['steps_per_s'] / 1e3:.0f}k steps/s")
        if info["stage"] == "validated":
            val = info["val_nrmse_x"]
            return (f"epoch {info['epoch']}/{info['epochs']} loss {info['loss']:.3g} "
                    f"(tf {info['tf_loss']:.3g}, closed loop {info['cl_loss']:.3g}), "
                    f"val loss {info['val_loss']:.3g}"
                    + ("" if math.isnan(val) else f", closed-loop val NRMSE(x) {val:.3g}")
                    + f", {info['steps_per_s'] / 1e3:.0f}k steps/s")
        if info["stage"] == "ridge":
            return (f"ridge candidate {info['done']}: {info['ridge']:g}, closed-loop val "
                    f"NRMSE(x) {info['val_nrmse_x']:.3g}")
        return f"{info['stage']} {info['done']}/{info['total']}"

    def show(info: dict[str, Any]) -> None:
        stage = info.get("stage")
        if stage == "done":  # the caller reports the outcome (TrainResult.message)
            if tty:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()
            return
        if not tty:
            if stage in ("validated", "ridge") or (stage != "epoch"
                                                    and info["done"] == info["total"]):
                sys.stderr.write(line(info) + "\n")
                sys.stderr.flush()
            return
        if stage == "validated":
            return
        now = time.perf_counter()
        if now - last[0] < 0.2:
            return
        last[0] = now
        sys.stderr.write(f"\r\033[K{line(info)}")
        sys.stderr.flush()

    return show
