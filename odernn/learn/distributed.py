"""Data-parallel training across processes launched by ``torchrun`` (``odernn train --nproc N``).

The launcher sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; with ``WORLD_SIZE > 1`` :func:`setup` joins the process group
(gloo on the CPU, NCCL on CUDA). The models are called through their own
methods (``sequence``, ``closed_loop``), not ``forward()``, so rather than
wrapping them in ``DistributedDataParallel`` the training loop sums each
parameter's gradient, weighted by the rank's share of the batch, with
:func:`reduce_gradients`: every rank then holds the gradient of the whole
batch, takes the same optimiser step and keeps the same (unwrapped) weights.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import Tensor

from odernn.interrupt import LAUNCHER_ENV


def world_size() -> int:
    """Processes in the job: the process group's size, else ``WORLD_SIZE`` (1 when unset)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank: the process group's, else ``RANK`` (0 when unset)."""
    return dist.get_rank() if active() else int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def active() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def setup(device: torch.device) -> tuple[torch.device, bool]:
    """Join the process group when launched with ``WORLD_SIZE > 1``.

    Returns the device this rank uses (``cuda:LOCAL_RANK`` on CUDA) and whether
    this call created the group (then the caller should :func:`teardown` it).
    """
    if world_size() <= 1 or dist.is_initialized():
        return device, False
    if os.environ.get(PARENT_ENV):  # a worker of `odernn train --nproc`: dies with torchrun
        die_with_parent()
    if device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    global _joined
    _joined = True
    return device, True


_joined = False


def joined() -> bool:
    """Whether this process has joined a process group (then torch's C++ destructors at the
    interpreter's exit can abort it, after its work: the command line ends it at once)."""
    return _joined


def teardown(created: bool) -> None:
    if created and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def share(n: int) -> slice:
    """This rank's contiguous share of ``n`` items (``torch.tensor_split``'s split)."""
    size, r = world_size(), rank()
    base, extra = divmod(n, size)
    lo = r * base + min(r, extra)
    return slice(lo, lo + base + (1 if r < extra else 0))


def all_sum(t: Tensor) -> Tensor:
    """``t`` summed over the ranks, in place (unchanged in a single process)."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def any_rank(flag: bool) -> bool:
    """True when ``flag`` is true on any rank (a collective: every rank must call it)."""
    if not active():
        return flag
    return bool(all_sum(torch.tensor([float(flag)])).item() > 0)


def reduce_gradients(params: Iterable[Tensor], weight: float) -> None:
    """Set each ``.grad`` to the sum over ranks of ``weight * grad`` (``weight``: this rank's
    fraction of the batch, so the result is the gradient of the whole batch's mean loss).
    A parameter without a gradient (an empty share) counts as zeros."""
    if not active():
        return
    params = list(params)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params]) * weight  # one collective, not many
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    for p, g in zip(params, flat.split([p.numel() for p in params]), strict=True):
        p.grad.copy_(g.view_as(p.grad))


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (they start equal anyway: same seed)."""
    if not active():
        return
    with torch.no_grad():
        for t in (*module.parameters(), *module.buffers()):
            dist.broadcast(t, src=0)


PARENT_ENV = LAUNCHER_ENV
"""Set by ``odernn train --nproc`` for torchrun and its workers: the launching process."""


def die_with_parent(expected: int | None = None) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), so
    that killing ``odernn train --nproc`` (even with SIGKILL) stops torchrun and its workers,
    which then save ``last.pt`` as on any interrupt. If the parent is already gone (not
    ``expected``), stop now. Elsewhere than Linux: nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util
    import signal

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if expected is not None and os.getppid() != expected:
        os.kill(os.getpid(), signal.SIGTERM)


def launch(argv: list[str]) -> None:
    """``torchrun`` with ``argv``, exiting 130 rather than with a traceback when a signal stops
    it (the workers have then saved what ``--resume`` needs, and said so)."""
    die_with_parent(int(os.environ.get(PARENT_ENV, "0")) or None)
    from odernn.interrupt import interrupt_guard

    try:  # torchrun's modules, with a signal held until they are imported (no traceback):
        with interrupt_guard():  # then exit 130, before any worker (`train --nproc` says so)
            from torch.distributed.elastic.multiprocessing.api import SignalException
            from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
            from torch.distributed.run import main
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    quiet_torchrun()
    try:
        main(argv)
    except (SignalException, KeyboardInterrupt):
        raise SystemExit(130) from None
    except ChildFailedError as err:  # rank 0 has printed the error (a worker's exit code > 0)
        codes = {rank: f.exitcode for rank, f in err.failures.items()}
        code = next((c for c in codes.values() if c > 0), None)
        if code is None:  # killed by a signal: nobody has said so
            rank, failure = next(iter(err.failures.items()))
            print(f"error: training process rank {rank} died by signal "
                  f"{failure.signal_name()}", file=sys.stderr)
        raise SystemExit(code or 1) from None


def quiet_torchrun() -> None:
    """Silence torchrun's own log (its "failed (exitcode: 2)" beside the worker's error, its
    notes as it stops the workers): rank 0 and :func:`launch` say what went wrong."""
    import logging

    loggers = logging.Logger.manager.loggerDict
    for name in ["torch.distributed", *loggers]:
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
