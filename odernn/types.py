"""Shape aliases used in signatures and docstrings.

N trajectories, T time points (``n_steps``, ``t = 0`` included), K harmonics
of a forcing, H hidden units, C input channels.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.floating]
"""A float array; the docstring gives its shape, e.g. ``(N, T)``."""

Seed = int | np.random.Generator | np.random.SeedSequence
