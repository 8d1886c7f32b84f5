"""Training a surrogate: configuration, the BPTT loop, the reservoir's ridge fit, the run directory.

``train(data, TrainConfig(...), run_dir)`` is the one entry point (``odernn
train`` is this call plus argument parsing). It splits validation
trajectories off (by trajectory), computes the normalisation on the training
split, builds the model and fits it:

- RNN, LSTM, GRU, FFN: teacher-forced BPTT over windows (fused kernels), with
  truncation every ``tbptt`` steps; optionally (``horizon > 0``; off by
  default) a closed-loop loss over a horizon that grows from ``horizon_start``
  to ``horizon`` during training (the model feeds back its own predictions and
  learns to survive its own errors);
  Adam, RMSprop or SGD with (Nesterov) momentum, gradient-norm clipping, a
  cosine learning-rate schedule, early stopping; or Hessian-free optimisation
  (``optimizer="hf"``, :mod:`odernn.learn.hessian_free`) of the teacher-forced loss.
  Checkpoints are selected on the closed-loop validation error (NRMSE of x over
  whole trajectories), since teacher-forced loss does not predict closed-loop
  quality;
- ESN: one pass accumulating ``X^T X``, ``X^T Y``, then the ridge strength
  chosen on closed-loop validation error (:func:`choose_ridge`).

The run directory holds ``config.json``, ``history.csv`` (one row per epoch,
or per ridge candidate) and the checkpoints ``best.pt`` and ``last.pt``
(:mod:`odernn.learn.checkpoint`). ``resume=True`` continues from ``last.pt`` to the
same result as an uninterrupted run; Ctrl-C saves ``last.pt`` after the
current batch and returns; a non-finite loss stops the run and keeps the last
good checkpoints.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from odernn import jsonio
from odernn.assess.metrics import nrmse
from odernn.checks import check_seed, did_you_mean
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, OutputError, SpecError
from odernn.interrupt import interrupt_guard
from odernn.learn import distributed as dd
from odernn.learn.checkpoint import BEST, LAST, read_checkpoint, save_checkpoint
from odernn.learn.hessian_free import HessianFree
from odernn.learn.models import REGISTRY, TARGETS, RecurrentSurrogate, build, surrogate_record
from odernn.learn.models.layout import DEFAULT_INPUTS, Layout, check_data
from odernn.learn.rundir import CONFIG, RunWriter, check_run_dir
from odernn.learn.windows import (
    SequenceTensors,
    compute_stats,
    fingerprint,
    split_by_trajectory,
    to_tensors,
)

OPTIMIZERS = ("adam", "rmsprop", "sgd", "hf")
SCHEDULES = ("cosine", "constant")
MOMENTUM_SCHEDULES = ("constant", "sutskever")
DEVICES = ("auto", "cpu", "cuda")

TRAINING_DEFAULTS: dict[str, dict[str, Any]] = {
    "rnn": {"lr": 3e-3, "epochs": 200, "batch_size": 256, "window": 50, "horizon": 0,
            "horizon_start": 0},
    "lstm": {"lr": 3e-3, "epochs": 60, "batch_size": 256, "window": 50, "horizon": 0,
             "horizon_start": 0},
    "gru": {"lr": 3e-3, "epochs": 100, "batch_size": 256, "window": 50, "horizon": 0,
            "horizon_start": 0},
    "esn": {},
    "ffn": {"lr": 3e-3, "epochs": 100, "batch_size": 256, "window": 50, "horizon": 0,
            "horizon_start": 0},
}
"""Per family, the training options whose defaults differ (every family: ``odernn models``).

Every default trains teacher-forced (``horizon = 0``); the closed-loop loss is an option
(``horizon``, ``horizon_start``, ``closed_loop_from``, ``closed_loop_weight``)."""

MODEL_OPTIONS = ("hidden", "head", "skip", "activation", "output_activation", "init",
                 "init_spectral_radius", "units", "spectral_radius", "leak_rate", "input_scaling",
                 "bias", "degree")
GRADIENT_OPTIONS = ("lr", "epochs", "batch_size", "window", "horizon", "horizon_start", "tbptt",
                    "optimizer", "momentum", "momentum_schedule", "nesterov", "weight_decay",
                    "clip", "schedule", "warmup_epochs", "patience", "val_every",
                    "closed_loop_weight", "closed_loop_from", "damping", "structural_damping",
                    "max_cg_iters")
HF_OPTIONS = {"damping": 1.0, "structural_damping": 0.0, "max_cg_iters": 50}
"""Options of the Hessian-free optimiser only, with their defaults."""
ESN_OPTIONS = ("ridge", "ridge_grid")


@dataclass(frozen=True)
class TrainConfig:
    """Every training option. ``None`` means the family's default (see ``odernn models``).

    Data layout: ``target`` (state, velocity, next-value), ``inputs`` (None:
    the target's default channels), ``use_eta`` (False withholds eta),
    ``warmup`` (K observed steps a rollout is given), ``lags`` (series only).
    Model: the family's hyperparameters (``hidden``, ``head``,
    ``activation``, ``output_activation`` for RNN/LSTM/GRU; ``init``,
    ``init_spectral_radius`` for the RNN; ``hidden``, ``head``, ``skip``,
    ``activation`` for the FFN; ``units``, ``spectral_radius``, ``leak_rate``,
    ``input_scaling``, ``bias``, ``degree``, ``ridge`` (None: chosen on
    closed-loop validation by :func:`choose_ridge`, starting from ``ridge_grid`` and
    widening it until the choice is bracketed) for the ESN).
    Optimisation (RNN/LSTM/GRU): windows of ``window`` steps in batches of
    ``batch_size``, ``tbptt`` (truncate BPTT every k steps; None: whole
    window), closed-loop horizon growing from ``horizon_start`` to ``horizon``
    (0 disables the closed-loop loss) weighted by ``closed_loop_weight``;
    ``optimizer``, ``lr``, ``momentum`` (with ``momentum_schedule="sutskever"``
    the ceiling ``mu_max`` of :func:`momentum_at`, SGD only), ``nesterov``,
    ``weight_decay``,
    ``clip`` (gradient-norm clipping, None: off), ``schedule`` with
    ``warmup_epochs``, ``epochs``, ``patience`` (early stopping, None: off).
    ``optimizer="hf"`` (Hessian-free, teacher-forced windows only: no
    ``horizon``, no ``tbptt``; ``lr``, ``momentum``, ``clip`` and ``schedule``
    unused) takes ``damping`` (initial Tikhonov lambda), ``structural_damping``
    (mu, on the hidden states; 0: off) and ``max_cg_iters`` per step.
    Validation: ``val_fraction`` of the trajectories (when no validation set
    is given), the closed loop over ``val_steps`` points (None: all).
    """

    model: str = "lstm"
    target: str = "state"
    inputs: tuple[str, ...] | None = None
    use_eta: bool = True
    warmup: int = 0
    lags: int = 1
    hidden: int | None = None
    head: tuple[int, ...] | None = None
    skip: bool | None = None
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
    lr: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    window: int | None = None
    tbptt: int | None = None
    horizon: int | None = None
    horizon_start: int | None = None
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
    val_fraction: float = 0.1
    val_steps: int | None = None
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.model not in REGISTRY:
            raise SpecError(f"model {self.model!r} unknown; allowed: {', '.join(REGISTRY)}")
        defaults = {**REGISTRY[self.model].defaults, **TRAINING_DEFAULTS[self.model]}
        for name in (*MODEL_OPTIONS, *GRADIENT_OPTIONS):
            if getattr(self, name) is None and name in defaults:
                value = defaults[name]
                object.__setattr__(self, name, tuple(value) if isinstance(value, list) else value)
        if self.model != "esn" and self.val_every is None:
            object.__setattr__(self, "val_every", max(1, round(self.epochs / 20)))
        for name in ("inputs", "head", "ridge_grid"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
        self._validate()

    def _validate(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise SpecError(f"training option {what}")

        need(self.target in TARGETS, f"target {self.target!r} unknown; allowed: "
             f"{', '.join(TARGETS)}")
        REGISTRY[self.model].check_layout(self.layout(1.0))  # Layout, then the family
        REGISTRY[self.model].check_options(**self.model_args())  # the family's hyperparameters
        need(self.optimizer in OPTIMIZERS, f"optimizer {self.optimizer!r} unknown; allowed: "
             f"{', '.join(OPTIMIZERS)}")
        need(self.schedule in SCHEDULES, f"schedule {self.schedule!r} unknown; allowed: "
             f"{', '.join(SCHEDULES)}")
        need(self.device in DEVICES, f"device {self.device!r} unknown; allowed: "
             f"{', '.join(DEVICES)}")
        need(0.0 < self.val_fraction < 1.0, f"val_fraction must be in (0, 1), got "
             f"{self.val_fraction}")
        need(self.val_steps is None or self.val_steps >= 2, "val_steps must be >= 2 or None")
        need(len(self.ridge_grid) > 0 and all(r >= 0 for r in self.ridge_grid),
             "ridge_grid must be a non-empty list of ridge strengths >= 0")
        need(self.ridge is None or self.ridge >= 0, f"ridge must be >= 0, got {self.ridge}")
        check_seed(self.seed, "training option seed")
        self._check_memory()
        if self.model == "esn":
            return
        positive = ("lr", "epochs", "batch_size", "window")
        for name in positive:
            need(getattr(self, name) > 0, f"{name} must be > 0, got {getattr(self, name)}")
        need(0 <= self.horizon_start <= self.horizon or self.horizon == 0,
             f"need 0 <= horizon_start <= horizon, got {self.horizon_start}, {self.horizon}")
        need(self.tbptt is None or self.tbptt >= 1, f"tbptt must be >= 1, got {self.tbptt}")
        need(self.clip is None or self.clip > 0, f"clip must be > 0 or None, got {self.clip}")
        need(self.patience is None or self.patience >= 1, "patience must be >= 1 or None")
        need(self.val_every >= 1, f"val_every must be >= 1, got {self.val_every}")
        need(self.warmup_epochs >= 0 and self.weight_decay >= 0 and self.momentum >= 0,
             "warmup_epochs, weight_decay and momentum must be >= 0")
        need(self.closed_loop_weight >= 0, "closed_loop_weight must be >= 0")
        need(0 <= self.closed_loop_from < 1, "closed_loop_from must be in [0, 1)")
        need(self.momentum_schedule in MOMENTUM_SCHEDULES, f"momentum_schedule "
             f"{self.momentum_schedule!r} unknown; allowed: {', '.join(MOMENTUM_SCHEDULES)}")
        need(self.momentum_schedule == "constant" or (self.optimizer == "sgd" and
                                                      0 < self.momentum < 1),
             "momentum_schedule 'sutskever' needs optimizer 'sgd' and 0 < momentum < 1")
        if self.optimizer != "hf":
            for name, default in HF_OPTIONS.items():
                need(getattr(self, name) == default, f"{name} applies to optimizer 'hf' only")
            return
        need(self.damping > 0, f"damping must be > 0, got {self.damping}")
        need(self.structural_damping >= 0,
             f"structural_damping must be >= 0, got {self.structural_damping}")
        need(self.max_cg_iters >= 1, f"max_cg_iters must be >= 1, got {self.max_cg_iters}")
        need(self.horizon == 0, "horizon must be 0 with optimizer 'hf' (it fits the "
             f"teacher-forced loss only), got {self.horizon}")
        need(self.tbptt is None, "tbptt must be None with optimizer 'hf' (whole windows)")
        need(self.structural_damping == 0 or self.model != "ffn",
             "structural_damping needs hidden states: the ffn family has none")

    def _check_memory(self) -> None:
        """Refuse sizes (hidden, units, batch_size, window) whose training would not fit the
        memory budget (:mod:`odernn.budget`), before the model is built."""
        from odernn import budget

        layout = self.layout(1.0)
        sizes = (layout.n_inputs, layout.n_init, layout.n_outputs)
        if self.model == "esn":
            need = budget.training_bytes("esn", self.model_args(), *sizes)
            budget.check(f"units = {self.units}", need,
                         "the readout's normal equations are (units + inputs + 1) squared, "
                         "dense, in float64; reduce units")
            return
        batch = max(int(self.batch_size or 0), 0)
        steps = max(int(self.window or 0), 0) + max(int(self.horizon or 0), 0) + self.warmup
        need = budget.training_bytes(self.model, self.model_args(), *sizes,
                                     batch_size=batch, steps=steps)
        budget.check(f"hidden = {self.hidden}, batch_size = {batch}, "
                     f"window = {self.window} (+ horizon {self.horizon}, warmup {self.warmup})",
                     need, "that is for the weights, their gradients and optimiser state, and "
                     "the activations of one batch; reduce hidden, batch_size or window")

    def layout(self, dt: float) -> Layout:
        """The data layout these options describe, for data on a grid of step ``dt``."""
        inputs = self.inputs if self.inputs is not None else DEFAULT_INPUTS[self.target]
        if not self.use_eta:
            inputs = tuple(c for c in inputs if c != "eta")
        elif self.target != "next-value" and "eta" not in inputs:
            inputs = (*inputs, "eta")
        return Layout(self.target, inputs, dt, self.lags, self.warmup)

    def model_args(self) -> dict[str, Any]:
        """Constructor hyperparameters of the family."""
        args = {k: getattr(self, k) for k in REGISTRY[self.model].defaults if k != "seed"}
        return {**{k: list(v) if isinstance(v, tuple) else v for k, v in args.items()},
                "seed": self.seed}

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON), the options that apply to the family only."""
        d = dataclasses.asdict(self)
        skip = set(MODEL_OPTIONS) - set(REGISTRY[self.model].defaults)
        skip |= set(ESN_OPTIONS) if self.model != "esn" else set(GRADIENT_OPTIONS)
        if self.optimizer != "hf":
            skip |= set(HF_OPTIONS)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items() if k not in skip}

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "config") -> TrainConfig:
        """Options from plain data (TOML, JSON, CLI): unknown keys, options of another family
        and bad values raise SpecError (with a "did you mean" for a misspelt key)."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in names:
                raise SpecError(f"{where}: unknown training option {key!r}"
                                f"{did_you_mean(key, names)}")
        model = d.get("model", cls.model)
        if model not in REGISTRY:
            raise SpecError(f"{where}: model {model!r} unknown; allowed: {', '.join(REGISTRY)}")
        own = set(REGISTRY[model].defaults) | (set(ESN_OPTIONS) if model == "esn"
                                               else set(GRADIENT_OPTIONS))
        for key, value in d.items():
            if value is not None and key in (*MODEL_OPTIONS, *ESN_OPTIONS,
                                              *GRADIENT_OPTIONS) and key not in own:
                users = [f for f, c in REGISTRY.items()
                         if key in c.defaults or (key in ESN_OPTIONS and f == "esn")
                         or (key in GRADIENT_OPTIONS and f != "esn")]
                raise SpecError(f"{where}: option {key!r} does not apply to model {model!r} "
                                f"(it is for {', '.join(users)})")
        hints = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {k: _coerce(k, v, str(hints[k]), where) for k, v in d.items()}
        try:
            return cls(**values)
        except SpecError as err:
            raise SpecError(f"{where}: {err}") from None


def _coerce(key: str, value: Any, hint: str, where: str) -> Any:
    """``value`` checked against the annotation ``hint`` (a string: ``from __future__``)."""
    if value is None:
        if "None" not in hint:
            raise SpecError(f"{where}: option {key!r} cannot be empty")
        return None
    kind = hint.split("|")[0].strip()

    def bad(allowed: str) -> SpecError:
        return SpecError(f"{where}: option {key!r} = {value!r} is invalid; allowed: {allowed}")

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise bad("an integer")
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            raise bad("a finite number")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    item = kind[len("tuple["):].split(",")[0]
    if not isinstance(value, list | tuple):
        raise bad(f"a list of {item}")
    return tuple(_coerce(key, v, item, where) for v in value)


@dataclass
class TrainResult:
    """What a run produced: ``status`` is ok, early-stopped, interrupted or diverged;
    ``best_epoch`` counts from 0 (history.csv's ``epoch`` column counts from 1; the reservoir,
    fitted in one pass, has 0)."""

    run_dir: Path
    status: str
    message: str
    best_epoch: int
    best_val_nrmse: float
    history: list[dict[str, float]] = field(default_factory=list)
    train_time_s: float = 0.0

    @property
    def best(self) -> Path:
        return self.run_dir / BEST

    @property
    def last(self) -> Path:
        return self.run_dir / LAST


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecError("device 'cuda' requested but no CUDA GPU is available; allowed here: cpu")
    return torch.device(name)


def closed_loop_nrmse(model: RecurrentSurrogate, data: Trajectories,
                      n_steps: int | None = None) -> float:
    """NRMSE of x of the closed-loop rollout on ``data`` (warm-up steps excluded; inf if any
    trajectory diverged)."""
    t = data.n_steps if n_steps is None else min(n_steps, data.n_steps)
    k = model.warmup_steps
    warm = None if k == 0 else (data.x[:, :k], None if data.v is None else data.v[:, :k])
    if model.layout.series:
        out = model.rollout(data.x[:, 0], warmup=warm, n_steps=t)
    else:
        eta = data.params.get("eta") if model.uses_eta else None
        out = model.rollout(data.x[:, 0], data.v[:, 0], data.F[:, :t], eta, warm)
    if out.n_diverged:
        return math.inf
    return nrmse(out.x, data.x[:, :t], start=max(k, 1))


def train(train: Trajectories, config: TrainConfig, run_dir: Path, *,
          val: Trajectories | None = None, resume: bool = False,
          progress: bool | Callable[[dict[str, Any]], None] = True,
          overwrite: bool = False) -> TrainResult:
    """Train ``config.model`` on ``train`` and write the run directory ``run_dir``.

    Validation is ``val`` or, when None, ``config.val_fraction`` of the
    trajectories of ``train`` (whole trajectories). ``progress`` is True (one
    line on stderr), False, or a callable receiving a dict per batch.
    """
    device, created = dd.setup(resolve_device(config.device))
    try:
        return _train(train, config, Path(run_dir), val, resume, progress, overwrite, device)
    finally:
        dd.teardown(created)


def _train(train, config, run_dir, val, resume, progress, overwrite, device) -> TrainResult:
    """:func:`train` on ``device``, inside the process group when distributed (rank 0 alone
    prepares and writes the run directory; the others wait at a barrier)."""
    main = dd.rank() == 0
    source = {"train": fingerprint(train), "val": None if val is None else fingerprint(val),
              "val_fraction": None if val is not None else config.val_fraction}
    if val is None:
        train, val = split_by_trajectory(train, config.val_fraction, config.seed)
    layout = config.layout(train.dt)
    stats = compute_stats(train, layout)
    check_data(val, layout, where="validation data")
    if config.model != "esn":
        _check_length(train, config)
    model = build(config.model, layout, stats, **config.model_args()).to(device)
    # everything that can be refused has been checked: only now is the run directory touched
    if resume:  # read-only checks first: a refused resume touches nothing
        check_run_dir(run_dir, resume, overwrite)
    previous = _resumable(run_dir, config, source) if resume else None
    out = RunWriter(run_dir, resume=resume, overwrite=overwrite)
    error = None
    if main:
        try:
            out.open()
        except (OutputError, DataError) as err:
            error = err
    if dd.any_rank(error is not None):
        raise error or OutputError(f"rank 0 could not prepare run directory {run_dir}")
    try:
        report = _reporter(progress if main else False)
        fit = _fit_ridge if config.model == "esn" else _fit_gradient
        if main:
            _write_json(out.path / CONFIG, {"config": config.to_dict(), "data": source})
        return fit(model, config, train, val, out, source, previous, report)
    except BaseException:  # a full disk, an error: the previous run stays, or a new run with
        # no checkpoint to resume from leaves nothing
        if main:
            out.discard()
        raise
    finally:
        out.close()


# -- the reservoir ---------------------------------------------------------------------------


def _fit_ridge(model, config, train, val, out, source, previous, report) -> TrainResult:
    """Accumulate the normal equations once, then pick the ridge on closed-loop validation.

    One pass, deterministic: a resumed fit simply runs again (``previous`` is not needed).
    """
    start = time.perf_counter()
    data = to_tensors(train, model.layout, model.device)
    nf = model.n_features
    gram = torch.zeros(nf, nf, dtype=torch.float64, device=model.device)
    cross = torch.zeros(nf, model.layout.n_outputs, dtype=torch.float64, device=model.device)
    rows, block = 0, 64
    mine = dd.share(data.n)  # each rank accumulates its contiguous share of trajectories
    for b in range(mine.start, mine.stop, block):
        end = min(b + block, mine.stop)
        rows += model.accumulate(data.z[b:end], data.e[b:end], gram, cross)
        report({"stage": "reservoir", "done": end - mine.start, "total": mine.stop - mine.start})
    dd.all_sum(gram)
    dd.all_sum(cross)
    rows = int(dd.all_sum(torch.tensor([rows], dtype=torch.float64)).item())
    history: list[dict[str, float]] = []

    def score(ridge: float) -> float:
        model.solve_readout(gram, cross, rows, ridge)
        err = closed_loop_nrmse(model, val, config.val_steps)
        history.append({"ridge": ridge, "val_nrmse_x": err, "time": time.perf_counter() - start})
        report({"stage": "ridge", "done": len(history), "ridge": ridge, "val_nrmse_x": err})
        return err

    if config.ridge is not None:
        best, note = (score(config.ridge), config.ridge), "given"
    else:
        best, note = choose_ridge(score, config.ridge_grid)
    model.solve_readout(gram, cross, rows, best[1])
    elapsed = time.perf_counter() - start
    record = _model_record(model, config, source, {"val_nrmse_x": best[0], "ridge": best[1],
                                                   "train_time_s": elapsed})
    if dd.rank() == 0:
        save_checkpoint(out.path / BEST, record)
        save_checkpoint(out.path / LAST, record)
        _write_history(out.path, history)
        out.published()
    dd.barrier()
    status = "ok" if math.isfinite(best[0]) else "diverged"
    message = (f"ridge {best[1]:g} chosen ({note})"
               if status == "ok" else "every ridge strength diverged in closed loop; try a "
               "smaller spectral_radius or input_scaling, or larger ridge values")
    report({"stage": "done", "message": message})
    return TrainResult(out.target, status, message, 0, best[0], history, elapsed)


RIDGE_TOLERANCE = 0.05
"""Ridge strengths whose validation error is within this fraction of the lowest count as equal:
the largest of them is chosen (the most regularised readout that loses nothing measurable)."""
RIDGE_STEP, RIDGE_FLOOR, RIDGE_CEILING = 100.0, 1e-24, 1e4
"""The grid is widened by this factor per step, within these bounds (below the floor: 0)."""


def choose_ridge(score: Callable[[float], float], grid: tuple[float, ...]
                 ) -> tuple[tuple[float, float], str]:
    """The ridge strength to keep, ``((error, ridge), how it was chosen)``.

    ``score(ridge)`` is the closed-loop validation error. Starting from ``grid``, the largest
    ridge within :data:`RIDGE_TOLERANCE` of the lowest error is chosen; while that choice is
    an end of the values tried, the grid is widened beyond it, so the choice is bracketed
    (worse or equal errors on both sides) or the note says why it is not.
    """
    errors = {r: score(r) for r in sorted(set(grid))}

    def pick() -> tuple[float, float]:
        low = min(errors.values())
        if not math.isfinite(low):
            return low, min(errors)
        return low, max(r for r, e in errors.items() if e <= low * (1 + RIDGE_TOLERANCE))

    while True:
        low, ridge = pick()
        lo, hi = min(errors), max(errors)
        if ridge == hi and hi > 0 and hi * RIDGE_STEP <= RIDGE_CEILING and math.isfinite(low):
            errors[hi * RIDGE_STEP] = score(hi * RIDGE_STEP)
        elif ridge == lo and lo > 0 and math.isfinite(low):
            below = lo / RIDGE_STEP if lo / RIDGE_STEP >= RIDGE_FLOOR else 0.0
            errors[below] = score(below)
        else:
            break
    if ridge == 0.0:
        note = "no regularisation was best: least squares, ridge 0"
    elif ridge == max(errors) and len(errors) > 1:
        note = f"the largest tried, at the ceiling {RIDGE_CEILING:g}"
    else:
        note = (f"the largest within {RIDGE_TOLERANCE:.0%} of the lowest closed-loop error, "
                f"bracketed by {min(errors):g}..{max(errors):g}")
    return (errors[ridge], ridge), note


# -- gradient training -----------------------------------------------------------------------


def _fit_gradient(model, config, train, val, out, source, previous, report) -> TrainResult:
    """Teacher-forced + growing closed-loop loss, checkpoints on closed-loop validation error."""
    device = model.device
    data = to_tensors(train, model.layout, device)
    val_tensors = to_tensors(val, model.layout, device)
    if getattr(model, "D", None) is not None and previous is None:
        _fit_skip(model, data)
    main = dd.rank() == 0
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(config, params) if config.optimizer != "hf" else _hessian_free(
        model, config)
    batch_seed = int(np.random.SeedSequence(config.seed).generate_state(1)[0])
    gen = torch.Generator().manual_seed(batch_seed)  # windows and shuffling, not the weights
    length = _window_length(config)
    n_windows = max(config.batch_size, data.n * (data.n_steps - 1) // config.window)
    n_batches = math.ceil(n_windows / config.batch_size)
    state = {"epoch": 0, "batch": 0, "history": [], "best_val": math.inf, "best_epoch": -1,
             "since_best": 0, "elapsed": 0.0, "partial": _zero_partial()}
    if previous is not None:
        state = _restore(previous, model, optimizer, gen, state)
    dd.broadcast_parameters(model)
    status, message = "ok", f"trained {config.epochs} epochs"
    with interrupt_guard() as interrupted:
        while state["epoch"] < config.epochs:
            epoch = state["epoch"]
            epoch_rng = gen.get_state()
            rows = torch.randint(data.n, (n_windows,), generator=gen)
            starts = torch.randint(data.n_steps - length, (n_windows,), generator=gen)
            horizon = _horizon_at(config, epoch)
            t0 = time.perf_counter()
            # the learning rate of the epoch's last batch so far: a run resumed at the epoch's
            # end (every batch done) runs none and ends the epoch with it
            lr = (math.nan if isinstance(optimizer, HessianFree)
                  else _lr_at(config, epoch + max(state["batch"] - 1, 0) / n_batches))
            for b in range(state["batch"], n_batches):
                sl = slice(b * config.batch_size, (b + 1) * config.batch_size)
                batch_rows, batch_starts = rows[sl], starts[sl]
                n_batch = len(batch_rows)
                if isinstance(optimizer, HessianFree):
                    # HF: every rank steps on the whole batch (same result, no reduction)
                    windows = data.windows(batch_rows.to(device), batch_starts.to(device),
                                           length)
                    lr = math.nan  # HF has no learning rate: its steps come from CG
                    losses = _hf_batch(model, config, optimizer, windows)
                else:
                    lr = _lr_at(config, epoch + b / n_batches)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                        if config.momentum_schedule == "sutskever":
                            group["momentum"] = momentum_at(epoch * n_batches + b,
                                                            config.momentum)
                    mine = dd.share(n_batch)  # this rank's contiguous share of the windows
                    windows = data.windows(batch_rows[mine].to(device),
                                           batch_starts[mine].to(device), length)
                    losses = _train_batch(model, config, optimizer, params, windows, horizon,
                                          weight=windows.n / n_batch)
                if not math.isfinite(losses["loss"]):
                    status = "diverged"
                    kept = (f"kept best.pt (epoch {state['best_epoch'] + 1}) and last.pt "
                            f"(epoch {epoch})" if epoch > 0 else "no checkpoint written")
                    message = (f"non-finite loss at epoch {epoch + 1}, batch {b + 1}: stopped, "
                               f"{kept}; try a lower lr (now {lr:.3g}), clip (now "
                               f"{config.clip}) or a shorter horizon")
                    break
                _accumulate(state["partial"], losses, n_batch, config, horizon)
                state["batch"] = b + 1
                report({"stage": "epoch", "epoch": epoch + 1, "epochs": config.epochs,
                        "batch": b + 1, "batches": n_batches, **_means(state["partial"]),
                        "steps_per_s": state["partial"]["steps"] / max(
                            state["partial"]["time"] + time.perf_counter() - t0, 1e-9)})
                if dd.any_rank(interrupted()):
                    break
            state["partial"]["time"] += time.perf_counter() - t0
            state["elapsed"] += time.perf_counter() - t0
            if status == "diverged":
                break
            if dd.any_rank(interrupted()):
                status = "interrupted"
                message = (f"interrupted at epoch {epoch + 1}, batch {state['batch']}: saved "
                           f"{out.target / LAST}")
                if main:
                    _save_last(out.path, model, optimizer, config, source, state, epoch_rng)
                    out.published()
                dd.barrier()
                break
            validate = (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs
            row = _end_epoch(model, config, state, val if validate else None, val_tensors,
                             horizon, lr)
            report({"stage": "validated", "epochs": config.epochs, **row})
            if row["val_nrmse_x"] < state["best_val"] or (validate and state["best_epoch"] < 0):
                state["best_val"], state["best_epoch"], state["since_best"] = \
                    row["val_nrmse_x"], epoch, 0
                if main:
                    save_checkpoint(out.path / BEST, _model_record(model, config, source, row))
            elif validate:
                state["since_best"] += 1
            state["epoch"], state["batch"], state["partial"] = epoch + 1, 0, _zero_partial()
            if main:
                _save_last(out.path, model, optimizer, config, source, state, gen.get_state())
                _write_history(out.path, state["history"])
                out.published()
            dd.barrier()
            if config.patience is not None and state["since_best"] >= config.patience:
                status = "early-stopped"
                message = (f"early stop after epoch {epoch + 1}: no better closed-loop "
                           f"validation error for {config.patience} epochs")
                break
    if status in ("ok", "early-stopped") and not math.isfinite(state["best_val"]):
        status = "diverged"  # a finite loss, but no closed-loop validation stayed finite
        message = (f"{message}, but every closed-loop validation diverged; try a lower lr "
                   f"(now {config.lr:g}) or a smaller clip (now {config.clip})")
    report({"stage": "done", "message": message})
    return TrainResult(out.target, status, message, state["best_epoch"], state["best_val"],
                       state["history"], state["elapsed"])


def _window_length(config: TrainConfig) -> int:
    """Steps in a training window: the teacher-forced window or the closed-loop horizon."""
    return max(config.window, config.horizon + config.warmup if config.horizon else 0)


def _check_length(data: Trajectories, config: TrainConfig) -> None:
    length = _window_length(config)
    if data.n_steps - 1 < length:
        raise DataError(f"trajectories have {data.n_steps} points; window {config.window}, "
                        f"horizon {config.horizon} and warmup {config.warmup} need at least "
                        f"{length + 1}")


def _fit_skip(model, data: SequenceTensors) -> None:
    """Start the linear skip ``D u + c`` at the least-squares fit of the teacher-forced outputs,
    so the recurrent part learns only what is not linear in the inputs."""
    with torch.no_grad():
        u = model.codec.encode(data.z[:, :-1], data.e[:, :-1]).reshape(-1, model.D.shape[1])
        y = model.codec.target(data.z[:, :-1], data.z[:, 1:]).reshape(u.shape[0], -1)
        x = torch.cat([u, torch.ones_like(u[:, :1])], dim=1).double()
        coef = torch.linalg.lstsq(x.cpu(), y.double().cpu()).solution.to(model.D)
        model.D.copy_(coef[:-1].T)
        model.c.copy_(coef[-1])


def _train_batch(model, config, optimizer, params, w: SequenceTensors,
                 horizon: int, weight: float = 1.0) -> dict[str, float]:
    """One optimiser step on a batch of windows; returns the losses and the gradient norm.

    Distributed, ``w`` is this rank's share of the batch and ``weight`` its fraction of the
    windows: losses and gradients are weighted sums over the ranks, the whole batch's."""
    optimizer.zero_grad(set_to_none=True)
    tf = cl = torch.zeros((), device=model.device)
    loss = tf
    if w.n > 0:
        tf = _teacher_forced_loss(model, w, config.window, config.tbptt)
        loss = tf
        if horizon > 0 and config.closed_loop_weight > 0:
            cl = _closed_loop_loss(model, w, horizon)
            loss = tf + config.closed_loop_weight * cl
    if dd.active():
        total = dd.all_sum(torch.stack([loss, tf, cl]).detach().float() * weight).cpu()
        whole = {"loss": total[0].item(), "tf_loss": total[1].item(), "cl_loss": total[2].item()}
    else:
        whole = {"loss": loss.item(), "tf_loss": tf.item(), "cl_loss": cl.item()}
    if not math.isfinite(whole["loss"]):
        return {"loss": math.inf}
    if loss.requires_grad:
        loss.backward()
    dd.reduce_gradients(params, weight)
    if config.clip is not None:
        norm = torch.nn.utils.clip_grad_norm_(params, config.clip)
    else:
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
    if not torch.isfinite(norm):
        return {"loss": math.inf}
    optimizer.step()
    return {**whole, "grad_norm": norm.item()}


class _TeacherForced(nn.Module):
    """A surrogate as a function of its parameters for Hessian-free optimisation:
    ``forward(u, s0)`` gives the teacher-forced outputs of a window (and the hidden states,
    for structural damping). It steps the cell's written-out equations, because HF's
    curvature products need forward-mode AD, which fused (cuDNN) kernels lack."""

    def __init__(self, net: RecurrentSurrogate, hidden: bool) -> None:
        super().__init__()
        self.net, self.hidden = net, hidden

    def forward(self, u: Tensor, s0: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        state = self.net.initial_state(s0)
        ys, hs = [], []
        for i in range(u.shape[1]):
            y, state = self.net.step(u[:, i], state)
            ys.append(y)
            if self.hidden:
                hs.append(state[0])
        y = torch.stack(ys, dim=1)
        return (y, torch.stack(hs, dim=1)) if self.hidden else y


def _hessian_free(model: RecurrentSurrogate, config: TrainConfig) -> HessianFree:
    """HF on every parameter of ``model`` (updated in place), driven functionally."""
    module = _TeacherForced(model, hidden=config.structural_damping > 0)
    params = {k: p for k, p in module.named_parameters() if p.requires_grad}

    def f(p: dict[str, Tensor], inputs: tuple[Tensor, Tensor]):
        return torch.func.functional_call(module, p, inputs)

    return HessianFree(f, params, damping=config.damping,
                       structural_damping=config.structural_damping,
                       max_cg_iters=config.max_cg_iters)


def _hf_batch(model, config: TrainConfig, hf: HessianFree,
              w: SequenceTensors) -> dict[str, float]:
    """One HF step on the teacher-forced loss of a batch of windows (the gradient path's loss
    with ``tbptt=None``); returns the loss before the step and HF's damping and CG stats."""
    z, e = w.z[:, :config.window + 1], w.e[:, :config.window + 1]
    codec = model.codec
    inputs = (codec.encode(z[:, :-1], e[:, :-1]), codec.init_features(z[:, 0], e[:, 0]))
    try:
        stats = hf.step((inputs, codec.target(z[:, :-1], z[:, 1:])))
    except FloatingPointError:
        return {"loss": math.inf}
    return {"loss": stats["loss"], "tf_loss": stats["loss"], "cl_loss": 0.0,
            "hf_lambda": stats["lambda"], "hf_cg_iters": float(stats["cg_iters"]),
            "hf_alpha": stats["alpha"]}


def _teacher_forced_loss(model, w: SequenceTensors, window: int, tbptt: int | None):
    """MSE of the normalised outputs over the first ``window`` steps, the true state fed at each
    step; the hidden state is detached every ``tbptt`` steps (truncated BPTT)."""
    z, e = w.z[:, :window + 1], w.e[:, :window + 1]
    codec = model.codec
    state = model.initial_state(codec.init_features(z[:, 0], e[:, 0]))
    u, y_true = codec.encode(z[:, :-1], e[:, :-1]), codec.target(z[:, :-1], z[:, 1:])
    chunk = tbptt or window
    total = 0.0
    for s in range(0, window, chunk):
        if s > 0:
            state = tuple(h.detach() for h in state)
        y, state = model.sequence(u[:, s:s + chunk], state)
        total = total + torch.sum(torch.square(y - y_true[:, s:s + chunk]))
    return total / y_true.numel()


def _closed_loop_loss(model, w: SequenceTensors, horizon: int):
    """MSE of the carried state (in training standard deviations) after feeding the model its
    own predictions for ``horizon`` steps (the first ``warmup`` steps observed)."""
    k = model.warmup_steps
    z, e = w.z[:, :horizon + k + 1], w.e[:, :horizon + k]
    pred = model.closed_loop(z[:, 0], e, z[:, :k] if k else None)
    err = (pred[:, k + 1:] - z[:, k + 1:]) / model.codec.state_std()
    return torch.mean(torch.square(err))


def _end_epoch(model, config, state, val, val_tensors, horizon, lr) -> dict[str, float]:
    """Validate (teacher-forced loss, closed-loop NRMSE of x), append a history row."""
    model.eval()
    with torch.no_grad():
        n = min(val_tensors.n_steps - 1, max(config.window, 1))
        y, y_true = model.teacher_forced(val_tensors.z[:, :n + 1], val_tensors.e[:, :n + 1])
        val_loss = torch.mean(torch.square(y - y_true)).item()
    val_err = math.nan if val is None else closed_loop_nrmse(model, val, config.val_steps)
    model.train()
    means = _means(state["partial"])
    row = {"epoch": state["epoch"] + 1, **means, "val_loss": val_loss, "val_nrmse_x": val_err,
           "lr": lr, "horizon": horizon, "steps_per_s": state["partial"]["steps"] / max(
               state["partial"]["time"], 1e-9), "time": state["elapsed"]}
    state["history"].append(row)
    return row


_COUNTERS = ("batches", "steps", "time")


def _zero_partial() -> dict[str, float]:
    """Sums over an epoch's batches: the counters, then whatever a batch reports."""
    return {"batches": 0, "steps": 0, "time": 0.0}


def _accumulate(partial, losses, n_windows: int, config, horizon) -> None:
    for k, v in losses.items():
        partial[k] = partial.get(k, 0.0) + v
    partial["batches"] += 1
    partial["steps"] += n_windows * (config.window + (horizon if config.closed_loop_weight else 0))


def _means(partial) -> dict[str, float]:
    """Batch means of the reported values (loss, tf_loss, cl_loss, then grad_norm or HF's
    damping lambda, CG iterations and line-search step alpha)."""
    n = max(partial["batches"], 1)
    return {k: v / n for k, v in partial.items() if k not in _COUNTERS}


def _horizon_at(config: TrainConfig, epoch: int) -> int:
    """Closed-loop horizon of ``epoch``: 0 before ``closed_loop_from`` (a fraction of the
    epochs), then linear from ``horizon_start`` to ``horizon`` over half of the remaining
    epochs, then constant."""
    first = int(round(config.closed_loop_from * config.epochs))
    if config.horizon == 0 or epoch < first:
        return 0
    ramp = max(1, (config.epochs - first) // 2)
    frac = min(1.0, (epoch - first) / ramp)
    return int(round(config.horizon_start + frac * (config.horizon - config.horizon_start)))


def _lr_at(config: TrainConfig, progress: float) -> float:
    """Learning rate at fractional epoch ``progress``: linear warm-up, then cosine to 1/100."""
    if progress < config.warmup_epochs:
        return config.lr * (progress + 1) / (config.warmup_epochs + 1)
    if config.schedule == "constant":
        return config.lr
    span = max(config.epochs - config.warmup_epochs, 1)
    frac = min(1.0, (progress - config.warmup_epochs) / span)
    return config.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac)))


def momentum_at(step: int, mu_max: float) -> float:
    """Sutskever et al.'s momentum schedule at optimiser step ``step`` (from 0):
    ``mu_t = min(1 - 2^(-1 - log2(floor(t / 250) + 1)), mu_max)``, i.e. 0.5, 0.75, 0.833, ...
    every 250 steps: little momentum while the gradients are large, then more."""
    return min(1.0 - 2.0 ** (-1.0 - math.log2(step // 250 + 1)), mu_max)


def _optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, momentum=config.momentum,
                                   weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov and config.momentum > 0,
                           weight_decay=config.weight_decay)


# -- run directory, checkpoints, resume --------------------------------------------------------


def _model_record(model, config, source, metrics) -> dict[str, Any]:
    return {**surrogate_record(model), "config": config.to_dict(), "data": source,
            "metrics": {k: float(v) for k, v in metrics.items()}}


def _save_last(run_dir, model, optimizer, config, source, state, rng_state) -> None:
    """``last.pt``: the model plus everything resume needs (optimiser, RNG, data position)."""
    record = _model_record(model, config, source, {})
    record["resume"] = {
        "optimizer": optimizer.state_dict(), "rng": rng_state, "epoch": state["epoch"],
        "batch": state["batch"], "history": state["history"], "best_val": state["best_val"],
        "best_epoch": state["best_epoch"], "since_best": state["since_best"],
        "elapsed": state["elapsed"], "partial": state["partial"]}
    save_checkpoint(run_dir / LAST, record)


def _resumable(run_dir: Path, config: TrainConfig, source: dict[str, Any]) -> dict[str, Any]:
    """``last.pt`` of ``run_dir``, checked to come from the same data and options."""
    record = read_checkpoint(run_dir / LAST)
    trained_on = record.get("data", {}).get("train", {}).get("sha256")
    if trained_on != source["train"]["sha256"]:
        raise DataError(f"cannot resume {run_dir}: it was trained on other data "
                        f"(sha256 {trained_on})")
    old, new = record.get("config", {}), config.to_dict()
    # a run from an earlier odernn lacks the options added since: they take their defaults (an
    # option since removed or changed is compared as stored, and reported below)
    with contextlib.suppress(SpecError):
        old = TrainConfig.from_dict(old).to_dict()
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise SpecError(f"cannot resume {run_dir} with other options ({', '.join(changed)}); "
                        f"resume with the options in {run_dir / 'config.json'}")
    if config.model != "esn" and "resume" not in record:
        raise DataError(f"cannot resume: {run_dir / LAST} holds no resume state")
    return record


def _restore(record, model, optimizer, gen, state) -> dict[str, Any]:
    """Load a ``last.pt`` record into the model, optimiser and generator; the loop state."""
    model.load_state_dict(record["state_dict"])
    optimizer.load_state_dict(record["resume"]["optimizer"])
    gen.set_state(record["resume"]["rng"].cpu())
    return {**state, **{k: v for k, v in record["resume"].items()
                        if k not in ("optimizer", "rng")}}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _atomic_text(path, jsonio.dumps(data, indent=2) + "\n")


def _write_history(run_dir: Path, rows: list[dict[str, float]]) -> None:
    """``history.csv``: one row per epoch (or ridge candidate), rewritten atomically."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()}
                         for r in rows)
    _atomic_text(run_dir / "history.csv", buf.getvalue())


def _atomic_text(path: Path, text: str) -> None:
    from odernn import atomic  # the one write-aside-then-rename (fsync, clean-up)

    atomic.write_text(path, text)


def _reporter(progress: bool | Callable[[dict[str, Any]], None]) -> Callable[[dict], None]:
    """The progress callback: the caller's, a stderr display, or nothing. On a terminal one
    line is redrawn in place as the batches go; otherwise (a log file, a batch job) a plain
    line is written per epoch, with its validation, and per stage, without escape codes."""
    if callable(progress):
        return progress
    if not progress:
        return lambda info: None
    tty = sys.stderr.isatty()
    last = [0.0]

    def line(info: dict[str, Any]) -> str:
        if info["stage"] == "epoch":
            frac = info["batch"] / info["batches"]
            bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
            return (f"epoch {info['epoch']}/{info['epochs']} [{bar}] loss {info['loss']:.3g} "
                    f"(tf {info['tf_loss']:.3g}, closed loop {info['cl_loss']:.3g}) "
                    f"{info['steps_per_s'] / 1e3:.0f}k steps/s")
        if info["stage"] == "validated":
            val = info["val_nrmse_x"]
            return (f"epoch {info['epoch']}/{info['epochs']} loss {info['loss']:.3g} "
                    f"(tf {info['tf_loss']:.3g}, closed loop {info['cl_loss']:.3g}), "
                    f"val loss {info['val_loss']:.3g}"
                    + ("" if math.isnan(val) else f", closed-loop val NRMSE(x) {val:.3g}")
                    + f", {info['steps_per_s'] / 1e3:.0f}k steps/s")
        if info["stage"] == "ridge":
            return (f"ridge candidate {info['done']}: {info['ridge']:g}, closed-loop val "
                    f"NRMSE(x) {info['val_nrmse_x']:.3g}")
        return f"{info['stage']} {info['done']}/{info['total']}"

    def show(info: dict[str, Any]) -> None:
        stage = info.get("stage")
        if stage == "done":  # the caller reports the outcome (TrainResult.message)
            if tty:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()
            return
        if not tty:
            if stage in ("validated", "ridge") or (stage != "epoch"
                                                    and info["done"] == info["total"]):
                sys.stderr.write(line(info) + "\n")
                sys.stderr.flush()
            return
        if stage == "validated":
            return
        now = time.perf_counter()
        if now - last[0] < 0.2:
            return
        last[0] = now
        sys.stderr.write(f"\r\033[K{line(info)}")
        sys.stderr.flush()

    return show
