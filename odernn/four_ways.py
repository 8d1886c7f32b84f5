"""The notes' "four effective ways to learn an RNN", compared on one long-range problem.

The notes end with four remedies for RNNs that are hard to train: LSTM,
Hessian-free optimisation, echo state networks, and echo-state-style
initialisation with momentum. :func:`compare` trains each (and a plain vanilla
RNN with Adam as the baseline) on the same data with the same wall-clock
budget and reports validation loss and closed-loop error against training time.

The problem is chosen so that the target depends on inputs many steps back:
weakly damped oscillators in ``velocity`` mode with ``x`` and ``F`` as the only
inputs (the notes' ``y_i = h(x_i, h_{i-1})``), so the network must carry the
velocity in its hidden state over long windows.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from odernn.models import load_surrogate
from odernn.simulate import simulate_trajectories
from odernn.spec import Range, load_spec
from odernn.training import TrainConfig, closed_loop_nrmse, train
from odernn.trajectories import Trajectories

METHODS: dict[str, dict[str, Any]] = {
    "vanilla RNN, Adam": {"model": "rnn", "optimizer": "adam"},
    "vanilla RNN, ESN init + Nesterov momentum": {
        "model": "rnn", "init": "esn", "optimizer": "sgd", "lr": 1e-2, "momentum": 0.99,
        "nesterov": True, "momentum_schedule": "sutskever"},
    "vanilla RNN, Hessian-free": {"model": "rnn", "optimizer": "hf", "structural_damping": 0.3},
    "LSTM, Adam": {"model": "lstm", "optimizer": "adam"},
    "echo state network": {"model": "esn"},
}
"""Each method's training options; the rest are shared (:data:`SHARED`) or family defaults."""

SHARED: dict[str, Any] = {"target": "velocity", "inputs": ["x", "F", "F_next", "eta"],
                          "window": 200, "horizon": 0, "hidden": 32, "units": 400,
                          "device": "cpu", "seed": 0}
"""Options every method shares: velocity targets from x and F only, long windows."""


def long_range_data(n_train: int = 64, n_test: int = 16,
                    n_steps: int = 600) -> tuple[Trajectories, Trajectories]:
    """Weakly damped (eta in [0.01, 0.05]) cosine-driven oscillators: long memory."""
    def make(name: str, n: int) -> Trajectories:
        spec = load_spec(name).with_overrides(n=n, n_steps=n_steps, integrator="exact")
        params = {**spec.parameters, "eta": Range(0.01, 0.05)}
        return simulate_trajectories(replace(spec, parameters=params))

    return make("train", n_train), make("test", n_test)


def _options(name: str, epochs: int | None) -> dict[str, Any]:
    options = {**SHARED, **METHODS[name]}
    if options["model"] == "esn":
        return {k: v for k, v in options.items()
                if k not in ("window", "horizon", "hidden", "epochs")}
    options.pop("units")
    if epochs is not None:
        options["epochs"] = epochs
    return options


def compare(train_data: Trajectories, test_data: Trajectories, budget_s: float, *,
            methods: tuple[str, ...] = tuple(METHODS),
            say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train every method for about ``budget_s`` seconds; one result row per method.

    The number of epochs comes from a one-epoch pilot run (the reservoir is fitted
    once: it has no epochs). Rows: training time, epochs, final validation loss
    (teacher forced), closed-loop NRMSE of x on ``test_data``, and the history.
    """
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(methods):
            run = Path(tmp) / f"run{i}"
            epochs = None
            if METHODS[name]["model"] != "esn":
                pilot = train(train_data, TrainConfig.from_dict(_options(name, 1)),
                              Path(tmp) / f"pilot{i}", progress=False)
                per_epoch = max(pilot.train_time_s, 1e-3)
                epochs = max(1, math.floor(budget_s / per_epoch))
            start = time.perf_counter()
            result = train(train_data, TrainConfig.from_dict(_options(name, epochs)), run,
                           progress=False)
            wall = time.perf_counter() - start
            model = load_surrogate(run)
            last = result.history[-1] if result.history else {}
            rows.append({"method": name, "epochs": epochs or 0, "train_s": wall,
                         "val_loss": last.get("val_loss", math.nan),
                         "val_nrmse_x": result.best_val_nrmse,
                         "test_nrmse_x": closed_loop_nrmse(model, test_data),
                         "history": result.history})
            say(f"{name}: {epochs or '-'} epochs, {wall:.1f} s, closed-loop NRMSE(x) on test "
                f"{rows[-1]['test_nrmse_x']:.3g}")
    return rows
