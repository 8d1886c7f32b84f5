"""Training a surrogate: ``train(data, TrainConfig(...), run_dir)``, the one entry point.

``odernn train`` is this call plus argument parsing. It splits validation trajectories
off (by trajectory), computes the normalisation on the training split, builds the model
and hands it to its family's recipe: :mod:`odernn.learn.gradient` (BPTT, the RNN, LSTM,
GRU and FFN) or :mod:`odernn.learn.ridge` (the reservoir's readout). The options are
:class:`~odernn.learn.config.TrainConfig`; the run directory's format and its writer are
:mod:`odernn.learn.rundir` (``resume=True`` continues from ``last.pt`` to the same result
as an uninterrupted run). Without a run directory nothing is written. ``tensorboard``
(a directory) also writes each epoch's figures as TensorBoard scalars
(:mod:`odernn.learn.tensorboard_log`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from odernn import budget
from odernn.data.filerows import FileRows
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, OutputError, SpecError
from odernn.learn import distributed as dd
from odernn.learn import epoch_folds, gradient, ridge, stream
from odernn.learn.checkpoint import LAST
from odernn.learn.config import VAL_FRACTION, TrainConfig
from odernn.learn.models import build, from_record
from odernn.learn.models.layout import check_data
from odernn.learn.models.prior import check_prior_data
from odernn.learn.models.stepper import check_closed_loop
from odernn.learn.outcome import TrainResult
from odernn.learn.rundir import MemoryRun, RunWriter, check_run_dir, resumable
from odernn.learn.stream import fingerprint, layout_params, validation
from odernn.learn.tensorboard_log import TensorBoardLog
from odernn.learn.tensorboard_log import check as check_tensorboard
from odernn.learn.windows import folds_by_trajectory, split_by_trajectory
from odernn.progress import Event, Progress, reporter

AUTO_FOLDS = 10
"""With ``val_folds`` None and no validation set, the reservoir's ridge is chosen leave one
trajectory out on 2 to this many training trajectories (a holdout of a tenth would be one
trajectory; benchmarks/selection.py measures both), by the holdout on more."""
RECIPES = {"gradient": gradient, "ridge": ridge}
"""Recipe name (a family's ``recipe``) -> its module: ``check(data, config)`` before anything
is written, ``fit(model, config, train, val, out, source, previous, report)``."""


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; ``cuda`` (or ``cuda:N``) without a GPU,
    or a name torch does not know, is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SpecError(f"device {name!r} unknown; allowed: auto, cpu, cuda") from None
    if device.type == "meta":  # shapes without values: a model cannot run there
        raise SpecError(f"device {name!r} holds no values; allowed: auto, cpu, cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device {name!r} requested but no CUDA GPU is available; allowed here: "
                        "cpu")
    return device


def train(train: Trajectories | FileRows, config: TrainConfig, run_dir: Path | None, *,
          val: Trajectories | FileRows | None = None, resume: bool = False,
          progress: bool | Progress = True, overwrite: bool = False,
          tensorboard: str | Path | None = None) -> TrainResult:
    """Train ``config.model`` on ``train`` and write the run directory ``run_dir`` (None:
    nothing is written, the best checkpoint's record is kept in ``result.best_record``).

    Validation is ``val`` or, when None, ``config.val_fraction`` of the
    trajectories of ``train`` (whole trajectories), or with ``config.val_folds``
    cross-validation over the training trajectories (the reservoir's ridge,
    :mod:`odernn.learn.folds`, leave one out on at most :data:`AUTO_FOLDS` of them when
    ``val_folds`` is None; a gradient family's epoch, :mod:`odernn.learn.epoch_folds`).
    ``train`` is in memory, or a file's rows
    (:class:`~odernn.data.filerows.FileRows`, from :func:`odernn.learn.stream.for_training`)
    streamed in bounded memory; validation is held in memory. ``progress`` is True (drawn on
    stderr), False, or a callable receiving an :class:`~odernn.progress.Event` per batch.
    ``tensorboard`` is a directory for the per-epoch figures as TensorBoard scalars (rank 0
    writes; needs the ``tensorboard`` extra, refused up front without it).
    """
    if tensorboard is not None:
        check_tensorboard(tensorboard, run_dir, what="the tensorboard option")
    device, created = dd.setup(resolve_device(config.device))
    try:
        path = None if run_dir is None else Path(run_dir)
        return _train(train, config, path, val, resume, progress, overwrite, device,
                      tensorboard)
    finally:
        dd.teardown(created)


def _fold_scores(train: Trajectories, config: TrainConfig, progress: bool | Progress,
                 device: torch.device) -> epoch_folds.FoldScores:
    """:func:`odernn.learn.epoch_folds.fold_scores`: each fold trained as :func:`train` trains
    (in memory, nothing written), its progress reported as "fold k of K"."""
    report = reporter(progress)
    n = min(config.val_folds, train.n)

    def run(part: Trajectories, held: Trajectories, fold_config: TrainConfig,
            k: int) -> TrainResult:
        def fold(event: Event) -> None:
            report(dataclasses.replace(event, task=f"{event.task}, fold {k + 1} of {n}"))

        return _train(part, fold_config, None, held, False, fold, False, device, None)

    return epoch_folds.fold_scores(train, config, run)


def check(train: Trajectories | FileRows, config: TrainConfig, run_dir: Path | None, *,
          val: Trajectories | FileRows | None = None, resume: bool = False,
          overwrite: bool = False, world_size: int = 1) -> None:
    """Refuse what :func:`train` would refuse before it trains (the device, the options against
    the data, a resume), writing nothing: ``odernn train --nproc`` runs it before it starts
    ``world_size`` processes, so that bad input is one error from one process."""
    resolve_device(config.device)
    _prepare(train, config, run_dir, val, resume, overwrite, world_size)


def _prepare(train, config, run_dir, val, resume, overwrite, world_size) -> tuple:
    """What :func:`_train` checks and prepares before it writes:
    ``(config, train, val, source, model, folds, previous)``, the model on the CPU."""
    if isinstance(train, Trajectories):  # its copies, before any: the estimate by which a
        budget.check(f"training in memory: {train.n} trajectories of {train.n_steps} points",
                     stream.in_memory_bytes(train),  # file is read in memory, or streamed
                     "that is for the copies training makes (the validation split, "
                     "tensors, statistics); give the file instead, streamed where it does not "
                     "fit (odernn.fit(PATH), odernn train FILE)")
    if config.val_folds and val is not None:
        raise SpecError(f"val_folds = {config.val_folds} cross-validates over the training "
                        "trajectories: give it or a validation set, not both")
    if (config.val_folds is None and val is None and config.recipe == "ridge"
            and 2 <= train.n <= AUTO_FOLDS  # few trajectories: leave one out (recorded),
            and config.val_fraction == VAL_FRACTION):  # unless a holdout is asked for
        config = dataclasses.replace(config, val_folds=train.n)
    folds = bool(config.val_folds)
    if folds and config.recipe == "gradient" and world_size > 1:
        raise SpecError("val_folds with the gradient families trains in one process; "
                        "use val_fraction or a validation set with data-parallel training")
    holdout = val is None and not folds
    source = {"train": fingerprint(train), "val": None if val is None else fingerprint(val),
              "val_fraction": config.val_fraction if holdout else None}
    # which parameters vary is decided before a split: a parameter that varies in the data is
    params = layout_params(train)  # an input even if the training part happens to hold one value
    if (config.target == "next-value") != train.is_series:  # before the prior's sources
        check_data(train, dataclasses.replace(config, prior=None, prior_set={}).layout(
            train.dt, train.system, params), where="training data")
    layout = config.layout(train.dt, train.system, params)
    if layout.series != train.is_series:  # the real mismatch, before a split says another
        check_data(train, layout, where="training data")
    check_prior_data(layout, params)
    if holdout:
        train, val = split_by_trajectory(train, config.val_fraction, config.seed)
    elif folds:  # every training trajectory is held out once (odernn.learn.folds, or
        if config.recipe == "gradient":  # .epoch_folds; the fold trainings in memory)
            stream.check_fold_trainings(train, config.val_folds)
        val = train if isinstance(train, Trajectories) else train.read(
            "val_folds rolls out every training trajectory")
        if config.recipe == "gradient":  # each fold trains on the others: in memory
            train = val
            folds_by_trajectory(train.n, config.val_folds, config.seed)  # refused now if < 2
    val = validation(val)  # in memory (a file's rows: read, budget-checked)
    stats = stream.stats(train, layout)  # in memory, or one pass over the file
    check_data(val, layout, where="validation data")
    RECIPES[config.recipe].check(train, config)
    model = build(config.model, layout, stats, **config.model_args())
    if resume:  # read-only checks first: a refused resume touches nothing
        check_run_dir(run_dir, resume, overwrite)
    if resume and run_dir is None:
        raise SpecError("resume needs a run directory")
    previous = resumable(run_dir, config, source) if resume else None
    if previous is not None:  # the stored model as it was built: defaults may have changed since
        model = from_record(previous, run_dir / LAST)
    if config.recipe == "gradient" and isinstance(train, FileRows):  # its buffers, refused now
        stream.planned_buffers(train, model.layout, stream.resumed_rows(previous))
    if not (folds and config.recipe == "gradient"):  # a fold training checks its own part
        steps = val.n_steps if config.val_steps is None else min(config.val_steps, val.n_steps)
        check_closed_loop([model], val.n, steps)  # validation rollouts: before any epoch
    return config, train, val, source, model, folds, previous


def _train(train, config, run_dir, val, resume, progress, overwrite, device,
           tensorboard) -> TrainResult:
    """:func:`train` on ``device``, inside the process group when distributed (rank 0 alone
    prepares and writes the run directory; the others wait at a barrier)."""
    main = dd.rank() == 0
    config, train, val, source, model, folds, previous = _prepare(
        train, config, run_dir, val, resume, overwrite, dd.world_size())
    recipe, model = RECIPES[config.recipe], model.to(device)
    # everything that can be refused has been checked: only now is the run directory touched
    if folds and config.recipe == "gradient":  # K trainings, before anything is written
        val = _fold_scores(val, config, progress, device)
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
    board = TensorBoardLog(tensorboard) if tensorboard is not None and main else None
    try:
        report = reporter(progress if main else False)
        if main:
            out.write_config({"config": config.to_dict(), "data": source})
        if board is not None:
            report = board.open(report)
        result = recipe.fit(model, config, train, val, out, source, previous, report)
        if main and result.left_nothing:
            out.discard()  # diverged before its first checkpoint: it leaves nothing, as a failure
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
        if board is not None:  # flushed however the run ended
            board.close()
