"""The driven oscillators odernn knows, found by name in one registry, :data:`SYSTEMS`.

Every system is a second-order equation ``x'' = a(x, v; params) + F(t)`` written as two
first-order ones, ``x' = v`` and ``v' = a(x, v; params) + F(t)``, batched over N
trajectories that each have their own parameters and their own forcing
(:mod:`odernn.data.forcing`). A :class:`System` entry declares its parameters (name,
meaning, valid range), its acceleration vectorised over trajectories, the partial
derivatives of it (for implicit solvers), its energy where one is conserved without
damping and forcing, and whether a closed-form solution exists:

- ``oscillator``: ``x'' + eta x' + x = F(t)`` (linear; closed form);
- ``duffing``: ``x'' + eta x' + alpha x + beta x^3 = F(t)``;
- ``van-der-pol``: ``x'' - mu (1 - x^2) x' + x = F(t)``;
- ``pendulum``: ``x'' + eta x' + sin(x) = F(t)`` (x the angle, not wrapped).

An :class:`Oscillator` is a batch: a system, its parameters per trajectory, a forcing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from odernn.checks import did_you_mean
from odernn.data.forcing import Forcing
from odernn.errors import SpecError
from odernn.types import Array

Params = Mapping[str, Array]


@dataclass(frozen=True)
class Parameter:
    """A system parameter: its name, what it means, and the closed range it may take."""

    name: str
    meaning: str
    low: float = -math.inf
    high: float = math.inf

    def check(self, values: Array, where: str) -> None:
        """Refuse values outside ``[low, high]`` (or not finite) with one SpecError line."""
        values = np.asarray(values, dtype=np.float64)
        bad = ~(np.isfinite(values) & (values >= self.low) & (values <= self.high))
        if np.any(bad):
            i = int(np.argmax(bad.ravel()))
            value = float(values.ravel()[i])
            raise SpecError(f"{where}: {self.name} = {value!r} is outside its valid range "
                            f"{self.range}")

    @property
    def range(self) -> str:
        lo = "(-inf" if self.low == -math.inf else f"[{self.low:g}"
        hi = "inf)" if self.high == math.inf else f"{self.high:g}]"
        return f"{lo}, {hi}"


@dataclass(frozen=True)
class System:
    """One entry of :data:`SYSTEMS`: the equation ``v' = a(x, v; p) + F`` and what callers
    need to know of it."""

    name: str
    equation: str
    parameters: tuple[Parameter, ...]
    accel: Callable[[Array, Array, Params], Array]
    """``a(x, v; p)`` without the forcing, for arrays of one shape (p broadcast to it): numpy
    arrays or torch tensors alike (arithmetic and :func:`_sin` only), so a hybrid surrogate's
    prior (:mod:`odernn.learn.models.prior`) runs the same equation inside the network. The
    fixed-step integrators run a scalar copy of it, compiled (``kernels.acceleration`` in
    :mod:`odernn.data.kernels`), checked against it bit for bit by the tests."""
    partials: Callable[[Array, Array, Params], tuple[Array, Array]]
    """``(da/dx, da/dv)`` at ``(x, v)``: the Jacobian an implicit solver needs."""
    description: str
    energy: Callable[[Array, Array, Params], Array] | None = None
    """Mechanical energy, conserved without damping and forcing; None where none is."""
    closed_form: bool = False
    """A closed-form solution exists (:mod:`odernn.data.exact`)."""
    linear: Callable[[Params], tuple[Array, Array]] | None = None
    """For a system linear in ``(x, v)``, ``a = -k x - c v``: ``p -> (k, c)`` per trajectory
    (integrators then precompute a step as a linear map); None for a nonlinear one."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    angle: bool = False
    """x is an angle (radians): states 2 pi apart in x are the same, so statistics of its
    distribution are taken on the circle (stored unwrapped, as integrated)."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)


def x_is_angle(system: str) -> bool:
    """Whether data of ``system`` (a name; an unknown one is not) have an angle as x."""
    return system in SYSTEMS and SYSTEMS[system].angle


def _sin(a: Array) -> Array:
    """``sin(a)`` of a numpy array, or of an array object with its own ``sin`` method (a
    torch tensor): ``accel`` is written once for both, and this module imports no torch."""
    return a.sin() if hasattr(a, "sin") else np.sin(a)


def _quadratic_energy(x: Array, v: Array, p: Params) -> Array:
    return 0.5 * (np.square(x) + np.square(v))


SYSTEMS: dict[str, System] = {s.name: s for s in (
    System(
        "oscillator", "x'' + eta x' + x = F(t)",
        (Parameter("eta", "damping", 0.0),),
        lambda x, v, p: -p["eta"] * v - x,
        lambda x, v, p: (-np.ones_like(x), -p["eta"] * np.ones_like(v)),
        "the damped, driven linear oscillator (undamped angular frequency 1)",
        energy=_quadratic_energy, closed_form=True,
        linear=lambda p: (np.ones_like(p["eta"]), p["eta"])),
    System(
        "duffing", "x'' + eta x' + alpha x + beta x^3 = F(t)",
        (Parameter("eta", "damping", 0.0), Parameter("alpha", "linear stiffness"),
         Parameter("beta", "cubic stiffness (> 0 hardening, < 0 softening)")),
        lambda x, v, p: -p["eta"] * v - (p["alpha"] + p["beta"] * (x * x)) * x,
        lambda x, v, p: (-(p["alpha"] + 3 * p["beta"] * np.square(x)),
                         -p["eta"] * np.ones_like(v)),
        "the Duffing oscillator: single-well (alpha > 0) or double-well (alpha < 0, beta > 0)",
        energy=lambda x, v, p: 0.5 * np.square(v) + 0.5 * p["alpha"] * np.square(x)
        + 0.25 * p["beta"] * np.square(np.square(x))),
    System(
        "van-der-pol", "x'' - mu (1 - x^2) x' + x = F(t)",
        (Parameter("mu", "nonlinear damping (negative for |x| < 1: self-excited)", 0.0),),
        lambda x, v, p: p["mu"] * (1.0 - x * x) * v - x,
        lambda x, v, p: (-2.0 * p["mu"] * x * v - 1.0, p["mu"] * (1.0 - np.square(x))),
        "the Van der Pol oscillator: a self-excited limit cycle, entrained by the forcing"),
    System(
        "pendulum", "x'' + eta x' + sin(x) = F(t)",
        (Parameter("eta", "damping", 0.0),),
        lambda x, v, p: -p["eta"] * v - _sin(x),
        lambda x, v, p: (-np.cos(x), -p["eta"] * np.ones_like(v)),
        "the damped, driven pendulum (x the angle in radians, not wrapped)",
        energy=lambda x, v, p: 0.5 * np.square(v) + 1.0 - np.cos(x), angle=True),
)}
"""Every system by name, in the order they are listed to users."""


EXTERNAL = "external"
"""The system of imported data whose equation is not known (``odernn import`` without
``--system``): its parameters are whatever the file stores (:func:`parameter_names`), and
it is never replaced by another equation: the stored trajectories are its only reference."""
NOT_PARAMETERS = ("x0", "v0", "t0")
"""Stored per trajectory beside the parameters but not parameters of the equation: the
initial state, and an imported trajectory's start time."""
GRAPH_NAMES = ("state", "start", "window", "window_next", "x_next", "v_next", "state_next")
"""The names an exported one-step graph (``odernn export``) gives its own inputs and outputs
beside the physical channels: a parameter named so could not be exported, so none may be
(``odernn import`` refuses them; so does the export, for in-memory data)."""


def parameter_names(system: str, stored: Iterable[str]) -> tuple[str, ...]:
    """The parameters of data of ``system`` that store ``stored`` (names of ``params/``): a
    known system's own (:data:`SYSTEMS`), or for any other (:data:`EXTERNAL`) every stored
    one but :data:`NOT_PARAMETERS`, in stored order."""
    entry = SYSTEMS.get(system)
    if entry is not None:
        return entry.names
    return tuple(name for name in stored if name not in NOT_PARAMETERS)


def get_system(name: str) -> System:
    """The system ``name``, or one SpecError line with a "did you mean"."""
    if name not in SYSTEMS:
        raise SpecError(f"unknown system {name!r}{did_you_mean(name, SYSTEMS)}; allowed: "
                        f"{', '.join(SYSTEMS)}")
    return SYSTEMS[name]


@dataclass(frozen=True)
class Oscillator:
    """A batch of N driven oscillators of one system: each trajectory's parameters
    (``params[name]`` of shape ``(N,)``, checked against their ranges) and forcing."""

    system: System
    params: Params
    forcing: Forcing

    def __post_init__(self) -> None:
        params = {}
        for p in self.system.parameters:
            if p.name not in self.params:
                raise SpecError(f"system {self.system.name!r} needs parameter {p.name!r}")
            value = np.asarray(self.params[p.name], dtype=np.float64)
            if value.shape != (self.forcing.n,):
                raise SpecError(f"parameter {p.name} must have shape ({self.forcing.n},), got "
                                f"{value.shape}")
            p.check(value, f"system {self.system.name!r}")
            params[p.name] = value
        object.__setattr__(self, "params", params)
        linear = self.system.linear
        kc = None if linear is None else tuple(
            np.broadcast_to(np.asarray(u, dtype=np.float64), (self.forcing.n,))
            for u in linear(params))
        object.__setattr__(self, "_kc", kc)

    @classmethod
    def of(cls, name: str, params: Params, forcing: Forcing) -> Oscillator:
        """A batch of system ``name`` (extra entries of ``params``, such as ``x0``, ignored)."""
        system = get_system(name)
        return cls(system, {k: params[k] for k in system.names if k in params}, forcing)

    @classmethod
    def linear(cls, eta: Array, forcing: Forcing) -> Oscillator:
        """The linear oscillator ``x'' + eta x' + x = F(t)`` with damping ``eta (N,)``."""
        return cls(SYSTEMS["oscillator"], {"eta": eta}, forcing)

    @property
    def n(self) -> int:
        return self.forcing.n

    def acceleration(self, x: Array, v: Array, F: Array) -> Array:
        """``v' = a(x, v; p) + F`` for states and forcing values of shape ``(N,)`` (or
        ``(M, N)``: M steps at once). A linear system computes ``F - c v - k x`` in that
        order, the same rounding as the equation written out."""
        if self._kc is not None:
            k, c = self._kc
            return F - c * v - k * x
        return F + self.system.accel(x, v, self.params)

    @property
    def linear_coefficients(self) -> tuple[Array, Array]:
        """``(k, c)`` per trajectory of a linear system, ``a = -k x - c v``."""
        if self._kc is None:
            raise ValueError(f"system {self.system.name!r} is not linear")
        return self._kc

    def take(self, index: np.ndarray | slice) -> Oscillator:
        """The oscillators of a subset of the trajectories."""
        return Oscillator(self.system, {k: v[index] for k, v in self.params.items()},
                          self.forcing.take(index))

    def with_forcing(self, forcing: Forcing) -> Oscillator:
        """The same oscillators under another forcing (e.g. its samples)."""
        return Oscillator(self.system, self.params, forcing)
