"""Checks of what :func:`~odernn.assess.evaluate.evaluate` is given, before any work: the
test set, the training file of the peers, the names and options."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from odernn.assess.results import REFERENCE
from odernn.checks import did_you_mean, is_real
from odernn.data.integrators import INTEGRATORS, MIN_RTOL
from odernn.data.systems import SYSTEMS
from odernn.data.trajectories import Trajectories, check_consistency, check_pair
from odernn.errors import DataError, SpecError


def check_test(test: Trajectories, where: str = "the test set") -> None:
    """Refuse a test set evaluate cannot measure: a series, missing parameters, under 3
    points, or parts that contradict each other."""
    if test.v is None or test.F is None:
        raise DataError(f"evaluate needs oscillator trajectories (x, v, F); {where} is a "
                        "univariate series")
    system = SYSTEMS.get(test.system)  # None: no equation to rebuild (imported data)
    missing = [n for n in (*system.names, "x0") if n not in test.params] if system else []
    if missing:
        raise DataError(f"{where} stores no params/{missing[0]}; evaluate rebuilds each "
                        f"{system.name} from its stored parameters")
    if test.n_steps < 3:
        raise DataError(f"{where} has {test.n_steps} time points; evaluate needs >= 3")
    check_consistency(test, where)  # a file's was checked as it was read; memory's was not


def check_options(threshold: float, scipy_options: Mapping[str, Any] | None,
                  allowed: Sequence[str]) -> None:
    """A valid-time threshold that is a positive number; ``scipy_options`` among ``allowed``."""
    if not (is_real(threshold) and 0 < threshold < math.inf):
        raise SpecError(f"threshold must be a positive number (the valid-time threshold), got "
                        f"{threshold!r}")
    unknown = [k for k in scipy_options or {} if k not in allowed]
    if unknown:
        hint = did_you_mean(unknown[0], allowed)
        raise SpecError(f"scipy_options {unknown[0]!r} unknown{hint}; allowed: "
                        f"{', '.join(allowed)}")
    rtol = (scipy_options or {}).get("rtol", MIN_RTOL)
    if not (is_real(rtol) and MIN_RTOL <= rtol < math.inf):  # before any work, not after it
        raise SpecError(f"scipy_options rtol must be at least SciPy's floor 100 eps = "
                        f"{MIN_RTOL!r}, got {rtol!r}")


def training_file(train_data: Trajectories | str | Path | None, train_path: str | Path | None,
                  test: Trajectories, where: str,
                  peers: bool | None) -> tuple[Trajectories | None, str | None]:
    """The training file the peers are fitted on, read if a path and checked against the
    test set (:func:`~odernn.data.trajectories.check_pair`), and its name."""
    if train_data is None:
        if peers:
            raise SpecError("peers need the surrogates' training file: give train_data "
                            "(--train DATA.h5)")
        return None, None
    if peers is False:
        return None, None if train_path is None else str(train_path)
    if isinstance(train_data, str | Path):
        from odernn.data.store import read_trajectories

        train_path = train_path if train_path is not None else train_data
        train_data = read_trajectories(Path(train_data))
    label = f"training file {train_path}" if train_path is not None else "the training file"
    if train_data.v is None or train_data.F is None:
        raise DataError(f"{label} is a univariate series; the peers need oscillator "
                        "trajectories (x, v, F)")
    check_pair(train_data, test, label, where)
    return train_data, None if train_path is None else str(train_path)


def check_names(integrators: Sequence[str], surrogates: Mapping[str, Any],
                allowed: Sequence[str]) -> None:
    """Integrators among ``allowed``; surrogates named in printable text, none an
    integrator's name."""
    for name in integrators:
        if name not in INTEGRATORS or name == REFERENCE:
            raise SpecError(f"unknown integrator {name!r} (the reference always runs); "
                            f"allowed: {', '.join(allowed)}")
    for name in surrogates:
        if not isinstance(name, str) or not name.isprintable() or not name.strip():
            raise SpecError(f"surrogate name {name!r}: give a name of printable characters "
                            "(it heads the report's rows)")
        if name in INTEGRATORS:
            raise SpecError(f"surrogate name {name!r} is an integrator's name; rename the run")


def check_trained_on(training: Trajectories, runs: Mapping[str, Any], label: str) -> None:
    """Refuse a training file for the peers other than the one each run records (its
    config's sha256, where it has one): the report says the peers were fitted on the
    surrogates' training file, and an audit found nothing checked it."""
    from odernn.learn.rundir import read_config
    from odernn.learn.seeds import first_run
    from odernn.learn.windows import fingerprint

    digest = None
    for name, run in runs.items():
        record = read_config(first_run(run))
        data = record.get("data") if isinstance(record, dict) else None
        train = data.get("train") if isinstance(data, dict) else None
        trained = train.get("sha256") if isinstance(train, dict) else None
        if not isinstance(trained, str):
            continue  # a run that records no training data: nothing to compare
        digest = digest or fingerprint(training)["sha256"]
        if trained != digest:
            raise DataError(f"{label} is not the data run {name} was trained on (data "
                            f"fingerprints {trained[:12]}..., the file's {digest[:12]}...; "
                            "of t, x, v, F and the parameters, not the content digest "
                            "odernn inspect prints): the peers are "
                            "fitted on the surrogates' training file; give that file, or "
                            "--no-peers")
