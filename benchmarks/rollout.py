"""Closed-loop rollouts against the hardware: useful FLOPs per second next to the machine's
float32 matrix-multiply rate at the cell's shapes, and the per-step time next to the bare cell.

    python benchmarks/rollout.py [--quick] [--threads 1] [--batches 64 1024 16384]

For each gradient family (rnn, lstm, gru at their defaults: hidden 64, the ``train`` spec's
layout, 5 input channels; weights as initialised from seed 0, normalisation from a small
``train`` simulation, and the linear skip at its least-squares fit, as training starts it, so
that the closed loop stays in range: with the skip as initialised most trajectories ran away,
and the gates' sigmoid over saturated pre-activations takes several times longer on some
CPUs; a row whose rollout diverged is refused) and each batch B, in the same run and with
the same thread count:

- ``matmul GF/s``: torch float32 ``mm`` of ``(B, inputs + hidden) x (inputs + hidden,
  gates * hidden)`` into a preallocated output, the cell's one product: what the hardware
  gives at these shapes;
- ``rollout GF/s``: ``model.rollout`` (the public path ``odernn evaluate`` drives through
  :func:`odernn.assess.closed_loop.closed_loop`) over ``T`` steps, counted as useful FLOPs:
  ``2 (inputs + hidden) gates hidden`` per row and step for the cell, plus the readout
  ``2 (hidden + skip features) outputs``; its validation, the exogenous channels, the
  conversion to float64 and the divergence check are in the time;
- ``% of mm``: the ratio (target at B >= 1024: at least 50 %); ``bare % mm``: the same
  for the bare cell below (the same useful FLOPs in its time), what the cell's own
  arithmetic allows;
- ``step us`` and ``bare us``: the rollout's time per step, and the bare cell arithmetic (the
  same product, in its fastest form, and the gate equations in place, tanh as the rollout
  computes it, in a tight torch loop: no readout, no codec); ``/ bare`` their ratio
  (target at B = 64: at most 2);
- ``plain us``: the same rollout with the cell's step as training writes it
  (:meth:`~odernn.learn.models.rnn.RecurrentNet.step`: two products, a fresh tensor per
  operation, the readout ``h V^T`` and the skip's gather and concatenation), as every
  rollout ran before :mod:`odernn.learn.models.inference`; ``speed-up`` its time over the
  rollout's.

The echo state network (1000 units, 10 non-zeros per row: its defaults; also 4000 and 200
units) has its recurrent product (torch's sparse CSR, as
:meth:`odernn.learn.models.esn.ESN.recurrent_product` runs it) timed against a dense
float32 ``units x units`` product of the same batch and against scipy's CSR product
(float32), and its whole reservoir step beside them, each per step. Then torch's ``tanh``
against the form every step computes it in, ``2 sigmoid(2 a) - 1``, at the hidden size, and
each family's step with either; each family's closed loop under ``torch.no_grad`` (as
rollouts ran before 7 December 2026) and under ``torch.inference_mode`` (as they run now).
Last, the cell's product over the whole batch against in blocks (batches above 1024).

Measured figures and what they mean: docs/performance.md. Every time is the median of
``--repeats`` rounds after a warm-up call, each round calling every measurement of a row
once in turn (so that a change in the machine's load falls on all of them alike).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse  # noqa: E402
import torch  # noqa: E402

import odernn  # noqa: E402
from odernn.learn.models import build, inference  # noqa: E402
from odernn.learn.models.inference import by_sigmoid, sigmoid_form_, tanh_  # noqa: E402
from odernn.learn.models.layout import Layout, Stats  # noqa: E402
from odernn.learn.models.readout import skip_width  # noqa: E402
from odernn.learn.skip_fit import fit_skip  # noqa: E402
from odernn.learn.windows import compute_stats, to_tensors  # noqa: E402

FAMILIES = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
"""Blocks of ``hidden`` columns in each family's gate pre-activations."""
STEPS = {64: 1000, 1024: 200, 16384: 20}
"""Rollout horizon per batch (about the same work per call); other batches: 200."""


def median_times(fns: dict[str, Callable[[], object]], repeats: int, device: str = "cpu"
                 ) -> dict[str, float]:
    """Median wall time of each of ``fns`` over ``repeats`` rounds that call each once in
    turn, after one warm-up call each (on CUDA, to the end of the queued kernels): a change
    in the machine's load falls on all of them alike, so their ratios hold."""
    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def matmul_call(batch: int, k: int, n: int, inner: int = 20, device: str = "cpu",
                blocked: bool = True) -> tuple[Callable[[], None], float]:
    """``inner`` products ``mm((batch, k), (k, n))``, contiguous, into a preallocated output
    (the fastest form of the product measured here: ``addmm`` with a broadcast bias and a
    fresh output are slower), and their FLOPs. On the CPU in blocks of rows into one output of
    a block's size, as the rollout's step takes its product
    (:func:`~odernn.learn.models.inference.block_rows`); ``blocked=False``: the whole batch
    at once, which :func:`product_rows` compares."""
    g = torch.Generator().manual_seed(0)
    a, w = torch.randn(batch, k, generator=g), torch.randn(k, n, generator=g)
    rows = inference.block_rows(n) if device == "cpu" and blocked else batch
    a, w, out = a.to(device), w.to(device), torch.empty(min(rows, batch), n, device=device)
    blocks = [(a[lo:lo + rows], out[:min(rows, batch - lo)]) for lo in range(0, batch, rows)]

    def run() -> None:
        for _ in range(inner):
            for a_rows, out_rows in blocks:
                torch.mm(a_rows, w, out=out_rows)

    return run, 2.0 * batch * k * n * inner


def matmul_rate(batch: int, k: int, n: int, repeats: int, device: str = "cpu") -> float:
    """FLOPs per second of :func:`matmul_call`'s products."""
    run, flops = matmul_call(batch, k, n, device=device)
    return flops / median_times({"mm": run}, repeats, device)["mm"]


def rollout_inputs(data, batch: int, steps: int) -> tuple:
    """``x0, v0, F, params`` of ``batch`` trajectories (``data``'s, repeated) over ``steps``
    steps: a rollout's arguments."""
    pick = np.arange(batch) % data.n
    return (data.x[pick, 0], data.v[pick, 0], data.F[pick, :steps + 1],
            {"eta": data.params["eta"][pick]})


def rollout_tensors(model, data, batch: int, steps: int) -> tuple:
    """The closed loop's ``z0, e`` tensors of :func:`rollout_inputs`, as ``model``'s rollout
    makes them (for timing the loop alone)."""
    z0, e, _ = model._rollout_tensors(*rollout_inputs(data, batch, steps), None, None)
    return z0, e


def rollout_call(model, data, batch: int, steps: int) -> Callable[[], object]:
    """``model.rollout`` of ``batch`` trajectories (``data``'s, repeated) over ``steps``
    steps, numpy in and out as ``odernn evaluate`` calls it."""
    args = rollout_inputs(data, batch, steps)
    return lambda: model.rollout(*args)


def in_range(family: str, layout: Layout, stats: Stats, data) -> torch.nn.Module:
    """``family`` at its defaults (skip products of degree 1), weights as initialised, the skip
    at the least-squares fit of ``data``'s steps (``odernn.learn.skip_fit.fit_skip``, how
    training starts it): a closed loop that stays in range, as a trained model's does."""
    model = build(family, layout, stats, products=1).eval()
    fit_skip(model, [to_tensors(data, layout)])
    return model


def with_readout(model) -> torch.nn.Module:
    """A copy of ``model`` with its readout ``V`` drawn (seeded, of unit scale over the hidden
    units), so that its cell reaches the outputs: :func:`in_range` starts it at ``V = 0`` (as
    training starts a linear system's), with which one closed loop checked against another
    would not see the cell. For checks over a short horizon (it need not stay in range)."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        model.V.copy_(torch.randn(model.V.shape, generator=g) / model.V.shape[1] ** 0.5)
    return model


def apart(ref: torch.Tensor, got: torch.Tensor) -> float:
    """How far ``got`` is from ``ref``: the largest difference over ``ref``'s largest value."""
    return float((ref - got).abs().max() / ref.abs().max())


def loop_times(model, layout: Layout, batch: int, steps: int, z0: torch.Tensor,
               e: torch.Tensor, other: Callable[[], object], repeats: int
               ) -> tuple[dict[str, float], dict[str, float]]:
    """Per step, in the same rounds: odernn's closed loop on ``z0, e`` (``loop``), ``other``
    (another form of it), and :func:`bare_cell`, each under :func:`inferred` as odernn's
    rollouts run; their microseconds per step, and each as a
    share (%) of :func:`matmul_call`'s rate at the cell's shape, in :func:`useful_flops`."""
    from odernn.learn.models.surrogate import joint_closed_loop

    hidden, n_in = model.hparams["hidden"], layout.n_inputs
    mm, mm_flops = matmul_call(batch, n_in + hidden, model.gates * hidden)
    t = median_times({"mm": mm, "loop": inferred(lambda: joint_closed_loop((model,), z0, e)),
                      "other": inferred(other),
                      "bare": inferred(bare_cell(model.family, batch, n_in, hidden, steps))},
                     repeats)
    flops = useful_flops(model, layout) * batch * steps
    names = ("loop", "other", "bare")
    return ({k: 1e6 * t[k] / steps for k in names},
            {k: 100 * flops / t[k] / (mm_flops / t["mm"]) for k in names})


def inferred(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` under ``torch.inference_mode``, as odernn's rollouts run (no autograd in the
    dispatch of any operation: the same bits, a few microseconds less per step)."""
    def run() -> object:
        with torch.inference_mode():
            return fn()

    return run


def check_in_range(model, data, batch: int, steps: int) -> None:
    """Refuse to time a rollout in which a trajectory diverged: its steps would run on
    saturated or non-finite values, whose elementwise passes take another time."""
    diverged = int((rollout_call(model, data, batch, steps)().diverged_at >= 0).sum())
    if diverged:
        raise SystemExit(f"{model.family} at batch {batch}: {diverged} trajectories diverged")


def rollout_time(model, data, batch: int, steps: int, repeats: int, device: str = "cpu"
                 ) -> float:
    """Median time of :func:`rollout_call`."""
    return median_times({"r": rollout_call(model, data, batch, steps)}, repeats, device)["r"]


def setup(n_steps: int) -> tuple:
    """The ``train`` spec's data (256 trajectories, exact), its layout and statistics: the
    layout of docs/performance.md's figures, five inputs (without the linear system's
    ``F_prev``, ``benchmarks/linear_map.py``)."""
    spec = odernn.load_spec("train").with_overrides(n=256, n_steps=n_steps, integrator="exact")
    data = odernn.simulate_trajectories(spec)
    layout = Layout(dt=data.dt, inputs=("x", "v", "F", "F_next", "eta"))
    return data, layout, compute_stats(data, layout)


def bare_cell(family: str, batch: int, n_in: int, hidden: int, steps: int) -> Callable[[], None]:
    """``steps`` steps of the bare cell arithmetic: one product of ``[u, h, 1]`` with the
    stacked weights and bias into a reused buffer (the product's fastest form), then the gate
    equations in place (the GRU's input candidate ``W_in u + b_in`` apart); no readout, no
    codec, no Python beyond the loop. On the CPU in blocks of rows as the rollout's step runs
    (:func:`~odernn.learn.models.inference.block_rows`), the blocks of one size sharing their
    buffers, so that each block's passes read the cache (then each block copies its ``u`` in,
    as the rollout's step does; one block keeps it there)."""
    g = torch.Generator().manual_seed(0)
    gates = GATES[family]
    u = torch.randn(batch, n_in, generator=g)
    w = torch.randn(n_in + hidden + 1, gates * hidden, generator=g) * 0.1
    w_in, b_in = torch.randn(n_in, hidden, generator=g) * 0.1, torch.zeros(hidden)
    minus_one = torch.tensor(-1.0)
    sig = by_sigmoid(u.device)  # tanh in the rollout's form (the doubling in the weights)
    h3 = 3 * hidden
    rows = inference.block_rows(gates * hidden)
    shared: dict[int, tuple] = {}  # buffers per block size

    def block(u: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], tuple]:
        size, copy_u = u.shape[0], batch > rows
        if size not in shared:
            shared[size] = (torch.ones(size, n_in + hidden + 1),
                            torch.empty(size, gates * hidden), torch.empty(size, hidden))
        x, a, n = shared[size]
        x[:, :n_in] = u

        def cell(h: torch.Tensor, c: torch.Tensor) -> tuple:
            if copy_u:
                x[:, :n_in] = u
            x[:, n_in:-1] = h
            if family == "rnn":
                return tanh_(torch.mm(x, w), doubled=sig), c
            torch.mm(x, w, out=a)
            if family == "lstm":
                g = torch.add(minus_one, a.sigmoid_()[:, h3:], alpha=2, out=a[:, h3:])
                c = torch.mul(a[:, hidden:2 * hidden], c).addcmul_(a[:, :hidden], g)
                h = tanh_(torch.mul(c, 2.0), doubled=True) if sig else torch.tanh(c)
                return h.mul_(a[:, 2 * hidden:h3]), c
            a[:, :2 * hidden].sigmoid_()
            torch.addmm(b_in, u, w_in, out=n).addcmul_(a[:, :hidden], a[:, 2 * hidden:])
            return torch.sub(h, tanh_(n, doubled=sig)).mul_(a[:, hidden:2 * hidden]).add_(n), c

        return cell

    cells = [block(u[lo:lo + rows].clone()) for lo in range(0, batch, rows)]

    def run() -> None:
        states = [(torch.zeros(min(rows, batch - lo), hidden),) * 2
                  for lo in range(0, batch, rows)]
        for _ in range(steps):
            states = [cell(*state) for cell, state in zip(cells, states, strict=True)]

    return run


def product_rows(families: list[str], n_in: int, hidden: int, batches: list[int],
                 repeats: int) -> None:
    """The cell's product at each family's width over the whole batch at once and in blocks
    into one output of a block's size (:func:`matmul_call`), in the same rounds: why the
    matmul rate above is taken in blocks. Only batches of several blocks differ."""
    print(f"\n{'family':<6}{'batch':>7}{'whole GF/s':>12}{'blocks GF/s':>13}{'ratio':>8}")
    for family in families:
        n = GATES[family] * hidden
        for batch in batches:
            whole, flops = matmul_call(batch, n_in + hidden, n, blocked=False)
            t = median_times({"whole": whole,
                              "blocks": matmul_call(batch, n_in + hidden, n)[0]}, repeats)
            print(f"{family:<6}{batch:>7}{flops / t['whole'] / 1e9:>12.1f}"
                  f"{flops / t['blocks'] / 1e9:>13.1f}{t['whole'] / t['blocks']:>8.2f}",
                  flush=True)


def activation_rows(batches: list[int], hidden: int, repeats: int) -> None:
    """Per call on ``(B, hidden)`` float32 in place: torch's ``tanh`` against
    ``2 sigmoid(2 a) - 1`` (:func:`~odernn.learn.models.inference.sigmoid_form_`, the doubling
    included) and ``sigmoid`` alone: which of the two forms the rollout should take here
    (:data:`~odernn.learn.models.inference.TANH_BY_SIGMOID`, printed)."""
    form = "2 sigmoid(2a) - 1" if by_sigmoid(torch.device("cpu")) else "torch's tanh"
    print(f"\nThe rollout's tanh on this CPU: {form} (inference.TANH_BY_SIGMOID)")
    print(f"{'batch':>7}{'tanh us':>10}{'2 sigmoid(2a) - 1 us':>22}{'sigmoid us':>12}")
    inner = 20
    for batch in batches:
        a = torch.randn(batch, hidden, generator=torch.Generator().manual_seed(0))
        fns = {"tanh": a.tanh_, "form": lambda a=a: sigmoid_form_(a), "sigmoid": a.sigmoid_}
        times = median_times({name: lambda f=fn: [f() for _ in range(inner)]
                              for name, fn in fns.items()}, repeats)
        print(f"{batch:>7}" + "".join(f"{1e6 * times[k] / inner:>{w}.1f}" for k, w in
                                      (("tanh", 10), ("form", 22), ("sigmoid", 12))), flush=True)


def form_rows(families: list[str], layout: Layout, stats: Stats, data, batches: list[int],
              repeats: int, quick: bool) -> None:
    """Each family's rollout step with tanh in either form, timed in turn in the same rounds:
    what the processor's choice (:data:`~odernn.learn.models.inference.TANH_BY_SIGMOID`)
    gains over the other."""
    print(f"\n{'family':<6}{'batch':>7}{'torch tanh us':>15}{'sigmoid form us':>17}"
          f"{'ratio':>8}")
    chosen = inference.TANH_BY_SIGMOID
    for family in families:
        model = in_range(family, layout, stats, data)
        for batch in batches:
            steps = STEPS.get(batch, 200) // (4 if quick else 1)
            check_in_range(model, data, batch, steps)
            call = rollout_call(model, data, batch, steps)

            def form(by_sigmoid: bool, call=call) -> Callable[[], object]:
                def run() -> object:
                    inference.TANH_BY_SIGMOID = by_sigmoid
                    try:
                        return call()
                    finally:
                        inference.TANH_BY_SIGMOID = chosen
                return run

            t = median_times({"tanh": form(False), "sigmoid": form(True)}, repeats)
            print(f"{family:<6}{batch:>7}{1e6 * t['tanh'] / steps:>15.1f}"
                  f"{1e6 * t['sigmoid'] / steps:>17.1f}{t['sigmoid'] / t['tanh']:>8.2f}",
                  flush=True)


def mode_rows(families: list[str], layout: Layout, stats: Stats, data, batches: list[int],
              repeats: int, quick: bool) -> None:
    """Each family's closed loop (:func:`~odernn.learn.models.surrogate.joint_closed_loop`,
    tensors in and out) under ``torch.no_grad``, as rollouts ran before 7 December 2026, and
    under ``torch.inference_mode``, as they run now, timed in turn in the same rounds; refused
    unless the two give the same bits (the mode changes the dispatch, not the kernels)."""
    from odernn.learn.models.surrogate import joint_closed_loop

    print(f"\n{'family':<6}{'batch':>7}{'no_grad us':>12}{'inference_mode us':>19}"
          f"{'ratio':>8}")
    for family in families:
        model = in_range(family, layout, stats, data)
        for batch in batches:
            steps = STEPS.get(batch, 200) // (4 if quick else 1)
            z0, e = rollout_tensors(model, data, batch, steps)

            def loop(z0=z0, e=e, model=model) -> torch.Tensor:
                return joint_closed_loop((model,), z0, e)

            def no_grad(loop=loop) -> torch.Tensor:
                with torch.no_grad():
                    return loop()

            if not torch.equal(no_grad(), inferred(loop)()):
                raise SystemExit(f"{family} at batch {batch}: the modes give other bits")
            t = median_times({"no_grad": no_grad, "inference": inferred(loop)}, repeats)
            print(f"{family:<6}{batch:>7}{1e6 * t['no_grad'] / steps:>12.1f}"
                  f"{1e6 * t['inference'] / steps:>19.1f}"
                  f"{t['inference'] / t['no_grad']:>8.2f}", flush=True)


def useful_flops(model, layout: Layout) -> int:
    """FLOPs per row and step: the cell's products and the readout (``V h`` and the skip)."""
    hidden, gates = model.hparams["hidden"], model.gates
    skip = skip_width(model.hparams, layout.n_inputs, len(layout.parameters))
    return 2 * (layout.n_inputs + hidden) * gates * hidden + 2 * (hidden + skip) * \
        layout.n_outputs


def family_rows(family: str, layout: Layout, stats: Stats, data, batches: list[int],
                repeats: int, quick: bool) -> list[dict]:
    model = in_range(family, layout, stats, data)
    plain = in_range(family, layout, stats, data)
    plain.inference_step = lambda p=plain: p.step  # the training form, every step
    hidden, n_in = model.hparams["hidden"], layout.n_inputs
    rows = []
    for batch in batches:
        steps = STEPS.get(batch, 200) // (4 if quick else 1)
        check_in_range(model, data, batch, steps)
        mm, flops = matmul_call(batch, n_in + hidden, model.gates * hidden)
        t = median_times({"mm": mm, "rollout": rollout_call(model, data, batch, steps),
                          "plain": rollout_call(plain, data, batch, steps),
                          "bare": bare_cell(family, batch, n_in, hidden, steps)}, repeats)
        rate = useful_flops(model, layout) * batch * steps / t["rollout"]
        rows.append({"family": family, "batch": batch, "steps": steps, "mm": flops / t["mm"],
                     "rollout": rate, "step_us": 1e6 * t["rollout"] / steps,
                     "bare_us": 1e6 * t["bare"] / steps, "plain_us": 1e6 * t["plain"] / steps})
        print(row_line(rows[-1]), flush=True)
    return rows


def row_line(r: dict) -> str:
    bare_rate = r["rollout"] * r["step_us"] / r["bare_us"]
    return (f"{r['family']:<6}{r['batch']:>7}{r['steps']:>7}{r['mm'] / 1e9:>13.1f}"
            f"{r['rollout'] / 1e9:>14.1f}{100 * r['rollout'] / r['mm']:>9.0f}"
            f"{100 * bare_rate / r['mm']:>11.0f}"
            f"{r['step_us']:>11.1f}{r['bare_us']:>10.1f}{r['step_us'] / r['bare_us']:>9.2f}"
            f"{r['plain_us']:>11.1f}{r['plain_us'] / r['step_us']:>9.2f}")


def reservoir_rows(sizes: list[int], batches: list[int], repeats: int) -> None:
    """Per step: the ESN's reservoir product ``W r`` as its step runs it, a dense float32
    product of its size, scipy's CSR product; and the ESN's whole reservoir step; each under
    :func:`inferred`, as the reservoir's rollouts run."""
    print(f"\n{'units':>6}{'batch':>7}{'esn W r us':>12}{'dense us':>10}{'scipy us':>10}"
          f"  fastest  {'esn step us':>11}")
    layout = Layout()
    names = ("x", "v", "F", "eta", "y0", "y1")
    stats = Stats(dict.fromkeys(names, 0.0), dict.fromkeys(names, 1.0))
    inner = 3
    for units in sizes:
        model = build("esn", layout, stats, units=units).eval()
        dense = model.recurrent_matrix().to_dense()
        csr = scipy.sparse.csr_matrix((model.W_value.numpy(), model.W_col.numpy(),
                                       model.W_crow.numpy()), shape=(units, units))
        for batch in batches:
            g = torch.Generator().manual_seed(0)
            u = torch.randn(batch, layout.n_inputs, generator=g)
            r = (torch.randn(units, batch, generator=g) * 0.1).T  # stored transposed, as
            rt = r.T.numpy()  # the reservoir's state is
            out = torch.empty(units, batch)
            fns = {
                "esn": lambda m=model, r=r: m.recurrent_product(r),
                "dense": lambda d=dense, r=r, o=out: torch.mm(d, r.T, out=o),
                "scipy": lambda c=csr, rt=rt: c @ rt,
                "step": lambda m=model, u=u, r=r: m.reservoir_step(u, r),
            }
            times = median_times({name: inferred(lambda f=fn: [f() for _ in range(inner)])
                                  for name, fn in fns.items()}, repeats)
            times = {name: 1e6 * t / inner for name, t in times.items()}
            best = min(("esn", "dense", "scipy"), key=times.get)
            print(f"{units:>6}{batch:>7}{times['esn']:>12.1f}{times['dense']:>10.1f}"
                  f"{times['scipy']:>10.1f}  {best:<7}  {times['step']:>11.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the steps, 3 "
                        "repeats, batches up to 1024")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, "
                        "odernn's own)")
    parser.add_argument("--batches", type=int, nargs="+", help="default 64 1024 16384")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--repeats", type=int, help="default 7 (3 with --quick)")
    parser.add_argument("--no-esn", action="store_true", help="skip the reservoir table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batches = args.batches or ([64, 1024] if args.quick else [64, 1024, 16384])
    repeats = args.repeats or (3 if args.quick else 7)
    data, layout, stats = setup(max(STEPS.values()) + 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{os.cpu_count()} cores; median of {repeats}")
    print(f"{'family':<6}{'batch':>7}{'steps':>7}{'matmul GF/s':>13}{'rollout GF/s':>14}"
          f"{'% of mm':>9}{'bare % mm':>11}{'step us':>11}{'bare us':>10}{'/ bare':>9}"
          f"{'plain us':>11}{'speed-up':>9}")
    with torch.inference_mode():  # as odernn's rollouts run: no autograd in the dispatch
        for family in args.families:
            family_rows(family, layout, stats, data, batches, repeats, args.quick)
    if not args.no_esn:
        reservoir_rows([200, 1000] if args.quick else [200, 1000, 4000],
                       [b for b in batches if b <= 1024], repeats)
    with torch.inference_mode():
        activation_rows(batches, 64, repeats)
        form_rows(args.families, layout, stats, data, [b for b in batches if b >= 1024],
                  repeats, args.quick)
    mode_rows(args.families, layout, stats, data, batches, repeats, args.quick)
    product_rows(args.families, layout.n_inputs, 64, [b for b in batches if b > 1024],
                 repeats)


if __name__ == "__main__":
    main()
