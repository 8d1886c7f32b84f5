"""Checks of what :func:`~odernn.assess.evaluate.evaluate` is given, before any work: the
test set, the training file of the peers, the names and options."""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from odernn.assess.results import REFERENCE
from odernn.checks import did_you_mean, is_real
from odernn.data.forcing import forcing_from_params
from odernn.data.integrators import INTEGRATORS, MIN_RTOL
from odernn.data.systems import SYSTEMS
from odernn.data.trajectories import Trajectories, check_consistency, check_pair
from odernn.errors import DataError, SpecError


def check_test(test: Trajectories, where: str = "the test set") -> None:
    """Refuse a test set evaluate cannot measure: a series, missing parameters, under 3
    points, non-finite values (a file's are refused as it is read, an array's in memory
    were scored as if finite without a surrogate), or parts that contradict each other."""
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
    arrays = {"x": test.x, "v": test.v, "F": test.F, **{f"params/{k}": p
                                                        for k, p in test.params.items()}}
    bad = next((k for k, a in arrays.items() if not np.all(np.isfinite(a))), None)
    if bad is not None:
        raise DataError(f"{where}: {bad} holds non-finite values (NaN or inf)")
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
                  test: Trajectories, where: str, peers: bool | None,
                  surrogates: Mapping[str, Any]) -> tuple[Trajectories | None, str | None]:
    """The training file the peers are fitted on, read if a path and checked against the
    test set (:func:`~odernn.data.trajectories.check_pair`) and the surrogates' own
    (:func:`check_trained_on`), and its name."""
    if train_data is None:
        if peers:
            raise SpecError("peers need the surrogates' training file: give train_data "
                            "(--train DATA.h5)")
        return None, None
    if peers is False:
        return None, None if train_path is None else str(train_path)
    if isinstance(train_data, str | os.PathLike):
        from odernn.data.store import read_trajectories

        train_path = train_path if train_path is not None else train_data
        train_data = read_trajectories(Path(train_data))
    elif not isinstance(train_data, Trajectories):
        raise SpecError(f"train_data must be a path or Trajectories, got "
                        f"{type(train_data).__name__} {train_data!r:.40}")
    label = f"training file {train_path}" if train_path is not None else "the training file"
    if train_data.v is None or train_data.F is None:
        raise DataError(f"{label} is a univariate series; the peers need oscillator "
                        "trajectories (x, v, F)")
    check_pair(train_data, test, label, where)
    check_trained_on(train_data, surrogates, label)
    return train_data, None if train_path is None else str(train_path)


def check_names(integrators: Sequence[str], surrogates: Mapping[str, Any],
                allowed: Sequence[str]) -> None:
    """Integrators among ``allowed``; surrogates named in printable text, none an
    integrator's name."""
    if isinstance(integrators, str) or not isinstance(integrators, Collection):
        raise SpecError(f"integrators must be a collection of integrator names, got "
                        f"{integrators!r}")
    if len(set(integrators)) < len(integrators):
        raise SpecError(f"integrators names one twice: {list(integrators)}")
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


def data_records(surrogate: Any) -> list[dict[str, Any]]:
    """The data records (``{"train": fingerprint, "val": ...}``) a surrogate loaded from a
    checkpoint carries (:func:`~odernn.learn.models.from_record`), one per member of a seed
    group; none for a model from elsewhere."""
    members = getattr(surrogate, "members", None)
    models = members.values() if isinstance(members, Mapping) else [surrogate]
    return [r for m in models if isinstance(r := getattr(m, "trained_on", None), dict)]


def _digest(record: dict[str, Any], role: str) -> str | None:
    entry = record.get(role)
    sha = entry.get("sha256") if isinstance(entry, dict) else None
    return sha if isinstance(sha, str) else None


def in_sample(digest: str, surrogates: Mapping[str, Any], where: str) -> dict[str, str]:
    """The surrogates that were trained (``"trained"``) or validated (``"validated"``: it
    chose their epoch or ridge) on the test set of data fingerprint ``digest``, by the one
    each checkpoint records, each with a warning: their scores on it are in-sample, not a
    test's."""
    import warnings

    out: dict[str, str] = {}
    for name, surrogate in surrogates.items():
        for record in data_records(surrogate):
            for role, verb in (("train", "trained"), ("val", "validated")):
                if name not in out and _digest(record, role) == digest:
                    out[name] = verb
                    warnings.warn(f"{where} is the data surrogate {name} was {verb} on: its "
                                  "scores are in-sample, not a test's (the report says so)",
                                  stacklevel=3)
    return out


def check_trained_on(training: Trajectories, surrogates: Mapping[str, Any], label: str) -> None:
    """Refuse a training file for the peers other than the one each surrogate records (its
    checkpoint's data fingerprint, where it has one): the report says the peers were fitted
    on the surrogates' training file, and an audit found nothing checked it."""
    from odernn.learn.windows import fingerprint

    digest = None
    for name, surrogate in surrogates.items():
        for record in data_records(surrogate):
            if (trained := _digest(record, "train")) is None:
                continue  # a run that records no training data: nothing to compare
            digest = digest or fingerprint(training)["sha256"]
            if trained != digest:
                raise DataError(f"{label} is not the data surrogate {name} was trained on "
                                f"(data fingerprints {trained[:12]}..., the file's "
                                f"{digest[:12]}...; of t, x, v, F and the parameters, not the "
                                "content digest odernn inspect prints): the peers are fitted "
                                "on the surrogates' training file; give that file, or "
                                "--no-peers")


def check_evaluation(n: int, n_steps: int, system: str, integrators: int,
                     members: Sequence[int], peers: bool, work_precision: Any = True,
                     advice: str | None = None, harmonics: int = 0) -> None:
    """:func:`check_memory` of an evaluation from what is known before its test set is read:
    the set's size and system (data of no known system has no integrators and no
    work-precision study), ``integrators`` (how many), each surrogate's ``members``
    (:func:`member_counts`), whether the ``peers`` are fitted, and the forcing's
    ``harmonics`` (:func:`harmonics`), whose tables the closed-form reference holds."""
    known = system in SYSTEMS
    tables = harmonics if known and SYSTEMS[system].closed_form else 0
    check_memory(n, n_steps, methods_held(integrators if known else 0, members, peers),
                 work_precision if known else False, advice, tables)


def harmonics(test: Trajectories) -> int:
    """How many harmonics the forcing of ``test`` rebuilt from its stored parameters has (what
    the closed-form reference evaluates); 0 where only its samples are given, or where it
    cannot be rebuilt (refused later, in its own words). Its first row is enough."""
    if test.samples_only:
        return 0
    try:
        forcing = forcing_from_params(str(test.attrs.get("forcing", "none")), test.params)
    except (KeyError, ValueError):
        return 0
    return int(np.shape(forcing.amplitude)[1])


def member_counts(surrogates: Mapping[str, Any]) -> list[int]:
    """Each surrogate's number of seed-group members (0 for a single model)."""
    return [len(getattr(s, "members", None) or ()) for s in surrogates.values()]


def methods_held(integrators: int, members: Sequence[int], peers: bool) -> int:
    """How many rollouts of the whole test set evaluate scores and keeps: the reference, each
    of ``integrators``, each surrogate and each of its ``members`` (one count per surrogate,
    0 for a single model: a seed group's members are scored on their own too), and the
    peers."""
    from odernn.assess.peers import PEERS

    return 1 + integrators + len(members) + sum(members) + (len(PEERS) if peers else 0)


def check_memory(n: int, n_steps: int, held: int, work_precision: Any = True,
                 advice: str | None = None, harmonics: int = 0) -> None:
    """Refuse, before any work, an evaluation whose arrays would pass the memory budget:
    ``held`` methods (:func:`methods_held`) over ``n`` trajectories of ``n_steps`` points,
    counted in float64 arrays of ``n x n_steps``: three per method (its rollout's x and v,
    and the copy of one that is scored; a surrogate's float32 states doubled on the way),
    sixteen for the test set, the reference and the metrics' temporaries, and, with the
    work-precision study, seven of its finest grid per test step (its runs' x and v, their
    reference and the forcing); and the closed form's tables for ``harmonics``
    (:func:`~odernn.budget.exact_bytes`). ``tests/test_evaluate.py`` checks a run's peak
    against it. ``advice``: what to change, if not evaluate's own options."""
    from odernn import budget
    from odernn.assess.work_precision import WorkPrecisionSettings

    arrays = 3 * held + 16
    if work_precision:
        settings = (work_precision if isinstance(work_precision, WorkPrecisionSettings)
                    else WorkPrecisionSettings())
        arrays += 7 / min(settings.step_factors)
    forcing = f", forcing K = {harmonics}" if harmonics > 1 else ""
    budget.check(f"evaluate: {held} methods x {n} trajectories x {n_steps} steps{forcing}",
                 8 * arrays * n * n_steps + budget.exact_bytes(n, harmonics),
                 advice or "evaluate a smaller test set, or fewer surrogates or integrators"
                 + (", or no work-precision study (--no-work-precision)" if work_precision
                    else ""))
