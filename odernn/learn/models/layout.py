"""What a surrogate reads and predicts: the input layout, target modes and normalisation.

A surrogate carries a small physical state ``z`` in closed loop and sees, at
step i, a vector of input channels ``u_i`` built from ``z_i`` and from what is
known in advance (the forcing samples and the system's parameters it takes):

==============  ==========================  =============================================
target          carried state ``z``         output ``y_i`` (normalised)
==============  ==========================  =============================================
``state``       ``(x_i, v_i)``              increments ``(x_{i+1} - x_i, v_{i+1} - v_i)``
``velocity``    ``(x_i, v_i)``              ``v_{i+1}``; x by the trapezoid rule below
``next-value``  last ``lags`` values of x   ``x_{i+1}``
==============  ==========================  =============================================

Input channels: ``x``, ``v`` (from ``z``), ``F`` (``F_i``), ``F_next``
(``F_{i+1}``, a sample an integrator also uses for the step), ``F_prev`` (``F_{i-1}``, the
sample before, ``F_0`` at the first step: with it a step sees the forcing's curvature, as
``rk4-sampled-cubic`` does; a default input of the gradient families on a linear system,
:func:`default_inputs`), then any of the parameters of the layout's system
(:data:`~odernn.data.systems.SYSTEMS`) in the system's order (the linear oscillator's:
``eta``), each constant along a trajectory; for a series, the ``lags`` last values (the
Keras ``(1, step)`` layout when ``lags = step`` and windows have length 1).

A hybrid (``Layout.prior``, :mod:`~odernn.learn.models.prior`) appends two channels after
those, ``x_prior`` and ``v_prior``: the prior equation's prediction of the next state by one
``rk4-sampled`` step from ``(x_i, v_i)`` with ``F_i``, ``F_{i+1}``, normalised with the
statistics of x and v. Its output is the residual: ``z_{i+1} = z_prior + y`` (state mode
only), so its statistics ``y0``, ``y1`` are those of the residuals ``z_{i+1} - z_prior``
(:func:`raw_target`, the one rule for the codec and the statistics). Each of the prior's
parameters is set (``prior_set``), or else the data's value of the same name, an input
(read from the exogenous channels) or fixed (:attr:`Layout.fixed`).

Velocity mode advances x by the trapezoid rule
``x_{i+1} = x_i + dt (v_i + v_{i+1}) / 2``, an O(dt^2) rule, more accurate than the
semi-implicit rule ``x_{i+1} = x_i + dt v_{i+1}`` (``benchmarks/surrogates.py`` measures the
floor each rule sets with the exact velocity).

Normalisation statistics (:class:`Stats`) come from the training split only
and are stored with the model; :class:`~odernn.learn.models.codec.Codec` applies them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from odernn.checks import real_array
from odernn.data.schema import same_step, step_slack
from odernn.data.systems import EXTERNAL, NOT_PARAMETERS, SYSTEMS
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError
from odernn.learn.families import TARGETS
from odernn.learn.models.prior import (
    check_prior,
    check_prior_data,
    prior_label,
    prior_sources,
    prior_step,
    stack_state,
)

CHANNELS = ("x", "v", "F", "F_next", "F_prev")
"""Input channels of every oscillator surrogate, in the order they are stacked; the system's
parameters it takes follow them (:attr:`Layout.channels`)."""
STATE = ("x", "v")
"""The channels fed back from the carried state; the others are known in advance
(:meth:`Layout.exogenous`)."""
SERIES = "sine"
"""The system of a series (next-value mode), which has no parameters."""

MAX_MAGNITUDE = 1e150
"""Data values beyond this are refused: their squares (normalisation statistics) overflow."""

DEFAULT_INPUTS = {
    "state": ("x", "v", "F", "F_next"),
    "velocity": ("x", "F", "F_next"),
    "next-value": ("x",),
}
"""The channels of each target before the system's parameters (those the training data vary,
:meth:`odernn.learn.config.TrainConfig.layout`), but for :func:`default_inputs`' addition."""


def linear_map(target: str, system: str | None) -> bool:
    """Whether a surrogate of ``target`` for data of ``system`` gets a linear system's
    defaults: state mode, a system with a linear acceleration. Its one-step map given three
    forcing samples is then linear in the state and the samples, to O(dt^4), with
    coefficients smooth in the parameters, which the skip can hold (:mod:`.readout`)."""
    spec = SYSTEMS.get(system or "")
    return target == "state" and spec is not None and spec.linear is not None


def default_inputs(target: str, system: str | None = None, skip: bool = True
                   ) -> tuple[str, ...]:
    """The default channels of ``target`` for data of ``system``: :data:`DEFAULT_INPUTS`, and
    ``F_prev`` for a family with the skip's products (``skip``) where :func:`linear_map`
    (``benchmarks/linear_map.py``; on the nonlinear systems, and for the reservoir on the
    linear one, it was measured to hurt, and is no default there)."""
    previous = skip and linear_map(target, system)
    return (*DEFAULT_INPUTS[target], *(("F_prev",) if previous else ()))


@dataclass(frozen=True)
class Layout:
    """What a surrogate reads and predicts; stored with the model and checked against data.

    ``inputs`` are channel names from :attr:`channels` (``("x",)`` for a
    series); ``lags`` the number of past values per step of a series;
    ``warmup`` the number K of observed steps a rollout is given (when a
    parameter is withheld; those steps are excluded from every error);
    ``system`` the data's system (:data:`~odernn.data.systems.SYSTEMS`, or
    ``external`` for imported data, whose parameters are whatever it stores; always
    :data:`SERIES` in next-value mode; layouts stored before it was recorded
    read as ``oscillator``); ``fixed`` the system's parameters that are not
    inputs and took one value across the training trajectories, as
    ``(name, value)`` pairs in the system's order (a mapping is accepted): data
    with another value is refused (:func:`check_data`). A parameter withheld
    while it varied in training has no single value and is not recorded;
    layouts stored before ``fixed`` existed read with none (nothing checked). ``prior``
    the system of a hybrid's prior equation (None: no prior) and ``prior_set`` its
    parameters set by the user, ``(name, value)`` pairs (a mapping is accepted); the others
    are the data's (module docstring). Layouts stored before them read as no prior.
    """

    target: str = "state"
    inputs: tuple[str, ...] = ("x", "v", "F", "F_next", "eta")
    dt: float = 0.05
    lags: int = 1
    warmup: int = 0
    system: str = "oscillator"
    fixed: tuple[tuple[str, float], ...] = ()
    prior: str | None = None
    prior_set: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if self.target not in TARGETS:
            raise SpecError(f"target {self.target!r} unknown; allowed: {', '.join(TARGETS)}")
        if self.target == "next-value":
            object.__setattr__(self, "system", SERIES)
            if self.inputs != ("x",):
                raise SpecError("next-value mode reads the series only: inputs must be ['x']")
        else:
            if self.system not in SYSTEMS and self.system not in (SERIES, EXTERNAL):
                raise SpecError(f"system {self.system!r} unknown; allowed: {', '.join(SYSTEMS)}, "
                                f"{EXTERNAL}")
            channels = self.channels
            bad = [c for c in self.inputs if c not in channels]
            if bad or len(set(self.inputs)) != len(self.inputs) or "x" not in self.inputs:
                raise SpecError(f"inputs {list(self.inputs)} invalid: allowed a subset of "
                                f"{list(channels)} without repeats, containing 'x'")
            if self.target == "state" and "v" not in self.inputs:
                raise SpecError("state mode feeds (x, v) back: inputs must contain 'v'")
            object.__setattr__(self, "inputs", tuple(c for c in channels if c in self.inputs))
        if isinstance(self.dt, bool) or not isinstance(self.dt, numbers.Real) or not (
                self.dt > 0 and np.isfinite(self.dt)):
            raise SpecError(f"dt must be a positive number, got {self.dt!r}")
        for name in ("lags", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise SpecError(f"{name} must be an integer, got {value!r}")
        if self.lags < 1 or (self.lags > 1 and self.target != "next-value"):
            raise SpecError(f"lags must be >= 1, and > 1 only in next-value mode; got {self.lags}")
        if self.warmup < 0:
            raise SpecError(f"warmup must be >= 0 observed steps, got {self.warmup}")
        self._set_fixed()
        prior, prior_set = check_prior(self.prior, self.prior_set, self.target, self.inputs)
        object.__setattr__(self, "prior", prior)
        object.__setattr__(self, "prior_set", prior_set)
        _ = self._prior_sources  # refuses a prior parameter the data does not give

    def _set_fixed(self) -> None:
        """``fixed`` as ``(name, float)`` pairs in the system's order, each a parameter of the
        system that is not an input, with a finite value."""
        pairs = self.fixed.items() if isinstance(self.fixed, Mapping) else self.fixed
        try:
            given = {str(name): float(value) for name, value in pairs}
        except (TypeError, ValueError):
            raise SpecError(f"fixed must map parameter names to numbers, got {self.fixed!r}"
                            ) from None
        system = SYSTEMS.get(self.system)
        names = () if system is None or self.target == "next-value" else system.names
        if self.system == EXTERNAL and self.target != "next-value":  # the file names them
            names = tuple(n for n in given if n not in CHANNELS and n not in NOT_PARAMETERS)
        bad = [n for n in given if n not in names or n in self.inputs
               or not np.isfinite(given[n])]
        if bad:
            raise SpecError(f"fixed {bad[0]} = {given[bad[0]]!r} invalid: fixed values are "
                            f"finite, of parameters of system {self.system!r} "
                            f"({', '.join(names) or 'none'}) that are not inputs")
        object.__setattr__(self, "fixed", tuple((n, given[n]) for n in names if n in given))

    @cached_property
    def _prior_sources(self) -> tuple[dict[str, float | int], int, int]:
        return prior_sources(self)

    def prior_next(self, z: Any, e: Any) -> Any:
        """The prior's prediction of the next carried state from ``z (..., 2)`` and the
        exogenous channels ``e (..., E)``, numpy or torch (:func:`.prior.prior_step`)."""
        if e is None:
            raise SpecError("a hybrid's next state needs the exogenous channels e")
        sources, f0, f1 = self._prior_sources
        params = {n: e[..., k] if isinstance(k, int) else k for n, k in sources.items()}
        return stack_state(*prior_step(SYSTEMS[self.prior], params, z[..., 0], z[..., 1],
                                       e[..., f0], e[..., f1], self.dt))

    def base(self, z: Any, e: Any = None) -> Any:
        """What a state-mode output is added to: ``z`` itself, or a hybrid's prior
        prediction (:meth:`prior_next`)."""
        return z if self.prior is None else self.prior_next(z, e)

    @property
    def prior_label(self) -> str:
        """The prior as reports name it (:func:`.prior.prior_label`; ``""``: none)."""
        return prior_label(self.prior, self.prior_set)

    @property
    def exact_prior(self) -> bool:
        """A prior that is the data's own equation, every parameter the data's (none set):
        the hybrid knows the equation, as an integrator does."""
        return self.prior is not None and self.prior == self.system and not self.prior_set

    @property
    def series(self) -> bool:
        return self.target == "next-value"

    @property
    def linear(self) -> bool:
        """Whether a surrogate of this layout gets a linear system's defaults
        (:func:`linear_map`)."""
        return linear_map(self.target, self.system)

    @property
    def channels(self) -> tuple[str, ...]:
        """Every input channel this layout's system allows, in the order they are stacked (an
        :data:`~odernn.data.systems.EXTERNAL` system's parameters: those its inputs name)."""
        system = SYSTEMS.get(self.system)
        if self.system == EXTERNAL:
            return (*CHANNELS, *(c for c in self.inputs if c not in CHANNELS))
        return (*CHANNELS, *(() if system is None else system.names))

    @property
    def parameters(self) -> tuple[str, ...]:
        """The system's parameters the surrogate takes as inputs, in the system's order."""
        return () if self.series else tuple(c for c in self.inputs if c not in CHANNELS)

    @property
    def n_inputs(self) -> int:
        """Input channels: a series' lags, else :attr:`inputs` and a hybrid's two prior ones."""
        return self.lags if self.series else len(self.inputs) + (2 if self.prior else 0)

    @property
    def n_outputs(self) -> int:
        return 2 if self.target == "state" else 1

    @property
    def n_state(self) -> int:
        """Width of the carried physical state ``z``."""
        return self.lags if self.series else 2

    @property
    def n_init(self) -> int:
        """Width of the initial-state features: ``(x0, v0)`` and the parameters taken, or a
        series' first window."""
        return self.lags if self.series else 2 + len(self.parameters)

    @property
    def sizes(self) -> tuple[int, int, int, int]:
        """What a family's memory counts take (``parameter_count``, ``training_bytes``,
        ``model_bytes``): :attr:`n_inputs`, :attr:`n_init`, :attr:`n_outputs` and the number
        of parameter inputs."""
        return self.n_inputs, self.n_init, self.n_outputs, len(self.parameters)

    @property
    def exogenous_names(self) -> tuple[str, ...]:
        """The channels known in advance, in :meth:`exogenous`'s order (none for a series)."""
        return () if self.series else tuple(c for c in self.inputs if c not in STATE)

    @property
    def n_exogenous(self) -> int:
        return len(self.exogenous_names)

    def exogenous(self, F: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """The one mapping from arrays to the channels known in advance, ``(N, T, E)`` in
        channel order: ``F_i``, ``F_{i+1}`` (at the last step ``F_{T-1}`` again: no step
        follows it), ``F_{i-1}`` (at the first ``F_0`` again: no sample precedes it), then each
        parameter taken (``params[name]`` per trajectory, ``(N,)``).
        Windows, targets and rollouts use it."""
        n, t = F.shape
        missing = [p for p in self.parameters if p not in params]
        if missing:
            raise DataError(f"this layout takes {', '.join(self.parameters)} as inputs; "
                            f"{', '.join(missing)} not given")
        columns = {"F": F, "F_next": np.concatenate([F[:, 1:], F[:, -1:]], axis=1),
                   "F_prev": np.concatenate([F[:, :1], F[:, :-1]], axis=1)}
        columns.update({p: np.broadcast_to(np.asarray(params[p])[:, None], (n, t))
                        for p in self.parameters})
        names = self.exogenous_names
        return np.stack([columns[c] for c in names], axis=-1) if names else np.zeros((n, t, 0))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"] = list(self.inputs)
        d["fixed"] = dict(self.fixed)
        d["prior_set"] = dict(self.prior_set)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Layout:
        """The layout of :meth:`to_dict` (one stored without ``system``: the linear
        oscillator; without ``fixed``: no fixed values, so none is checked; without
        ``prior``: no prior)."""
        pairs = {}
        for key in ("fixed", "prior_set"):
            value = d.get(key) or {}
            pairs[key] = tuple(value.items()) if isinstance(value, Mapping) else value
        return cls(**{**d, "inputs": tuple(d["inputs"]), **pairs})


@dataclass(frozen=True)
class Stats:
    """Mean and standard deviation of each quantity, from the training split.

    Keys: ``x``, ``v``, ``F`` and each parameter taken, by name (inputs and
    initial-state features), and ``y0``, ``y1`` (the outputs of the target mode).
    """

    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {"mean": dict(self.mean), "std": dict(self.std)}

    @classmethod
    def from_dict(cls, d: dict[str, dict[str, float]]) -> Stats:
        """The statistics of :meth:`to_dict`: names to finite numbers, each std positive
        (else DataError: a checkpoint's, corrupt or forged, would make every rollout
        diverge or go silently wrong)."""
        def floats(m: Any, what: str, positive: bool) -> dict[str, float]:
            if not isinstance(m, Mapping):
                raise DataError(f"the normalisation's {what} is not a mapping of names to "
                                f"numbers")
            out = {}
            for k, v in m.items():
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not \
                        math.isfinite(v) or (positive and v <= 0):
                    raise DataError(f"the normalisation's {what} of {k!r} is {v!r}, not a "
                                    f"finite{' positive' if positive else ''} number")
                out[str(k)] = float(v)
            return out

        return cls(floats(d["mean"], "mean", False), floats(d["std"], "std", True))


def raw_target(layout: Layout, z: Any, z_next: Any, e: Any = None) -> Any:
    """The un-normalised output that takes ``z`` to ``z_next`` in ``layout``'s target mode,
    numpy or torch: the one rule of the codec's targets and of the statistics (``e``, the
    exogenous channels of step ``z``, for a hybrid only)."""
    if layout.target == "state":
        return z_next - layout.base(z, e)
    if layout.target == "velocity":
        return z_next[..., 1:]
    return z_next[..., -1:]


def check_data(data: Trajectories, layout: Layout, *, where: str = "data") -> None:
    """Refuse data that does not fit ``layout``: DataError saying what, where, what is allowed."""
    if layout.series != data.is_series:
        kind = "a univariate series" if data.is_series else "oscillator trajectories (x, v, F)"
        need = "a series (x only)" if layout.series else "oscillator trajectories (x, v, F)"
        fix = (" (train a series model with --target next-value)" if data.is_series else
               " (a series model, --target next-value, takes series only)")
        raise DataError(f"{where} holds {kind}; this model ({layout.target} mode) needs "
                        f"{need}{fix}")
    if data.n_steps < 2 or data.n < 1:
        raise DataError(f"{where} has {data.n} trajectories of {data.n_steps} steps; "
                        "need at least 1 trajectory of 2 steps")
    if layout.warmup and data.n_steps < layout.warmup + 2:
        raise DataError(f"{where} has {data.n_steps} time points; the model observes "
                        f"{layout.warmup} warm-up steps before it predicts, so it needs at "
                        f"least {layout.warmup + 2}")
    if not layout.series and data.system != layout.system:
        raise DataError(f"{where} is of system {data.system!r}; this model was trained on "
                        f"system {layout.system!r}")
    if not layout.series and data.F is None:
        raise DataError(f"{where} has no forcing samples F; an oscillator surrogate needs them")
    first = float(data.t[1] - data.t[0])  # the step a model stored before the mean step
    if not (same_step(data.dt, layout.dt, step_slack(data.t, data.dt))
            or same_step(first, layout.dt)):
        raise DataError(f"{where} has dt = {data.dt!r}; the model was built for dt = {layout.dt!r}")
    missing = [p for p in layout.parameters if p not in data.params]
    if missing:
        raise DataError(f"{where} has no params/{missing[0]}; the model takes "
                        f"{', '.join(layout.parameters)} as inputs")
    check_fixed(data.params, layout, where, require=True)
    check_prior_data(layout, data.params, where)
    arrays = {"x": data.x, "v": data.v, "F": data.F}
    arrays.update({f"params/{p}": data.params[p] for p in layout.parameters})
    for name, a in arrays.items():
        if a is not None and not np.all(np.isfinite(a)):
            raise DataError(f"{where}: {name} contains non-finite values")
        if a is not None and a.size and float(np.abs(a).max()) > MAX_MAGNITUDE:  # float16 too
            raise DataError(f"{where}: {name} holds values up to {np.abs(a).max():.3g}; beyond "
                            f"{MAX_MAGNITUDE:g} the normalisation's sums of squares overflow: "
                            "rescale the data")


def check_fixed(params: Mapping[str, Any], layout: Layout, where: str, *,
                require: bool = False) -> None:
    """Refuse ``params`` (name -> values per trajectory) holding another value of a parameter
    the model was trained with fixed (:attr:`Layout.fixed`: not an input), or, with
    ``require``, lacking it: one DataError line naming the values and the trained one."""
    for name, value in layout.fixed:
        trained = f"this model was trained with {name} fixed at {value:.12g} (not an input)"
        if name not in params:
            if require:
                raise DataError(f"{where} has no params/{name}; {trained}")
            continue
        values = real_array(params[name], f"{where}: {name}").ravel()
        if values.size and not np.all(np.isclose(values, value, rtol=1e-9, atol=0.0)):
            low, high = np.min(values), np.max(values)
            shown = f"= {low:.12g}" if low == high else f"from {low:.6g} to {high:.6g}"
            raise DataError(f"{where} has {name} {shown}; {trained}")
