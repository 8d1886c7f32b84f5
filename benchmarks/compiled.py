"""What compiling the closed loop with ``torch.compile`` would gain: measured, not adopted.

    python benchmarks/compiled.py [--families rnn lstm gru] [--batches 64 1024 16384]
                                  [--unroll 10] [--python-wrapper] [--freezing] [--repeats 7]

The alternative a PyTorch user reaches for first when a loop of small steps is slow: give
the step, as training writes it (``codec.encode``, the family's ``step``, ``codec.decode``),
to ``torch.compile`` (TorchInductor, which fuses the elementwise operations into generated
C++ and calls the library's matrix product), ``--unroll`` steps per compiled call, so that
each call's Python and guards are paid once for that many steps. By default the wrapper
around the generated kernels is C++ too (``cpp_wrapper``: the fastest of the variants tried
at batch 64; ``--python-wrapper`` and ``--freezing``, weights folded as constants, for the
others).

Per step, in the same rounds (each a median of ``--repeats``): odernn's closed loop
(``joint_closed_loop`` with ``inference_step``: ``loop us``), the compiled loop
(``compiled us``), the bare cell of ``benchmarks/rollout.py`` (``bare us``), each as a share
of the machine's float32 matrix-multiply rate at the cell's shape (``benchmarks/rollout.py``'s
useful FLOPs). The tensors are made once, outside the timing (no numpy in or out, no
divergence check), for both loops alike. ``compile s`` is the first call's time: the
compilation for that family and batch, into the run's own cache (made at its start, removed
at its end: nothing from an earlier run; what one run's compilations share, such as the
compiler's headers, is not separated); the shapes are static: another batch compiles
again. ``agree``: how far the two loops are apart in float32 over the horizon, relative to
the state's largest value (at most 1e-4, or refused: a misplaced operation is order 1,
rounding about 1e-6).

``nn.LSTM`` and ``nn.GRU`` modules cannot be traced (Dynamo refuses to wrap them), and the
step reads only their four weights: the compiled copy's cell holds those in a plain module.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rollout as rb  # noqa: E402

from odernn.learn.models.surrogate import joint_closed_loop  # noqa: E402

EXACT = 1e-12
"""The largest difference allowed between the two loops in float64 over 100 steps, over the
state's largest value (:func:`check_family`)."""
AGREE = 1e-4
"""The largest difference allowed between the two loops in float32 over the horizon, over the
state's largest value."""
FUSED_WEIGHTS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


class _Weights(nn.Module):
    """The four weights of an ``nn.LSTM`` or ``nn.GRU`` of one layer, in a module Dynamo
    traces (the same tensors: no copy)."""

    def __init__(self, fused: nn.Module) -> None:
        super().__init__()
        for name in FUSED_WEIGHTS:
            setattr(self, name, getattr(fused, name))


def traceable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose training-form step Dynamo traces whole."""
    model = copy.deepcopy(model)
    if model.family != "rnn":
        model.cell._modules["fused"] = _Weights(model.cell.fused)
    return model


def compiled_loop(model: nn.Module, unroll: int) -> Callable[[Tensor, Tensor], Tensor]:
    """``joint_closed_loop``'s loop for one model, ``(z0, e) -> z (N, T + 1, Z)``, by a compiled
    function of ``unroll`` steps of the training-form step (``T`` a multiple of ``unroll``)."""
    model = traceable(model)
    codec = model.codec

    def steps(z: Tensor, e: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple]:
        out = []
        for k in range(unroll):
            e_k = e[:, k]
            y, state = model.step(codec.encode(z, e_k), state)
            z = codec.decode(z, y, e_k)
            out.append(z)
        return torch.stack(out, 1), state

    torch._dynamo.reset()  # a fresh compilation for each model and batch
    fn = torch.compile(steps, fullgraph=True, dynamic=False)

    def run(z0: Tensor, e: Tensor) -> Tensor:
        if e.shape[1] % unroll:
            raise SystemExit(f"{e.shape[1]} steps are not a multiple of --unroll {unroll}")
        state = model.initial_state(codec.init_features(z0, e[:, 0]))
        out, z = [z0[:, None]], z0
        for lo in range(0, e.shape[1], unroll):
            zs, state = fn(z, e[:, lo:lo + unroll], state)
            out.append(zs)
            z = zs[:, -1]
        return torch.cat(out, 1)

    return run


def check_family(family: str, setup: tuple, unroll: int) -> None:
    """Refuse a compiled loop that is not the model's: both loops in float64 (compiled apart
    from the timed float32 ones, which stay cold) over 100 steps of 64 trajectories, within
    :data:`EXACT`, for a copy with its readout drawn (:func:`rollout.with_readout`: with
    ``V = 0``, as timed, the cell would not reach the state)."""
    data, layout, stats = setup
    model = rb.in_range(family, layout, stats, data)
    drawn = rb.with_readout(model).double()
    steps = unroll * -(-100 // unroll)
    z0, e = (t.double() for t in rb.rollout_tensors(model, data, 64, steps))
    ref = joint_closed_loop((drawn,), z0, e)
    off = rb.apart(ref, compiled_loop(drawn, unroll)(z0, e))
    seen = rb.apart(ref, joint_closed_loop((model.double(),), z0, e))
    if not off <= EXACT:
        raise SystemExit(f"{family}: the compiled loop is not the model's: {off:.1e} apart "
                         "in float64")
    print(f"{family}: the compiled loop is the model's in float64: {off:.1e} apart over "
          f"{steps} steps, with a readout that moves the state by {seen:.1e}", flush=True)


def row(family: str, batch: int, setup: tuple, unroll: int, repeats: int) -> str:
    """One family and batch: compile (timed), check the agreement, time the three loops."""
    data, layout, stats = setup
    model = rb.in_range(family, layout, stats, data)
    steps = rb.STEPS.get(batch, 200)
    rb.check_in_range(model, data, batch, steps)
    z0, e = rb.rollout_tensors(model, data, batch, steps)
    loop = compiled_loop(model, unroll)
    t0 = time.perf_counter()
    got = loop(z0, e)
    compile_s = time.perf_counter() - t0
    ref = joint_closed_loop((model,), z0, e)
    agree = rb.apart(ref, got)
    if not agree <= AGREE:
        raise SystemExit(f"{family} at batch {batch}: the compiled loop is {agree:.1e} off")
    us, share = rb.loop_times(model, layout, batch, steps, z0, e, lambda: loop(z0, e), repeats)
    return (f"{family:<7}{batch:>6}{steps:>7}{agree:>10.1e}{compile_s:>11.1f}"
            f"{us['loop']:>10.1f}{us['other']:>13.1f}{us['bare']:>9.1f}"
            f"{us['loop'] / us['bare']:>11.2f}{us['other'] / us['bare']:>11.2f}"
            f"{share['loop']:>11.0f}{share['other']:>11.0f}{share['bare']:>11.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(rb.FAMILIES),
                        choices=rb.FAMILIES)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 1024, 16384])
    parser.add_argument("--unroll", type=int, default=10)
    parser.add_argument("--python-wrapper", action="store_true",
                        help="Inductor's Python wrapper around its kernels (default: C++)")
    parser.add_argument("--freezing", action="store_true",
                        help="fold the weights into the compiled graph as constants")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.unroll < 1:
        parser.error(f"--unroll must be >= 1, got {args.unroll}")
    uneven = [b for b in args.batches if rb.STEPS.get(b, 200) % args.unroll]
    if uneven:
        parser.error(f"--unroll {args.unroll} does not divide the {rb.STEPS.get(uneven[0], 200)}"
                     f" steps of batch {uneven[0]}")
    torch.set_num_threads(1)
    import torch._inductor.config as inductor

    inductor.cpp_wrapper = not args.python_wrapper
    inductor.freezing = args.freezing
    setup = rb.setup(max(rb.STEPS.values()) + 1)
    wrapper = "Python" if args.python_wrapper else "C++"
    print(f"torch {torch.__version__}, 1 thread, {os.cpu_count()} cores; median of "
          f"{args.repeats}; torch.compile (inductor, {wrapper} wrapper"
          f"{', freezing' if args.freezing else ''}), {args.unroll} steps per call")
    with tempfile.TemporaryDirectory() as cache, torch.no_grad():
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # cold: what a first run pays
        for family in args.families:
            check_family(family, setup, args.unroll)
        print(f"{'family':<7}{'batch':>6}{'steps':>7}{'agree':>10}{'compile s':>11}"
              f"{'loop us':>10}{'compiled us':>13}{'bare us':>9}{'loop/bare':>11}"
              f"{'comp/bare':>11}{'loop % mm':>11}{'comp % mm':>11}{'bare % mm':>11}")
        for family in args.families:
            for batch in args.batches:
                print(row(family, batch, setup, args.unroll, args.repeats), flush=True)


if __name__ == "__main__":
    main()
