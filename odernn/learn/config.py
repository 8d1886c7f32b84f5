"""Training options: one frozen dataclass, every option checked before anything is built.

A family's own defaults come from the family (:mod:`odernn.learn.models`: its
hyperparameters and ``training_defaults``); the options of its recipe (``gradient``:
:data:`GRADIENT_OPTIONS`, ``ridge``: :data:`RIDGE_OPTIONS`) and those every family shares
(data layout, validation, seed, device) are here. ``odernn models`` lists them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from odernn.checks import check_seed, did_you_mean, is_real
from odernn.data.systems import EXTERNAL, NOT_PARAMETERS, SYSTEMS, parameter_names
from odernn.errors import SpecError
from odernn.learn.families import DEVICES, OPTIMIZERS, SCHEDULES, TARGETS
from odernn.learn.models import REGISTRY
from odernn.learn.models.layout import CHANNELS, DEFAULT_INPUTS, Layout, default_inputs
from odernn.learn.models.prior import check_prior
from odernn.learn.option_checks import check_gradient, check_inputs, need
from odernn.types import Array

GRADIENT_OPTIONS = ("lr", "epochs", "batch_size", "window", "horizon", "horizon_start", "tbptt",
                    "optimizer", "momentum", "momentum_schedule", "nesterov", "weight_decay",
                    "clip", "schedule", "warmup_epochs", "patience", "val_every",
                    "closed_loop_weight", "closed_loop_from", "damping", "structural_damping",
                    "max_cg_iters")
"""Training options of the ``gradient`` recipe (the BPTT loop)."""
RIDGE_OPTIONS = ("ridge", "ridge_grid")
"""Training options of the ``ridge`` recipe (the reservoir's readout)."""
RECIPE_OPTIONS = {"gradient": GRADIENT_OPTIONS, "ridge": RIDGE_OPTIONS}
VAL_FRACTION = 0.1
"""The default share of the training trajectories held out for validation."""
FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest magnitude of a float option: models and optimisers compute in float32 (a
learning rate of 1e39 failed in Adam with a traceback)."""
HF_OPTIONS = {"damping": 1.0, "structural_damping": 0.0, "max_cg_iters": 50}
"""Options of the Hessian-free optimiser only, with their defaults."""
PARAMETERS = tuple(dict.fromkeys(n for system in SYSTEMS.values() for n in system.names))
"""Every system's parameter names: what ``withhold`` may name before the data is known."""
MOST_PARAMETERS = max(len(system.parameters) for system in SYSTEMS.values())
"""The most parameter inputs a surrogate can take (the memory check before the data)."""


def model_options() -> tuple[str, ...]:
    """Every family's hyperparameter names (a family takes its own, ``odernn models``)."""
    names = dict.fromkeys(n for cls in REGISTRY.values() for n in cls.defaults if n != "seed")
    return tuple(names)


def takes(model: str, option: str) -> bool:
    """Whether family ``model`` uses training option ``option`` (its hyperparameters, its
    recipe's options, and the options every family shares)."""
    cls = REGISTRY[model]
    if option in cls.defaults:
        return True
    if option in model_options():
        return False
    recipe = [r for r, names in RECIPE_OPTIONS.items() if option in names]
    return not recipe or cls.recipe in recipe


@dataclass(frozen=True)
class TrainConfig:
    """Every training option. ``None`` means the family's default (see ``odernn models``).

    Data layout: ``target`` (state, velocity, next-value), ``inputs`` (None:
    the target's default channels; every parameter of the data's system that
    varies across the training trajectories is added, :meth:`layout`),
    ``withhold`` (parameters not given to the surrogate), ``warmup`` (K
    observed steps a rollout is given), ``lags`` (series only), ``prior`` (a hybrid: the
    system of an approximate equation whose one-step prediction the surrogate corrects,
    state mode only; ``linear`` names ``oscillator``) with ``prior_set`` (its parameters by
    name; the others are the data's, :mod:`odernn.learn.models.prior`).
    Model: the family's hyperparameters (``hidden``, ``head``, ``skip``, ``products``,
    ``start_as_skip`` for RNN/LSTM/GRU; ``activation``, ``output_activation``, ``init``,
    ``init_spectral_radius`` for the RNN alone; ``hidden``, ``head``, ``skip``, ``products``,
    ``start_as_skip``, ``activation`` for the FFN; ``units``, ``spectral_radius``, ``leak_rate``,
    ``input_scaling``, ``bias``, ``degree``, ``ridge`` (None: chosen on closed-loop
    validation by :func:`~odernn.learn.ridge.choose_ridge`, starting from ``ridge_grid`` and
    widening it until the choice is bracketed) for the ESN).
    Optimisation (RNN/LSTM/GRU): windows of ``window`` steps (None: the family's; an
    epoch is one pass over the training steps, ``N (T - 1) / window`` windows, so a shorter
    window gives more optimiser steps for the same arithmetic) in batches of
    ``batch_size`` (None: the family's; ``benchmarks/training_speed.py`` measured the
    defaults), ``tbptt`` (truncate BPTT every k steps; None: whole
    window), closed-loop horizon growing from ``horizon_start`` to ``horizon``
    (0 disables the closed-loop loss) weighted by ``closed_loop_weight``, from the epoch
    ``closed_loop_from`` of the way through (a fraction; the growth takes half the epochs
    left); ``warmup_epochs`` (the learning rate rises from ``lr / (W + 1)`` to ``lr`` over
    the first W epochs: fewer than the epochs, but in a one-epoch run the default 1);
    ``optimizer``, ``lr``, ``momentum`` (with ``momentum_schedule="sutskever"``
    the ceiling ``mu_max`` of :func:`~odernn.learn.schedules.momentum_at`, SGD only), ``nesterov``,
    ``weight_decay``,
    ``clip`` (gradient-norm clipping, None: off), ``schedule`` with
    ``warmup_epochs``, ``epochs``, ``patience`` (early stopping after that many validations
    without improvement, None: off), ``val_every`` (epochs between validations; None: a
    twentieth of the epochs). An option that
    may be None is given as ``"none"`` where there is no null (TOML, ``--set``).
    ``optimizer="hf"`` (Hessian-free, teacher-forced windows only: no
    ``horizon``, no ``tbptt``; ``lr``, ``momentum``, ``clip`` and ``schedule``
    unused) takes ``damping`` (initial Tikhonov lambda), ``structural_damping``
    (mu, on the hidden states; 0: off) and ``max_cg_iters`` per step.
    Validation: ``val_fraction`` of the trajectories (when no validation set
    is given), the closed loop over ``val_steps`` points (None: all). Or cross-validation
    over ``val_folds`` folds of whole training trajectories (K >= 2; K >= N: leave one
    trajectory out; no validation set then): the reservoir's ridge
    (:mod:`odernn.learn.folds`), the gradient families' epoch (K + 1 trainings,
    :mod:`odernn.learn.epoch_folds`); 0: the holdout; None: the holdout, except the
    reservoir's leave one out on 2 to :data:`~odernn.learn.training.AUTO_FOLDS` training
    trajectories without a validation set or a ``val_fraction`` of its own.
    """

    model: str = "lstm"
    target: str = "state"
    inputs: tuple[str, ...] | None = None
    withhold: tuple[str, ...] = ()
    warmup: int = 0
    lags: int = 1
    prior: str | None = None
    prior_set: dict[str, float] = field(default_factory=dict)
    hidden: int | None = None
    head: tuple[int, ...] | None = None
    skip: bool | None = None
    products: int | bool | None = None
    start_as_skip: bool | None = None
    activation: str | None = None
    output_activation: str | None = None
    init: str | None = None
    init_spectral_radius: float | None = None
    units: int | None = None
    spectral_radius: float | None = None
    leak_rate: float | None = None
    input_scaling: float | None = None
    bias: float | None = None
    degree: int | None = None
    ridge: float | None = None
    ridge_grid: tuple[float, ...] = (1e-16, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6)
    lr: float = 3e-3
    epochs: int | None = None
    batch_size: int | None = None
    window: int | None = None
    tbptt: int | None = None
    horizon: int = 0
    horizon_start: int = 0
    closed_loop_weight: float = 1.0
    closed_loop_from: float = 0.0
    optimizer: str = "adam"
    damping: float = 1.0
    structural_damping: float = 0.0
    max_cg_iters: int = 50
    momentum: float = 0.9
    momentum_schedule: str = "constant"
    nesterov: bool = True
    weight_decay: float = 0.0
    clip: float | None = 1.0
    schedule: str = "cosine"
    warmup_epochs: int = 1
    patience: int | None = None
    val_every: int | None = None
    val_fraction: float = VAL_FRACTION
    val_folds: int | None = None
    val_steps: int | None = None
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # each value of its annotated type, however built
            object.__setattr__(self, f.name, _coerce(f.name, getattr(self, f.name), str(f.type)))
        if self.model not in REGISTRY:
            raise SpecError(f"model {self.model!r} unknown; allowed: {', '.join(REGISTRY)}")
        family = REGISTRY[self.model]
        defaults = {**family.defaults, **family.training_defaults}
        for name, value in defaults.items():
            if name != "seed" and getattr(self, name) is None:
                object.__setattr__(self, name, tuple(value) if isinstance(value, list) else value)
        if self.recipe == "gradient" and self.val_every is None:
            object.__setattr__(self, "val_every", max(1, round(self.epochs / 20)))
        for name in ("inputs", "head", "ridge_grid"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "withhold", tuple(sorted(set(self.withhold))))
        self._validate()

    def _validate(self) -> None:
        need(self.target in TARGETS, f"target {self.target!r} unknown; allowed: "
             f"{', '.join(TARGETS)}")
        check_inputs(self.inputs)
        for name in self.withhold:  # checked against the data's parameters in layout()
            need(isinstance(name, str) and name != "" and name not in NOT_PARAMETERS,
                 f"withhold {name!r}: give a parameter's name ({', '.join(NOT_PARAMETERS)} "
                 "are a trajectory's start, always given)")
        need(not self.withhold or self.target != "next-value",
             "withhold applies to oscillator surrogates: a series has no parameters")
        base = self.inputs if self.inputs is not None else DEFAULT_INPUTS[self.target]
        prior, prior_set = check_prior(self.prior, self.prior_set, self.target, tuple(base))
        object.__setattr__(self, "prior", prior)  # linear -> oscillator
        object.__setattr__(self, "prior_set", dict(prior_set))
        REGISTRY[self.model].check_layout(self._channels())  # Layout, then the family
        REGISTRY[self.model].check_options(**self.model_args())  # the family's hyperparameters
        need(self.optimizer in OPTIMIZERS, f"optimizer {self.optimizer!r} unknown; allowed: "
             f"{', '.join(OPTIMIZERS)}")
        need(self.schedule in SCHEDULES, f"schedule {self.schedule!r} unknown; allowed: "
             f"{', '.join(SCHEDULES)}")
        need(self.device in DEVICES, f"device {self.device!r} unknown; allowed: "
             f"{', '.join(DEVICES)}")
        need(0.0 < self.val_fraction < 1.0, f"val_fraction must be in (0, 1), got "
             f"{self.val_fraction}")
        need(self.val_steps is None or self.val_steps >= 2, "val_steps must be >= 2, or none")
        need(self.val_folds in (None, 0) or self.val_folds >= 2, "val_folds must be an integer "
             ">= 2 (K folds of whole trajectories; K >= N: leave one out), 0 (the holdout) or "
             f"None (automatic), got {self.val_folds}")
        need(self.val_folds in (None, 0, 1) or self.val_fraction == VAL_FRACTION, "val_fraction "
             "holds out a validation set, which val_folds K >= 2 replaces: give one of them")
        need(len(self.ridge_grid) > 0 and all(r >= 0 for r in self.ridge_grid),
             "ridge_grid must be a non-empty list of ridge strengths >= 0")
        need(self.ridge is None or self.ridge >= 0, f"ridge must be >= 0, got {self.ridge}")
        check_seed(self.seed, "training option seed")
        self._check_memory()
        if self.recipe != "gradient":
            return
        check_gradient(self, HF_OPTIONS)

    def _check_memory(self) -> None:
        """Refuse sizes (hidden, units, batch_size, window) whose training would not fit the
        memory budget (:mod:`odernn.budget`), before the model is built."""
        from odernn import budget

        family = REGISTRY[self.model]
        layout = self._channels()
        most = 0 if layout.series else MOST_PARAMETERS  # the data decides how many it takes
        prior = 2 if self.prior else 0  # x_prior, v_prior
        n_inputs, n_init, n_outputs, n_params = layout.sizes
        sizes = (n_inputs + most + prior, n_init + most, n_outputs, n_params + most)
        size = family.size_option
        head = self.head
        shown = f"{size} = {getattr(self, size)}" + (f", head = {list(head)}" if head else "")
        if self.recipe != "gradient":
            budget.check(shown, family.training_bytes(self.model_args(), *sizes),
                         family.memory_hint)
            return
        batch = max(int(self.batch_size), 0)
        steps = max(int(self.window), 0) + max(int(self.horizon), 0) + self.warmup
        need = family.training_bytes(self.model_args(), *sizes, batch_size=batch, steps=steps)
        budget.check(f"{shown}, batch_size = {batch}, window = {self.window} (+ horizon "
                     f"{self.horizon}, warmup {self.warmup})", need,
                     "that is for the weights, their gradients and optimiser state, and the "
                     f"activations of one batch; reduce {size}{', head' if head else ''}, "
                     "batch_size or window")

    @property
    def recipe(self) -> str:
        """How the family is fitted (``gradient`` or ``ridge``; :mod:`odernn.learn.models`)."""
        return REGISTRY[self.model].recipe

    def layout(self, dt: float, system: str = "oscillator",
               params: Mapping[str, Array] | None = None) -> Layout:
        """The data layout these options describe, for data of system ``system`` on a grid of
        step ``dt``: the channels ``inputs`` (None: the target's default for the system,
        :func:`~odernn.learn.models.layout.default_inputs`) and every parameter
        of the system that varies across the training trajectories' ``params`` (a fixed one
        tells the model nothing; None: every parameter; an ``external`` system's parameters
        are those ``params`` stores), less those withheld. A parameter that is not an input
        and took one value (fixed, or withheld but constant) is recorded with that value
        (:attr:`Layout.fixed`), so data with another is refused; one withheld while it varied
        is not; one named in ``inputs`` that took one value is refused. Withholding a name
        that is not a parameter of ``system`` is a SpecError."""
        spec = SYSTEMS.get(system)
        names = (() if self.target == "next-value" or (spec is None and system != EXTERNAL)
                 else parameter_names(system, params or {}))
        for name in self.withhold:
            if name not in names:
                raise SpecError(f"withhold {name!r}: not a parameter of system {system!r}"
                                f"{did_you_mean(name, names)} (its parameters: "
                                f"{', '.join(names) or 'none'})")
        for name in names if params is not None else ():  # e.g. data built by hand
            if name in CHANNELS:
                raise SpecError(f"parameter {name!r} has the name of an input channel "
                                f"({', '.join(CHANNELS)}): rename it in the data")
            if name in params and np.ndim(params[name]) != 1:  # (N, K), or its range (2, K)
                shape = ", ".join(["N", *map(str, np.shape(params[name])[1:])])
                raise SpecError(f"parameter {name!r} has shape ({shape}): a model takes "
                                "parameters of one value per trajectory, (N,)")
        varying = [p for p in names if params is None or (p in params and _varies(params[p]))]
        constant = [p for p in self.inputs or () if p in names and p not in varying
                    and params is not None and p in params]
        if constant:  # the model would take it and learn nothing of it: no value refused
            value = float(np.asarray(params[constant[0]]).ravel()[0])
            raise SpecError(f"inputs name {constant[0]!r}, which takes one value ({value:.6g}) "
                            "in the training data: a model cannot learn what it does; leave "
                            "it out (it is then recorded, and data with another value refused)")
        base = self.inputs if self.inputs is not None else default_inputs(
            self.target, system, skip=takes(self.model, "products"))
        inputs = [c for c in dict.fromkeys([*base, *varying]) if c not in self.withhold]
        fixed = {p: float(np.asarray(params[p]).ravel()[0]) for p in names
                 if params is not None and p in params and p not in inputs
                 and np.unique(np.asarray(params[p])).size == 1}
        return Layout(self.target, inputs, dt, self.lags, self.warmup, system,
                      tuple(fixed.items()), self.prior, tuple(self.prior_set.items()))

    def _channels(self) -> Layout:
        """The layout before the data is known, without parameter inputs (the data decides
        them): what the family's layout check and the memory check see (by default the
        widest default inputs, a linear system's)."""
        base = self.inputs if self.inputs is not None else default_inputs(self.target,
                                                                          "oscillator")
        return Layout(self.target, [c for c in base if c not in PARAMETERS], 1.0, self.lags,
                      self.warmup)

    def model_args(self) -> dict[str, Any]:
        """Constructor hyperparameters of the family."""
        args = {k: getattr(self, k) for k in REGISTRY[self.model].defaults if k != "seed"}
        return {**{k: list(v) if isinstance(v, tuple) else v for k, v in args.items()},
                "seed": self.seed}

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON), the options that apply to the family only."""
        d = dataclasses.asdict(self)
        skip = {k for k in d if not takes(self.model, k)}
        if self.optimizer != "hf":
            skip |= set(HF_OPTIONS)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items() if k not in skip}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "config") -> TrainConfig:
        """Options from plain data (TOML, JSON, CLI): unknown keys, options of another family
        and bad values raise SpecError (with a "did you mean" for a misspelt key)."""
        d = _legacy(d, where)
        names = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in names:
                raise SpecError(f"{where}: unknown training option {key!r}"
                                f"{did_you_mean(key, names)}")
        model = d.get("model", cls.model)
        if model not in REGISTRY:
            raise SpecError(f"{where}: model {model!r} unknown; allowed: {', '.join(REGISTRY)}")
        for key, value in d.items():
            if value is not None and not takes(model, key):
                users = [f for f in REGISTRY if takes(f, key)]
                raise SpecError(f"{where}: option {key!r} does not apply to model {model!r} "
                                f"(it is for {', '.join(users)})")
        try:
            return cls(**d)
        except SpecError as err:
            raise SpecError(f"{where}: {err}") from None


def _varies(values: Array) -> bool:
    """Whether a parameter takes more than one value across the trajectories."""
    return np.unique(np.asarray(values)).size > 1


def _legacy(d: dict[str, Any], where: str) -> dict[str, Any]:
    """Options of a run from before ``withhold``: ``use_eta = false`` withheld eta (it had no
    effect on a series)."""
    if "use_eta" not in d:
        return d
    d = dict(d)
    use_eta, withhold = d.pop("use_eta"), d.get("withhold") or []
    if not isinstance(use_eta, bool):
        raise SpecError(f"{where}: option 'use_eta' = {use_eta!r} is invalid; allowed: true or "
                        "false (the older spelling of withhold = ['eta'])")
    if not isinstance(withhold, list | tuple):
        return d  # refused as a withhold value
    if use_eta and "eta" in withhold:
        raise SpecError(f"{where}: use_eta = true contradicts withhold {list(withhold)}; give "
                        "one (use_eta = false is the older spelling of withhold = ['eta'])")
    if not use_eta and d.get("target", TrainConfig.target) != "next-value":
        d["withhold"] = [*withhold, "eta"]
    return d


def _coerce(key: str, value: Any, hint: str) -> Any:
    """``value`` checked against the annotation ``hint`` (a string: ``from __future__``);
    NumPy's numbers are numbers."""
    if value is None:
        if "None" not in hint:
            raise SpecError(f"option {key!r} = None is invalid; leave it out for its default")
        return None
    kinds = [k.strip() for k in hint.split("|")]
    kind = kinds[0]
    if isinstance(value, bool | np.bool_) and "bool" in kinds:  # a flag (``int | bool`` too)
        return bool(value)
    empty = "None" in kinds and kind != "str"  # TOML and --set have no null: "none" says it
    if empty and isinstance(value, str) and value.lower() == "none":
        return None

    def bad(allowed: str) -> SpecError:
        return SpecError(f"option {key!r} = {value!r} is invalid; allowed: {allowed}"
                         + (", or none" if empty else ""))

    if kind == "bool":
        raise bad("true or false")  # a bool returned above
    if kind == "int":
        if not is_real(value) or not math.isfinite(value) or value != int(value):
            raise bad("an integer" + (", or true or false" if "bool" in kinds else ""))
        return int(value)
    if kind == "float":  # within float32, which the models and optimisers compute in
        if not is_real(value) or not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise bad(f"a finite number of magnitude at most {FLOAT32_MAX:.2g} (float32's "
                      "largest)")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if kind.startswith("dict["):
        if not isinstance(value, Mapping):
            raise bad("a table of names to numbers")
        return {str(k): _coerce(f"{key}.{k}", v, "float") for k, v in value.items()}
    item = kind[len("tuple["):].split(",")[0]
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise bad(f"a list of {item}")  # a list, tuple, NumPy array...; not one name's letters
    return tuple(_coerce(key, v, item) for v in value)
