"""Closed-loop surrogates against the integrators on one test set.

Every method starts from the test trajectories' initial states. The surrogates and the
``rk4-sampled*`` integrators (the ``sampled_forcing`` entries of
:data:`odernn.data.integrators.INTEGRATORS`) see the forcing only at its samples
``F_i``, and the system's parameters a surrogate takes; the other integrators evaluate
the forcing as a function of time. The best integrator given only the samples a
surrogate has by each step (no later one: the ``causal`` entries) is the honest baseline
each surrogate is compared with (:func:`same_information`). The exact solution is the
reference. A surrogate that withholds a parameter may observe K warm-up steps; the
largest K is then excluded from every method's error, so all rows of one report are
measured on the same steps.

Three studies, each reusable on its own:

- accuracy and speed of every method (:func:`odernn.assess.metrics.summarize`);
- a work-precision sweep: error against wall time of each integrator over step
  sizes (SciPy over tolerances; the sampled-forcing integrators only over every
  k-th sample), each surrogate a point on the same axes, and its speed-up over
  the cheapest integrator setting that is at least as accurate;
- the resonance check (:mod:`odernn.assess.resonance`): for a system without a closed
  form, its frequency response against the integrator
  (:mod:`odernn.assess.frequency_response`).

Given the surrogates' training file, the peers (:mod:`odernn.assess.peers`: SINDy and DMDc,
other models learnt from the same data with the same information) are fitted on it and
measured beside the surrogates, as methods of kind ``peer``.

The result is an :class:`odernn.assess.results.Evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from odernn.assess.baselines import integrator_description, same_information
from odernn.assess.bifurcation import BifurcationSettings, measure_bifurcation
from odernn.assess.chaos import ChaosSettings, characterise, method_statistics
from odernn.assess.closed_loop import closed_loop, describe_surrogate, surrogate_settings
from odernn.assess.inputs import (
    check_evaluation,
    check_names,
    check_options,
    check_test,
    harmonics,
    in_sample,
    member_counts,
    training_file,
)
from odernn.assess.metrics import (
    divergence_steps,
    error_vs_time,
    mark_diverged,
    nrmse_per_trajectory,
    reference_scale,
    summarize,
    x_scale,
)
from odernn.assess.peers import PEERS, fit_peers, given_to_all
from odernn.assess.provenance import data_info, versions
from odernn.assess.resonance import ResonanceSettings, measure_resonance
from odernn.assess.results import DATA, REFERENCE, Evaluation, MethodResult, seed_spread
from odernn.assess.statistics import members_median_statistics
from odernn.assess.work_precision import (
    MIN_TIMING_S,
    WorkPrecisionSettings,
    measure_work_precision,
    timed,
)
from odernn.data.forcing import HarmonicForcing, SampledForcing
from odernn.data.integrators import INTEGRATORS
from odernn.data.systems import SYSTEMS, Oscillator, x_is_angle
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError, StiffProblem
from odernn.interrupt import interrupt_guard, raising_signals
from odernn.learn.models.base import Rollout, Surrogate
from odernn.learn.windows import fingerprint
from odernn.progress import Event, Progress, reporter

DEFAULT_INTEGRATORS = (
    *(name for name, entry in INTEGRATORS.items() if entry.order is None and not entry.closed_form),
    *(name for name, entry in INTEGRATORS.items() if entry.order is not None),
)
"""Every integrator but the closed-form reference: the adaptive one first, then the
fixed-step ones in table order."""
SCIPY_DEFAULTS: dict[str, Any] = {"method": "DOP853", "rtol": 1e-9, "atol": 1e-12}



def load_runs(runs: Mapping[str, Path]) -> dict[str, Surrogate]:
    """Load the surrogate of each named run directory (:func:`odernn.learn.rundir.name_runs`
    names a list of them); a seed group is the ensemble of its members. The run files the
    report reads (its config and history) are checked now, not after the rollouts."""
    from odernn.learn.models import load_surrogate
    from odernn.learn.rundir import read_config, read_history
    from odernn.learn.seeds import first_run, is_group, load_group

    records = {}
    for name, run in runs.items():
        records[name] = read_config(first_run(run))
        read_history(first_run(run))
    loaded = {name: load_group(run) if is_group(run) else load_surrogate(Path(run))
              for name, run in runs.items()}
    for name, run in runs.items():  # the report shows the config beside the model's figures
        record = records[name]
        options = record.get("config") if isinstance(record, dict) else None
        family = options.get("model") if isinstance(options, dict) else None
        if family is not None and family != loaded[name].family:
            raise DataError(f"run {name}: its config.json is of model {family} and its "
                            f"checkpoint of model {loaded[name].family} ({first_run(run)}): "
                            "files of two runs in one directory; give a run's own directory")
    return loaded


def evaluate(
    test: Trajectories,
    surrogates: Mapping[str, Surrogate],
    *,
    integrators: Sequence[str] = DEFAULT_INTEGRATORS,
    scipy_options: Mapping[str, Any] | None = None,
    threshold: float = 0.1,
    work_precision: bool | WorkPrecisionSettings = True,
    resonance: bool | ResonanceSettings = True,
    chaos: bool | ChaosSettings = True,
    bifurcation: bool | BifurcationSettings = True,
    progress: bool | Progress = True,
    data_path: str | Path | None = None,
    train_data: Trajectories | str | Path | None = None,
    train_path: str | Path | None = None,
    peers: bool | None = None,
) -> Evaluation:
    """Roll out every integrator and surrogate on ``test`` and measure them.

    The reference is the closed-form solution where the test set's system has one under its
    forcing (``exact``), else the stored test trajectories themselves (``data``; for data of
    no known system, such as imported ``external`` data, with no integrators at all); the
    integrators are those of the test set's own system. ``integrators`` from
    :data:`~odernn.data.integrators.INTEGRATORS` (the reference always runs);
    ``scipy_options`` override :data:`SCIPY_DEFAULTS`;
    ``threshold`` is the valid-prediction-time threshold; ``chaos`` measures the test set's
    predictability and every method's steady-state statistics (:mod:`odernn.assess.chaos`;
    the frequency response is skipped on a chaotic set, where no drive settles);
    ``bifurcation`` draws the bifurcation diagram (:mod:`odernn.assess.bifurcation`); ``progress``
    prints one line per stage to stderr, or is called with each stage's description.

    ``train_data`` is the surrogates' training file (a path, or its trajectories with
    ``train_path`` naming it): with it the peers (:mod:`odernn.assess.peers`: SINDy, with
    the ``peers`` extra, and DMDc) are fitted on it and measured as methods of kind
    ``peer``; ``peers`` (None: whenever ``train_data`` is given) turns them on or off.
    """
    where = f"test set {data_path}" if data_path is not None else "the test set"
    check_test(test, where)
    check_names(integrators, surrogates, DEFAULT_INTEGRATORS)
    check_options(threshold, scipy_options, list(SCIPY_DEFAULTS))
    digest = fingerprint(test)["sha256"]  # hashed once: in-sample check and metrics.json
    seen = in_sample(digest, surrogates, where)
    train, train_path = training_file(train_data, train_path, test, where, peers, surrogates)
    taken = [name for name in surrogates if name in PEERS]
    if train is not None and taken:
        raise SpecError(f"surrogate name {taken[0]!r} is a peer's name; rename the run")
    check_evaluation(test.n, test.n_steps, test.system, len(integrators),
                     member_counts(surrogates), train is not None, work_precision,
                     harmonics=harmonics(test))
    for name, surrogate in surrogates.items():  # refuse a mismatch before any work
        if (check_data := getattr(surrogate, "check_data", None)) is not None:
            check_data(test, where=f"{where} (for surrogate {name!r})")
    report = reporter(progress)
    # Ctrl-C and SIGTERM set a flag, checked at the end of every stage: nothing has been
    # written yet, so stopping there loses nothing (the report is written by the caller)
    with interrupt_guard() as interrupted:

        def check() -> None:
            if interrupted():
                raise KeyboardInterrupt

        def say(message: str) -> None:
            report(Event("evaluate", "stage", message=message, log=True))
            check()

        scipy_opts = {**SCIPY_DEFAULTS, **(scipy_options or {})}
        known = test.system in SYSTEMS  # else no equation: the stored data alone (UNKNOWN)
        integrators = tuple(integrators) if known else ()
        system = _oscillator(test) if known else None
        reference = reference_name(system) if known else DATA
        samples = SampledForcing(test.t, test.F)
        solve = _solver(system, samples, scipy_opts)
        t = np.asarray(test.t, dtype=np.float64)
        x0, v0 = np.asarray(test.x)[:, 0], np.asarray(test.v)[:, 0]

        few = slice(0, 2)  # the untimed first call of every method (see timed)
        solve_few = _solver(system.take(few), samples.take(few), scipy_opts) if known else solve
        raw: dict[str, tuple[str, str, dict[str, Any], Rollout, float]] = {}
        if reference == DATA:
            x, v = np.asarray(test.x, dtype=np.float64), np.asarray(test.v, dtype=np.float64)
            raw[DATA] = ("reference", f"the stored test trajectories ({data_reason(system)})"
                         if known else UNKNOWN, {},
                         Rollout(x, v, divergence_steps(x, v)), math.nan)
        for name in (*([REFERENCE] if reference == REFERENCE else []), *integrators):
            description = integrator_description(name, test.samples_only)
            try:
                with raising_signals(interrupted):  # a run of minutes: a signal ends it at once
                    (x, v), wall = timed(partial(solve, name, x0, v0, t),
                                         partial(solve_few, name, x0[few], v0[few], t[:16]))
            except StiffProblem as exc:  # SciPy on a stiff set: in the table, without a result
                x, v, wall = *_given_up(x0, v0, t.size), math.nan
                description = f"{description}; gave up on this test set ({exc})"
            settings = scipy_opts if name == "scipy" else {}
            kind = "reference" if name == reference else "integrator"
            raw[name] = (kind, description, settings, Rollout(x, v, divergence_steps(x, v)),
                         wall)
            say(f"{name}: {wall:.3g} s" if wall == wall else f"{name}: gave up (stiff)")
        F = np.asarray(test.F)
        params = {k: np.asarray(p) for k, p in test.params.items()}
        x, v = np.asarray(test.x), np.asarray(test.v)
        for name, surrogate in surrogates.items():
            steps = slice(0, min(test.n_steps, int(getattr(surrogate, "warmup_steps", 0)) + 16))
            # an ensemble is timed on its joint loop alone, what it costs as a surrogate
            group = {"members": False} if getattr(surrogate, "members", None) else {}
            rollout, wall = timed(
                partial(closed_loop, name, surrogate, F, params, (x, v), **group),
                partial(closed_loop, name, surrogate, F[few, steps],
                        {k: p[few] for k, p in params.items()},
                        (x[few, steps], v[few, steps]), **group))
            if group:  # then its members' own rollouts, which the seeds are scored on
                rollout = closed_loop(name, surrogate, F, params, (x, v), joint=rollout)
            raw[name] = ("surrogate", describe_surrogate(surrogate),
                         surrogate_settings(surrogate, rollout), rollout, wall)
            say(f"{name}: {wall:.3g} s")
        peer_info: dict[str, Any] = {
            "training_data": train_path, "fitted": [],
            "not_run": "turned off (`--no-peers`)" if peers is False else
                       "no training file was given (`evaluate --train`)"}
        if train is not None:
            fitted = fit_peers(train, say, given=given_to_all(surrogates))
            for note in fitted.skipped.values():
                say(note)
            for name, peer in fitted.peers.items():
                rollout, wall = timed(partial(peer.rollout, x0, v0, F, params),
                                      partial(peer.rollout, x0[few], v0[few], F[few, :16],
                                              {k: p[few] for k, p in params.items()}))
                raw[name] = ("peer", peer.description, peer.settings, rollout, wall)
                say(f"{name}: {wall:.3g} s")
            peer_info = fitted.info(train_path)

        start = max([1] + [r.warmup for _, _, _, r, _ in raw.values()])
        if start >= test.n_steps - 1:
            raise DataError(f"warm-up of {start} steps leaves nothing to evaluate in "
                            f"{test.n_steps} time points")
        ref_x, ref_v = raw[reference][3].x, raw[reference][3].v
        predictability = None
        if chaos:
            predictability = characterise(
                test, reference, chaos if isinstance(chaos, ChaosSettings) else ChaosSettings(),
                start, threshold, say)
        methods = {name: _measure(name, *raw.pop(name), ref_x, ref_v, test, start, threshold,
                                  predictability)  # each rollout let go once scored
                   for name in list(raw)}

        wp = None
        if work_precision and known:
            wp_settings = (work_precision if isinstance(work_precision, WorkPrecisionSettings)
                           else WorkPrecisionSettings())
            wp = measure_work_precision(test, solve, solve_few, integrators, wp_settings,
                                        methods, start, say, reference, check)
            for name, speedup in wp["speedup"].items():
                value = speedup["speedup"]
                methods[name].metrics["speedup"] = math.nan if value is None else value
        res = None
        if resonance and predictability is not None and predictability["chaotic"]:
            res = {"skipped": "the test set is chaotic: no drive of the sweep settles to a "
                              "response with an amplitude"}
            say(f"resonance skipped: {res['skipped']}")
        elif resonance:
            res_settings = (resonance if isinstance(resonance, ResonanceSettings)
                            else ResonanceSettings())
            try:
                res = (measure_resonance(test, surrogates, res_settings, say) if known else
                       {"skipped": f"system {test.system!r} has no known equation: {UNKNOWN}"})
            except StiffProblem as exc:  # its responses are SciPy's (a nonlinear system)
                res = {"skipped": f"the test set is stiff for its solver ({exc})"}
                say(f"resonance skipped: {res['skipped']}")
        bif = None
        if bifurcation:  # odernn.assess.bifurcation
            bif = (measure_bifurcation(test, surrogates, None if bifurcation is True
                                       else bifurcation, say) if known else
                   {"skipped": f"system {test.system!r} has no known equation"})

        info = {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "same_information": same_information(methods, test.samples_only),
            "versions": versions(),
            "data": data_info(test, data_path, digest,
                               None if reference == DATA else (ref_x, ref_v)),
            "in_sample": seen,
            "settings": {
                "reference": reference,
                **({"reference_reason": "the system's equation is not known" if not known
                    else data_reason(system)} if reference == DATA else {}),
                "system": test.system,
                "error_start_step": start,
                "valid_time_threshold": threshold,
                "integrators": list(integrators),
                "scipy": scipy_opts,
                "timing": f"after an untimed call on 2 trajectories and 16 steps, best of up to 3 "
                          f"runs while under {MIN_TIMING_S} s in total; a seed group: its joint "
                          "closed loop alone, not its members' own rollouts",
                "error_scale": {"x": x_scale(ref_x, test.system), "v": reference_scale(ref_v)},
                **({} if known else {"note": UNKNOWN}),
            },
        }
        if interrupted():  # a signal after the last stage's line
            raise KeyboardInterrupt
        report(Event("evaluate", "done", message="evaluated"))
        return Evaluation(test, methods, wp, res, info, chaos=predictability,
                          bifurcation=bif, peers=peer_info)


def data_reason(system: Oscillator) -> str:
    """Why a known system's stored trajectories are the reference (:func:`reference_name`)."""
    if not system.system.closed_form:
        return "the system has no closed form"
    return "its forcing is known only at the samples"
UNKNOWN = ("the stored test trajectories are the reference, never replaced by another equation "
           "(imported data of no known system); no integrator, work-precision sweep or "
           "resonance check is run")


def _given_up(x0: np.ndarray, v0: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """The rollout of a method that gave up: its initial state, then no value (NaN)."""
    x, v = np.full((2, x0.size, points), np.nan)
    x[:, 0], v[:, 0] = x0, v0
    return x, v


def reference_name(system: Oscillator) -> str:
    """``exact`` where the system has a closed form under its (harmonic) forcing, else
    ``data``: the stored trajectories are the reference."""
    closed = system.system.closed_form and isinstance(system.forcing, HarmonicForcing)
    return REFERENCE if closed else DATA


def _oscillator(test: Trajectories) -> Oscillator:
    try:
        return test.oscillator()
    except (KeyError, ValueError) as exc:
        raise DataError(f"cannot rebuild the test set's oscillators from its params: "
                        f"{exc}") from None


def _solver(system: Oscillator, samples: SampledForcing,
            scipy_opts: Mapping[str, Any]) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``solve(name, x0, v0, t, **opts)`` for every integrator method name; the
    sampled-forcing ones are given the test set's forcing samples."""

    def solve(name: str, x0: np.ndarray, v0: np.ndarray, t: np.ndarray,
              **opts: Any) -> tuple[np.ndarray, np.ndarray]:
        if name == "scipy":
            opts = {**scipy_opts, **opts}
        with np.errstate(over="ignore", invalid="ignore"):
            return INTEGRATORS[name](system, x0, v0, t, samples=samples, **opts)

    return solve


def _measure(name: str, kind: str, description: str, settings: dict[str, Any], rollout: Rollout,
             wall: float, ref_x: np.ndarray, ref_v: np.ndarray, test: Trajectories, start: int,
             threshold: float, predictability: dict[str, Any] | None) -> MethodResult:
    steps = divergence_steps(rollout.x, rollout.v, rollout.diverged_at)
    x, v = mark_diverged(rollout.x, steps), mark_diverged(rollout.v, steps)
    sx, sv = x_scale(ref_x, test.system), reference_scale(ref_v)
    metrics = summarize(x, v, ref_x, ref_v, test.t, steps, F=test.F, params=test.params,
                        system=test.system, start=start, threshold=threshold, scale_x=sx,
                        scale_v=sv)
    if predictability is not None and predictability["statistics"] is True:
        metrics.update(method_statistics(x, v, ref_x, ref_v, test, steps, predictability,
                                         start=start, threshold=threshold, scale_x=sx,
                                         scale_v=sv))
    metrics["wall_time_s"] = wall  # nan for the stored data: nothing was run
    metrics["steps_per_s"] = (math.nan if math.isnan(wall) else
                              test.n * (test.n_steps - 1) / wall if wall > 0 else math.inf)
    per = nrmse_per_trajectory(x, ref_x, start=start, scale=sx)
    members = rollout.info.get("members")
    seeds = None
    if members is not None:
        spread, marked = {}, []
        median = "x2_mean_rel_error" in metrics  # the members' median estimates wanted
        for member, r in members.items():  # each member scored once: metrics, x marked
            one = _measure(member, kind, description, settings, r, math.nan, ref_x, ref_v,
                           test, start, threshold, predictability)
            spread[member] = one.metrics
            if median:
                marked.append(one.x)
        seeds = seed_spread(spread)
        if median:
            metrics.update(members_median_statistics(
                marked, ref_x, test.t, transient=predictability.get("transient"), start=start,
                angle=x_is_angle(test.system)))
    return MethodResult(name, kind, description, dict(settings), x, v, metrics, per,
                        error_vs_time(x, ref_x, scale=sx), error_vs_time(v, ref_v, scale=sv),
                        seeds)
