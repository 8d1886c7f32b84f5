"""What folding the vanilla RNN's closed loop into two products per step would gain: measured,
not adopted.

    python benchmarks/fold.py [--batches 64 1024 16384] [--repeats 7]

A closed-loop step of the RNN (``odernn.learn.models.surrogate.joint_closed_loop`` with
``inference_step``) makes about fifteen torch calls: the normalisation of the inputs, the
cell's product and its tanh, the readout, the skip and its products, the decoding into
physical units. At the benchmark layout of ``benchmarks/rollout.py`` (the ``train`` spec:
inputs x, v, F, F_next, eta; the skip with its products of degree 1; target ``state``) every
one of them but the tanh is affine in the features ``[u, u * eta, 1, h]`` of the raw inputs
``u``: the normalisation folds into the cell's weights, and the readout, the skip (its
products of normalised inputs expand into raw ones), the decoding and the carried state into
one matrix. A step is then: copy the exogenous channels into a buffer of those features, one
product for the products of eta, the cell's product and its tanh, the new ``h`` into the
buffer, one product for the next state.

odernn does not run this form: its sums are taken in another order, so every rollout's
float32 rounding changes (by about 1e-6 relative over 1000 steps here, checked below), with
it the last digits of every closed-loop figure in the documents and the epoch each training
keeps, and the fold holds only for some models (no hidden head, no output activation, no
hybrid prior, no ensemble median). This script measures what it would buy, so that the
choice can be made on figures: per step, the closed loop as odernn runs it (``loop us``), the
folded loop (``folded us``), the bare cell of ``benchmarks/rollout.py`` (``bare us``), and
each as a share of the machine's float32 matrix-multiply rate at the cell's shape (useful
FLOPs as ``benchmarks/rollout.py`` counts them). The tensors are made once, outside the
timing (no numpy in or out, no divergence check), for both loops alike. Each time is the
median of ``--repeats`` rounds, each calling every measurement of a row once in turn. The
folded loop is refused unless, in float64, it is odernn's to 1e-12 (for a copy of the model
with its readout drawn, so that the cell reaches the state); ``agree`` gives how far
the two are apart in float32 over the horizon, relative to the state's largest value (at
most 1e-3, or refused).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
from collections.abc import Callable  # noqa: E402

import torch  # noqa: E402
from torch import Tensor  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rollout as rb  # noqa: E402

from odernn.learn.models.inference import (  # noqa: E402
    BLOCK_BYTES,
    by_sigmoid,
    sigmoid_form_,
)
from odernn.learn.models.surrogate import joint_closed_loop  # noqa: E402

EXACT = 1e-12
"""The largest difference allowed between the two loops in float64 over 100 steps, over the
state's largest value: the fold is algebra, exact but for rounding."""


def fold(model) -> tuple[Tensor, Tensor]:
    """The folded weights, float64: ``Wc`` with ``[u, u eta, 1, h] @ Wc`` the cell's
    pre-activation (doubled where tanh is taken by the sigmoid), and ``M`` with
    ``[u, u eta, 1, h_new] @ M`` the next carried state in physical units. Computed in
    float64 from the model's weights and its codec's statistics."""
    layout, codec = model.layout, model.codec
    if (model.family != "rnn" or layout.target != "state" or layout.prior or len(model.head)
            or model.D is None or model.product_degree != 1 or model.param_cols.tolist() != [4]
            or layout.inputs != ("x", "v", "F", "F_next", "eta")):
        raise SystemExit("the fold is written for the benchmark's RNN layout only")
    d64 = {"dtype": torch.float64}
    m, s = codec.in_mean.double().reshape(-1), codec.in_std.double().reshape(-1)
    out_mean, out_std = codec.out_mean.double().reshape(-1), codec.out_std.double().reshape(-1)
    u_w, w_w, b = (t.detach().double() for t in (model.cell.U, model.cell.W, model.cell.b))
    v, c, d = (t.detach().double() for t in (model.V, model.c, model.D))
    n_in, hidden = layout.n_inputs, w_w.shape[0]
    one, width = 2 * n_in, 2 * n_in + 1 + hidden
    # the skip's features (readout.skip_features, degree 1): u_n, then eta_n times each
    # other channel; w_p weighs u_n * eta_n for every channel (eta_n^2 by zero)
    w_p = torch.cat([d[:, n_in:], torch.zeros_like(d[:, :1])], 1)
    cell = torch.zeros(width, hidden, **d64)
    cell[:n_in] = (u_w / s).T
    cell[one] = b - u_w @ (m / s)
    cell[one + 1:] = w_w.T
    if by_sigmoid(torch.device("cpu")):
        cell *= 2.0
    # y = V h + c + D_u u_n + W_p (u_n * eta_n), u_n = (u - m) / s; with q = W_p / (s s_eta),
    # u_n,i eta_n = (u_i eta - m_eta u_i - m_i eta + m_i m_eta) / (s_i s_eta)
    d_u, q, m_eta = d[:, :n_in], w_p / (s * s[-1]), m[-1]
    y = torch.zeros(width, d.shape[0], **d64)
    y[:n_in] = (d_u / s - q * m_eta).T
    y[n_in - 1] -= (q * m).sum(1)
    y[n_in:one] = q.T
    y[one] = c - d_u @ (m / s) + (q * m * m_eta).sum(1)
    y[one + 1:] = v.T
    nxt = y * out_std  # z_next = z + out_mean + out_std y
    nxt[one] += out_mean
    nxt[0, 0] += 1.0
    nxt[1, 1] += 1.0
    return cell.contiguous(), nxt.contiguous()


def folded_loop(model, weights: tuple[Tensor, Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """The closed loop of ``joint_closed_loop`` in the folded form: ``(z0, e) -> z (N, T + 1,
    2)``, from the model's own initial hidden state, in the dtype of ``weights`` (``model``'s
    too); on a batch larger than a block of :data:`~odernn.learn.models.inference.BLOCK_BYTES`
    of features, block by block of trajectories, each over the whole horizon."""
    cell, nxt = weights
    n_in, hidden = model.layout.n_inputs, cell.shape[1]
    sig = by_sigmoid(torch.device("cpu"))

    rows = max(64, BLOCK_BYTES // (4 * cell.shape[0]))

    def run(z0: Tensor, e: Tensor) -> Tensor:
        if z0.shape[0] > rows:  # trajectories are independent: each block's whole loop
            return torch.cat([run(z0[lo:lo + rows], e[lo:lo + rows])  # in the cache
                              for lo in range(0, z0.shape[0], rows)])
        n = z0.shape[0]
        x = z0.new_ones(n, cell.shape[0])
        u, prod, h_x = x[:, :n_in], x[:, n_in:2 * n_in], x[:, 2 * n_in + 1:]
        z_x, e_x, eta = x[:, :2], x[:, 2:n_in], x[:, n_in - 1:n_in]
        z_x.copy_(z0)
        h_x.copy_(model.initial_state(model.codec.init_features(z0, e[:, 0]))[0])
        out = z0.new_empty(n, e.shape[1] + 1, 2)
        out[:, 0] = z0
        h, z = z0.new_empty(n, hidden), z0.new_empty(n, 2)
        for i, e_i in enumerate(e.unbind(1)):
            e_x.copy_(e_i)
            torch.mul(u, eta, out=prod)
            torch.mm(x, cell, out=h)
            if sig:
                sigmoid_form_(h, doubled=True)
            else:
                h.tanh_()
            h_x.copy_(h)
            torch.mm(x, nxt, out=z)
            z_x.copy_(z)
            out[:, i + 1] = z
        return out

    return run


def check_exact(model, data) -> None:
    """Refuse a fold that is not the model's closed loop: both in float64 over 100 steps of
    64 trajectories, within :data:`EXACT`, for a copy with its readout drawn
    (:func:`rollout.with_readout`: with ``V = 0``, as timed, the cell would not reach the
    state, and a fold of wrong cell weights would pass)."""
    drawn = rb.with_readout(model).double()
    z0, e = (t.double() for t in rb.rollout_tensors(model, data, 64, 100))
    with torch.no_grad():
        ref = joint_closed_loop((drawn,), z0, e)
        off = rb.apart(ref, folded_loop(drawn, fold(drawn))(z0, e))
        seen = rb.apart(ref, joint_closed_loop((copy.deepcopy(model).double(),), z0, e))
    if not off <= EXACT:
        raise SystemExit(f"the folded loop is not the model's: {off:.1e} apart in float64")
    print(f"the folded loop is the model's in float64: {off:.1e} apart over 100 steps, with "
          f"a readout that moves the state by {seen:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 1024, 16384])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data, layout, stats = rb.setup(max(rb.STEPS.values()) + 1)
    model = rb.in_range("rnn", layout, stats, data)
    check_exact(model, data)
    weights = fold(model)
    loop = folded_loop(model, tuple(w.float() for w in weights))

    print(f"torch {torch.__version__}, 1 thread, {os.cpu_count()} cores; median of "
          f"{args.repeats}")
    print(f"{'batch':>6}{'steps':>7}{'agree':>10}{'loop us':>10}{'folded us':>11}"
          f"{'bare us':>9}{'loop/bare':>11}{'fold/bare':>11}{'loop % mm':>11}"
          f"{'fold % mm':>11}{'bare % mm':>11}")
    with torch.no_grad():
        for batch in args.batches:
            steps = rb.STEPS.get(batch, 200)
            rb.check_in_range(model, data, batch, steps)
            z0, e = rb.rollout_tensors(model, data, batch, steps)
            ref, got = joint_closed_loop((model,), z0, e), loop(z0, e)
            agree = rb.apart(ref, got)
            if not agree <= 1e-3:  # rounding alone: about 1e-6 (a block misplaced: order 1)
                raise SystemExit(f"batch {batch}: the folded loop is {agree:.1e} off in float32")
            us, share = rb.loop_times(model, layout, batch, steps, z0, e,
                                      lambda z0=z0, e=e: loop(z0, e), args.repeats)
            print(f"{batch:>6}{steps:>7}{agree:>10.1e}{us['loop']:>10.1f}{us['other']:>11.1f}"
                  f"{us['bare']:>9.1f}{us['loop'] / us['bare']:>11.2f}"
                  f"{us['other'] / us['bare']:>11.2f}{share['loop']:>11.0f}"
                  f"{share['other']:>11.0f}{share['bare']:>11.0f}", flush=True)


if __name__ == "__main__":
    main()
