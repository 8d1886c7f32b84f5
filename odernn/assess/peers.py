"""Peers: two other data-only models, fitted on the surrogates' training file, in closed loop.

A surrogate is one way to learn an oscillator from its trajectories; the report shows it
beside two classical ones, fitted on the same training file and given the same
information: the initial state, the forcing samples ``F_i`` and the system's parameters
that vary across the training trajectories and that every surrogate compared takes as
inputs (a fixed one tells no model anything; one withheld from a surrogate is withheld from
the peers too), each constant along its trajectory.

- ``sindy``: sparse identification of nonlinear dynamics with control (pysindy's
  ``SINDy``; the ``peers`` extra, ``pip install "odernn[peers]"``). The state ``(x, v)``'s
  time derivative is a sparse combination of the monomials of a polynomial library over
  ``(x, v, F, p_1 .. p_P)`` (the parameters as control inputs beside F), of degree 3, or 4
  when parameters vary (one parameter times a cubic term, e.g. ``beta x^3``).
  Derivatives are 4th-order central differences of the stored ``x`` and ``v``; STLSQ
  (sequentially thresholded least squares) fits the coefficients on the raw library
  columns, so the threshold is in the data's units. The threshold is chosen from
  :data:`SINDY_THRESHOLDS` on validation trajectories (:data:`VAL_FRACTION` of the
  training trajectories, held out whole): each candidate is fitted on the rest and rolled
  out in closed loop from the held-out initial states; the largest threshold (the sparsest
  model) whose NRMSE of x is within :data:`TOLERANCE` of the lowest wins, and the model is
  fitted again on every training trajectory with it. The closed loop steps the identified
  equation by RK4, F at the half step from the samples a surrogate has been given by then
  (:func:`~odernn.data.stepping.causal_midpoint`; linear between two samples, the peer's
  error was ``rk4-sampled``'s, the interpolation's, not SINDy's).

  Continuous rather than discrete time (pysindy's ``DiscreteSINDy``, one step mapping
  samples to the next): the equation of a polynomial system is a sparse polynomial (the
  Duffing oscillator's ``v' = -x + F - eta v - beta x^3`` is 5 terms of a degree-4
  library), while the map of one step, a composition of the flow, is not, so a discrete
  fit needs many more terms for the same accuracy and cannot be read as an equation. The
  continuous fit's rollout costs four library evaluations per step.

- ``dmdc``: a linear state-space model, dynamic mode decomposition with control
  (:mod:`odernn.assess.dmdc`), with the regressors of the surrogates' linear skip: the
  state, ``F_{k-1}, F_k, F_{k+1}`` and their products with the parameters.

A peer diverges as a surrogate does: a state that is non-finite or beyond
:data:`odernn.learn.models.stepper.EXPLODED` training standard deviations ends the
trajectory there (``inf`` from that step on, never dropped).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from math import comb
from typing import Any

import numpy as np

from odernn import budget
from odernn.assess.metrics import divergence_steps, nrmse
from odernn.data.stepping import causal_midpoint
from odernn.data.systems import parameter_names
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError
from odernn.learn.models.base import Rollout
from odernn.learn.models.stepper import beyond

PEERS = ("sindy", "dmdc")
"""The peers' method names, in display order."""
SINDY_THRESHOLDS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
"""STLSQ thresholds tried on the validation trajectories."""
SINDY_STEPPING = ("stepped by RK4 with F at each half step from the cubic through the last four "
                  "samples given (never a later one)")
"""How the SINDy peer is stepped (:func:`~odernn.data.stepping.causal_midpoint`), said alike in
its description and the report."""

VAL_FRACTION = 0.2
"""Share of the training trajectories held out, whole, to choose a threshold or a rank."""
SEED = 0
"""Which trajectories are held out."""
MAX_ROWS = 20_000
"""At most this many samples (trajectory, step) enter a regression, drawn with :data:`SEED`
(a fit's design matrix is rows x library columns)."""
TOLERANCE = 0.1
"""A simpler candidate (larger threshold, lower rank) is preferred while its validation error
is within this fraction of the lowest: differences below it are noise of the held-out draw."""
MISSING = ("pysindy is not installed (`pip install \"odernn[peers]\"`): SINDy was skipped; "
           "DMDc (numpy only) ran")


@dataclass(frozen=True)
class Peer:
    """A fitted peer: ``step(z (N, 2), F (N, T), k, p (N, P)) -> z_{k+1}`` in physical
    units, from the forcing samples up to ``F_{k+1}`` (never a later one), the parameters it
    takes, and what the report says of it."""

    name: str
    description: str
    settings: dict[str, Any]
    parameters: tuple[str, ...]
    step: Callable[[np.ndarray, np.ndarray, int, np.ndarray], np.ndarray]
    mean: np.ndarray
    std: np.ndarray
    fit_time_s: float = math.nan

    def rollout(self, x0: np.ndarray, v0: np.ndarray, F: np.ndarray,
                params: Mapping[str, np.ndarray]) -> Rollout:
        """The closed loop from ``(x0, v0)`` over the forcing samples ``F (N, T)``; a
        diverged trajectory is ``inf`` from its divergence step on."""
        p = parameter_matrix(params, self.parameters, len(x0))
        F = np.asarray(F, dtype=np.float64)
        n, T = F.shape
        z = np.column_stack([x0, v0]).astype(np.float64)
        out = np.empty((n, T, 2))
        out[:, 0] = z
        diverged = np.full(n, -1)
        with np.errstate(all="ignore"):
            for k in range(T - 1):
                z = self.step(z, F, k, p)
                bad = beyond(z, self.mean, self.std)  # the surrogates' rule
                new = bad & (diverged < 0)
                diverged[new] = k + 1
                z[bad] = 0.0  # a diverged row is carried as zeros, reported as inf
                out[:, k + 1] = z
        x, v = out[..., 0], out[..., 1]
        after = np.arange(T) >= np.where(diverged >= 0, diverged, T)[:, None]
        x[after] = v[after] = np.inf
        return Rollout(x, v, diverged)


# -- the information a peer gets -------------------------------------------------------------

def varying_parameters(train: Trajectories) -> tuple[str, ...]:
    """The system's parameters that vary across the training trajectories: the ones a
    surrogate takes as inputs (:meth:`odernn.learn.config.TrainConfig.layout`)."""
    names = parameter_names(train.system, train.params)
    return tuple(p for p in names if p in train.params
                 and np.unique(np.asarray(train.params[p])).size > 1)


def given_to_all(surrogates: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The parameters every surrogate takes (None without surrogates): what the peers get."""
    taken = [set(getattr(s, "parameter_inputs", ())) for s in surrogates.values()]
    return tuple(sorted(set.intersection(*taken))) if taken else None


def parameter_matrix(params: Mapping[str, np.ndarray], names: tuple[str, ...],
                     n: int) -> np.ndarray:
    """The parameters ``names`` as columns ``(n, P)`` (a parameter of shape ``(n, K)``
    gives K columns)."""
    missing = [p for p in names if p not in params]
    if missing:
        raise DataError(f"the peers take {', '.join(names)}; the test set has no "
                        f"params/{missing[0]}")
    cols = [np.asarray(params[p], dtype=np.float64).reshape(n, -1) for p in names]
    return np.concatenate(cols, axis=1) if cols else np.zeros((n, 0))


def split(data: Trajectories) -> tuple[Trajectories, Trajectories]:
    """Fit and validation parts: :data:`VAL_FRACTION` of the trajectories held out whole
    (at least one, and at least one left to fit)."""
    if data.n < 2:
        raise DataError(f"the peers need >= 2 training trajectories (one held out to choose "
                        f"their settings), got {data.n}")
    n_val = min(data.n - 1, max(1, round(VAL_FRACTION * data.n)))
    order = np.random.default_rng(SEED).permutation(data.n)
    return data.take(np.sort(order[n_val:])), data.take(np.sort(order[:n_val]))


def rows(n: int, n_steps: int, cap: int = MAX_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Sample indices ``(trajectory, step)`` of at most ``cap`` samples out of
    ``n x n_steps``, drawn with :data:`SEED` (all of them when fewer)."""
    total = n * n_steps
    pick = (np.arange(total) if total <= cap else
            np.sort(np.random.default_rng(SEED).choice(total, cap, replace=False)))
    return pick // n_steps, pick % n_steps


def state_scale(data: Trajectories) -> tuple[np.ndarray, np.ndarray]:
    z = np.stack([np.asarray(data.x, np.float64), np.asarray(data.v, np.float64)], -1)
    std = z.reshape(-1, 2).std(0)
    return z.reshape(-1, 2).mean(0), np.where(std > 0, std, 1.0)


def validation_error(peer: Peer, val: Trajectories) -> float:
    """NRMSE of x of ``peer``'s closed loop on the validation trajectories (``inf`` if one
    diverged)."""
    x, v = np.asarray(val.x, np.float64), np.asarray(val.v, np.float64)
    r = peer.rollout(x[:, 0], v[:, 0], val.F, val.params)
    if np.any(divergence_steps(r.x, r.v, r.diverged_at) >= 0):
        return math.inf
    std = float(np.std(x[:, 1:]))
    return nrmse(r.x, x, scale=std if std > 0 else 1.0)


def _choose(candidates: list[dict[str, Any]], key: str, prefer_larger: bool) -> dict[str, Any]:
    """The simplest candidate (largest ``key`` if ``prefer_larger``, else smallest) whose
    validation error is within :data:`TOLERANCE` of the lowest."""
    best = min(c["val_nrmse_x"] for c in candidates)
    good = [c for c in candidates if c["val_nrmse_x"] <= best * (1 + TOLERANCE)]
    return (max if prefer_larger else min)(good, key=lambda c: c[key])


def check_memory(what: str, n_rows: int, n_cols: int) -> None:
    need = 4 * n_rows * n_cols * budget.FLOAT64  # the design, its copies in the solver
    budget.check(f"evaluate --train: {what} of {n_rows} samples x {n_cols} columns", need,
                 f"lower odernn.assess.peers.MAX_ROWS (now {MAX_ROWS})")


def one_thread() -> AbstractContextManager[Any]:
    """One BLAS thread while in the block, where threadpoolctl (scikit-learn's, so pysindy's,
    dependency) is installed: the regressions are small (at most :data:`MAX_ROWS` rows), and
    on a 2-core machine with the other core busy, SINDy's fits ran much faster on one
    thread than on BLAS's default threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# -- SINDy -----------------------------------------------------------------------------------

def have_pysindy() -> bool:
    """Whether pysindy (the ``peers`` extra) can be imported."""
    try:
        import pysindy  # noqa: F401
    except ImportError:
        return False
    return True


def derivatives(data: Trajectories) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z, dz/dt, F)`` at the interior steps ``2 .. T-3`` of every trajectory: 4th-order
    central differences of ``z = (x, v)``, each ``(N, T-4, ·)``."""
    if data.n_steps < 5:
        raise DataError(f"SINDy needs >= 5 time points per training trajectory, got "
                        f"{data.n_steps}")
    z = np.stack([np.asarray(data.x, np.float64), np.asarray(data.v, np.float64)], -1)
    dz = (z[:, :-4] - 8 * z[:, 1:-3] + 8 * z[:, 3:-1] - z[:, 4:]) / (12 * data.dt)
    return z[:, 2:-2], dz, np.asarray(data.F, np.float64)[:, 2:-2]


def fit_sindy(data: Trajectories, parameters: tuple[str, ...], threshold: float) -> Peer:
    """SINDy fitted on every trajectory of ``data`` (at most :data:`MAX_ROWS` samples) with
    the STLSQ ``threshold``."""
    import warnings

    import pysindy as ps

    z, dz, F = derivatives(data)
    p = parameter_matrix(data.params, parameters, data.n)
    i, k = rows(data.n, z.shape[1])
    u = np.column_stack([F[i, k], p[i]])
    degree = 4 if parameters else 3
    names = ["x", "v", "F", *columns(data.params, parameters, data.n)]
    check_memory("SINDy's library", i.size, comb(len(names) + degree, degree))
    model = ps.SINDy(feature_library=ps.PolynomialLibrary(degree=degree),
                     optimizer=ps.STLSQ(threshold=threshold))
    with warnings.catch_warnings(), one_thread():  # STLSQ warns when no term is left
        warnings.simplefilter("ignore")
        model.fit(z[i, k], t=data.dt, x_dot=dz[i, k], u=u, feature_names=names)
    coef = np.asarray(model.coefficients(), dtype=np.float64)  # (2, features)
    keep = np.flatnonzero(np.any(coef != 0, axis=0))
    powers = np.asarray(model.feature_library.powers_)[keep]
    coef = coef[:, keep]
    library = model.feature_library.get_feature_names(names)
    terms = [library[j] for j in keep]
    coefficients = {lhs: {term: float(c) for term, c in zip(terms, row, strict=True) if c != 0}
                    for lhs, row in zip(("x'", "v'"), coef, strict=True)}
    equations = {lhs: " + ".join(f"{c:.4g} {term}" for term, c in eq.items()) or "0"
                 for lhs, eq in coefficients.items()}

    def rhs(s: np.ndarray, f: np.ndarray, q: np.ndarray) -> np.ndarray:
        inputs = np.column_stack([s, f, q])
        return np.prod(inputs[:, None, :] ** powers[None], axis=2) @ coef.T

    def step(s: np.ndarray, F: np.ndarray, k: int, q: np.ndarray) -> np.ndarray:
        h, f0, f1, fm = data.dt, F[:, k], F[:, k + 1], causal_midpoint(F, k)
        k1 = rhs(s, f0, q)
        k2 = rhs(s + 0.5 * h * k1, fm, q)
        k3 = rhs(s + 0.5 * h * k2, fm, q)
        k4 = rhs(s + h * k3, f1, q)
        return s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    mean, std = state_scale(data)
    settings = {"threshold": threshold, "library_degree": degree, "n_terms": int(keep.size),
                "equations": equations, "coefficients": coefficients,
                "inputs": names, "fit_samples": int(i.size)}
    return Peer("sindy", "SINDy with control (pysindy): a sparse polynomial ODE fitted to the "
                f"training file, {SINDY_STEPPING}, closed loop",
                settings, parameters, step, mean, std)


def columns(params: Mapping[str, np.ndarray], names: tuple[str, ...], n: int) -> list[str]:
    """A name per parameter column (``p`` or ``p[j]`` for a parameter of several)."""
    out = []
    for p in names:
        k = np.asarray(params[p]).reshape(n, -1).shape[1]
        out += [p] if k == 1 else [f"{p}[{j}]" for j in range(k)]
    return out


# -- both ------------------------------------------------------------------------------------

@dataclass
class PeerFit:
    """What :func:`fit_peers` returns: the fitted peers and, per peer not fitted, why."""

    peers: dict[str, Peer] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def info(self, train_path: str | None) -> dict[str, Any]:
        """The ``peers`` entry of ``metrics.json``."""
        return {"training_data": train_path, "fitted": list(self.peers),
                "skipped": dict(self.skipped), "val_fraction": VAL_FRACTION,
                "selection": f"the simplest candidate whose closed-loop NRMSE x on the held-out "
                             f"training trajectories is within {TOLERANCE:.0%} of the lowest",
                "parameters": (list(next(iter(self.peers.values())).parameters)
                               if self.peers else None)}


def fit_peers(train: Trajectories, say: Callable[[str], None] = lambda _: None,
              sindy: bool | None = None, given: tuple[str, ...] | None = None) -> PeerFit:
    """Fit both peers on ``train``, each setting chosen on held-out training trajectories;
    SINDy is skipped (with :data:`MISSING`) when pysindy is not importable (``sindy=None``)
    or ``sindy`` is False. ``given``: the parameters the surrogates compared take (None: every
    one that varies); the peers get those of them that vary, no more."""


    import time

    if train.v is None or train.F is None:
        raise DataError("the peers need oscillator trajectories (x, v, F) in the training file")
    parameters = tuple(p for p in varying_parameters(train) if given is None or p in given)
    part, val = split(train)
    result = PeerFit()
    if sindy is None:
        sindy = have_pysindy()
        if not sindy:
            result.skipped["sindy"] = MISSING
    fitted: dict[str, Peer] = {}
    if sindy:
        begin = time.perf_counter()
        tried = []
        for threshold in SINDY_THRESHOLDS:
            peer = fit_sindy(part, parameters, threshold)
            tried.append({"threshold": threshold, "n_terms": peer.settings["n_terms"],
                          "val_nrmse_x": validation_error(peer, val)})
        best = _choose(tried, "threshold", prefer_larger=True)
        peer = fit_sindy(train, parameters, best["threshold"])
        fitted["sindy"] = _with(peer, tried, time.perf_counter() - begin)
        say(f"sindy: threshold {best['threshold']:g}, {peer.settings['n_terms']} terms")
    begin = time.perf_counter()
    from odernn.assess.dmdc import fit_dmdc

    tried = [{"rank": peer.settings["rank"], "val_nrmse_x": validation_error(peer, val)}
             for peer in fit_dmdc(part, parameters)]
    best = _choose(tried, "rank", prefer_larger=False)
    peer = fit_dmdc(train, parameters, (best["rank"],))[0]
    fitted["dmdc"] = _with(peer, tried, time.perf_counter() - begin)
    say(f"dmdc: rank {best['rank']} of {peer.settings['full_rank']}")
    result.peers = {name: fitted[name] for name in PEERS if name in fitted}
    return result


def _with(peer: Peer, tried: list[dict[str, Any]], seconds: float) -> Peer:
    """``peer`` with its validation table and fit time in its settings."""
    settings = {**peer.settings, "parameters": list(peer.parameters), "validation": tried,
                "fit_time_s": seconds}
    return Peer(peer.name, peer.description, settings, peer.parameters, peer.step, peer.mean,
                peer.std, seconds)
