"""The normalisation a surrogate applies between physical units and its network: the
:class:`Codec` of a :class:`~odernn.learn.models.layout.Layout` and its
:class:`~odernn.learn.models.layout.Stats`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from odernn.learn.models.layout import Layout, Stats, raw_target


class Codec(nn.Module):
    """Normalised inputs and outputs of one layout: the bridge between physics and network.

    ``encode(z, e)`` gives the inputs ``u`` from the carried state and the
    exogenous channels ``e`` (``F``, ``F_next`` and the parameters as configured; a
    hybrid's prior prediction after them);
    ``decode(z, y, e)`` advances the carried state by one step from the output;
    ``target(z, z_next, e)`` is its inverse (``e`` is needed by a hybrid only: its output is
    added to the prior's prediction, :meth:`prior`, which encode and decode also take
    computed); ``init_features(z, e)`` are the
    normalised ``x0, v0`` and parameters of the initial-state map. All work on any
    leading shape.
    """

    def __init__(self, layout: Layout, stats: Stats) -> None:
        super().__init__()
        self.layout, self.stats = layout, stats
        m, s = stats.mean, stats.std
        if layout.series:
            in_names = init_names = ["x"] * layout.lags
        else:
            in_names = [{"F_next": "F", "F_prev": "F"}.get(c, c) for c in layout.inputs]
            in_names += ["x", "v"] if layout.prior else []  # x_prior, v_prior
            init_names = ["x", "v", *layout.parameters]
        out_names = [f"y{k}" for k in range(layout.n_outputs)]
        cols = [i for i, c in enumerate(("x", "v")) if c in layout.inputs]
        self._state_cols = None if cols == [0, 1] else cols  # None: all of z, no gather
        for name, keys in (("in", in_names), ("init", init_names), ("out", out_names)):
            for stat, table in (("mean", m), ("std", s)):
                values = torch.tensor([table[k] for k in keys], dtype=torch.float32)
                self.register_buffer(f"{name}_{stat}", values, persistent=False)

    def prior(self, z: Tensor, e: Tensor) -> Tensor | None:
        """A hybrid's prior prediction of the next state (None without a prior): given to
        :meth:`encode` and :meth:`decode`, a closed-loop step computes it once."""
        return self.layout.prior_next(z, e) if self.layout.prior else None

    def encode(self, z: Tensor, e: Tensor, prior: Tensor | None = None) -> Tensor:
        if self.layout.series:
            raw = z
        else:
            parts = [z if self._state_cols is None else z[..., self._state_cols], e]
            if self.layout.prior:
                parts.append(self.prior(z, e) if prior is None else prior)
            raw = torch.cat(parts, -1)
        return (raw - self.in_mean) / self.in_std

    def init_features(self, z: Tensor, e: Tensor) -> Tensor:
        p = len(self.layout.parameters)  # the last p exogenous channels
        raw = torch.cat([z, e[..., e.shape[-1] - p:]], dim=-1) if p else z
        return (raw - self.init_mean) / self.init_std

    def decode(self, z: Tensor, y: Tensor, e: Tensor | None = None,
               prior: Tensor | None = None) -> Tensor:
        out = torch.addcmul(self.out_mean, y, self.out_std)
        if self.layout.target == "state":
            return (self.layout.base(z, e) if prior is None else prior) + out
        if self.layout.target == "velocity":
            x = z[..., :1] + (0.5 * self.layout.dt) * (z[..., 1:] + out)
            return torch.cat([x, out], dim=-1)
        return torch.cat([z[..., 1:], out], dim=-1)

    def target(self, z: Tensor, z_next: Tensor, e: Tensor | None = None) -> Tensor:
        """The normalised output that :meth:`decode` maps ``z`` to ``z_next`` with."""
        return (raw_target(self.layout, z, z_next, e) - self.out_mean) / self.out_std

    def state_std(self) -> Tensor:
        """Standard deviations of the carried state's components (scale of closed-loop losses)."""
        return self.init_std[: self.layout.n_state]
