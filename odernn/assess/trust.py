"""How long the reference itself can be trusted: its trust horizon.

A system without a closed form is measured against a numerical reference (SciPy's DOP853
at ``rtol 1e-12``). On chaotic data that reference is itself wrong after a while: its
own error, however small, grows like ``exp(lambda t)``. The trust horizon of a trajectory
is the time at which two references that differ only in tolerance, ``rtol 1e-12`` and
``rtol 1e-10``, separate by the valid-time threshold, by the same rule as the valid
prediction time (:func:`odernn.assess.metrics.valid_prediction_time`): the first
``t_k - t_0`` with ``|x_a - x_b| / std(x) > threshold``, censored at the horizon
``t_{T-1} - t_0`` when never. A surrogate's error after it is not the surrogate's to
answer for (docs/metrics.md, "Trust horizon of the reference").
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from odernn import budget
from odernn.assess.metrics import valid_prediction_time, x_scale
from odernn.data.integrators import MIN_RTOL, integrate
from odernn.data.systems import Oscillator
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError
from odernn.types import Array

RTOLS = (1e-12, 1e-10)
"""The tight and the loose tolerance compared (``atol = rtol / 100``, as in the
work-precision sweep)."""
METHOD = "DOP853"
"""SciPy's method for both solutions: the reference's own."""


def trust_horizon(osc: Oscillator, x0: Array, v0: Array, t: Array, *, threshold: float = 0.1,
                  scale: float | None = None, rtols: tuple[float, float] = RTOLS,
                  method: str = METHOD) -> np.ndarray:
    """Per trajectory ``(N,)``, the first time ``t_k - t_0`` (``k >= 1``) at which the
    solutions from ``(x0, v0)`` at ``rtols[0]`` and ``rtols[1]`` (``atol = rtol / 100``)
    differ in x by more than ``threshold * scale``; ``t_{T-1} - t_0`` if they never do.

    ``scale`` defaults to the std of the tighter solution over steps ``1 .. T-1`` (an
    angle's wrapped, :func:`~odernn.assess.metrics.x_scale`; pass the test set's to match
    its valid times). Both solutions integrate the whole batch as one stacked system, the way the
    simulator and the ``scipy`` integrator do, so a trajectory's tolerance is that of the
    batch's RMS error norm.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, Real) \
            or not 0 < threshold < np.inf:
        raise SpecError(f"trust horizon: threshold must be a finite number > 0, got "
                        f"{threshold!r}")
    if len(rtols) != 2 or not all(isinstance(r, Real) and MIN_RTOL <= r < 1 for r in rtols) \
            or rtols[0] == rtols[1]:
        raise SpecError(f"trust horizon: rtols must be two different tolerances in [100 eps, "
                        f"1), got {rtols!r}")
    t = np.asarray(t, dtype=np.float64)
    budget.check(f"trust horizon: {osc.n} trajectories x {t.size} steps",
                 8 * osc.n * t.size * budget.FLOAT64, "use fewer trajectories or steps")
    tight, loose = sorted(rtols)
    x_tight, _ = integrate("scipy", osc, x0, v0, t, method=method, rtol=tight, atol=tight / 100)
    x_loose, _ = integrate("scipy", osc, x0, v0, t, method=method, rtol=loose, atol=loose / 100)
    scale = x_scale(x_tight, osc.system.name) if scale is None else scale
    return valid_prediction_time(x_loose, x_tight, t, threshold, scale, start=1)


def data_trust_horizon(data: Trajectories, *, threshold: float = 0.1,
                       **options: object) -> np.ndarray:
    """:func:`trust_horizon` of each trajectory of ``data`` from its initial state, on its
    grid, under its stored system and forcing, with the data's std of x as the scale
    (the valid prediction time's)."""
    if data.is_series:
        raise DataError("trust horizon: a series has no equations of motion to integrate")
    return trust_horizon(data.oscillator(), data.x[:, 0], data.v[:, 0], data.t,
                         threshold=threshold, scale=x_scale(data.x, data.system), **options)
