"""The gradient cells' step without autograd: the rollout's and the stepper's hot loop.

:meth:`RecurrentNet.step <odernn.learn.models.rnn.RecurrentNet.step>` writes a cell's
equations as training differentiates them: the input and recurrent products apart, new
tensors at every operation, the weights read through the module. A closed loop without
autograd (:meth:`~odernn.learn.models.surrogate.RecurrentSurrogate.rollout`, the
:class:`~odernn.learn.models.stepper.Stepper`) runs :func:`inference_step` instead: the
same equations with

- the weights read once, detached, and the input and recurrent weights and the bias
  stacked, so that the gates come from one product of ``[u, h, 1]`` (the LSTM's gates
  reordered ``i, f, o, g``: one sigmoid over all four blocks, ``g``'s weights doubled so
  that ``tanh(g) = 2 sigmoid(2 g) - 1`` on every device; the GRU's ``W_hn h + b_hn`` is a
  block of the same product, with zero weights for ``u``, and ``W_in u + b_in`` a product
  apart, as its candidate needs ``r * (W_hn h + b_hn)``);
- the elementwise gate updates in place, in buffers reused from step to step, on the CPU
  in blocks of rows small enough for the cache; every other ``tanh`` in the faster form for
  the device (:func:`tanh_`): on a CPU where torch's tanh is slow (:data:`TANH_BY_SIGMOID`)
  as ``2 sigmoid(2 a) - 1``, the doubling in the weights where they give ``a``; elsewhere
  (a GPU too) torch's tanh, the weights as they are;
- the readout transposed (``V h^T``: two rows of ``B`` columns, a faster product than ``B``
  rows of two columns), the skip's products of the inputs by slicing (no gather), its terms
  added in place, no concatenation.

It gives the same function up to float32 rounding (the sums are taken in another order;
``tests/test_models.py`` checks the two agree). ``benchmarks/rollout.py`` measures both
against the machine's matrix-multiply rate.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as nnf
from torch import Tensor

from odernn.learn.models.cells import identity

State = tuple[Tensor, ...]
StepFn = Callable[[Tensor, State], tuple[Tensor, State]]

IN_PLACE = {"relu": Tensor.relu_, "sigmoid": Tensor.sigmoid_}
_MINUS_ONE = torch.tensor(-1.0)  # zero-dimensional: a scalar to tensors of any device


def _mkl_tanh_is_slow() -> bool:
    """Whether torch's tanh on this CPU is MKL's vector tanh on one of its slow paths. torch
    built with MKL computes tanh by MKL, whose fast path needs an Intel processor with
    AVX-512: on an AMD EPYC, and on an Intel Xeon told ``MKL_ENABLE_INSTRUCTIONS=AVX2``, it
    ran several times slower than torch's own sigmoid; on that Xeon with AVX-512, faster
    (``benchmarks/rollout.py``'s tanh table; the figures in ``docs/performance.md``)."""
    if not torch.backends.mkl.is_available():
        return False
    vendor, flags = _first_processor()
    allowed = (os.environ.get("MKL_ENABLE_INSTRUCTIONS") or "AVX512").upper()
    return not (vendor == "GenuineIntel" and "avx512f" in flags and allowed.startswith("AVX512"))


def _first_processor() -> tuple[str, set[str]]:
    """The vendor and the feature flags of the first processor in ``/proc/cpuinfo`` (the
    facts MKL's dispatch reads from the processor); empty where there is no such file."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields.get("vendor_id", ""), set(fields.get("flags", "").split())


TANH_BY_SIGMOID = _mkl_tanh_is_slow()
"""On this CPU, tanh as ``2 sigmoid(2 a) - 1`` (decided once per process, from the processor,
never by timing: the two forms differ in the last bits of float32, and a run's numbers must
not depend on the machine's load)."""


def by_sigmoid(device: torch.device) -> bool:
    """Whether :func:`tanh_` computes tanh through the sigmoid on ``device``: on a CPU where
    :data:`TANH_BY_SIGMOID`; never on a GPU, whose tanh is one kernel."""
    return device.type == "cpu" and TANH_BY_SIGMOID


def tanh_(a: Tensor, doubled: bool = False) -> Tensor:
    """``tanh`` in place, in the faster form for ``a``'s device (:func:`by_sigmoid`): torch's
    tanh, or :func:`sigmoid_form_`. ``doubled``: ``a`` holds ``2 a`` already (from weights
    doubled, exactly, where :func:`by_sigmoid` asked for the sigmoid form)."""
    if doubled or by_sigmoid(a.device):
        return sigmoid_form_(a, doubled)
    return a.tanh_()


def sigmoid_form_(a: Tensor, doubled: bool = False) -> Tensor:
    """``tanh`` in place as ``2 sigmoid(2 a) - 1``: the same function through torch's sigmoid
    kernel. ``doubled``: ``a`` holds ``2 a`` already, which saves a pass. ``2 s - 1`` is one
    pass, or two, with the same bits, where the ONNX exporter traces it (it cannot trace the
    one); a new tensor with the same bits where autograd records it (``out=`` is not
    differentiable: the reservoir's closed loop with gradients)."""
    if not doubled:
        a.mul_(2.0)
    if torch.jit.is_tracing():
        return a.sigmoid_().mul_(2.0).sub_(1.0)
    if a.requires_grad and torch.is_grad_enabled():
        return torch.add(_MINUS_ONE, a.sigmoid_(), alpha=2)
    return torch.add(_MINUS_ONE, a.sigmoid_(), alpha=2, out=a)


def inference_step(model: Any) -> StepFn:
    """``model.step`` (a :class:`~odernn.learn.models.rnn.RecurrentNet`) with its current
    weights, for use without autograd; the weights are read now, so a step function made
    before the weights change keeps the old ones."""
    with torch.no_grad():
        block, width = _cell_block(model)
        readout = _readout(model)
    # bound once: at a batch of 64 a step's own Python costs as much as its product
    hidden, two = model.hparams["hidden"], model.cell.n_states == 2
    rows = block_rows(width) if model.device.type == "cpu" else None

    def step(u: Tensor, state: State) -> tuple[Tensor, State]:
        n = u.shape[0]
        h = u.new_empty(n, hidden)
        out = (h, u.new_empty(n, hidden)) if two else (h,)
        if rows is None or n <= rows:
            block(u, state, out)
            return readout(h, u), out
        for lo in range(0, n, rows):
            part = slice(lo, min(lo + rows, n))
            block(u[part], tuple(s[part] for s in state), tuple(o[part] for o in out))
        return readout(out[0], u), out

    return step


BLOCK_BYTES = 1 << 20
"""On the CPU a step runs in blocks of rows whose gate pre-activations take at most this
many bytes (1024 rows of an LSTM of 64 units): each block's elementwise passes then read the
cache, not memory (on the development machine blocks of 512 to 1024 rows ran an LSTM's step
at batch 16384 fastest)."""
Block = Callable[[Tensor, State, State], None]


def block_rows(width: int) -> int:
    """The rows of a CPU block whose float32 gate pre-activations, ``width`` wide, take at most
    :data:`BLOCK_BYTES` (at least 64)."""
    return max(64, BLOCK_BYTES // (4 * width))


class _Scratch:
    """Tensors reused from step to step for what a step consumes itself (the product's input
    ``[u, h, 1]`` and output), with their column blocks as views made once: a fresh
    allocation at every step costs more than the arithmetic at large batches (page faults),
    a view more than the arithmetic at small ones. Held per number of rows (a batch's last
    block may be shorter); a step function's weights fix their dtype and device."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, int], tuple[Tensor, ...]] = {}

    def get(self, name: str, like: Tensor, width: int, spans: tuple[tuple[int, int], ...] = (),
            ones_column: bool = False) -> tuple[Tensor, ...]:
        """The buffer ``(rows of like, width)`` and its columns ``lo:hi`` of each span."""
        key = (name, like.shape[0])
        held = self._held.get(key)
        if held is None:
            t = like.new_empty(like.shape[0], width)
            if ones_column:
                t[:, -1] = 1.0
            held = self._held[key] = (t, *(t[:, lo:hi] for lo, hi in spans))
        return held


def _stacked(w_ih: Tensor, w_hh: Tensor, bias: Tensor) -> Tensor:
    """``[W_ih, W_hh, b]^T``, contiguous: ``[u, h, 1] @ it`` is ``W_ih u + W_hh h + b`` (one
    product, the bias its last row: no broadcast copy, the product's fastest form)."""
    return torch.cat([w_ih, w_hh, bias[:, None]], dim=1).T.contiguous()


def _cell_block(model: Any) -> tuple[Block, int]:
    """The cell's step on a block of rows, writing the new state into the given views; and
    the width of its gate pre-activations."""
    family, cell, hidden = model.family, model.cell, model.hparams["hidden"]
    scratch = _Scratch()
    n_in = model.layout.n_inputs

    width = n_in + hidden + 1

    def joined(u: Tensor, h: Tensor) -> Tensor:
        """``[u, h, 1]`` in a reused buffer (its last column holds the ones): two copies into
        views made once, faster than a ``cat`` into it."""
        x, x_u, x_h = scratch.get("x", u, width, ((0, n_in), (n_in, width - 1)),
                                  ones_column=True)
        x_u.copy_(u)
        x_h.copy_(h)
        return x

    if family == "rnn":
        w = _stacked(cell.U.detach(), cell.W.detach(), cell.b.detach())
        activation = model.hparams.get("activation", "tanh")
        if activation == "tanh":
            sig = by_sigmoid(w.device)
            if sig:  # the pre-activation doubled by the weights
                w *= 2.0
            act = partial(sigmoid_form_, doubled=True) if sig else Tensor.tanh_
        else:
            act = IN_PLACE[activation]

        def rnn(u: Tensor, state: State, out: State) -> None:
            act(torch.mm(joined(u, state[0]), w, out=out[0]))

        return rnn, hidden
    f = cell.fused
    w_ih, w_hh, b_ih, b_hh = (t.detach() for t in (f.weight_ih_l0, f.weight_hh_l0,
                                                    f.bias_ih_l0, f.bias_hh_l0))
    h1, h2, h3, h4 = (k * hidden for k in range(1, 5))
    if family == "lstm":
        order = torch.cat([torch.arange(0, h2), torch.arange(h3, h4),
                           torch.arange(h2, h3)]).to(w_ih.device)
        w = _stacked(w_ih[order], w_hh[order], (b_ih + b_hh)[order])
        w[:, h3:] *= 2.0  # g's pre-activation doubled: one sigmoid over every gate
        spans = ((h3, h4), (0, h1), (h1, h2), (h2, h3))  # g; i; f; o
        sig = by_sigmoid(w.device)  # g's tanh from the sigmoid in either case: a tanh over
        # a block of columns is slower than the sigmoid's extra columns and a pass

        def lstm(u: Tensor, state: State, out: State) -> None:
            a, g, i, f, o = scratch.get("a", u, h4, spans)
            torch.mm(joined(u, state[0]), w, out=a).sigmoid_()
            torch.add(_MINUS_ONE, g, alpha=2, out=g)  # tanh(g) from sigmoid(2 g)
            torch.mul(f, state[1], out=out[1]).addcmul_(i, g)
            if sig:
                sigmoid_form_(torch.mul(out[1], 2.0, out=out[0]), doubled=True).mul_(o)
            else:
                torch.tanh(out[1], out=out[0]).mul_(o)

        return lstm, h4
    # GRU: r, z from [u, h, 1]; the candidate's recurrent part W_hn h + b_hn in the same
    # product (zero weights for u); its input part W_in u + b_in apart.
    # With the sigmoid form, the candidate's pre-activation doubled (both parts' weights and
    # biases, exactly).
    sig = by_sigmoid(w_ih.device)
    k = 2.0 if sig else 1.0
    w_n = torch.cat([torch.zeros_like(w_ih[h2:]), w_hh[h2:], b_hh[h2:, None]], dim=1)
    w = torch.cat([_stacked(w_ih[:h2], w_hh[:h2], b_ih[:h2] + b_hh[:h2]), k * w_n.T],
                  dim=1).contiguous()
    w_in, b_in = k * w_ih[h2:].T.contiguous(), k * b_ih[h2:]
    spans = ((0, h2), (0, h1), (h1, h2), (h2, h3))  # r z; r; z; 2 (W_hn h + b_hn)

    def gru(u: Tensor, state: State, out: State) -> None:
        a, rz, r, z, hn = scratch.get("a", u, h3, spans)
        torch.mm(joined(u, state[0]), w, out=a)
        rz.sigmoid_()
        n = torch.addmm(b_in, u, w_in, out=scratch.get("n", u, hidden)[0])
        tanh_(n.addcmul_(r, hn), doubled=sig)
        torch.sub(state[0], n, out=out[0]).mul_(z).add_(n)

    return gru, h3


def _readout(model: Any) -> Callable[[Tensor, Tensor], Tensor]:
    """``sigma_y(V h + c)`` after the head, plus the skip ``D s(u)``, computed transposed:
    ``V h^T`` is a product with two rows of ``B`` columns, several times faster than ``h V^T``
    with two columns at large batches; ``D``'s columns for ``u`` and for the products are
    added in place."""
    head = [(layer.weight.detach().clone(), layer.bias.detach().clone())
            for layer in model.head]  # copies: the weights as they are now
    v, c = model.V.detach().clone(), model.c.detach()[:, None].clone()
    sigma_y = None if model.sigma_y is identity else model.sigma_y  # no call for nothing
    d = None if model.D is None else model.D.detach().clone()
    n_in = model.layout.n_inputs
    d_u = None if d is None else d[:, :n_in].contiguous()
    d_p = None if d is None or model.param_cols is None else d[:, n_in:].contiguous()
    products, d_p = _products(model, d_p) if d_p is not None else (None, None)

    def readout(h: Tensor, u: Tensor) -> Tensor:
        for weight, bias in head:
            h = nnf.linear(h, weight, bias).relu_()
        y = torch.mm(v, h.T).add_(c)
        if sigma_y is not None:
            y = sigma_y(y)
        if d_u is not None:
            y = y.addmm_(d_u, u.T)
            if products is not None:
                y = y.addmm_(d_p, products(u).T)
        return y.T

    return readout


def _products(model: Any, d_p: Tensor) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """The skip's product features (those of
    :func:`~odernn.learn.models.readout.skip_features` after ``u``) and their weights. With one
    parameter ``p``, the last channel, after the others (no hybrid's prior): ``u p^k`` whole
    for each degree ``k``, by slicing, no gather (``[o p^k, p^(k+1)]``: the weights of
    ``p^(k+1)`` alone placed there, zero for the highest); several parameters at degree 1
    likewise. Otherwise the features as ``skip_features`` builds them."""
    from odernn.learn.models.readout import skip_features

    params = model.param_cols.tolist()
    others = model.other_cols.tolist()
    n_in, degree = model.layout.n_inputs, model.product_degree
    first = n_in - len(params)
    if params != list(range(first, n_in)) or others != list(range(first)):
        return (lambda u: skip_features(model, u)[:, n_in:]), d_p
    if len(params) > 1:  # each parameter times each other channel, by slicing
        if degree == 1:
            return (lambda u: (u[:, first:].unsqueeze(-1) * u[:, None, :first]).flatten(-2)), d_p
        return (lambda u: skip_features(model, u)[:, n_in:]), d_p
    o = len(others)
    alone = d_p[:, degree * o:]  # p^2 .. p^degree
    blocks = []
    for k in range(degree):
        blocks.append(d_p[:, k * o:(k + 1) * o])
        blocks.append(alone[:, k:k + 1] if k + 1 < degree else torch.zeros_like(d_p[:, :1]))
    weights = torch.cat(blocks, 1)
    if degree == 1:
        return (lambda u: u * u[:, n_in - 1:]), weights

    def powers(u: Tensor) -> Tensor:
        p = u[:, n_in - 1:]
        terms = [u * p]
        for _ in range(degree - 1):
            terms.append(terms[-1] * p)
        return torch.cat(terms, 1)

    return powers, weights
