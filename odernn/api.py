"""The public entry points that need torch or matplotlib, importing them only when called.

``import odernn`` stays light (``odernn --help`` starts without torch): the
package root re-exports these wrappers, and each one imports its module on
its first call. Their parameters are the modules' own; see the linked functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odernn.checks import check_flag, path_of
from odernn.errors import DataError, SpecError

if TYPE_CHECKING:  # for annotations only: importing these pulls in torch
    from odernn.assess.results import Evaluation
    from odernn.data.trajectories import Trajectories
    from odernn.learn.config import TrainConfig
    from odernn.learn.models import RecurrentSurrogate
    from odernn.learn.models.ensemble import Ensemble
    from odernn.learn.outcome import TrainResult


def fit(data: Trajectories | str | Path, config: TrainConfig | Mapping[str, Any] | None = None, *,
        val: Trajectories | None = None, run_dir: str | Path | None = None,
        resume: bool = False, overwrite: bool = False, progress: bool = False,
        tensorboard: str | Path | None = None,
        **options: Any) -> tuple[RecurrentSurrogate, TrainResult]:
    """Train a surrogate on ``data``; return the model with the lowest closed-loop validation
    error and the run's result (its ``history``, status and message).

    ``data`` is trajectories in memory or a file's path: a file is read into memory when
    training it there fits the memory budget, else streamed from the file in bounded memory
    (:func:`odernn.learn.stream.for_training`, docs/scaling.md).

    ``config`` is a :class:`~odernn.learn.config.TrainConfig`, or its options as a mapping;
    keyword ``options`` are added to it (``fit(data, model="esn", units=500)``). With
    ``run_dir`` the run directory is written there (checkpoints, ``history.csv``; ``resume``
    and ``overwrite`` as in ``odernn train``); without it nothing is written: the model is
    fitted in memory. ``tensorboard`` is a directory for each epoch's figures as TensorBoard
    scalars (``odernn train --tensorboard``; needs the ``tensorboard`` extra).

    It runs on the program's threads (torch's and numpy's BLAS default: every core), the
    command line on one: ``OMP_NUM_THREADS=1`` in the environment before the program starts
    (or ``torch.set_num_threads(1)`` and threadpoolctl's ``threadpool_limits(1)`` once numpy
    and scipy are imported) gives the command line's numbers to the bit.
    """
    from odernn.learn.models import from_record, load_surrogate
    from odernn.learn.training import train

    resume, overwrite = check_flag(resume, "resume"), check_flag(overwrite, "overwrite")
    settings = _settings(config, options, val)
    data, val = _data(data), _val(val)
    if run_dir is None and resume:
        raise SpecError("resume needs run_dir, the run to resume")
    if run_dir is None:
        result = train(data, settings, None, val=val, progress=progress,
                       tensorboard=tensorboard)
        if result.best_record is None:
            raise DataError(f"no model to return: {result.message}")
        return from_record(result.best_record, "the fitted model"), result
    result = train(data, settings, path_of(run_dir, "run_dir"), val=val, resume=resume,
                   progress=progress, overwrite=overwrite, tensorboard=tensorboard)
    return load_surrogate(result.best), result


def _data(data: Trajectories | str | Path) -> Any:
    """Trajectories as given; a file's path as :func:`~odernn.learn.stream.for_training`
    opens it (in memory, or streamed when it does not fit the memory budget)."""
    from odernn.data.filerows import FileRows
    from odernn.data.trajectories import Trajectories, check_consistency

    if isinstance(data, str | Path):
        from odernn.learn.stream import for_training

        return for_training(data)
    if not isinstance(data, Trajectories | FileRows):
        raise DataError(f"data must be Trajectories or a dataset file's path, got "
                        f"{type(data).__name__}")
    if isinstance(data, Trajectories):  # a file's were checked as it was read
        check_consistency(data, "data")
    return data


def _val(val: Trajectories | None) -> Trajectories | None:
    """The validation trajectories (None: a share of the training data), type-checked."""
    from odernn.data.filerows import FileRows
    from odernn.data.trajectories import Trajectories, check_consistency

    if val is not None and not isinstance(val, Trajectories | FileRows):
        raise DataError(f"val must be Trajectories or None, got {type(val).__name__}")
    if isinstance(val, Trajectories):
        check_consistency(val, "val")
    return val


def _settings(config: TrainConfig | Mapping[str, Any] | None,
              options: Mapping[str, Any], val: Any = None) -> TrainConfig:
    """The training options of ``config`` (an object or a mapping) with ``options`` added;
    with a validation set ``val``, refused if they hold one out too."""
    from odernn.learn.config import VAL_FRACTION, TrainConfig

    if isinstance(config, TrainConfig):
        settings = TrainConfig.from_dict({**config.to_dict(), **options}) if options else config
    elif not isinstance(config, Mapping | None):
        raise SpecError(f"config must be a TrainConfig or a mapping of options, got "
                        f"{type(config).__name__} {config!r:.40}; the family is an option: "
                        "fit(data, model='esn')")
    else:
        settings = TrainConfig.from_dict({**dict(config or {}), **options}, where="fit")
    if val is not None and settings.val_fraction != VAL_FRACTION:  # as the command line
        raise SpecError("val_fraction holds out training trajectories for validation; with "
                        "val (--val) they are all trained on: give one")
    return settings


def fit_seeds(data: Trajectories | str | Path,
              config: TrainConfig | Mapping[str, Any] | None = None, *, seeds: int = 3,
              val: Trajectories | None = None,
              run_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
              progress: bool = False, **options: Any) -> tuple[Ensemble, dict[str, TrainResult]]:
    """Train ``seeds`` independent members of one model (seeds ``seed``, ``seed + 1``, ...;
    ``odernn train --seeds``) and return their :class:`~odernn.learn.models.ensemble.Ensemble`
    (``evaluate`` reports every seed, their spread and the ensemble) and each member's
    result. With ``run_dir`` the seed group is written there (:mod:`odernn.learn.seeds`).
    ``data`` as for :func:`fit`: trajectories, or a file's path."""
    from odernn.learn.models import from_record
    from odernn.learn.models.ensemble import Ensemble
    from odernn.learn.seeds import load_group, train_seeds

    settings = _settings(config, options, val)
    results = train_seeds(_data(data), settings, run_dir, seeds, val=_val(val),
                          resume=resume, overwrite=overwrite, progress=progress)
    if run_dir is not None:
        return load_group(run_dir), results
    missing = [name for name, r in results.items() if r.best_record is None]
    if missing or len(results) < seeds:
        raise DataError(f"no ensemble to return: member {(missing or ['of the rest'])[0]} "
                        "has no model")
    return Ensemble({name: from_record(r.best_record, name) for name, r in results.items()}
                    ), results


def load_surrogate(path: str | Path, device: str = "cpu") -> RecurrentSurrogate | Ensemble:
    """A trained surrogate from a checkpoint file or a run directory (its ``best.pt``; see
    :func:`odernn.learn.models.load_surrogate`), or a seed group's directory (``train
    --seeds K``) as the :class:`~odernn.learn.models.ensemble.Ensemble` of its members."""
    from odernn.learn.models import load_surrogate as load
    from odernn.learn.seeds import is_group, load_group
    from odernn.learn.training import resolve_device

    if not isinstance(device, str):
        raise SpecError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    where = resolve_device(device)  # refused here, in words, not by the checkpoint's loader
    path = path_of(path, "load_surrogate's path")
    return load_group(path, where) if is_group(path) else load(path, where)


def export_onnx(model: RecurrentSurrogate | str | Path, path: str | Path, *,
                overwrite: bool = False) -> Path:
    """Write a surrogate's one-step function (a model, a run directory or a checkpoint) to
    ``path`` as ONNX and return it: physical units in and out, the normalisation folded in,
    checked with onnxruntime before it is written (atomically; an existing file is replaced
    only with ``overwrite`` and only if odernn exported it). Inputs, outputs and a client's
    loop: docs/export.md. Needs the ``export`` extra (``pip install "odernn[export]"``)."""
    from odernn.learn.export import export_onnx as export
    from odernn.learn.export import onnx_modules
    from odernn.learn.models import load_surrogate as load

    path = path_of(path, "export_onnx's path")
    onnx_modules()  # the extra, before a checkpoint is read
    if isinstance(model, str | Path):
        return export(load(Path(model)), path, overwrite=overwrite, inputs=(model,))
    return export(model, path, overwrite=overwrite)


def evaluate(test: Trajectories | str | Path, surrogates: Mapping[str, Any],
             **options: Any) -> Evaluation:
    """Roll every integrator and surrogate out on ``test`` (trajectories, or a file's path)
    and measure them; ``surrogates`` maps names to fitted models. See
    :func:`odernn.assess.evaluate.evaluate` for the options."""
    from odernn.assess.evaluate import evaluate as run
    from odernn.data.trajectories import Trajectories

    if isinstance(test, str | Path):
        from odernn.data.store import read_trajectories

        test, options = read_trajectories(test), {"data_path": test, **options}
    if not isinstance(test, Trajectories):
        raise DataError(f"evaluate takes trajectories or a file's path, not a "
                        f"{type(test).__name__}")
    if not isinstance(surrogates, Mapping) or not all(
            callable(getattr(m, "rollout", None)) for m in surrogates.values()):
        raise SpecError("evaluate takes surrogates as a mapping of names to fitted models, "
                        "e.g. {'esn': model}")
    _check_keywords("evaluate", options, run)
    return run(test, surrogates, **options)


def _check_keywords(name: str, options: Mapping[str, Any], function: Any) -> None:
    """Refuse an option ``function`` does not take in one line, with a did-you-mean."""
    import inspect

    from odernn.checks import did_you_mean

    known = [k for k, p in inspect.signature(function).parameters.items()
             if p.kind == p.KEYWORD_ONLY]
    for key in options:
        if key not in known:
            raise SpecError(f"{name}: unknown option {key!r}{did_you_mean(key, known)}; "
                            f"allowed: {', '.join(known)}")


def write_report(evaluation: Evaluation, out_dir: str | Path, *,
                 runs: Mapping[str, Path] | None = None, title: str = "odernn evaluation report",
                 overwrite: bool = False, extra_sections: Sequence[Any] = ()) -> Path:
    """Write the report directory (``report.html``, ``report.md``, ``metrics.json``, figures)
    atomically and return it; see :func:`odernn.assess.report.write_report`."""
    from odernn.assess.report import write_report as write
    from odernn.assess.results import Evaluation

    if not isinstance(evaluation, Evaluation):
        raise SpecError(f"write_report takes what odernn.evaluate returns, not a "
                        f"{type(evaluation).__name__}")
    return write(evaluation, out_dir, runs=runs, title=title, overwrite=overwrite,
                 extra_sections=extra_sections)
