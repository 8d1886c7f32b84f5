"""A surrogate in closed loop with exactly the integrators' information, its output checked.

Used by the accuracy study (:mod:`odernn.assess.evaluate`), the resonance check
(:mod:`odernn.assess.resonance`, :mod:`odernn.assess.frequency_response`) and the
bifurcation diagram (:mod:`odernn.assess.bifurcation`), so all give a surrogate the same
inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from odernn.assess.metrics import divergence_steps, mark_diverged
from odernn.errors import DataError
from odernn.learn.models.base import Rollout, Surrogate


def closed_loop(name: str, surrogate: Surrogate, F: np.ndarray,
                params: Mapping[str, np.ndarray],
                observed: tuple[np.ndarray, np.ndarray], **options: Any) -> Rollout:
    """A closed loop from the observed initial states with exactly the integrators' information:
    ``F`` samples, of the trajectories' ``params`` only those the surrogate takes (none: None),
    and its K warm-up steps of the ``observed`` trajectories (x, v), if it asks for any.
    ``options`` go to the surrogate's ``rollout`` (an ensemble's ``members``)."""
    k = int(getattr(surrogate, "warmup_steps", 0))
    taken = tuple(getattr(surrogate, "parameter_inputs", ()))
    missing = [p for p in taken if p not in params]
    if missing:
        raise DataError(f"surrogate {name!r} takes {', '.join(taken)}; the test set has no "
                        f"params/{missing[0]}")
    x, v = observed
    rollout = surrogate.rollout(
        x[:, 0], v[:, 0], F, {p: params[p] for p in taken} if taken else None,
        warmup=(x[:, :k], v[:, :k]) if k > 0 else None, **options)
    return _checked(rollout, x.shape, f"surrogate {name!r}")


def closed_loop_marked(name: str, surrogate: Surrogate, F: np.ndarray,
                       params: Mapping[str, np.ndarray],
                       observed: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`closed_loop`'s ``x, v``, ``inf`` from each row's divergence step on (reported or
    not finite), as every check that reads a long closed-loop sweep wants them."""
    rollout = closed_loop(name, surrogate, F, params, observed)
    steps = divergence_steps(rollout.x, rollout.v, rollout.diverged_at)
    return mark_diverged(rollout.x, steps), mark_diverged(rollout.v, steps)


def _checked(rollout: Rollout, shape: tuple[int, ...], who: str) -> Rollout:
    if rollout.v is None:
        raise DataError(f"{who} predicts no velocity; evaluate compares oscillator surrogates "
                        "(targets state, velocity)")
    x = np.asarray(rollout.x, dtype=np.float64)
    v = np.asarray(rollout.v, dtype=np.float64)
    if x.shape != shape or v.shape != shape:
        raise DataError(f"{who} returned x {x.shape}, v {v.shape}; the test set needs {shape}")
    return Rollout(x, v, np.asarray(rollout.diverged_at), int(rollout.warmup), rollout.info)


def prior_label(surrogate: Surrogate) -> str:
    """A hybrid surrogate's prior as reports name it (``Layout.prior_label``), else ``""``."""
    return getattr(getattr(surrogate, "layout", None), "prior_label", "")


def describe_surrogate(surrogate: Surrogate) -> str:
    """A surrogate in the report's words: family, target, what it is given, its prior and, an
    ensemble, its seeds."""
    given = f"given {', '.join(getattr(surrogate, 'parameter_inputs', ())) or 'no parameters'}"
    k = int(getattr(surrogate, "warmup_steps", 0))
    warm = f", {k} warm-up steps" if k else ""
    hybrid = f", hybrid with prior {prior_label(surrogate)}" if prior_label(surrogate) else ""
    text = (f"{surrogate.family} surrogate, target {surrogate.target}, {given}{warm}{hybrid}, "
            "closed loop")
    members = getattr(surrogate, "members", None)
    return text if members is None else f"joint closed loop of {len(members)} seeds: {text}"


def surrogate_settings(surrogate: Surrogate, rollout: Rollout) -> dict[str, Any]:
    """The settings ``metrics.json`` records for a surrogate; ``starts_as_skip``: its training
    started from the least-squares fit of its linear skip (an ensemble's first member's)."""
    members = getattr(surrogate, "members", None)
    first = next(iter(members.values())) if members else surrogate
    return {"family": surrogate.family, "target": surrogate.target,
            "parameters": list(getattr(surrogate, "parameter_inputs", ())),
            "starts_as_skip": bool(getattr(first, "hparams", {}).get("start_as_skip")),
            "warmup_steps": rollout.warmup, **({"prior": prior_label(surrogate),
                                                "prior_exact": bool(surrogate.layout.exact_prior)}
                                               if prior_label(surrogate) else {})}
