"""What every family shares: the codec, the closed loop, the numpy rollout, the checkpoint args.

A family subclasses :class:`RecurrentSurrogate` and implements three torch
calls on normalised tensors, with the state an explicit tuple of tensors:

- ``initial_state(s0) -> state`` from the normalised ``x0, v0`` and parameters
  (the learned or fixed map ``h0 = g(x0, v0, p)``);
- ``step(u (B, C), state) -> (y (B, O), state)``;
- ``sequence(u (B, L, C), state) -> (y (B, L, O), state)``, equal to L steps.

Everything else (teacher-forced windows, the closed loop that feeds the
predictions back, of one model or of a seed group's members jointly, the batched numpy
rollout with its divergence status) is written once here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from odernn.checks import is_whole, real_array
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError
from odernn.learn.models.base import Rollout
from odernn.learn.models.codec import Codec
from odernn.learn.models.layout import Layout, Stats, check_data, check_fixed
from odernn.learn.models.options import defaults_of
from odernn.learn.models.prior import check_prior_data
from odernn.learn.models.stepper import (
    EXPLODED,
    Stepper,
    check_closed_loop,
    exploded,
    finite,
    joint_step,
)
from odernn.types import Array

State = tuple[Tensor, ...]

__all__ = ["EXPLODED", "RecurrentSurrogate", "State", "Stepper"]

_LOADING: ContextVar[bool] = ContextVar("odernn_loading", default=False)


@contextmanager
def to_be_loaded() -> Iterator[None]:
    """Models built inside skip the random draws that a checkpoint's weights replace next:
    drawing a reservoir and scaling it to its spectral radius grows as the square of its
    units (a draw per pair of units, an eigenvalue problem), reading its weights linearly."""
    token = _LOADING.set(True)
    try:
        yield
    finally:
        _LOADING.reset(token)


def drawing() -> bool:
    """Whether a model built now draws its random weights (not inside :func:`to_be_loaded`)."""
    return not _LOADING.get()


class RecurrentSurrogate(nn.Module):
    """Base class of every family: build with a layout, training statistics and hyperparameters."""

    family: ClassVar[str]
    description: ClassVar[str]
    options: ClassVar[type]
    """The family's hyperparameters, one dataclass (:mod:`odernn.learn.models.options`)."""
    defaults: ClassVar[dict[str, Any]]
    """Constructor hyperparameters and their defaults, from ``options``."""
    recipe: ClassVar[str] = "gradient"
    """How the family is fitted: ``gradient`` (BPTT) or ``ridge`` (a closed-form readout)."""
    training_defaults: ClassVar[dict[str, Any]] = {}
    """Training options whose default differs for this family (e.g. ``epochs``)."""
    size_option: ClassVar[str] = "hidden"
    """The hyperparameter that sets the model's size (named when memory is refused)."""
    memory_hint: ClassVar[str] = ""
    """What a refused size means, for a recipe whose memory is not the gradient loop's."""
    hidden_states: ClassVar[bool] = True
    """Whether it carries a hidden state (structural damping acts on it)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "options" in cls.__dict__:
            cls.defaults = defaults_of(cls.options)

    @classmethod
    def parameter_count(cls, hparams: dict[str, Any], n_inputs: int, n_init: int,
                        n_outputs: int, n_params: int) -> int:
        """Values a model holds (parameters and buffers), from its hyperparameters and a
        layout's sizes (:attr:`~odernn.learn.models.layout.Layout.sizes`), without building
        it: generous by a few vectors, exact in the large terms (memory budget)."""
        raise NotImplementedError

    @classmethod
    def training_bytes(cls, hparams: dict[str, Any], n_inputs: int, n_init: int,
                       n_outputs: int, n_params: int, *, batch_size: int = 0,
                       steps: int = 0) -> int:
        """Memory of training: parameters, gradients, optimiser state, the activations of
        ``batch_size`` windows of ``steps`` (what its recipe holds at once)."""
        raise NotImplementedError

    @classmethod
    def model_bytes(cls, hparams: dict[str, Any], n_inputs: int, n_init: int,
                    n_outputs: int, n_params: int) -> int:
        """Memory of building the model for inference: its values and the initialisation's
        temporaries (two copies)."""
        return 3 * cls.parameter_count(hparams, n_inputs, n_init, n_outputs, n_params) * 4

    @classmethod
    def check_options(cls, **hparams: Any) -> None:
        """Refuse bad hyperparameters with a SpecError before anything is built or written
        (training options are checked with it; the constructor calls it too)."""

    @classmethod
    def check_layout(cls, layout: Layout) -> None:
        """Refuse a data layout the family cannot use, with a SpecError (checked with the
        training options, before anything is written; the constructor calls it too)."""

    def __init__(self, layout: Layout, stats: Stats, hparams: dict[str, Any]) -> None:
        super().__init__()
        self.layout = layout
        self.codec = Codec(layout, stats)
        self.hparams = dict(hparams)

    @property
    def target(self) -> str:
        return self.layout.target

    @property
    def parameter_inputs(self) -> tuple[str, ...]:
        """The system's parameters the model takes (:attr:`Layout.parameters`; not
        ``parameters``, which are the torch module's weights)."""
        return self.layout.parameters

    @property
    def warmup_steps(self) -> int:
        return self.layout.warmup

    @property
    def device(self) -> torch.device:
        return self.codec.in_mean.device

    def constructor_args(self) -> dict[str, Any]:
        """Plain data that rebuilds this model with ``cls(**build_args(args))`` (checkpoints)."""
        return {"layout": self.layout.to_dict(), "stats": self.codec.stats.to_dict(),
                "hparams": dict(self.hparams)}

    def check_data(self, data: Trajectories, where: str = "data") -> None:
        """Refuse a dataset of another layout (DataError with what, where, what is allowed)."""
        check_data(data, self.layout, where=where)

    # -- implemented by each family -------------------------------------------------------
    def initial_state(self, s0: Tensor) -> State:
        raise NotImplementedError

    def step(self, u: Tensor, state: State) -> tuple[Tensor, State]:
        raise NotImplementedError

    def sequence(self, u: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        raise NotImplementedError

    def exportable_step(self) -> Callable[[Tensor, State], tuple[Tensor, State]]:
        """:meth:`step` in operations an ONNX exporter traces (dense tensors only), for
        :mod:`odernn.learn.export`; the same function up to float32 rounding. A family whose
        step is not traceable as it is (the reservoir's sparse product) overrides it."""
        return self.step

    def inference_step(self) -> Callable[[Tensor, State], tuple[Tensor, State]]:
        """:meth:`step` for a closed loop without autograd (the rollout, the stepper), with
        the weights as they are now (the step of a copy of the model: training it further, or
        solving its readout again, does not change a step made before); the same function up
        to float32 rounding. A family with a faster form of its step for inference
        overrides it."""
        return copy.deepcopy(self).step

    # -- shared ------------------------------------------------------------------------------
    def teacher_forced(self, z: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted and true normalised outputs on windows ``z (B, L+1, Z)``, ``e (B, L+1, E)``.

        The true state is fed at every step (one fused sequence call).
        """
        state = self.initial_state(self.codec.init_features(z[:, 0], e[:, 0]))
        y, _ = self.sequence(self.codec.encode(z[:, :-1], e[:, :-1]), state)
        return y, self.codec.target(z[:, :-1], z[:, 1:], e[:, :-1])

    def closed_loop(self, z0: Tensor, e: Tensor, observed: Tensor | None = None) -> Tensor:
        """Feed the predictions back for ``L = e.shape[1]`` steps; returns ``z (B, L+1, Z)``.

        ``observed (B, K, Z)`` replaces the carried state by the truth for the
        first K steps (a warm-up; ``z0`` is then ``observed[:, 0]``). The
        hidden state is carried, so the cost is O(L). Without autograd each step is
        :meth:`inference_step`'s.
        """
        return joint_closed_loop((self,), z0, e, observed)

    def rollout(
        self,
        x0: Array,
        v0: Array | None = None,
        F: Array | None = None,
        params: Mapping[str, Array] | Array | None = None,
        warmup: tuple[Array, Array | None] | None = None,
        *,
        n_steps: int | None = None,
    ) -> Rollout:
        """Closed loop over the whole horizon, batched over trajectories; numpy in, float64 out.

        Oscillator: ``x0, v0 (N,)``, ``F (N, T)`` and ``params``, name -> ``(N,)``
        for each parameter the model takes (:attr:`parameter_inputs`; other entries are
        ignored, so a dataset's ``params`` will do, though one holding another value of a
        parameter the model was trained with fixed is refused; a bare array when it takes
        exactly one). Series (next-value mode): ``x0 (N,)`` and ``n_steps``.
        ``warmup = (x_obs (N, K), v_obs (N, K); None for a series)`` gives K observed
        steps (``K >= warmup_steps``; ``x_obs[:, 0]`` is the initial state);
        the output repeats them as given (step 0 is ``x0, v0`` without them; the model
        carries float32). Runs without autograd; a trajectory whose
        state, observed or predicted, becomes non-finite or exceeds :data:`EXPLODED` standard
        deviations is reported in ``diverged_at`` and set to inf from there.
        """
        return joint_rollout((self,), x0, v0, F, params, warmup, n_steps)

    def _rollout_of(self, z: Tensor, k: int) -> Rollout:
        """The closed loop's states ``z (N, T, Z)`` as a rollout, its divergence marked."""
        z = z.double()
        bad = exploded(self, z).cpu().numpy()  # tested where z is, before the copy out
        z = z.cpu().numpy()
        diverged_at = np.where(bad.any(axis=1), bad.argmax(axis=1), -1)
        for n in np.flatnonzero(diverged_at >= 0):
            z[n, diverged_at[n]:] = np.inf
        if self.layout.series:
            return Rollout(z[..., -1], None, diverged_at, warmup=k)
        return Rollout(z[..., 0], z[..., 1], diverged_at, warmup=k)

    def stepper(self, x0: Array, v0: Array | None = None,
                params: Mapping[str, Array] | Array | None = None) -> Stepper:
        """The closed loop one step at a time, in physical units, from ``x0, v0 (N,)`` and
        ``params`` (as for :meth:`rollout`; a series: ``x0`` alone):
        ``x, v = stepper.step(F_i, F_next)`` per step gives :meth:`rollout`'s numbers to the
        last bit (:class:`~odernn.learn.models.stepper.Stepper`)."""
        return Stepper((self,), *self._stepper_start(x0, v0, params))

    def _stepper_start(self, x0: Array, v0: Array | None,
                       params: Mapping[str, Array] | Array | None
                       ) -> tuple[Tensor, dict[str, np.ndarray]]:
        """Validate :meth:`stepper`'s arguments: the initial carried state ``z0`` and the
        parameters the model takes."""
        x0 = _initial(x0, "stepper")
        if self.layout.series:
            if v0 is not None or params is not None:
                raise DataError("a series (next-value mode) starts from x0 alone")
            return self._tensor(np.repeat(x0[:, None], self.layout.lags, 1)), {}
        v0 = real_array(v0, "v0")
        if v0.shape != x0.shape:
            raise DataError(f"stepper needs x0 and v0 of shape (N,); got {x0.shape}, {v0.shape}")
        finite(v0, "v0")
        return (self._tensor(np.stack([x0, v0], axis=-1)),
                self._taken(params, x0.shape[0], "stepper"))

    def _rollout_tensors(self, x0, v0, F, params, warmup, n_steps, models=(), held=0):
        """Validate rollout arguments (and the memory of ``models``' closed loop, by default
        this one's, with ``held`` rollouts beside it) and turn them into ``z0, e, observed``
        tensors."""
        models = models or (self,)
        x0 = _initial(x0, "rollout")
        n = x0.shape[0]
        k_min = self.layout.warmup
        if warmup is not None and (not isinstance(warmup, tuple | list) or len(warmup) != 2):
            raise DataError("warmup must be a pair (x_obs, v_obs); a series' is (x_obs, None)")
        if warmup is None and k_min > 0:
            raise DataError(f"this model needs a warm-up of {k_min} observed steps "
                            "(warmup=(x_obs, v_obs)); none given")
        if self.layout.series:
            if v0 is not None or F is not None or params is not None:
                raise DataError("a series (next-value mode) rolls out from x0 and n_steps "
                                "alone: it takes no v0, F or params")
            return self._series_tensors(x0, warmup, n_steps, models, held)
        if n_steps is not None:  # an oscillator's horizon is F's: n_steps would be ignored
            raise DataError("n_steps is for a series; an oscillator rollout runs over F's "
                            "samples: give F[:, :n_steps]")
        # the memory before F's float64 copy: a broadcast view of 3e8 samples took 2.8 GB
        # under a budget of 512 MiB before the refusal
        if isinstance(F, np.ndarray) and F.ndim == 2 and F.shape[0] == n:
            check_closed_loop(models, n, F.shape[1], held)
        v0 = real_array(v0, "v0")
        F = real_array(F, "F")
        if v0.shape != (n,) or F.ndim != 2 or F.shape[0] != n or F.shape[1] < 2:
            raise DataError(f"rollout needs x0, v0 of shape (N,) and F of shape (N, T >= 2); "
                            f"got {x0.shape}, {v0.shape}, {F.shape}")
        finite(v0, "v0")
        finite(F, "F")
        check_closed_loop(models, n, F.shape[1], held)
        e = self.layout.exogenous(F, self._taken(params, n, "rollout"))
        e = e[:, :-1]  # no step follows the last sample
        z0 = np.stack([x0, v0], axis=-1)
        observed = None
        if warmup is not None:
            if warmup[1] is None:
                raise DataError("warmup=(x_obs, v_obs) of an oscillator model needs v_obs "
                                "(None is for a series)")
            x_obs, v_obs = (finite(real_array(a, "warmup"), "warmup")
                            for a in warmup)
            k = x_obs.shape[1] if x_obs.ndim == 2 else -1
            if (x_obs.shape != v_obs.shape or x_obs.shape[0] != n
                    or not max(k_min, 1) <= k < F.shape[1]):  # K = 0 was taken as none
                raise DataError(f"warmup must be (x_obs, v_obs) of shape (N, K) with "
                                f"{max(k_min, 1)} <= K < T; got {x_obs.shape}, {v_obs.shape}")
            if not (np.array_equal(x_obs[:, 0], x0)
                              and np.array_equal(v_obs[:, 0], v0)):  # x0 was dropped unsaid
                raise DataError("warmup's first observations x_obs[:, 0], v_obs[:, 0] are the "
                                "initial state, and x0, v0 differ from them; give the same")
            observed = np.stack([x_obs, v_obs], axis=-1)
        return self._tensor(z0), self._tensor(e), (None if observed is None
                                                    else self._tensor(observed))

    def _taken(self, params: Mapping[str, Array] | Array | None, n: int,
               caller: str) -> dict[str, np.ndarray]:
        """The parameters the model takes from ``caller``'s ``params`` (``rollout`` or
        ``stepper``, as the messages say), checked: ``(N,)`` each."""
        names = self.layout.parameters
        if params is not None and not isinstance(params, Mapping):
            if len(names) > 1:
                raise DataError(f"this model takes {', '.join(names)}: give params as a "
                                "mapping name -> array (N,)")
            params = dict.fromkeys(names, params)
        elif params is not None:  # a dataset's params: also those the model was trained fixed
            check_fixed(params, self.layout, f"{caller} params")
        out = {}
        for name in names:
            if params is None or name not in params:
                raise DataError(f"this model takes {', '.join(names)} as inputs; {caller} got "
                                f"no {name}")
            out[name] = real_array(params[name], name)
            if out[name].shape != (n,):
                raise DataError(f"{name} must have shape ({n},), got {out[name].shape}")
            finite(out[name], name)
        check_prior_data(self.layout, out, f"{caller} params")
        return out

    def _series_tensors(self, x0, warmup, n_steps, models, held):
        if not is_whole(n_steps) or n_steps < 2:
            raise DataError(f"a series rollout needs a whole number n_steps >= 2, got "
                            f"{n_steps!r}")
        n_steps = int(n_steps)
        if warmup is not None and warmup[1] is not None:
            raise DataError("a series' warmup is (x_obs, None): it has no v_obs to take")
        x_obs = x0[:, None] if warmup is None else finite(
            real_array(warmup[0], "warmup"), "warmup")
        if x_obs.ndim != 2 or x_obs.shape[0] != x0.shape[0] or not \
                max(self.layout.warmup, 1) <= x_obs.shape[1] < n_steps:
            raise DataError(f"warmup x_obs must have shape (N, K) with "
                            f"{max(self.layout.warmup, 1)} <= K < n_steps; got {x_obs.shape}")
        check_closed_loop(models, x0.shape[0], n_steps, held)
        lags = self.layout.lags
        padded = np.concatenate([np.repeat(x_obs[:, :1], lags - 1, axis=1), x_obs], axis=1)
        windows = np.lib.stride_tricks.sliding_window_view(padded, lags, axis=1)
        e = np.zeros((x0.shape[0], n_steps - 1, 0))
        return self._tensor(windows[:, 0]), self._tensor(e), self._tensor(windows)

    def _tensor(self, a: Array) -> Tensor:
        return torch.tensor(np.asarray(a), dtype=torch.float32, device=self.device)  # a copy


def _initial(x0: Array, caller: str) -> np.ndarray:
    """``x0`` of ``caller`` (``rollout`` or ``stepper``, as the messages say), checked: real
    numbers of shape ``(N,)``, ``N >= 1``, finite."""
    x0 = real_array(x0, "x0")
    if x0.ndim != 1:
        raise DataError(f"x0 must have shape (N,), got {x0.shape}")
    finite(x0, "x0")
    if x0.shape[0] == 0:
        raise DataError(f"{caller} needs at least one trajectory; x0 is empty")
    return x0


def joint_closed_loop(models: Sequence[RecurrentSurrogate], z0: Tensor, e: Tensor,
                      observed: Tensor | None = None) -> Tensor:
    """The closed loop of one model, or of several of one layout jointly: every model predicts
    the next state from the carried one, each with its own hidden state, and the
    :func:`~.stepper.member_median` of their predictions is the state carried to all (one
    model: its own prediction, unchanged). Arguments and result as
    :meth:`RecurrentSurrogate.closed_loop`."""
    k = 0 if observed is None else observed.shape[1]
    z = z0 if observed is None else observed[:, 0]
    states = [m.initial_state(m.codec.init_features(z, e[:, 0])) for m in models]
    steps = [m.step if torch.is_grad_enabled() else m.inference_step() for m in models]
    out = []
    for i, e_i in enumerate(e.unbind(1)):
        if i < k:
            z = observed[:, i]
        out.append(z)
        z = joint_step(models, steps, states, z, e_i)
    out.append(z)
    return torch.stack(out, dim=1)


def joint_rollout(models: Sequence[RecurrentSurrogate], x0: Array, v0: Array | None,
                  F: Array | None, params: Mapping[str, Array] | Array | None,
                  warmup: tuple[Array, Array | None] | None, n_steps: int | None,
                  held: int = 0) -> Rollout:
    """:meth:`RecurrentSurrogate.rollout` of :func:`joint_closed_loop` (the first model checks
    the arguments, and the memory with ``held`` more rollouts kept beside this one, and
    marks the divergence; the models share one layout and its statistics)."""
    first = models[0]
    z0, e, observed = first._rollout_tensors(x0, v0, F, params, warmup, n_steps, models,
                                             held)
    with torch.inference_mode():  # no_grad's dispatch less autograd's: same bits, faster
        z = joint_closed_loop(models, z0, e, observed)
    rollout = first._rollout_of(z, 0 if observed is None else observed.shape[1])
    # the given steps as given, not as the float32 state that carried them
    x_given, v_given = ((x0, v0) if warmup is None or np.shape(warmup[0])[1] == 0
                        else warmup)
    for out, given in ((rollout.x, x_given), (rollout.v, v_given)):
        if out is not None:
            given = np.asarray(given, dtype=np.float64).reshape(out.shape[0], -1)
            head = out[:, :given.shape[1]]
            np.copyto(head, given, where=np.isfinite(head))  # a row marked diverged stays
    return rollout
