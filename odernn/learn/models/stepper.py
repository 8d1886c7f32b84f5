"""A surrogate advanced one step at a time, in physical units: the public step API.

:meth:`RecurrentSurrogate.stepper` makes a :class:`Stepper` from the initial state and the
parameters; each :meth:`Stepper.step` takes the forcing samples ``F_i`` and ``F_{i+1}`` of
a batch and returns ``(x_{i+1}, v_{i+1})``. It runs the same torch calls, on the same
float32 tensors, as :meth:`RecurrentSurrogate.rollout`, so a loop of steps returns the
rollout's numbers to the last bit (``tests/test_step_api.py``), its divergence status
included; a host program (a simulation loop, a controller) can drive the surrogate as it
would drive an integrator, one step at a time. :func:`joint_step` is the one closed-loop
step, of one model or of an ensemble's members jointly, that the rollout and the stepper
share.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from odernn import budget
from odernn.checks import real_array
from odernn.errors import DataError
from odernn.types import Array

EXPLODED = 1e4
"""A carried state beyond this many training standard deviations counts as diverged."""


def beyond(z: np.ndarray | Tensor, mean: np.ndarray, std: np.ndarray) -> np.ndarray | Tensor:
    """Where the states ``z (..., Z)`` (float64, numpy or torch) are non-finite or beyond
    :data:`EXPLODED` standard deviations ``std`` from ``mean`` (float64 ``(Z,)``): a boolean
    array of shape ``z.shape[:-1]``, of ``z``'s kind. Written as ``not |z - mean| <= limit``,
    which a NaN and an infinity both fail, in three passes; a torch ``z`` is tested where it
    is (on the GPU before it is copied out), with the same float64 arithmetic and bits."""
    limit = EXPLODED * std
    if isinstance(z, Tensor):
        mean, limit = (torch.from_numpy(a).to(z.device) for a in (mean, limit))
        return ~(z - mean).abs_().le_(limit).all(-1)  # one float64 copy (the GPU's memory)
    with np.errstate(invalid="ignore", over="ignore"):
        d = z - mean
        return ~(np.abs(d, out=d) <= limit).all(-1)


def check_closed_loop(models: Sequence[Any], n: int, steps: int, held: int = 0) -> None:
    """Refuse, before it is allocated, a closed loop of ``models`` (jointly) over ``n``
    trajectories and ``steps`` steps whose memory exceeds the budget: per trajectory and step
    its inputs (float64 and float32), the carried state (float32, its stack, float64 copies
    out and for the divergence test: a series' is ``lags`` wide) and the rollout's x and v,
    and ``held`` more rollouts' x and v kept beside it (an ensemble's members); per
    trajectory each model's hidden state four times over, for its scratch (sized on one
    trajectory; a member's prediction lives one step)."""
    layout = models[0].layout
    z, e = layout.n_state, layout.n_exogenous
    with torch.no_grad():
        state = sum(t.numel() * t.element_size() for m in models for t in m.initial_state(
            m.codec.init_features(torch.zeros(1, z, device=m.device),
                                  torch.zeros(1, e, device=m.device))))
    per_step = 12 * e + 28 * z + 16 * (1 + held)
    budget.check(f"closed loop: {n} trajectories x {steps} steps", n * (steps * per_step
                 + 4 * state), "roll out fewer trajectories or fewer steps at a time")


def finite(a: np.ndarray, name: str) -> np.ndarray:
    """``a``, refused in one line if it holds a NaN or an infinity: a closed loop is started
    and driven by finite numbers (a non-finite input would pass for the model diverging)."""
    if np.isfinite(a).all():  # one pass where it is (nearly always) so
        return a
    bad = ~np.isfinite(a)
    raise DataError(f"{name} holds {a[bad][0]} at index {np.argwhere(bad)[0].tolist()}; "
                    "a closed loop takes finite numbers")


def exploded(model: Any, z: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """:func:`beyond` of the carried states ``z (..., Z)`` (float64) of ``model``, in units of
    its training standard deviations (the rollout's and the stepper's one divergence test)."""
    return beyond(z, *state_scale(model, z.shape[-1]))


def state_scale(model: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The training mean and standard deviation (float64 ``(width,)``) of ``model``'s carried
    state, ``width`` wide: what :func:`exploded` measures a state against."""
    std = model.codec.state_std().double().cpu().numpy()
    names = ("x",) * width if model.layout.series else ("x", "v")
    return np.array([model.codec.stats.mean[c] for c in names]), std


PREPARED = ("_steps", "_scale", "_e", "_forcing")
"""The :class:`Stepper`'s attributes that its ``_prepare`` makes and a pickle leaves out."""


class Stepper:
    """A batch of N trajectories of a surrogate, advanced in closed loop one step at a time.

    Made by :meth:`~odernn.learn.models.surrogate.RecurrentSurrogate.stepper`. Each
    :meth:`step` feeds the carried state back as :meth:`rollout` does and returns the next
    one in physical units (float64 arrays ``(N,)``); :meth:`observe` replaces the carried
    state by an observed one (a warm-up: a model with ``warmup_steps = K`` needs the observed
    states of steps 1 to K-1 before it predicts). ``steps`` counts the steps taken;
    ``diverged_at[n]`` is the first step at which trajectory n became non-finite or
    exploded (-1: never), from which on its values are ``inf``, as in a rollout.

    An ensemble's stepper (:meth:`~odernn.learn.models.ensemble.Ensemble.stepper`) steps its
    members jointly, as its rollout does. A stepper keeps the weights the model had when it
    was made (it holds its own copy of the model): after training the model further, make a
    new stepper. ``copy.deepcopy(stepper)`` branches it (the copy steps on from the same
    state, independently), and a stepper pickles: a host program that saves its own state
    saves the stepper's with it.
    """

    def __init__(self, models: Sequence[Any], z0: Tensor, params: Mapping[str, np.ndarray]
                 ) -> None:
        check_closed_loop(models, z0.shape[0], 1)
        # several: an ensemble's members, stepped jointly; copies, so that the weights are
        # those of now for the step functions and for a pickle alike
        self.models = tuple(copy.deepcopy(m) for m in models)
        self.model = self.models[0]  # the layout, its statistics and the divergence test
        self.steps = 0
        self._z = z0
        # copies: the caller's arrays may change; the stepper steps what it was started with
        self._params = {k: np.array(v) for k, v in params.items()}
        self._observed = True  # the initial state is an observed one
        n = z0.shape[0]
        self._F_prev: np.ndarray | None = None  # the last step's F: this one's F_prev
        self._prepare()
        with torch.inference_mode():  # as the rollout's: its state, updated in place
            e = self._exogenous(np.zeros(n), np.zeros(n))
            self._states = [m.initial_state(m.codec.init_features(z0, e)) for m in self.models]
        self._diverged_at = np.full(n, -1, dtype=np.int64)
        self._mark(z0.double().cpu().numpy())

    def __getstate__(self) -> dict[str, Any]:
        """All but the step functions (closures, which do not pickle): rebuilt on unpickling
        from the stepper's own copies of the models, with the same weights and bits (on a
        processor of the same kind: the form of tanh is chosen per processor,
        :data:`~odernn.learn.models.inference.TANH_BY_SIGMOID`)."""
        return {k: v for k, v in self.__dict__.items() if k not in PREPARED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._prepare()

    def _prepare(self) -> None:
        """What the stepper makes from its models and parameters, and does not pickle: the
        step functions (the rollout's, same bits); the divergence test's bounds; this step's
        channels known in advance, by the layout's one mapping (a grid of three samples, its
        middle step's), the parameters' columns now and the forcing's at each step."""
        self._steps = [m.inference_step() for m in self.models]
        self._scale = state_scale(self.model, self._z.shape[-1])
        layout = self.model.layout
        self._e = self._tensor(layout.exogenous(np.zeros((self.n, 3)), self._params)[:, 1])
        self._forcing = [(self._e[:, k], c) for k, c in enumerate(layout.exogenous_names)
                         if c in ("F", "F_next", "F_prev")]  # column views, made once

    @property
    def diverged_at(self) -> np.ndarray:
        """The first step at which each trajectory diverged, -1 where none has (a copy)."""
        return self._diverged_at.copy()

    @property
    def n(self) -> int:
        """The number of trajectories stepped together."""
        return int(self._z.shape[0])

    def step(self, F: Array | None = None, F_next: Array | None = None,
             F_prev: Array | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Advance every trajectory one step: ``F = F_i`` and ``F_next = F_{i+1}``, the
        forcing samples at this step and the next, each of shape ``(N,)``; returns
        ``(x_{i+1}, v_{i+1})``, float64 ``(N,)`` each (a series: ``(x_{i+1}, None)``, called
        without forcing). A model that reads ``F_prev`` gets ``F_prev = F_{i-1}`` where
        given (a stepper started in the middle of a trajectory: its first step), else the
        last step's ``F`` (at the first step ``F`` itself, as in a rollout); a model that
        does not read it ignores it."""
        model = self.model
        if self.steps < model.warmup_steps and not self._observed:
            raise DataError(f"this model needs a warm-up of {model.warmup_steps} observed "
                            f"steps: observe(x, v) the state of step {self.steps} before "
                            "stepping it")
        if model.layout.series:
            if F is not None or F_next is not None or F_prev is not None:
                raise DataError("a series (next-value mode) takes no forcing: call step()")
            e = self._e  # no channels
        else:
            F = self._vector(F, "F")
            before = self._F_prev if F_prev is None else self._vector(F_prev, "F_prev")
            e = self._exogenous(F, self._vector(F_next, "F_next"), before)
            self._F_prev = F.copy()  # the caller may reuse its array for the next step
        with torch.inference_mode():
            self._z = joint_step(self.models, self._steps, self._states, self._z, e)
        self.steps += 1
        self._observed = False
        return self._output(self._z.double().cpu().numpy())

    def observe(self, x: Array, v: Array | None = None) -> None:
        """Replace the carried state by an observed one before the next :meth:`step`: ``x``
        and ``v`` of shape ``(N,)`` (a series: ``x``, its newest value)."""
        if self.model.layout.series and v is not None:
            raise DataError("a series observes x alone: it has no v to take")
        z = self._z.clone()
        z[:, -1 if self.model.layout.series else 0] = self._tensor(self._vector(x, "x"))
        if not self.model.layout.series:
            z[:, 1] = self._tensor(self._vector(v, "v"))
        self._z = z
        self._observed = True
        # the state of this step is the observed one, as in a rollout's warm-up: a prediction
        # it replaces that diverged does not count, the observed state does
        self._diverged_at[self._diverged_at == self.steps] = -1
        self._mark(z.double().cpu().numpy())

    # -- internals -------------------------------------------------------------------------
    def _vector(self, a: Array | None, name: str) -> np.ndarray:
        out = None if a is None else real_array(a, name)
        if out is None or out.shape != (self.n,):
            got = "nothing" if out is None else f"shape {out.shape}"
            raise DataError(f"{name} must have shape ({self.n},) (one value per trajectory); "
                            f"got {got}")
        return finite(out, name)

    def _tensor(self, a: np.ndarray) -> Tensor:
        return torch.tensor(a, dtype=torch.float32, device=self._z.device)

    def _exogenous(self, F: np.ndarray, F_next: np.ndarray,
                   F_prev: np.ndarray | None = None) -> Tensor:
        """This step's channels known in advance: the samples ``F_prev`` (``F`` where not
        given), ``F``, ``F_next`` rounded into their columns of the stepper's one tensor of
        them, as a new float32 tensor would be (the rollout's bits)."""
        samples = {"F": F, "F_next": F_next, "F_prev": F if F_prev is None else F_prev}
        for column, name in self._forcing:
            a = samples[name]
            if not (a.flags.c_contiguous and a.flags.writeable):  # as torch takes it in place
                a = a.copy()
            column.copy_(torch.from_numpy(a))
        return self._e

    def _mark(self, z: np.ndarray) -> np.ndarray:
        """Record where ``z`` (float64, at step ``steps``) first diverged; inf from there."""
        new = beyond(z, *self._scale) & (self._diverged_at < 0)  # exploded(), bounds held
        self._diverged_at[new] = self.steps
        z[self._diverged_at >= 0] = np.inf
        return z

    def _output(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        z = self._mark(z)
        if self.model.layout.series:
            return z[:, -1].copy(), None
        return z[:, 0].copy(), z[:, 1].copy()


def joint_step(models: Sequence[Any], steps: Sequence[Any], states: list[Any],
               z: Tensor, e: Tensor) -> Tensor:
    """One step of the closed loop of one model or of several jointly
    (:func:`~odernn.learn.models.surrogate.joint_closed_loop`, a :class:`Stepper`): each model's
    prediction of the next state from the carried ``z`` and this step's ``e``, by its step
    function ``steps[j]`` from its hidden state ``states[j]`` (replaced in the list by the
    next), and the :func:`member_median` of the predictions (one model: its own)."""
    nxt = []
    for j, m in enumerate(models):
        codec = m.codec
        prior = codec.prior(z, e)  # a hybrid's prior step, once
        y, states[j] = steps[j](codec.encode(z, e, prior), states[j])
        nxt.append(codec.decode(z, y, e, prior))
    return nxt[0] if len(nxt) == 1 else member_median(torch.stack(nxt))


def member_median(z: Tensor) -> Tensor:
    """The median over the first axis of ``z (K, ...)``, element by element (for an even K the
    mean of the two middle values; of two, their mean): fewer than half of the members that run
    away, or turn non-finite (NaN sorts last), do not carry the others with them, and where the
    members disagree (out of phase) it keeps one's amplitude rather than averaging it away
    (``benchmarks/ensembles.py``)."""
    k = z.shape[0]
    return z.sort(dim=0).values[(k - 1) // 2:k // 2 + 1].mean(dim=0)
