"""A gradient run's resume state in ``last.pt``: checked before a run resumes, and restored.

The state is the training loop's counters, its best validation error so far, its history,
the sums of an epoch cut short, the window buffers' size (streamed), the optimiser's state
and the window generator's. A checkpoint is a file a user may have been sent: a value of the
wrong kind is refused in one line (DataError) before anything uses it, where it would
otherwise raise deep in the loop or be taken silently (``epoch = 1.5``).
"""

from __future__ import annotations

import math
from copy import deepcopy
from pathlib import Path
from typing import Any

import torch

from odernn.errors import DataError

COUNTERS = {"epoch": 0, "batch": 0, "best_epoch": -1, "since_best": 0}
"""The integer fields and their least values (``buffer_rows`` is checked where it is used,
:func:`odernn.learn.stream.planned_buffers`)."""
COUNTED = ("batches", "steps", "time")
"""The partial sums' counters (the loop adds the losses beside them)."""
LOOP = ("epoch", "batch", "history", "best_val", "best_epoch", "since_best", "elapsed",
        "partial")
"""The fields the loop takes back (the others are restored into the objects they belong to)."""


def check_resume(resume: Any, path: Path) -> None:
    """Refuse a resume state whose fields are not what the loop writes: counters integers
    (:data:`COUNTERS`), the best error a number >= 0 (infinite before any), the time a finite
    number, the history a list of rows and the partial sums a row, of names and numbers.
    A field a run from an earlier odernn lacks takes its default."""
    def refuse(what: str) -> None:
        raise DataError(f"cannot resume: {path} holds a resume state whose {what} (a corrupt "
                        f"or forged checkpoint)")

    if not isinstance(resume, dict):
        refuse("record is not a mapping")
    for name, least in COUNTERS.items():
        value = resume.get(name, least)
        if not _integer(value) or value < least:
            refuse(f"{name} = {value!r} is not an integer >= {least}")
    best = resume.get("best_val", math.inf)
    if not (_number(best) and best >= 0):  # NaN fails too
        refuse(f"best_val = {best!r} is not an error >= 0 (infinite before any)")
    elapsed = resume.get("elapsed", 0.0)
    if not (_number(elapsed) and math.isfinite(elapsed) and elapsed >= 0):
        refuse(f"elapsed = {elapsed!r} is not a time in seconds")
    history = resume.get("history", [])
    if not (isinstance(history, list) and all(_row(r) for r in history)):
        refuse("history is not a list of rows of names and numbers")
    epoch = resume.get("epoch", 0)
    if "history" in resume and len(history) != epoch:
        refuse(f"history has {len(history)} rows, not one per epoch done ({epoch})")
    if resume.get("best_epoch", -1) >= epoch or resume.get("since_best", 0) > epoch:
        refuse(f"best_epoch = {resume.get('best_epoch', -1)!r} or since_best = "
               f"{resume.get('since_best', 0)!r} is not of an epoch done (of {epoch})")
    partial = resume.get("partial", {"batches": resume.get("batch", 0), "steps": 0, "time": 0.0})
    if not _row(partial) or not set(COUNTED) <= set(partial):
        refuse(f"partial sums are not a row of names and numbers with {', '.join(COUNTED)}")
    if partial["batches"] != resume.get("batch", 0):
        refuse(f"partial sums count {partial['batches']!r} batches, not its batch = "
               f"{resume.get('batch', 0)!r}")
    if not isinstance(resume.get("optimizer"), dict) or not isinstance(resume.get("rng"),
                                                                       torch.Tensor):
        refuse("optimizer or rng state is missing")


def restore(record: dict[str, Any], model: torch.nn.Module, optimizer: Any,
            gen: torch.Generator, state: dict[str, Any], n_batches: int, epochs: int
            ) -> dict[str, Any]:
    """Load a checked ``last.pt`` record into the model, the optimiser and the generator;
    return the loop's ``state`` with the record's fields (``n_batches``: an epoch's;
    ``epochs``: the run's)."""
    resume = record["resume"]
    if resume.get("epoch", 0) > epochs:  # it would end at once, 'trained', as it came
        raise DataError(f"cannot resume: the checkpoint is at epoch {resume['epoch']} of a run "
                        f"of {epochs} epochs (a corrupt or forged checkpoint)")
    if resume.get("batch", 0) > n_batches:
        raise DataError(f"cannot resume: the checkpoint is at batch {resume['batch']} of an "
                        f"epoch of {n_batches} (a corrupt or forged checkpoint)")
    model.load_state_dict(record["state_dict"])
    try:
        if isinstance(optimizer, torch.optim.Optimizer):
            _probe(optimizer, resume["optimizer"])
        optimizer.load_state_dict(resume["optimizer"])
        gen.set_state(resume["rng"].cpu())
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise DataError(f"cannot resume: the checkpoint's optimiser or generator state does "
                        f"not fit this run ({err}; a corrupt or forged checkpoint)") from None
    return {**state, **{k: resume[k] for k in LOOP if k in resume}}


def _probe(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Take one step of a copy of ``optimizer`` (zero gradients) from the ``saved`` state:
    torch loads a state without checking it against the parameters, so a forged one (a
    moment of another shape, a missing one, ``betas = 5``) would fail inside training's
    first step. Raises what that step would."""
    groups = []
    for group in optimizer.param_groups:
        params = [p.detach().clone().requires_grad_() for p in group["params"]]
        for p in params:
            p.grad = torch.zeros_like(p)
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": params})
    copy = type(optimizer)(groups, **optimizer.defaults)
    copy.load_state_dict(deepcopy(saved))  # torch keeps the saved tensors, which step changes
    for p, moments in copy.state.items():
        if any(isinstance(m, torch.Tensor) and m.ndim and m.shape != p.shape
               for m in moments.values()):
            raise ValueError("a moment's shape is not its parameter's")
        if any(isinstance(m, torch.Tensor) and m.is_floating_point()
               and not bool(m.isfinite().all()) for m in moments.values()):
            raise ValueError("a moment is not finite")  # training would blame its lr
    copy.step()


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _row(row: Any) -> bool:
    return isinstance(row, dict) and all(isinstance(k, str) and _number(v)
                                         for k, v in row.items())
