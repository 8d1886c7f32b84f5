"""``odernn train --tensorboard DIR``: the run's history as TensorBoard scalars, read back with
TensorBoard's own reader; a resumed or repeated run, a stopped one, and the missing extra."""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import pytest
from conftest import dev_extra
from test_cli import SPEC, assert_one_line_error
from test_models import interrupt_at, oscillator_data, small_config

import odernn.learn.gradient as gradient
from odernn.cli.app import main
from odernn.learn.checkpoint import read_checkpoint
from odernn.learn.tensorboard_log import tag
from odernn.learn.training import train

dev_extra("tensorboard")  # never a skip in CI
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

TINY = ["--model", "gru", "--epochs", "2", "--hidden", "8", "--window", "10", "--horizon", "10",
        "--batch-size", "8", "--quiet"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    (root / "small.toml").write_text(SPEC)
    assert main(["simulate", str(root / "small.toml"), "-o", str(root / "d.h5"), "-q"]) == 0
    return root / "d.h5"


@pytest.fixture(scope="module")
def data():
    return oscillator_data(n=12, n_steps=100)


def quick(**changes):
    return small_config("gru", **{"epochs": 2, "window": 10, "horizon": 10, "batch_size": 8,
                                  "val_every": 1, **changes})


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in ``log_dir`` as ``(step, value)`` pairs, as TensorBoard shows them."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {t: [(e.step, e.value) for e in events.Scalars(t)]
            for t in events.Tags()["scalars"]}


def expected(history) -> dict[str, list[tuple[int, float]]]:
    """A history's numeric columns (not NaN) as TensorBoard keeps them: float32, step = epoch."""
    out: dict[str, list[tuple[int, float]]] = {}
    for row in history:
        for name, value in row.items():
            if name != "epoch" and not math.isnan(value):
                out.setdefault(tag(name), []).append((row["epoch"], float(np.float32(value))))
    return out


def next_second() -> None:
    """Wait for the clock's next second: TensorBoard reads a DIR's event files in name order,
    and a file is named by the second it was created in (two runs of a test can share one)."""
    time.sleep(math.ceil(time.time()) - time.time() + 0.01)


def test_each_epoch_is_written_as_the_history_holds_it(dataset, tmp_path):
    run, board = tmp_path / "run", tmp_path / "tb"
    assert main(["train", str(dataset), "-o", str(run), "--tensorboard", str(board), *TINY]) == 0
    history = read_checkpoint(run / "last.pt")["resume"]["history"]
    got = scalars(board)
    assert got == expected(history)
    assert {"train/loss", "train/tf_loss", "train/cl_loss", "train/grad_norm", "val/loss",
            "val/nrmse_x", "lr", "horizon", "steps_per_s", "time"} <= got.keys()
    assert [step for step, _ in got["val/nrmse_x"]] == [1, 2]
    assert {p.name for p in run.iterdir()} == {"config.json", "history.csv", "best.pt",
                                               "last.pt", ".odernn-lock"}


def test_a_reservoir_logs_its_chosen_readout(dataset, tmp_path):
    run, board = tmp_path / "run", tmp_path / "tb"
    assert main(["train", str(dataset), "-o", str(run), "--model", "esn", "--units", "30",
                 "--tensorboard", str(board), "--quiet"]) == 0
    metrics = read_checkpoint(run / "best.pt")["metrics"]
    got = scalars(board)
    assert got.keys() == {"val/nrmse_x", "ridge", "time"}
    assert got["val/nrmse_x"] == [(1, float(np.float32(metrics["val_nrmse_x"])))]
    assert got["ridge"] == [(1, float(np.float32(metrics["ridge"])))]


def test_each_member_of_a_seed_group_logs_under_its_name(dataset, tmp_path):
    run, board = tmp_path / "group", tmp_path / "tb"
    assert main(["train", str(dataset), "-o", str(run), "--model", "esn", "--units", "30",
                 "--seeds", "2", "--tensorboard", str(board), "--quiet"]) == 0
    for member in sorted(p.name for p in run.iterdir() if p.is_dir()):
        assert "val/nrmse_x" in scalars(board / member), member
    assert len([p for p in board.iterdir() if p.is_dir()]) == 2


def test_an_interrupted_run_resumes_into_the_same_directory(data, tmp_path):
    run, board = tmp_path / "run", tmp_path / "tb"
    config = quick(epochs=3)
    stopped = train(data, config, run, progress=interrupt_at(2, 1), tensorboard=board)
    assert stopped.status == "interrupted"
    assert [step for step, _ in scalars(board)["train/loss"]] == [1]  # flushed at the stop
    next_second()
    resumed = train(data, config, run, resume=True, progress=False, tensorboard=board)
    assert resumed.status == "ok" and len(list(board.iterdir())) == 2
    assert scalars(board) == expected(resumed.history)


def test_a_second_run_into_the_directory_shows_its_own_values(data, tmp_path):
    board = tmp_path / "tb"
    train(data, quick(seed=1), tmp_path / "run", progress=False, tensorboard=board)
    next_second()
    again = train(data, quick(epochs=1), tmp_path / "run", progress=False, overwrite=True,
                  tensorboard=board)
    assert len(list(board.iterdir())) == 2  # the first run's file is kept, hidden
    assert scalars(board) == expected(again.history)


def test_a_non_finite_loss_keeps_the_epochs_before_it(data, tmp_path, monkeypatch):
    real, poisoned = gradient._teacher_forced_loss, []

    def loss(*args, **kwargs):
        return real(*args, **kwargs) * (math.nan if poisoned else 1.0)

    def progress(event):
        if event.stage == "validated":
            poisoned.append(True)

    monkeypatch.setattr(gradient, "_teacher_forced_loss", loss)
    result = train(data, quick(epochs=3), None, progress=progress, tensorboard=tmp_path / "tb")
    assert result.status == "diverged"
    assert scalars(tmp_path / "tb") == expected(result.history)
    assert [row["epoch"] for row in result.history] == [1]


def test_without_the_extra_the_option_is_refused(dataset, tmp_path, monkeypatch, capsys):
    for name in ("tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    code = main(["train", str(dataset), "-o", str(tmp_path / "run"), "--tensorboard",
                 str(tmp_path / "tb"), *TINY])
    assert_one_line_error(code, capsys.readouterr().err, "error: --tensorboard needs the "
                          "tensorboard extra: pip install 'odernn[tensorboard]'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["a file", "inside the run"])
def test_a_directory_that_cannot_hold_the_log_is_refused(dataset, tmp_path, capsys, where):
    (tmp_path / "file").write_text("keep")
    board = tmp_path / "file" / "tb" if where == "a file" else tmp_path / "run" / "tb"
    code = main(["train", str(dataset), "-o", str(tmp_path / "run"), "--tensorboard",
                 str(board), *TINY])
    assert_one_line_error(code, capsys.readouterr().err, "--tensorboard",
                          "not a directory" if where == "a file" else "inside the run")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


@pytest.mark.parametrize(("owner", "marker", "words"), [
    ("report", ".odernn-report", "an odernn report"),
    ("demo", ".odernn-demo", "an odernn demo"),
    ("other-run", "last.pt", "a training run"),
    ("group", "seeds.json", "a seed group"),
])
def test_a_log_inside_another_odernn_output_is_refused(dataset, tmp_path, capsys, owner,
                                                       marker, words):
    """--tensorboard wrote into any existing directory, a report for one, which its
    --overwrite then refused to replace (a file not its own)."""
    (tmp_path / owner).mkdir()
    (tmp_path / owner / marker).write_text("odernn's")
    board = tmp_path / owner / "tb" / "lstm"
    code = main(["train", str(dataset), "-o", str(tmp_path / "run"), "--tensorboard",
                 str(board), *TINY])
    assert_one_line_error(code, capsys.readouterr().err, "--tensorboard",
                          f"is inside {tmp_path / owner}, {words}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [owner]
    assert [p.name for p in (tmp_path / owner).iterdir()] == [marker]
