"""The peer ``dmdc``: dynamic mode decomposition with control, in numpy (no extra needed).

A linear map ``z_{k+1} = G^T r_k`` of the state ``z = (x, v)``, fitted by least squares, with
the regressors of the surrogates' linear skip at its defaults
(:func:`~odernn.learn.models.readout.skip_features`): the state, the three forcing samples
``F_{k-1}, F_k, F_{k+1}`` (``F_{-1} = F_0``, as a surrogate's ``F_prev``), each monomial of
the varying parameters up to degree 2 on a linear system (1 on a nonlinear one) times each
of those five, the monomials alone, and 1. A peer gets what a surrogate gets: with two
samples alone and first-order parameter terms (before 6 December 2026) it could not do
better than the forcing's linear interpolation (``rk4-sampled``), 30 times less accurate
on the linear oscillator than the same least squares given ``F_{k-1}``.

The columns are scaled to unit RMS and the pseudo-inverse truncated to an SVD rank, chosen
on held-out training trajectories (:func:`odernn.assess.peers.fit_peers`). For the linear
oscillator under forcing linear between its samples, the full-rank fit is its exact
discrete map.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from odernn.assess.peers import (
    Peer,
    check_memory,
    columns,
    one_thread,
    parameter_matrix,
    rows,
    state_scale,
)
from odernn.data.trajectories import Trajectories
from odernn.learn.models.layout import linear_map
from odernn.learn.models.readout import monomials

SAMPLES = ("F_k-1", "F_k", "F_k+1")
"""The forcing samples a step reads (a surrogate's ``F_prev``, ``F``, ``F_next``)."""


def degree(system: str) -> int:
    """The parameters' monomial degree: the surrogates' default (:func:`~odernn.learn.models.
    readout.product_degree`), 2 where their one-step map is linear (:func:`~odernn.learn.
    models.layout.linear_map`), 1 otherwise."""
    return 2 if linear_map("state", system) else 1


def dmdc_inputs(z: np.ndarray, samples: tuple[np.ndarray, np.ndarray, np.ndarray],
                p: np.ndarray, deg: int) -> np.ndarray:
    """The regressors of one step per row of ``z``: ``x, v`` and ``samples`` (``F_{k-1},
    F_k, F_{k+1}``, one each per row), each parameter monomial times each of those five, the
    monomials alone, and 1."""
    n = z.shape[0]
    base = np.column_stack([z, *samples])
    terms = monomials(p.shape[1], deg) if p.shape[1] else []
    m = np.column_stack([np.prod(p[:, list(t)], axis=1) for t in terms]) if terms else \
        np.zeros((n, 0))
    products = (m[:, :, None] * base[:, None, :]).reshape(n, -1)
    return np.column_stack([base, products, m, np.ones(n)])


def samples_at(F: np.ndarray, k: np.ndarray | int, rows: np.ndarray | slice = slice(None)
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``F_{k-1}, F_k, F_{k+1}`` of ``rows`` of the samples ``F (N, T)`` (``F_{-1} = F_0``,
    as a surrogate's ``F_prev``): three columns, never a row of ``F`` copied."""
    return F[rows, np.maximum(np.asarray(k) - 1, 0)], F[rows, k], F[rows, np.asarray(k) + 1]


def names(params: Mapping[str, np.ndarray], parameters: tuple[str, ...], n: int,
          deg: int) -> list[str]:
    """A name per column of :func:`dmdc_inputs`."""
    base = ["x_k", "v_k", *SAMPLES]
    cols = columns(params, parameters, n)
    terms = [" ".join(cols[i] for i in t) for t in monomials(len(cols), deg)] if cols else []
    return base + [f"{t} {b}" for t in terms for b in base] + terms + ["1"]


def fit_dmdc(data: Trajectories, parameters: tuple[str, ...],
             ranks: tuple[int, ...] | None = None) -> list[Peer]:
    """DMDc fitted on ``data`` at each SVD rank of ``ranks`` (None: every rank), from one
    SVD of the column-scaled regressors (at most :data:`~odernn.assess.peers.MAX_ROWS`
    samples)."""
    z = np.stack([np.asarray(data.x, np.float64), np.asarray(data.v, np.float64)], -1)
    F = np.asarray(data.F, np.float64)
    p = parameter_matrix(data.params, parameters, data.n)
    deg = degree(data.system)
    labels = names(data.params, parameters, data.n, deg)
    i, k = rows(data.n, data.n_steps - 1)
    check_memory("DMDc's regression", i.size, len(labels))
    X, Y = dmdc_inputs(z[i, k], samples_at(F, k, i), p[i], deg), z[i, k + 1]
    scale = np.sqrt(np.mean(np.square(X), axis=0))
    scale = np.where(scale > 0, scale, 1.0)
    with one_thread():
        U, s, Vt = np.linalg.svd(X / scale, full_matrices=False)
    UtY = U.T @ Y
    mean, std = state_scale(data)
    peers = []
    for r in ranks or tuple(range(1, s.size + 1)):
        r = min(r, s.size)
        G = (Vt[:r].T @ (UtY[:r] / s[:r, None])) / scale[:, None]  # (columns, 2)

        def step(z: np.ndarray, F: np.ndarray, k: int, q: np.ndarray,
                 G: np.ndarray = G) -> np.ndarray:
            return dmdc_inputs(z, samples_at(F, k), q, deg) @ G

        settings = {"rank": int(r), "full_rank": int(s.size), "inputs": labels,
                    "parameter_degree": deg, "fit_samples": int(X.shape[0]),
                    "matrix": G.T.tolist()}
        peers.append(Peer("dmdc", "DMD with control: a linear map of the state, the samples "
                          "F_k-1, F_k, F_k+1 and their parameter products (the surrogates' "
                          "linear skip), fitted by least squares to the training file, closed "
                          "loop", settings, parameters, step, mean, std))
    return peers
