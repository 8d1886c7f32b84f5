"""The gradient recipe's training options checked together: each in its range, and none given
where it would be ignored (an option taken and not used reads, in ``config.json``, as if it
had been trained with). One SpecError line each."""

from __future__ import annotations

import dataclasses
from typing import Any

from odernn.errors import SpecError
from odernn.learn.families import MOMENTUM_SCHEDULES

FIRST_ORDER = ("lr", "momentum", "nesterov", "momentum_schedule", "weight_decay", "clip",
               "schedule", "warmup_epochs")
"""Options of the first-order optimisers (adam, rmsprop, sgd), which Hessian-free does not use."""
USES = {"adam": {"lr", "weight_decay", "clip", "schedule", "warmup_epochs"},
        "rmsprop": {"lr", "momentum", "weight_decay", "clip", "schedule", "warmup_epochs"},
        "sgd": set(FIRST_ORDER), "hf": set()}
"""Which of :data:`FIRST_ORDER` each optimiser uses."""


def need(ok: bool, what: str) -> None:
    """Refuse a training option in one line unless ``ok``."""
    if not ok:
        raise SpecError(f"training option {what}")


def check_inputs(inputs: Any) -> None:
    """Input channels and parameters named once each."""
    need(inputs is None or len(set(inputs)) == len(inputs),
         f"inputs {list(inputs or [])} name a channel or parameter twice: give each once")


def check_gradient(config: Any, hf_options: dict[str, Any]) -> None:
    """The options of the ``gradient`` recipe (:class:`~odernn.learn.config.TrainConfig`);
    ``hf_options``: the Hessian-free optimiser's own, with their defaults."""
    from odernn.learn.models import REGISTRY
    from odernn.learn.schedules import horizon_at

    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    for name in ("lr", "epochs", "batch_size", "window"):
        need(getattr(config, name) > 0, f"{name} must be > 0, got {getattr(config, name)}")
    need(0 <= config.horizon_start <= config.horizon or
         (config.horizon == 0 and config.horizon_start == 0),
         f"horizon_start must be in 0..horizon ({config.horizon}), got {config.horizon_start}")
    need(config.horizon == 0 or horizon_at(config, config.epochs - 1) > 0,
         f"horizon {config.horizon} is never trained: the closed loop starts at epoch "
         f"{round(config.closed_loop_from * config.epochs) + 1} of {config.epochs} "
         f"(closed_loop_from {config.closed_loop_from}) with horizon_start "
         f"{config.horizon_start}; give more epochs, an earlier closed_loop_from or a "
         "horizon_start > 0")
    need(config.tbptt is None or config.tbptt >= 1, f"tbptt must be >= 1, got {config.tbptt}")
    need(config.tbptt is None or REGISTRY[config.model].hidden_states,
         f"tbptt truncates the gradient through hidden states: the {config.model} family has "
         "none")
    need(not (config.start_as_skip and config.output_activation not in (None, "identity")),
         "start_as_skip starts the model as the skip's least-squares fit, whose intercept "
         "c would lie inside output_activation: give one of them")
    need(config.skip is not False or (config.products is None
                                      and config.start_as_skip is None),
         "products and start_as_skip are options of the skip: not with skip = false")
    need(config.clip is None or config.clip > 0, f"clip must be > 0, or none (no clipping), "
         f"got {config.clip}")
    need(config.patience is None or config.patience >= 1, "patience must be >= 1, or none")
    need(config.val_every >= 1, f"val_every must be >= 1, got {config.val_every}")
    need(config.warmup_epochs >= 0 and config.weight_decay >= 0 and config.momentum >= 0,
         "warmup_epochs, weight_decay and momentum must be >= 0")
    need(config.warmup_epochs < config.epochs or config.warmup_epochs == 0  # or a one-epoch
         or config.warmup_epochs == config.epochs == defaults["warmup_epochs"],  # run's default
         f"warmup_epochs {config.warmup_epochs} is not less than the {config.epochs} epochs: "
         "the learning rate would never reach lr")
    need(config.closed_loop_weight >= 0, "closed_loop_weight must be >= 0")
    need(0 <= config.closed_loop_from < 1, "closed_loop_from must be in [0, 1)")
    shaping = [n for n in ("closed_loop_weight", "closed_loop_from")
               if getattr(config, n) != defaults[n]]
    need(config.horizon > 0 or not shaping, f"{shaping[0] if shaping else ''} shapes the "
         "closed-loop loss, which horizon 0 turns off: give a horizon > 0, or leave it out")
    need(config.horizon == 0 or config.closed_loop_weight > 0, f"closed_loop_weight 0 turns the "
         f"closed-loop loss off, so horizon {config.horizon} would not be trained: give "
         "horizon 0 (and horizon_start 0) instead")
    need(config.momentum_schedule in MOMENTUM_SCHEDULES, f"momentum_schedule "
         f"{config.momentum_schedule!r} unknown; allowed: {', '.join(MOMENTUM_SCHEDULES)}")
    need(config.momentum_schedule == "constant" or (config.optimizer == "sgd" and
                                                    0 < config.momentum < 1),
         "momentum_schedule 'sutskever' needs optimizer 'sgd' and 0 < momentum < 1")
    unused = [n for n in FIRST_ORDER if n not in USES[config.optimizer]
              and getattr(config, n) != defaults[n]]
    if unused:
        hf = " (it takes damping, structural_damping and max_cg_iters)"
        raise SpecError(f"training option {unused[0]} is not used by optimizer "
                        f"{config.optimizer!r}{hf if config.optimizer == 'hf' else ''}")
    need("momentum" not in USES[config.optimizer] or config.momentum < 1,
         f"momentum must be < 1, got {config.momentum}")
    if config.optimizer != "hf":
        for name, default in hf_options.items():
            need(getattr(config, name) == default, f"{name} applies to optimizer 'hf' only")
        return
    need(config.damping > 0, f"damping must be > 0, got {config.damping}")
    need(config.structural_damping >= 0,
         f"structural_damping must be >= 0, got {config.structural_damping}")
    need(config.max_cg_iters >= 1, f"max_cg_iters must be >= 1, got {config.max_cg_iters}")
    need(config.horizon == 0, "horizon must be 0 with optimizer 'hf' (it fits the "
         f"teacher-forced loss only), got {config.horizon}")
    need(config.tbptt is None, "tbptt must be None with optimizer 'hf' (whole windows)")
    need(config.structural_damping == 0 or REGISTRY[config.model].hidden_states,
         f"structural_damping needs hidden states: the {config.model} family has none")
