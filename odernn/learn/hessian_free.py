"""Hessian-free optimisation (truncated Newton with Gauss-Newton curvature), in torch.

After J. Martens, "Deep learning via Hessian-free optimization" (ICML 2010)
and J. Martens & I. Sutskever, "Learning recurrent neural networks with
Hessian-free optimization" (ICML 2011). The notes' reason to care: HF "can
detect directions with a tiny gradient but even smaller curvature", which is
where the vanishing gradients of an RNN hide.

Each step minimises a damped quadratic model of the loss around the
parameters theta,

    q(p) = L(theta) + g^T p + 1/2 p^T (G + lambda I + mu lambda S) p,

by conjugate gradient, never forming a matrix: ``G v = J^T H_L J v`` (the
Gauss-Newton matrix, J the Jacobian of the outputs with respect to the
parameters, H_L the Hessian of the loss with respect to the outputs) is one
forward-mode pass (``torch.func.jvp``) and one reverse pass (``vjp``).
``lambda`` is Tikhonov damping, adapted by the Levenberg-Marquardt rule;
``mu lambda S`` is Martens & Sutskever's structural damping, the Gauss-Newton
matrix of ``D = mean((h(theta + p) - h(theta))^2)`` over the hidden states h:
an RNN's outputs depend on its parameters through long chains of hidden
states, and the quadratic model stays trustworthy only while those move
little. D is a mean, like the loss, so mu is not on the scale of the papers'
sums.

The model is given functionally: ``f(params, inputs)`` returns the outputs,
or ``(outputs, hidden)`` for structural damping, where ``params`` is a
``dict[str, Tensor]``; ``torch.func.functional_call(module, params, (u,))``
turns any ``nn.Module`` into one. The loss is the mean squared error,
``L = mean((outputs - target)^2)``, whose Hessian with respect to the outputs
is ``2/N I`` (N the number of output elements).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from odernn.errors import DataError, SpecError

Params = dict[str, Tensor]
Model = Callable[[Params, Any], Tensor | tuple[Tensor, Tensor]]
Batch = tuple[Any, Tensor]
"""``(inputs, target)``: ``f(params, inputs)`` is compared with ``target``."""


def mse(outputs: Tensor, target: Tensor) -> Tensor:
    """``mean((outputs - target)^2)``, the loss HF minimises."""
    if outputs.shape != target.shape:
        raise SpecError(f"target has shape {tuple(target.shape)}, outputs {tuple(outputs.shape)}")
    return torch.mean((outputs - target) ** 2)


def _outputs(result: Tensor | tuple[Tensor, Tensor]) -> Tensor:
    return result[0] if isinstance(result, tuple) else result


def gauss_newton_operator(f: Model, params: Params, inputs: Any) -> Callable[..., Params]:
    """The Gauss-Newton matrix at ``params`` on ``inputs``, as a product ``v -> G v``.

    Returns ``product(v, hidden_weight=0.0)`` computing
    ``J^T H_L J v + hidden_weight * J_h^T H_D J_h v`` for a direction ``v``
    shaped like ``params``: ``J v`` by forward mode (jvp), then ``J^T (H J v)``
    by reverse mode (vjp), with ``H_L = 2/N I`` (mean squared error over N
    outputs) and ``H_D = 2/N_h I`` (mean squared change of the N_h hidden
    states ``f`` returns second). The reverse pass is recorded once and reused
    by every product, so conjugate gradient pays one jvp and one vjp per step.
    """

    def at(p: Params) -> Tensor | tuple[Tensor, Tensor]:
        return f(p, inputs)

    _, vjp_fn = torch.func.vjp(at, params)

    def product(v: Params, hidden_weight: float = 0.0) -> Params:
        _, tangent = torch.func.jvp(at, (params,), (v,))
        if not isinstance(tangent, tuple):
            if hidden_weight:
                raise SpecError("structural damping needs f to return (outputs, hidden)")
            return vjp_fn(tangent * (2.0 / tangent.numel()))[0]
        out_t, hidden_t = tangent
        cotangent = (
            out_t * (2.0 / out_t.numel()),
            hidden_t * (hidden_weight * 2.0 / hidden_t.numel()),
        )
        return vjp_fn(cotangent)[0]

    return product


@dataclass
class CGResult:
    """Conjugate gradient's answer: the last iterate ``x`` after ``iters`` iterations,
    the iterates kept for backtracking as ``(iteration, x_i)`` (the last included),
    and ``phi[i]``, the quadratic ``1/2 x_i^T A x_i - b^T x_i`` at every iteration."""

    x: Tensor
    iters: int
    iterates: list[tuple[int, Tensor]] = field(default_factory=list)
    phi: list[float] = field(default_factory=list)


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor],
    b: Tensor,
    x0: Tensor | None = None,
    *,
    max_iters: int = 250,
    tol: float = 5e-4,
    residual_tol: float = 1e-10,
    save_ratio: float = 1.3,
) -> CGResult:
    """Solve ``A x = b`` for a symmetric positive (semi-)definite A given as ``matvec``.

    Equivalently minimise ``phi(x) = 1/2 x^T A x - b^T x``. Martens' stopping
    rule ends the run at iteration ``i > k`` once ``phi(x_i) < 0`` and
    ``(phi(x_i) - phi(x_{i-k})) / phi(x_i) < k * tol`` with
    ``k = max(10, ceil(0.1 i))``: the relative progress over the last k
    iterations has become too small to be worth more products (``tol = 0``
    turns the rule off). The run also ends at ``max_iters``, when the residual
    falls below ``residual_tol * ||b||``, or when a search direction has no
    positive curvature. Iterates at iterations ``ceil(save_ratio^j)`` are kept
    for CG backtracking.
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - matvec(x)
    d = r.clone()
    rr = torch.dot(r, r)
    stop_rr = residual_tol**2 * torch.dot(b, b)
    phi = [float(-0.5 * torch.dot(x, b + r))]  # A x = b - r
    result = CGResult(x, 0, [], phi)
    next_save = 1.0
    for i in range(1, max_iters + 1):
        if rr <= stop_rr:
            break
        Ad = matvec(d)
        curvature = torch.dot(d, Ad)
        if not curvature > 0:
            break
        alpha = rr / curvature
        x = x + alpha * d
        r = r - alpha * Ad
        rr, rr_old = torch.dot(r, r), rr
        d = r + (rr / rr_old) * d
        phi.append(float(-0.5 * torch.dot(x, b + r)))
        result.x, result.iters = x, i
        if i >= math.ceil(next_save):
            result.iterates.append((i, x))
            while math.ceil(next_save) <= i:
                next_save *= save_ratio
        k = max(10, math.ceil(0.1 * i))
        if tol > 0 and i > k and phi[i] < 0 and (phi[i] - phi[i - k]) / phi[i] < k * tol:
            break
    if not result.iterates or result.iterates[-1][0] != result.iters:
        result.iterates.append((result.iters, result.x))
    return result


def backtrack(
    iterates: list[tuple[int, Tensor]], objective: Callable[[Tensor], float]
) -> tuple[int, Tensor, float]:
    """CG backtracking: the kept iterate to step to, as ``(iteration, x, objective(x))``.

    CG minimises the quadratic model, not the loss, so a late iterate can be
    worse than an earlier one. Martens walks back from the last kept iterate
    while the objective keeps improving and stops at the first that does not:
    the best iterate when the objective along the CG path has a single
    minimum, at the price of a few objective evaluations.
    """
    best_i, best_x = iterates[-1]
    best = objective(best_x)
    for i, x in reversed(iterates[:-1]):
        value = objective(x)
        if not value < best:
            break
        best_i, best_x, best = i, x, value
    return best_i, best_x, best


def levenberg_marquardt(damping: float, rho: float) -> float:
    """Martens' Levenberg-Marquardt rule for the Tikhonov damping lambda.

    ``rho`` is the reduction ratio, actual over predicted decrease of the
    loss: below 1/4 the quadratic model was too optimistic, so lambda grows by
    3/2 (a shorter, more gradient-like step); above 3/4 it was trustworthy,
    so lambda shrinks by 2/3. A NaN ratio counts as a failure.
    """
    if not rho >= 0.25:
        return damping * 1.5
    if rho > 0.75:
        return damping * (2.0 / 3.0)
    return damping


class HessianFree:
    """Hessian-free optimiser for ``f(params, inputs)`` under the mean squared error.

    ``params`` (a ``dict[str, Tensor]``, e.g. ``dict(module.named_parameters())``)
    is updated in place by :meth:`step`. Options: ``damping`` is the initial
    lambda; ``structural_damping`` is mu (0 turns it off; otherwise ``f``
    returns ``(outputs, hidden)``); ``cg_decay`` scales the previous CG
    solution that starts the next run; ``max_cg_iters``, ``cg_tol`` and
    ``save_ratio`` go to :func:`conjugate_gradient`; the line search shrinks
    the step by ``0.8`` until the Armijo condition with ``c = 1e-2`` holds,
    at most ``max_line_search`` times, and otherwise rejects it.

    Every quantity is computed in the parameters' dtype, in a fixed order, so
    the same data and state give the same step.
    """

    def __init__(
        self,
        f: Model,
        params: Params,
        *,
        damping: float = 1.0,
        structural_damping: float = 0.0,
        adapt_damping: bool = True,
        max_cg_iters: int = 250,
        cg_tol: float = 5e-4,
        cg_decay: float = 0.95,
        save_ratio: float = 1.3,
        max_line_search: int = 60,
    ) -> None:
        if not params or not all(torch.is_floating_point(p) for p in params.values()):
            raise SpecError("Hessian-free needs a non-empty dict of floating-point parameters")
        checks = [
            ("damping", damping, damping >= 0, ">= 0"),
            ("structural_damping", structural_damping, structural_damping >= 0, ">= 0"),
            ("max_cg_iters", max_cg_iters, max_cg_iters >= 1, ">= 1"),
            ("cg_tol", cg_tol, cg_tol >= 0, ">= 0"),
            ("cg_decay", cg_decay, 0 <= cg_decay <= 1, "in [0, 1]"),
            ("save_ratio", save_ratio, save_ratio > 1, "> 1"),
            ("max_line_search", max_line_search, max_line_search >= 0, ">= 0"),
        ]
        for name, value, ok, allowed in checks:
            if not ok:
                raise SpecError(f"Hessian-free option {name} = {value}, expected {allowed}")
        self.f = f
        self.params = params
        self.damping = float(damping)
        self.structural_damping = float(structural_damping)
        self.adapt_damping = adapt_damping
        self.max_cg_iters = max_cg_iters
        self.cg_tol = cg_tol
        self.cg_decay = cg_decay
        self.save_ratio = save_ratio
        self.max_line_search = max_line_search
        self.steps = 0
        self.solution = self._flat({k: torch.zeros_like(p) for k, p in params.items()})

    # -- flat vectors <-> parameter dicts (CG works on flat vectors)
    def _flat(self, tensors: Params) -> Tensor:
        return torch.cat([tensors[k].reshape(-1) for k in self.params])

    def _unflat(self, vector: Tensor) -> Params:
        out, start = {}, 0
        for k, p in self.params.items():
            out[k] = vector[start : start + p.numel()].view_as(p)
            start += p.numel()
        return out

    def step(self, batch: Batch, cg_batch: Batch | None = None) -> dict[str, float]:
        """One HF step on ``batch = (inputs, target)``; curvature from ``cg_batch`` if given.

        Gradient, loss, CG backtracking, the reduction ratio and the line
        search use ``batch``; the Gauss-Newton products use ``cg_batch``
        (Martens uses a smaller one there). Returns the loss before the step,
        ``new_loss`` after it, ``rho``, the ``lambda`` used, ``cg_iters`` and
        the line search's step length ``alpha`` (0 when the step was rejected).
        """
        inputs, target = batch
        theta = {k: p.detach() for k, p in self.params.items()}

        def loss_of(p: Params) -> Tensor:
            return mse(_outputs(self.f(p, inputs)), target)

        grad, loss0 = torch.func.grad_and_value(loss_of)(theta)
        loss0 = float(loss0)
        if not math.isfinite(loss0):
            raise FloatingPointError(f"Hessian-free: the loss is {loss0} before the step")
        g = self._flat(grad)

        G = gauss_newton_operator(self.f, theta, (batch if cg_batch is None else cg_batch)[0])
        lam, hidden_weight = self.damping, self.structural_damping * self.damping

        def damped(v: Tensor) -> Tensor:
            return self._flat(G(self._unflat(v), hidden_weight)) + lam * v

        cg = conjugate_gradient(
            damped,
            -g,
            self.cg_decay * self.solution,
            max_iters=self.max_cg_iters,
            tol=self.cg_tol,
            save_ratio=self.save_ratio,
        )
        self.solution = cg.x  # the next run starts from the last iterate, not the backtracked one

        def loss_after(step: Tensor) -> float:
            """The loss at theta + step; a non-finite loss counts as +inf."""
            with torch.no_grad():
                value = float(loss_of({k: theta[k] + d for k, d in self._unflat(step).items()}))
            return value if math.isfinite(value) else math.inf

        _, p, new_loss = backtrack(cg.iterates, loss_after)

        # Reduction ratio against the undamped model q(p) - q(0) = g^T p + 1/2 p^T G p.
        predicted = float(torch.dot(g, p) + 0.5 * torch.dot(p, self._flat(G(self._unflat(p)))))
        rho = (new_loss - loss0) / predicted if predicted < 0 else -math.inf
        if self.adapt_damping:
            self.damping = levenberg_marquardt(self.damping, rho)

        # Backtracking line search on the step length (Armijo, c = 1e-2); a step
        # that is not a descent direction, or never satisfies it, is rejected.
        slope, alpha, tries = float(torch.dot(g, p)), 1.0, 0
        while not (slope < 0 and new_loss <= loss0 + 1e-2 * alpha * slope):
            if slope >= 0 or tries == self.max_line_search:
                alpha, new_loss = 0.0, loss0
                break
            alpha, tries = 0.8 * alpha, tries + 1
            new_loss = loss_after(alpha * p)
        with torch.no_grad():
            for k, d in self._unflat(p).items():
                self.params[k].add_(d, alpha=alpha)
        self.steps += 1
        return {
            "loss": loss0,
            "new_loss": new_loss,
            "rho": rho,
            "lambda": lam,
            "cg_iters": cg.iters,
            "alpha": alpha,
        }

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to resume: lambda, the CG warm start, the step count."""
        return {"damping": self.damping, "solution": self.solution.clone(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; refuses a state saved for other parameters."""
        missing = {"damping", "solution", "steps"} - set(state)
        if missing:
            raise DataError(f"Hessian-free state lacks {sorted(missing)}")
        solution = state["solution"]
        if not isinstance(solution, Tensor) or solution.shape != self.solution.shape:
            found = tuple(solution.shape) if isinstance(solution, Tensor) else type(solution)
            raise DataError(
                f"Hessian-free state holds a CG solution of shape {found}, "
                f"these parameters need ({self.solution.numel()},): saved for another model?"
            )
        self.damping = float(state["damping"])
        self.solution = solution.to(self.solution).clone()
        self.steps = int(state["steps"])
