"""Several trained seeds of one surrogate, and their joint closed loop as a surrogate of its own.

A result trained once is partly the luck of its seed (the reservoir's draw, the initial
weights, the batch order). ``odernn train --seeds K`` trains K independent members
(:func:`odernn.learn.seeds.train_seeds`); loaded together they are an :class:`Ensemble`.
Its closed loop is joint (:func:`~odernn.learn.models.surrogate.joint_closed_loop`): at
every step each member predicts the next state from the one carried, with its own hidden
state, and the median of their predictions (of each component; for an even number of members
the mean of the two middle ones) is carried to all of them.

Why not the mean of the members' own trajectories: members whose closed loops drift out of
phase (chaos, or drives off the training ones) average to a smaller amplitude than any of
them, so the steady-state statistics (max and mean of x^2) of that mean were far worse than
every member's. The joint loop stays one trajectory of a dynamical system, keeps the
amplitude, and fewer than half of the members that run away or turn non-finite do not carry
the ensemble with them. The trajectory mean's pointwise error (NRMSE) can be the lower of
the two, for the same reason: averaging shrinks what drifts apart.
``benchmarks/ensembles.py`` measures it against the median member and the trajectory mean;
an ensemble of one member is that member, to the bit.

The members' own rollouts travel with the ensemble's (``Rollout.info["members"]``), so the
evaluator scores each seed and the ensemble from one call (:mod:`odernn.assess.evaluate`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odernn.errors import DataError
from odernn.learn.models.base import Rollout
from odernn.learn.models.stepper import Stepper, check_closed_loop
from odernn.learn.models.surrogate import joint_rollout
from odernn.types import Array


class Ensemble:
    """The members ``name -> surrogate`` (one family, one layout) and their joint closed loop."""

    def __init__(self, members: Mapping[str, Any]) -> None:
        if not members:
            raise DataError("an ensemble needs at least one member")
        first = next(iter(members.values()))
        for name, m in members.items():
            if (m.family, m.layout) != (first.family, first.layout):
                raise DataError(f"ensemble member {name!r} is a {m.family} surrogate of another "
                                f"layout than the first ({first.family}); seeds of one model "
                                "only")
        self.members = dict(members)
        self.family, self.target, self.layout = first.family, first.target, first.layout
        self.parameter_inputs = tuple(first.parameter_inputs)
        self.warmup_steps = int(first.warmup_steps)
        self.description = first.description

    def check_data(self, data: Any, where: str = "data") -> None:
        next(iter(self.members.values())).check_data(data, where=where)

    def rollout(self, x0: Array, v0: Array | None = None, F: Array | None = None,
                params: Mapping[str, Array] | Array | None = None,
                warmup: tuple[Array, Array | None] | None = None, *,
                n_steps: int | None = None, members: bool = True,
                joint: Rollout | None = None) -> Rollout:
        """The members' joint closed loop (the median of their one-step predictions fed
        back to every member), arguments as a member's ``rollout``; with ``members``, each
        member's own closed loop travels with it, in ``info["members"]`` (without: the joint
        loop alone, the ensemble's cost as a surrogate; ``joint``: that joint loop, computed
        already with the same arguments, to add the members' to). A trajectory on which the
        joint state explodes is diverged from there, as for any surrogate."""
        held = len(self.members) if members else 0  # the members' rollouts, kept together
        if joint is None:
            joint = joint_rollout(tuple(self.members.values()), x0, v0, F, params, warmup,
                                  n_steps, held)
        elif members:
            check_closed_loop(tuple(self.members.values()), *joint.x.shape, held)
        if not members:
            return joint
        runs = {name: m.rollout(x0, v0, F, params, warmup, n_steps=n_steps)
                for name, m in self.members.items()}
        return Rollout(joint.x, joint.v, joint.diverged_at, joint.warmup,
                       info={"members": runs})

    def stepper(self, x0: Array, v0: Array | None = None,
                params: Mapping[str, Array] | Array | None = None) -> Stepper:
        """The joint closed loop one step at a time, in physical units, arguments as a
        member's ``stepper``: ``x, v = stepper.step(F_i, F_next)`` per step gives
        :meth:`rollout`'s numbers to the last bit."""
        first = next(iter(self.members.values()))
        return Stepper(tuple(self.members.values()), *first._stepper_start(x0, v0, params))
