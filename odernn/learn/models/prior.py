"""A hybrid surrogate's prior: an approximate equation whose one-step prediction it corrects.

A user who knows roughly what the system is ("Duffing with beta about 1.2", "about a linear
oscillator") gives it as a prior (``--prior duffing --prior-set beta=1.2``). Each step the
prior advances ``(x_i, v_i)`` by one step of RK4 on the forcing samples, the rule of the
``rk4-sampled`` integrator (``F_i``, ``F_{i+1}`` and their mean at the half step), and the
surrogate reads that prediction as two more input channels and predicts only the
correction to it: the knowledge-based hybrid of reservoir computing (Pathak et al. 2018,
Chaos 28, 041101), a residual for the gradient families
(:class:`~odernn.learn.models.codec.Codec`).

:func:`prior_step` is written once for numpy arrays (normalisation statistics, targets) and
torch tensors (inside the network, so gradients flow through it in closed-loop training
and it exports to ONNX): the systems' accelerations are array-generic
(:data:`~odernn.data.systems.SYSTEMS`), and so is :func:`~odernn.data.stepping.rk4_step`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from odernn.checks import check_choice, did_you_mean
from odernn.data.stepping import rk4_step
from odernn.data.systems import SYSTEMS, System
from odernn.errors import SpecError
from odernn.learn.families import PRIOR_ALIASES


def prior_system(name: str) -> System:
    """The system a prior names (a :data:`~odernn.data.systems.SYSTEMS` name or an alias of
    :data:`~odernn.learn.families.PRIOR_ALIASES`), or one SpecError line with a "did you
    mean"."""
    name = PRIOR_ALIASES.get(name, name)
    return SYSTEMS[check_choice(name, [*SYSTEMS, *PRIOR_ALIASES], "prior system")]


def check_prior(prior: str | None, prior_set: Mapping[str, Any] | tuple, target: str,
                inputs: tuple[str, ...]) -> tuple[str | None, tuple[tuple[str, float], ...]]:
    """The prior's system name and its set parameters as ``(name, value)`` pairs in the
    system's order, checked before any data is seen: a known system, state mode, ``F`` and
    ``F_next`` among ``inputs``, each set name a parameter of the prior's system (with a
    "did you mean") and each value in its valid range. One SpecError line otherwise."""
    pairs = prior_set.items() if isinstance(prior_set, Mapping) else prior_set
    try:
        given = {str(name): float(value) for name, value in pairs}
    except (TypeError, ValueError):
        raise SpecError(f"prior_set must map parameter names to numbers, got {prior_set!r}"
                        ) from None
    if prior is None:
        if given:
            raise SpecError("prior_set sets parameters of a prior: give the prior's system too "
                            "(--prior SYSTEM)")
        return None, ()
    system = prior_system(prior)
    if target != "state":
        raise SpecError(f"a prior corrects the next state: it needs target 'state', not "
                        f"{target!r}")
    missing = [c for c in ("F", "F_next") if c not in inputs]
    if missing:
        raise SpecError(f"a prior steps with the forcing samples F and F_next: the inputs "
                        f"must hold them (missing {', '.join(missing)})")
    for name, value in given.items():
        if name not in system.names:
            raise SpecError(f"prior {system.name} has no parameter {name!r}"
                            f"{did_you_mean(name, system.names)}; its parameters: "
                            f"{', '.join(system.names) or 'none'}")
        next(p for p in system.parameters if p.name == name).check(
            value, f"prior {system.name}")
    return system.name, tuple((n, given[n]) for n in system.names if n in given)


def prior_sources(layout: Any) -> tuple[dict[str, float | int], int, int]:
    """Where a hybrid layout's prior finds each parameter, by name: a number (set in
    ``prior_set``, else the data's fixed value) or the index of an exogenous channel (the
    data's parameter input of that name); then the channels of ``F`` and ``F_next``. A
    parameter found nowhere is refused in one SpecError line."""
    if layout.prior is None:
        return {}, -1, -1
    exogenous = [c for c in layout.inputs if c not in ("x", "v")]
    known = {**dict(layout.fixed), **dict(layout.prior_set)}
    out: dict[str, float | int] = {}
    for name in SYSTEMS[layout.prior].names:
        if name not in known and name not in layout.parameters:
            raise SpecError(f"the prior {layout.prior} needs {name}: give --prior-set "
                            f"{name}=VALUE (the data gives it neither as an input nor fixed)")
        out[name] = known[name] if name in known else exogenous.index(name)
    return out, exogenous.index("F"), exogenous.index("F_next")


def check_prior_data(layout: Any, params: Mapping[str, Any], where: str | None = None) -> None:
    """Refuse, in one SpecError line, data whose values of a prior's parameter (those not in
    ``prior_set``: the data's, ``params`` name -> values or their range) are outside the
    prior system's valid range, as a ``prior_set`` value would be: a negative damping from
    an imported file trained a prior that is not the system it names (and, in test data,
    rolled it out with no word). ``where``: the data checked (None: the training data, where
    ``prior_set`` is the remedy)."""
    if layout.prior is None:
        return
    system = SYSTEMS[layout.prior]
    for p in system.parameters:
        if p.name in dict(layout.prior_set) or p.name not in params:
            continue
        try:
            p.check(params[p.name], f"prior {system.name}")
        except SpecError as err:
            how = (f"give --prior-set {p.name}=VALUE to set it" if where is None
                   else f"the prior {system.name} is not defined there")
            raise SpecError(f"{err} in {where or 'the training data'}; {how}") from None


def prior_label(prior: str | None, prior_set: tuple[tuple[str, float], ...]) -> str:
    """A prior as reports name it, ``duffing(beta=1.2; eta, alpha from the data)`` (``""``:
    none)."""
    if prior is None:
        return ""
    shown = [f"{n}={v:g}" for n, v in prior_set]
    data = [n for n in SYSTEMS[prior].names if n not in dict(prior_set)]
    if data:
        shown.append(f"{', '.join(data)} from the data")
    return f"{prior}({'; '.join(shown)})" if shown else prior


def prior_step(system: System, params: Mapping[str, Any], x: Any, v: Any, F: Any,
               F_next: Any, dt: float) -> tuple[Any, Any]:
    """One RK4 step of ``system`` from ``(x, v)``, the forcing ``F`` at the start,
    ``F_next`` at the end and their mean at the half step: the ``rk4-sampled`` integrator's
    step (its half-step rule, ``0.5 F_i + 0.5 F_{i+1}``; to rounding, as that integrator
    steps the linear oscillator by its precomputed linear map). Numpy arrays or
    torch tensors of one shape; ``params`` name -> value (a number or an array of that
    shape). Returns ``(x, v)`` one step later."""
    def accel(x: Any, v: Any, F: Any) -> Any:
        return F + system.accel(x, v, params)

    return rk4_step(accel, x, v, F, 0.5 * F + 0.5 * F_next, F_next, dt)


def stack_state(x: Any, v: Any) -> Any:
    """``(x, v)`` stacked on a last axis, as numpy or torch, whichever they are."""
    if isinstance(x, torch.Tensor):
        return torch.stack([x, v], dim=-1)
    return np.stack([x, v], axis=-1)
