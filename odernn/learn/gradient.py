"""The ``gradient`` recipe: BPTT over teacher-forced windows, checkpoints on closed-loop error.

Every gradient family (RNN, LSTM, GRU, FFN) shares this loop: windows drawn at random
(seeded, resumable at any batch), the teacher-forced loss with truncation every ``tbptt``
steps, optionally a closed-loop loss over a horizon that grows during training; Adam,
RMSprop or SGD with (Nesterov) momentum, gradient-norm clipping, a cosine schedule, early
stopping; or Hessian-free steps (:mod:`odernn.learn.hessian_free`). Checkpoints are chosen
on the closed-loop validation error (teacher-forced loss does not predict it). Ctrl-C
saves ``last.pt`` after the current batch; a non-finite loss stops the run and keeps the
last good checkpoints.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from odernn.data.trajectories import Trajectories
from odernn.errors import DataError
from odernn.interrupt import interrupt_guard
from odernn.learn import distributed as dd
from odernn.learn.checkpoint import LAST
from odernn.learn.config import TrainConfig
from odernn.learn.epoch_folds import FoldScores
from odernn.learn.hessian_free import HessianFree
from odernn.learn.models import RecurrentSurrogate
from odernn.learn.outcome import TrainResult, closed_loop_nrmse
from odernn.learn.resume import restore
from odernn.learn.rundir import run_record
from odernn.learn.schedules import horizon_at, lr_at, momentum_at
from odernn.learn.skip_fit import fit_skip
from odernn.learn.stream import resumed_rows, window_source
from odernn.learn.windows import SequenceTensors, to_tensors
from odernn.progress import Event, Progress


def fit(model: RecurrentSurrogate, config: TrainConfig, train: Trajectories,
        val: Trajectories | FoldScores, out: Any, source: dict[str, Any],
        previous: dict[str, Any] | None, report: Progress) -> TrainResult:
    """Teacher-forced + growing closed-loop loss, checkpoints on closed-loop validation error
    (with ``val_folds``: on the folds' errors, :mod:`odernn.learn.epoch_folds`)."""
    device, length = model.device, _window_length(config)
    n_windows = max(config.batch_size, train.n * (train.n_steps - 1) // config.window)
    n_batches = math.ceil(n_windows / config.batch_size)
    # every rank draws the same windows (streamed: reads the same blocks, with its own handle)
    data = window_source(train, model.layout, device, n_windows, config.batch_size, length,
                         resumed_rows(previous))  # kept
    val_tensors = None if isinstance(val, FoldScores) else to_tensors(val, model.layout, device)
    if getattr(model, "D", None) is not None and previous is None:
        fit_skip(model, data.blocks())
    main = dd.rank() == 0
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(config, params) if config.optimizer != "hf" else _hessian_free(
        model, config)
    batch_seed = int(np.random.SeedSequence(config.seed).generate_state(1)[0])
    gen = torch.Generator().manual_seed(batch_seed)  # windows and shuffling, not the weights
    state = {"epoch": 0, "batch": 0, "history": [], "best_val": math.inf, "best_epoch": -1,
             "since_best": 0, "elapsed": 0.0, "partial": _zero_partial(),
             "buffer_rows": getattr(data, "capacity", train.n)}
    if previous is not None:
        state = restore(previous, model, optimizer, gen, state, n_batches, config.epochs)
        if main:  # a history lost to a full disk after its checkpoint, even of a finished run
            out.write_history(state["history"])
    dd.broadcast_parameters(model)
    status, message = "ok", f"trained {config.epochs} epochs"
    if _stopped_early(config, state):  # a run that stopped early, resumed: nothing to train
        status, message = "early-stopped", _early_stop_message(config, state["epoch"])
    task = f"train {config.model}"
    with interrupt_guard() as interrupted:
        while status == "ok" and state["epoch"] < config.epochs:
            epoch = state["epoch"]
            epoch_rng = gen.get_state()
            horizon = horizon_at(config, epoch)
            t0 = time.perf_counter()
            # the learning rate of the epoch's last batch so far: a run resumed at the epoch's
            # end (every batch done) runs none and ends the epoch with it
            lr = (math.nan if isinstance(optimizer, HessianFree)
                  else lr_at(config, epoch + max(state["batch"] - 1, 0) / n_batches))
            for b, batch in data.epoch(gen, state["batch"]):
                n_batch = batch.n
                if isinstance(optimizer, HessianFree):
                    # HF: every rank steps on the whole batch (same result, no reduction)
                    windows = batch.windows()
                    lr = math.nan  # HF has no learning rate: its steps come from CG
                    losses = _hf_batch(model, config, optimizer, windows)
                else:
                    lr = lr_at(config, epoch + b / n_batches)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                        if config.momentum_schedule == "sutskever":
                            group["momentum"] = momentum_at(epoch * n_batches + b,
                                                            config.momentum)
                    mine = dd.share(n_batch)  # this rank's contiguous share of the windows
                    windows = batch.windows(mine)
                    losses = _train_batch(model, config, optimizer, params, windows, horizon,
                                          weight=windows.n / n_batch)
                if not math.isfinite(losses["loss"]):
                    status = "diverged"
                    best = (f"best.pt (epoch {state['best_epoch'] + 1})"
                            if state["best_epoch"] >= 0 else "no best.pt (no finite "
                            "closed-loop validation yet)")
                    kept = (f"kept {best} and last.pt (epoch {epoch})" if epoch > 0
                            else "no checkpoint written")
                    message = (f"non-finite loss at epoch {epoch + 1}, batch {b + 1}: stopped, "
                               f"{kept}; try a lower lr (now {lr:.3g}), clip (now "
                               f"{config.clip}) or a shorter horizon")
                    break
                _accumulate(state["partial"], losses, n_batch, config, horizon)
                state["batch"] = b + 1
                means = _means(state["partial"])
                speed = state["partial"]["steps"] / max(
                    state["partial"]["time"] + time.perf_counter() - t0, 1e-9)
                report(Event(task, "epoch", epoch * n_batches + b + 1,
                             config.epochs * n_batches, _epoch_line(epoch, config, means, speed),
                             {"epoch": epoch + 1, "batch": b + 1, "batches": n_batches,
                              **means, "steps_per_s": speed}))
                if dd.any_rank(interrupted()):
                    break
            state["partial"]["time"] += time.perf_counter() - t0
            state["elapsed"] += time.perf_counter() - t0
            if status == "diverged":
                break
            if dd.any_rank(interrupted()):
                status = "interrupted"
                message = (f"interrupted at epoch {epoch + 1}, batch {state['batch']}: saved "
                           f"{out.target / LAST}" if out.target is not None else
                           f"interrupted at epoch {epoch + 1}, batch {state['batch']}")
                if main:
                    _save_last(out, model, optimizer, config, source, state, epoch_rng)
                dd.barrier()
                break
            validate = (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs
            row = _end_epoch(model, config, state, val if validate else None, val_tensors,
                             horizon, lr)
            report(Event(task, "validated", (epoch + 1) * n_batches, config.epochs * n_batches,
                         _validated_line(config, row), row, log=True))
            if row["val_nrmse_x"] < state["best_val"] or (validate and state["best_epoch"] < 0):
                state["best_val"], state["best_epoch"], state["since_best"] = \
                    row["val_nrmse_x"], epoch, 0
                if main:
                    out.save_best(run_record(model, config, source, row))
            elif validate:
                state["since_best"] += 1
            state["epoch"], state["batch"], state["partial"] = epoch + 1, 0, _zero_partial()
            if main:
                _save_last(out, model, optimizer, config, source, state, gen.get_state())
            dd.barrier()
            if _stopped_early(config, state):
                status, message = "early-stopped", _early_stop_message(config, epoch + 1)
                break
        if status in ("ok", "early-stopped") and dd.any_rank(interrupted()):  # after the last
            status, message = "interrupted", f"interrupted after its last epoch: {message}"
    if status in ("ok", "early-stopped") and not math.isfinite(state["best_val"]):
        status = "diverged"  # a finite loss, but no closed-loop validation stayed finite
        message = (f"{message}, but every closed-loop validation diverged; try a lower lr "
                   f"(now {config.lr:g}) or a smaller clip (now {config.clip})")
    report(Event(task, "done", state["epoch"] * n_batches, config.epochs * n_batches, message))
    return TrainResult(out.target, status, message, state["best_epoch"], state["best_val"],
                       state["history"], state["elapsed"])



def _stopped_early(config: TrainConfig, state: dict[str, Any]) -> bool:
    """``patience`` validations in a row without a better closed-loop error."""
    return config.patience is not None and state["since_best"] >= config.patience


def _early_stop_message(config: TrainConfig, epoch: int) -> str:
    every = f" ({config.patience * config.val_every} epochs)" if config.val_every > 1 else ""
    return (f"early stop after epoch {epoch}: no better closed-loop validation error in "
            f"{config.patience} validations{every}")

def _window_length(config: TrainConfig) -> int:
    """Steps in a training window: the teacher-forced window or the closed-loop horizon."""
    return max(config.window, config.horizon + config.warmup if config.horizon else 0)


def check(data: Trajectories, config: TrainConfig) -> None:
    """Refuse training data too short for the windows, before the run directory is touched."""
    length = _window_length(config)
    if data.n_steps - 1 < length:
        raise DataError(f"trajectories have {data.n_steps} points; window {config.window}, "
                        f"horizon {config.horizon} and warmup {config.warmup} need at least "
                        f"{length + 1}")


def _train_batch(model, config, optimizer, params, w: SequenceTensors,
                 horizon: int, weight: float = 1.0) -> dict[str, float]:
    """One optimiser step on a batch of windows; returns the losses and the gradient norm.

    Distributed, ``w`` is this rank's share of the batch and ``weight`` its fraction of the
    windows: losses and gradients are weighted sums over the ranks, the whole batch's."""
    optimizer.zero_grad(set_to_none=True)
    tf = cl = torch.zeros((), device=model.device)
    loss = tf
    if w.n > 0:
        tf = _teacher_forced_loss(model, w, config.window, config.tbptt)
        loss = tf
        if horizon > 0 and config.closed_loop_weight > 0:
            cl = _closed_loop_loss(model, w, horizon)
            loss = tf + config.closed_loop_weight * cl
    if dd.active():
        total = dd.all_sum(torch.stack([loss, tf, cl]).detach().float() * weight).cpu()
        whole = {"loss": total[0].item(), "tf_loss": total[1].item(), "cl_loss": total[2].item()}
    else:
        whole = {"loss": loss.item(), "tf_loss": tf.item(), "cl_loss": cl.item()}
    if not math.isfinite(whole["loss"]):
        return {"loss": math.inf}
    if loss.requires_grad:
        loss.backward()
    dd.reduce_gradients(params, weight)
    if config.clip is not None:
        norm = torch.nn.utils.clip_grad_norm_(params, config.clip)
    else:
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
    if not torch.isfinite(norm):
        return {"loss": math.inf}
    optimizer.step()
    return {**whole, "grad_norm": norm.item()}


class _TeacherForced(nn.Module):
    """A surrogate as a function of its parameters for Hessian-free optimisation:
    ``forward(u, s0)`` gives the teacher-forced outputs of a window (and the hidden states,
    for structural damping). It steps the cell's written-out equations, because HF's
    curvature products need forward-mode AD, which fused (cuDNN) kernels lack."""

    def __init__(self, net: RecurrentSurrogate, hidden: bool) -> None:
        super().__init__()
        self.net, self.hidden = net, hidden

    def forward(self, u: Tensor, s0: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        state = self.net.initial_state(s0)
        ys, hs = [], []
        for i in range(u.shape[1]):
            y, state = self.net.step(u[:, i], state)
            ys.append(y)
            if self.hidden:
                hs.append(state[0])
        y = torch.stack(ys, dim=1)
        return (y, torch.stack(hs, dim=1)) if self.hidden else y


def _hessian_free(model: RecurrentSurrogate, config: TrainConfig) -> HessianFree:
    """HF on every parameter of ``model`` (updated in place), driven functionally."""
    module = _TeacherForced(model, hidden=config.structural_damping > 0)
    params = {k: p for k, p in module.named_parameters() if p.requires_grad}

    def f(p: dict[str, Tensor], inputs: tuple[Tensor, Tensor]):
        return torch.func.functional_call(module, p, inputs)

    return HessianFree(f, params, damping=config.damping,
                       structural_damping=config.structural_damping,
                       max_cg_iters=config.max_cg_iters)


def _hf_batch(model, config: TrainConfig, hf: HessianFree,
              w: SequenceTensors) -> dict[str, float]:
    """One HF step on the teacher-forced loss of a batch of windows (the gradient path's loss
    with ``tbptt=None``); returns the loss before the step and HF's damping and CG stats."""
    z, e = w.z[:, :config.window + 1], w.e[:, :config.window + 1]
    codec = model.codec
    inputs = (codec.encode(z[:, :-1], e[:, :-1]), codec.init_features(z[:, 0], e[:, 0]))
    try:
        stats = hf.step((inputs, codec.target(z[:, :-1], z[:, 1:], e[:, :-1])))
    except FloatingPointError:
        return {"loss": math.inf}
    return {"loss": stats["loss"], "tf_loss": stats["loss"], "cl_loss": 0.0,
            "hf_lambda": stats["lambda"], "hf_cg_iters": float(stats["cg_iters"]),
            "hf_alpha": stats["alpha"]}


def _teacher_forced_loss(model, w: SequenceTensors, window: int, tbptt: int | None):
    """MSE of the normalised outputs over the first ``window`` steps, the true state fed at each
    step; the hidden state is detached every ``tbptt`` steps (truncated BPTT)."""
    z, e = w.z[:, :window + 1], w.e[:, :window + 1]
    codec = model.codec
    state = model.initial_state(codec.init_features(z[:, 0], e[:, 0]))
    u, y_true = codec.encode(z[:, :-1], e[:, :-1]), codec.target(z[:, :-1], z[:, 1:], e[:, :-1])
    chunk = tbptt or window
    total = 0.0
    for s in range(0, window, chunk):
        if s > 0:
            state = tuple(h.detach() for h in state)
        y, state = model.sequence(u[:, s:s + chunk], state)
        total = total + torch.sum(torch.square(y - y_true[:, s:s + chunk]))
    return total / y_true.numel()


def _closed_loop_loss(model, w: SequenceTensors, horizon: int):
    """MSE of the carried state (in training standard deviations) after feeding the model its
    own predictions for ``horizon`` steps (the first ``warmup`` steps observed)."""
    k = model.warmup_steps
    z, e = w.z[:, :horizon + k + 1], w.e[:, :horizon + k]
    pred = model.closed_loop(z[:, 0], e, z[:, :k] if k else None)
    err = (pred[:, k + 1:] - z[:, k + 1:]) / model.codec.state_std()
    return torch.mean(torch.square(err))


def _end_epoch(model, config, state, val, val_tensors, horizon, lr) -> dict[str, float]:
    """Validate (teacher-forced loss, closed-loop NRMSE of x), append a history row. With
    ``val_folds`` (``val`` the :class:`FoldScores`, no ``val_tensors``: nothing is held out of
    this training) the closed-loop error is the folds' at this epoch, and there is no loss."""
    val_loss = val_err = math.nan
    model.eval()
    with torch.no_grad():
        if val_tensors is not None:
            n = min(val_tensors.n_steps - 1, max(config.window, 1))
            val_loss = _validation_loss(model, val_tensors, n, max(config.batch_size, 1))
    if isinstance(val, FoldScores):
        val_err = val.at(state["epoch"])
    elif val is not None:
        val_err = closed_loop_nrmse(model, val, config.val_steps)
    model.train()
    means = _means(state["partial"])
    row = {"epoch": state["epoch"] + 1, **means, "val_loss": val_loss, "val_nrmse_x": val_err,
           "lr": lr, "horizon": horizon, "steps_per_s": state["partial"]["steps"] / max(
               state["partial"]["time"], 1e-9), "time": state["elapsed"]}
    state["history"].append(row)
    return row


def _validation_loss(model: Any, val: SequenceTensors, n: int, rows: int) -> float:
    """The mean squared one-step error over the first ``n`` steps of the validation set,
    ``rows`` trajectories at a time (no more than a training batch, whose memory the budget
    check counted: the whole set at once took 5.8 GB at 20000 trajectories)."""
    total = count = 0
    for a in range(0, val.n, rows):
        y, y_true = model.teacher_forced(val.z[a:a + rows, :n + 1], val.e[a:a + rows, :n + 1])
        total += torch.mean(torch.square(y - y_true)).item() * y.numel()  # one part: its mean
        count += y.numel()
    return total / count


_COUNTERS = ("batches", "steps", "time")


def _zero_partial() -> dict[str, float]:
    """Sums over an epoch's batches: the counters, then whatever a batch reports."""
    return {"batches": 0, "steps": 0, "time": 0.0}


def _accumulate(partial, losses, n_windows: int, config, horizon) -> None:
    for k, v in losses.items():
        partial[k] = partial.get(k, 0.0) + v
    partial["batches"] += 1
    partial["steps"] += n_windows * (config.window + (horizon if config.closed_loop_weight else 0))


def _means(partial) -> dict[str, float]:
    """Batch means of the reported values (loss, tf_loss, cl_loss, then grad_norm or HF's
    damping lambda, CG iterations and line-search step alpha)."""
    n = max(partial["batches"], 1)
    return {k: v / n for k, v in partial.items() if k not in _COUNTERS}


def _optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr, momentum=config.momentum,
                                   weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov and config.momentum > 0,
                           weight_decay=config.weight_decay)


def _save_last(out, model, optimizer, config, source, state, rng_state) -> None:
    """``last.pt`` (the model plus everything resume needs: optimiser, RNG, data position) and
    ``history.csv``."""
    record = run_record(model, config, source, {})
    record["resume"] = {"optimizer": optimizer.state_dict(), "rng": rng_state, **state}
    out.save_last(record, state["history"])


def _epoch_line(epoch: int, config: TrainConfig, means: dict[str, float], speed: float) -> str:
    return (f"epoch {epoch + 1}/{config.epochs} loss {means.get('loss', math.nan):.3g} "
            f"(tf {means.get('tf_loss', math.nan):.3g}, closed loop "
            f"{means.get('cl_loss', math.nan):.3g}) {speed / 1e3:.0f}k steps/s")


def _validated_line(config: TrainConfig, row: dict[str, float]) -> str:
    val, folds = row["val_nrmse_x"], bool(config.val_folds)  # folds: no validation loss
    return (f"epoch {row['epoch']}/{config.epochs} loss {row['loss']:.3g} "
            f"(tf {row['tf_loss']:.3g}, closed loop {row['cl_loss']:.3g})"
            + ("" if folds else f", val loss {row['val_loss']:.3g}")
            + ("" if math.isnan(val) else f", {'the folds' if folds else 'closed-loop val'} "
               f"NRMSE(x) {val:.3g}")
            + f", {row['steps_per_s'] / 1e3:.0f}k steps/s")
