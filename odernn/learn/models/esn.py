"""Reservoir computing: an echo state network whose only trained part is a linear readout.

The notes' third way to train an RNN: "initialize the input -> hidden and
hidden -> hidden connections very carefully ... ESNs only need to learn the
hidden -> output connections". The reservoir state follows the leaky update

    r_t = (1 - a) r_{t-1} + a tanh(W_in u_t + W r_{t-1} + b)

with fixed random weights: ``W`` sparse (``degree`` non-zeros per row)
scaled to the requested spectral radius, ``W_in`` uniform in
``+-input_scaling``, ``b`` uniform in ``+-bias``. The readout is linear in the
features ``[1, u_t, r_t]``, ``y_t = W_out [1, u_t, r_t]``, solved by ridge
regression in float64 from ``X^T X`` and ``X^T Y`` accumulated block by block
(:meth:`ESN.accumulate`: memory independent of the amount of data). The
training loop chooses the ridge strength on closed-loop validation error.
The initial state is ``r_0 = tanh(W_0 s_0 + b)``, a fixed random map of the
normalised ``x0, v0`` and parameters taken, scaled like ``W_in``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
from torch import Tensor, nn

from odernn import budget
from odernn.errors import DataError, SpecError
from odernn.learn.models.inference import sigmoid_form_
from odernn.learn.models.layout import Layout, Stats
from odernn.learn.models.options import option
from odernn.learn.models.surrogate import RecurrentSurrogate, State, drawing

FIXED_WEIGHTS = ("W_value", "W_in", "W_0", "b")
"""The drawn weights (float32), finite in every model built or loaded."""
RESERVOIR_BLOCK = 1 << 22
"""Random draws per block of rows while choosing the reservoir's connections (32 MiB)."""


def sparse_reservoir(units: int, degree: int, spectral_radius: float,
                     rng: np.random.Generator) -> scipy.sparse.csr_matrix:
    """A random ``units x units`` matrix with ``degree`` normal entries per row, scaled so
    that its largest eigenvalue modulus is ``spectral_radius``."""
    w = random_connections(units, degree, rng)
    return w * (spectral_radius / largest_modulus(w, rng.standard_normal(units)))


def random_connections(units: int, degree: int,
                       rng: np.random.Generator) -> scipy.sparse.csr_matrix:
    """``degree`` standard normal entries in each row, in columns drawn without repetition."""
    # Row blocks of the same stream (a units x units draw would need 8 units^2 bytes at
    # once); the ``degree`` smallest of each row's draws, sorted, as an argsort would give.
    cols = np.empty((units, degree), dtype=np.int64)
    step = max(1, RESERVOIR_BLOCK // units)
    for lo in range(0, units, step):
        draws = rng.random((min(step, units - lo), units))
        part = np.argpartition(draws, degree - 1, axis=1)[:, :degree] if degree < units else \
            np.argsort(draws, axis=1)
        cols[lo:lo + draws.shape[0]] = part
    cols.sort(axis=1)
    rows = np.repeat(np.arange(units), degree)
    return scipy.sparse.csr_matrix((rng.standard_normal(units * degree), (rows, cols.ravel())),
                                   shape=(units, units))


def largest_modulus(w: scipy.sparse.csr_matrix, v0: np.ndarray) -> float:
    """The largest eigenvalue modulus of ``w``, by ARPACK from the start vector ``v0``; by a
    dense solve where ARPACK does not converge."""
    # A fixed start vector (ARPACK's default is random): reproducible. A random sparse
    # matrix has many eigenvalues of nearly the largest modulus; asked for one with its
    # default 20 Lanczos vectors, ARPACK can settle on one that is not the largest (1.7 %
    # short on 2000 units). Six with 40 vectors matched a dense solve on every reservoir
    # measured (benchmarks/reservoir_radius.py). One connection per row (degree 1) puts
    # whole cycles of eigenvalues on one circle, where ARPACK may not converge (its restarts
    # capped, so that a failure is quick): more vectors, then the dense solve. ARPACK needs
    # k < n - 1: two units are dense anyway.
    n = w.shape[0]
    if n <= 2:
        return float(np.abs(np.linalg.eigvals(w.toarray())).max())
    for ncv in sorted({min(40, n), min(160, n)}):
        try:
            return float(np.abs(scipy.sparse.linalg.eigs(
                w, k=min(6, n - 2), ncv=ncv, which="LM", v0=v0, maxiter=1000,
                return_eigenvectors=False)).max())
        except scipy.sparse.linalg.ArpackNoConvergence:
            continue
    budget.check(f"esn: units = {n}, the reservoir's spectral radius by a dense solve "
                 "(ARPACK did not converge)", budget.dense_eigvals_bytes(n),
                 "choose degree >= 2 or fewer units")
    return float(np.abs(np.linalg.eigvals(w.toarray())).max())


def add_products(gram: Tensor, cross: Tensor, x: Tensor, y: Tensor) -> None:
    """``gram += x^T x``, ``cross += x^T y`` in float64 (on the CPU through numpy's BLAS)."""
    if x.device.type == "cpu":
        g, c, xn = gram.numpy(), cross.numpy(), x.numpy()
        g += xn.T @ xn
        c += xn.T @ y.numpy()
    else:
        gram.addmm_(x.T, x)
        cross.addmm_(x.T, y)


@dataclass(frozen=True)
class ReservoirOptions:
    """Hyperparameters of the echo state network."""

    units: int = option(1000, "reservoir units")
    spectral_radius: float = option(0.5, "largest eigenvalue modulus of the reservoir W")
    leak_rate: float = option(1.0, "a of the leaky update, in (0, 1]")
    input_scaling: float = option(0.05, "W_in uniform in +-input_scaling")
    bias: float = option(0.5, "b uniform in +-bias")
    degree: int = option(10, "non-zeros per row of W")
    seed: int = option(0, "seed of the reservoir's random weights")


class ESN(RecurrentSurrogate):
    """Echo state network; ``W_out`` is its only trainable parameter."""

    family = "esn"
    description = "echo state network: fixed sparse reservoir, float64 ridge readout"
    options = ReservoirOptions
    recipe = "ridge"
    size_option = "units"
    memory_hint = ("the readout's normal equations are (units + inputs + 1) squared, dense, in "
                   "float64, and the reservoir holds units x degree weights; reduce units (or "
                   "degree)")

    @classmethod
    def parameter_count(cls, hparams: dict[str, Any], n_inputs: int, n_init: int,
                        n_outputs: int, n_params: int) -> int:
        units = int(hparams.get("units", cls.defaults["units"]))
        degree = int(hparams.get("degree", cls.defaults["degree"]))
        return units * (n_inputs + n_init + 1 + 3 * degree) + units + 1 + n_outputs * (
            1 + n_inputs + units)

    @classmethod
    def training_bytes(cls, hparams: dict[str, Any], n_inputs: int, n_init: int,
                       n_outputs: int, n_params: int, *, batch_size: int = 0,
                       steps: int = 0) -> int:
        """The dense normal equations ``X^T X`` (float64), their product temporary, the
        regularised copy and the solver's factorisation, and the reservoir's values."""
        features = 1 + n_inputs + int(hparams.get("units", cls.defaults["units"]))
        params = cls.parameter_count(hparams, n_inputs, n_init, n_outputs, n_params)
        return 4 * features**2 * 8 + 2 * params * 8 + 64 * 64 * features * 12

    @classmethod
    def check_options(cls, units: int = 1000, spectral_radius: float = 0.5,
                      leak_rate: float = 1.0, input_scaling: float = 0.05, bias: float = 0.5,
                      degree: int = 10, **rest: Any) -> None:
        if units < 2 or not 1 <= degree <= units:
            raise SpecError(f"esn needs units >= 2 and 1 <= degree <= units; "
                            f"got units={units}, degree={degree}")
        if not (spectral_radius > 0 and 0 < leak_rate <= 1 and input_scaling > 0 and bias >= 0):
            raise SpecError("esn needs spectral_radius > 0, 0 < leak_rate <= 1, "
                            "input_scaling > 0 and bias >= 0")

    def __init__(self, layout: Layout, stats: Stats, units: int = 1000,
                 spectral_radius: float = 0.5, leak_rate: float = 1.0,
                 input_scaling: float = 0.05, bias: float = 0.5, degree: int = 10,
                 seed: int = 0) -> None:
        self.check_options(units=units, spectral_radius=spectral_radius, leak_rate=leak_rate,
                           input_scaling=input_scaling, bias=bias, degree=degree)
        super().__init__(layout, stats, {
            "units": units, "spectral_radius": spectral_radius, "leak_rate": leak_rate,
            "input_scaling": input_scaling, "bias": bias, "degree": degree, "seed": seed})
        shapes = {"W_crow": units + 1, "W_col": units * degree, "W_value": units * degree,
                  "W_in": (units, layout.n_inputs), "W_0": (units, layout.n_init), "b": units}
        drawn = (self._draw(units, degree, spectral_radius, input_scaling, bias, seed, shapes)
                 if drawing() else {k: np.zeros(shape) for k, shape in shapes.items()})
        for name, a in drawn.items():
            self.register_buffer(name, torch.as_tensor(
                a, dtype=torch.int64 if name in ("W_crow", "W_col") else torch.float32))
        overflow = [n for n in FIXED_WEIGHTS if not torch.isfinite(getattr(self, n)).all()]
        if overflow:  # else trained, saved, and refused by every loader as corrupt
            raise SpecError(f"esn: spectral_radius = {spectral_radius:g}, input_scaling = "
                            f"{input_scaling:g}, bias = {bias:g} make the reservoir's weights "
                            f"({', '.join(overflow)}) overflow float32: give smaller values")
        self.register_buffer("ridge", torch.tensor(np.nan, dtype=torch.float64))
        self.W_out = nn.Parameter(torch.zeros(layout.n_outputs, 1 + layout.n_inputs + units))
        self._csr: tuple[Any, Tensor] | None = None

    @staticmethod
    def _draw(units: int, degree: int, spectral_radius: float, input_scaling: float,
              bias: float, seed: int, shapes: dict[str, Any]) -> dict[str, np.ndarray]:
        """The reservoir, the input and initial-state weights and the bias, from ``seed``."""
        rng_w, rng_in, rng_0, rng_b = (np.random.default_rng(s)
                                       for s in np.random.SeedSequence(seed).spawn(4))
        w = sparse_reservoir(units, degree, spectral_radius, rng_w)
        return {"W_crow": w.indptr, "W_col": w.indices, "W_value": w.data,
                "W_in": input_scaling * rng_in.uniform(-1.0, 1.0, shapes["W_in"]),
                "W_0": input_scaling * rng_0.uniform(-1.0, 1.0, shapes["W_0"]),
                "b": bias * rng_b.uniform(-1.0, 1.0, units)}

    @property
    def n_features(self) -> int:
        return self.W_out.shape[1]

    def __getstate__(self) -> dict[str, Any]:
        """Without the cached sparse matrix (remade on use): torch can neither copy nor pickle
        a sparse CSR tensor, so a used model could not be deep-copied."""
        return {**self.__dict__, "_csr": None}

    def load_state_dict(self, state_dict: Any, strict: bool = True,
                        assign: bool = False) -> Any:
        """Load weights, then check the reservoir's sparse structure (torch's CSR product
        does not: an index out of range read memory out of bounds, or crashed): ``degree``
        entries in each row, columns within the units, finite values."""
        loaded = super().load_state_dict(state_dict, strict=strict, assign=assign)
        n, degree = self.hparams["units"], self.hparams["degree"]
        crow, col, value = self.W_crow, self.W_col, self.W_value
        rows = torch.arange(n + 1, dtype=crow.dtype, device=crow.device) * degree
        if not (crow.shape == rows.shape and torch.equal(crow, rows)
                and col.numel() == value.numel() == n * degree
                and bool(((col >= 0) & (col < n)).all())
                and all(bool(getattr(self, k).isfinite().all()) for k in FIXED_WEIGHTS)):
            raise DataError(f"this esn's reservoir is not {degree} finite entries in each of "
                            f"its {n} rows, within its columns, with finite input weights and "
                            "bias (a corrupt or forged checkpoint)")
        self._csr = None
        return loaded

    def recurrent_matrix(self) -> Tensor:
        """``W`` as a sparse CSR tensor on the model's device (cached)."""
        key = (self.W_value.data_ptr(), self.W_value.device)
        if self._csr is None or self._csr[0] != key:
            n = self.hparams["units"]
            # "sparse CSR support is in beta"; a cache made in a rollout (inference mode) as
            # an ordinary tensor: it stays with the model
            with warnings.catch_warnings(), torch.inference_mode(False):
                warnings.simplefilter("ignore", UserWarning)
                w = torch.sparse_csr_tensor(self.W_crow, self.W_col, self.W_value, (n, n),
                                            check_invariants=False)
            self._csr = (key, w)
        return self._csr[1]

    def initial_state(self, s0: Tensor) -> State:
        return (sigmoid_form_(torch.addmm(self.b[:, None], self.W_0, s0.T)).T,)

    def recurrent_product(self, r: Tensor) -> Tensor:
        """``W r^T``, ``(units, B)``, from the state ``r (B, units)``: torch's sparse CSR
        product, which ``benchmarks/rollout.py`` measures against a dense product of the
        reservoir's size and scipy's CSR product."""
        return self.recurrent_matrix() @ r.T

    def reservoir_step(self, u: Tensor, r: Tensor) -> Tensor:
        """One leaky update; ``r (B, units)`` is stored transposed (fast sparse products).
        tanh as ``2 sigmoid(2 a) - 1`` on every device, even where torch's tanh is faster: the
        demo's reservoirs fitted with torch's tanh were measured less accurate, at every rank
        of their seeds (``benchmarks/tanh_form.py``)."""
        pre = self.recurrent_product(r)
        pre = sigmoid_form_(pre.addmm_(self.W_in, u.T).add_(self.b[:, None]))
        a = self.hparams["leak_rate"]
        return (pre if a == 1.0 else r.T + a * (pre - r.T)).T

    def readout(self, u: Tensor, r: Tensor, w: Tensor | None = None) -> Tensor:
        """``W_out [1, u, r]``, solved in float64 and applied in float32 (``w``: another
        readout in its place)."""
        w, c = self.W_out if w is None else w, u.shape[-1]
        if r.ndim == 2:  # one step: products in the (units, B) layout of the state
            return torch.addmm(w[:, 0, None], w[:, 1:1 + c], u.T).addmm_(w[:, 1 + c:], r.T).T
        return w[:, 0] + u @ w[:, 1:1 + c].T + r @ w[:, 1 + c:].T

    def step(self, u: Tensor, state: State) -> tuple[Tensor, State]:
        r = self.reservoir_step(u, state[0])
        return self.readout(u, r), (r,)

    def inference_step(self) -> Callable[[Tensor, State], tuple[Tensor, State]]:
        """:meth:`step` with the readout as it is now (a readout solved again does not change
        a step made before; the reservoir is fixed)."""
        w = self.W_out.detach().clone()

        def step(u: Tensor, state: State) -> tuple[Tensor, State]:
            r = self.reservoir_step(u, state[0])
            return self.readout(u, r, w), (r,)

        return step

    def exportable_step(self) -> Callable[[Tensor, State], tuple[Tensor, State]]:
        """The step with the sparse product written with dense tensors (an exporter traces no
        sparse one): row j of ``W`` holds ``degree`` entries, so ``(W r)_j`` is
        ``W_value[j, :] @ r[W_col[j, :]]``, a gather and a batched product over the
        ``units x degree`` values as stored (a dense ``units x units`` matrix would grow as
        units squared); and ``tanh`` itself rather than odernn's sigmoid form of it."""
        n, degree = self.hparams["units"], self.hparams["degree"]
        if self.W_col.numel() != n * degree:
            raise DataError(f"this esn's reservoir holds {self.W_col.numel()} entries, not "
                            f"{degree} in each of its {n} rows: it cannot be exported")
        cols, values = self.W_col.view(n, degree), self.W_value.view(n, degree)
        a = self.hparams["leak_rate"]

        def step(u: Tensor, state: State) -> tuple[Tensor, State]:
            r = state[0]
            gathered = r.T[cols]  # (units, degree, B): whole rows of the transposed state
            pre = torch.matmul(values[:, None, :], gathered)[:, 0].T + self.b
            pre = torch.tanh(torch.addmm(pre, u, self.W_in.T))
            r = pre if a == 1.0 else r + a * (pre - r)
            return self.readout(u, r), (r,)

        return step

    def states(self, u: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Reservoir states ``(B, L, units)`` driven by ``u (B, L, C)``."""
        r = u.new_zeros(self.hparams["units"], u.shape[0]).T if state is None else state[0]
        rs = []
        for i in range(u.shape[1]):
            r = self.reservoir_step(u[:, i], r)
            rs.append(r)
        return torch.stack(rs, dim=1), (r,)

    def sequence(self, u: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        rs, state = self.states(u, state)
        return self.readout(u, rs), state

    def features(self, u: Tensor, r: Tensor) -> Tensor:
        """The readout's regressors ``[1, u, r]`` in float64, ``(..., n_features)``."""
        one = torch.ones(*u.shape[:-1], 1, dtype=torch.float64, device=u.device)
        return torch.cat([one, u.double(), r.double()], dim=-1)

    @torch.no_grad()
    def regressors(self, z: Tensor, e: Tensor, chunk: int = 64
                   ) -> Iterator[tuple[Tensor, Tensor]]:
        """The readout's regressors ``x (B, S, F)`` (float64) and targets ``y (B, S, O)`` of
        the teacher-forced windows ``z (B, L+1, Z)``, ``e (B, L+1, E)``, ``chunk`` steps at a
        time (memory ``B x chunk x units``), every step a row."""
        state = self.initial_state(self.codec.init_features(z[:, 0], e[:, 0]))
        for s in range(0, z.shape[1] - 1, chunk):
            zs = z[:, s:s + chunk + 1]
            es = e[:, s:s + zs.shape[1] - 1]
            u = self.codec.encode(zs[:, :-1], es)
            rs, state = self.states(u, state)
            yield (self.features(u, rs),
                   self.codec.target(zs[:, :-1], zs[:, 1:], es).double())

    def accumulate(self, z: Tensor, e: Tensor, gram: Tensor, cross: Tensor,
                   chunk: int = 64) -> int:
        """Add ``X^T X`` and ``X^T Y`` of the teacher-forced windows ``z, e`` to ``gram, cross``
        (:meth:`regressors`); returns the number of rows."""
        rows = 0
        for x, y in self.regressors(z, e, chunk):
            x = x.reshape(-1, self.n_features)
            add_products(gram, cross, x, y.reshape(x.shape[0], -1))
            rows += x.shape[0]
        return rows

    def solve_readout(self, gram: Tensor, cross: Tensor, count: int, ridge: float) -> None:
        """Set ``W_out = (X^T X / n + ridge I)^{-1} X^T Y / n``, solved in float64; NaN where
        the solver meets a zero pivot (features saturated by a huge ``bias`` are exact
        multiples of the constant): no readout at this ridge, whose closed loop then counts as
        diverged."""
        a = gram / count + ridge * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        with torch.no_grad():
            try:
                w = torch.linalg.solve(a, cross / count)
            except torch.linalg.LinAlgError:
                w = torch.full_like(cross, float("nan"))
            self.W_out.copy_(w.T)
            self.ridge.fill_(ridge)
