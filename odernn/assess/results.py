"""An evaluation's result: every method's rollouts and metrics, and ``metrics.json``.

:class:`Evaluation` is what :func:`odernn.assess.evaluate.evaluate` returns and what the
report reads; :meth:`Evaluation.to_json` is the ``metrics.json`` document (schema
``odernn.metrics``, described in docs/metrics.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from odernn.assess.metrics import METRICS
from odernn.assess.statistics import STATISTICS
from odernn.data.trajectories import Trajectories
from odernn.jsonio import plain

SCHEMA = "odernn.metrics"
SCHEMA_VERSION = 1
"""``metrics.json``'s schema and version (a version only gains keys)."""
REFERENCE = "exact"
DATA = "data"
"""The reference where the system has no closed form: the stored test trajectories."""
"""The method every error is measured against: the exact solution."""


DATA_ONLY = ("surrogate", "peer")
"""The kinds of method that learn from the training file alone: the surrogates and the peers
(:mod:`odernn.assess.peers`)."""
INFORMATION_CLASSES = ("knows the equation", "knows an approximate model", "data only")
"""What a method knows (:func:`information_class`); the report names the best of each class
that has a method."""


def information_class(m: MethodResult) -> str | None:
    """An integrator knows the equation, and so does a hybrid surrogate whose prior is the
    data's own equation with the data's parameters (``prior_exact``); another hybrid (one
    with a ``prior``) an approximate model; the other surrogates and the peers only the data;
    the reference none."""
    if m.kind == "integrator" or m.settings.get("prior_exact"):
        return INFORMATION_CLASSES[0]
    if m.kind == "surrogate" and m.settings.get("prior"):
        return INFORMATION_CLASSES[1]
    return INFORMATION_CLASSES[2] if m.kind in DATA_ONLY else None


def accuracy_key(metrics: Mapping[str, float]) -> tuple[float, float, float]:
    """Sort key of "most accurate": the lowest NRMSE of x, then, among equal ones (several
    diverged: all ``inf``), fewer diverged trajectories and the lower median per-trajectory
    NRMSE of x, so that a method is never named best for coming first in display order."""
    def finite_or_inf(value: float) -> float:
        return math.inf if math.isnan(value) else float(value)

    return (finite_or_inf(metrics["nrmse_x"]), finite_or_inf(metrics.get("n_diverged", 0)),
            finite_or_inf(metrics.get("median_nrmse_x", math.nan)))


@dataclass(frozen=True)
class MethodResult:
    """One method on the test set.

    ``x, v (N, T)`` are ``inf`` from a trajectory's divergence step on;
    ``nrmse_x (N,)`` each trajectory's NRMSE of x; ``error_x`` and ``error_v``
    the median and 90th percentile over trajectories of the error per step,
    divided by the test set's std.
    """

    name: str
    kind: str
    description: str
    settings: dict[str, Any]
    x: np.ndarray
    v: np.ndarray
    metrics: dict[str, float]
    nrmse_x: np.ndarray
    error_x: tuple[np.ndarray, np.ndarray]
    error_v: tuple[np.ndarray, np.ndarray]
    seeds: dict[str, Any] | None = None
    """An ensemble's members (``odernn train --seeds``): each seed's headline metrics
    (:data:`SEED_METRICS`) and their median, min and max; the
    method's own metrics are the ensemble's (the members' joint closed loop). None for a single
    model."""


@dataclass(frozen=True)
class Evaluation:
    """Everything the report needs; :meth:`to_json` is ``metrics.json``.

    ``methods`` in display order: the reference, the integrators, the
    surrogates. ``work_precision``, ``resonance`` and ``bifurcation`` are json-able dicts
    (or None when not run; ``{"skipped": reason}`` when the data allowed none).
    """

    test: Trajectories
    methods: dict[str, MethodResult]
    work_precision: dict[str, Any] | None
    resonance: dict[str, Any] | None
    info: dict[str, Any] = field(default_factory=dict)
    chaos: dict[str, Any] | None = None
    """The test set's predictability (:func:`odernn.assess.chaos.characterise`): per-trajectory
    Lyapunov exponents and trust horizon, and whether the set is chaotic; None when not
    measured."""
    bifurcation: dict[str, Any] | None = None
    peers: dict[str, Any] | None = None
    """The peers' fit (:mod:`odernn.assess.peers`): the training file, which were fitted and
    why any was skipped; ``{"skipped": reason}`` when none was; None from an older caller."""

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        return {name: m.metrics for name, m in self.methods.items()}

    @property
    def rollouts(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {name: (m.x, m.v) for name, m in self.methods.items()}

    @property
    def start(self) -> int:
        """First step counted in every error."""
        return int(self.info["settings"]["error_start_step"])

    @property
    def reference(self) -> str:
        """The name of the method every error is measured against (``exact`` or ``data``)."""
        return self.method_names("reference")[0]

    def method_names(self, *kinds: str) -> list[str]:
        """Names of the methods of the given kinds (``reference``, ``integrator``,
        ``surrogate``, ``peer``), in display order."""
        return [name for name, m in self.methods.items() if m.kind in kinds]

    def best_by_class(self) -> dict[str, str]:
        """The most accurate method (:func:`accuracy_key`) in each information class
        (:data:`INFORMATION_CLASSES`) that has one; exact ties keep display order."""
        out = {}
        for label in INFORMATION_CLASSES:
            names = [n for n, m in self.methods.items() if information_class(m) == label]
            if names:
                out[label] = min(names, key=lambda n: accuracy_key(self.methods[n].metrics))
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``metrics.json`` document (schema in docs/metrics.md); non-finite
        numbers become the strings ``"inf"``, ``"-inf"``, ``"nan"``."""
        t = np.asarray(self.test.t)
        keep = np.unique(np.linspace(0, t.size - 1, min(t.size, 200)).round().astype(int))
        curves = {name: {"x_median": m.error_x[0][keep], "x_p90": m.error_x[1][keep],
                         "v_median": m.error_v[0][keep], "v_p90": m.error_v[1][keep]}
                  for name, m in self.methods.items()}
        doc = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "created": self.info["created"],
            "odernn_version": self.info["versions"]["odernn"],
            "reference": self.reference,
            "command": self.info.get("command"),  # the command line that wrote it, if one did
            "data": self.info["data"],
            "in_sample": self.info.get("in_sample", {}),  # surrogates that saw the test set
            "settings": self.info["settings"],
            "versions": self.info["versions"],
            "metric_definitions": {**METRICS, **STATISTICS},
            "methods": {name: {"kind": m.kind, "description": m.description,
                               "settings": m.settings, "metrics": m.metrics,
                               **({} if m.seeds is None else {"seeds": m.seeds})}
                        for name, m in self.methods.items()},
            "error_vs_time": {"step": keep, "t": t[keep], "methods": curves},
            "same_information": self.info.get("same_information"),
            "work_precision": self.work_precision,
            "resonance": self.resonance,
            "chaos": self.chaos,
            "bifurcation": self.bifurcation,
            "peers": self.peers,
        }
        return plain(doc)


SEED_METRICS = ("nrmse_x", "median_nrmse_x", "nrmse_v", "n_diverged", "valid_lyapunov_median",
                "x2_max_rel_error", "x2_mean_rel_error")
"""The metrics reported per seed of an ensemble (those the member's evaluation has)."""


def seed_spread(members: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Each member's :data:`SEED_METRICS`, and their median, min and max over the members
    (a diverged member's inf counts: the spread shows it)."""
    keys = [k for k in SEED_METRICS if all(k in m for m in members.values())]
    table = {name: {k: float(m[k]) for k in keys} for name, m in members.items()}
    out: dict[str, Any] = {"n": len(table), "members": table}
    for stat, f in (("median", np.median), ("min", np.min), ("max", np.max)):
        out[stat] = {k: float(f([row[k] for row in table.values()])) for k in keys}
    return out
