"""The run directory: one writer, only our own files replaced, the previous run kept until the
new one has a checkpoint (in-process and with real processes and signals)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from test_interrupt import _train_args
from test_models import interrupt_at, small_config

from odernn.cli.app import main
from odernn.data.integrators import INTEGRATORS
from odernn.data.simulate import simulate
from odernn.data.spec import load_spec
from odernn.data.store import read_trajectories
from odernn.errors import DataError, OutputError
from odernn.learn.rundir import (
    LOCK,
    RunWriter,
    best_checkpoint,
    check_run_dir,
    last_checkpoint,
    name_runs,
    read_config,
    read_history,
    staging_dir,
)
from odernn.learn.training import train


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rundir") / "train.h5"
    simulate(load_spec("train").with_overrides(n=12, n_steps=120, integrator="exact"), path)
    return path


@pytest.fixture(scope="module")
def data(data_file):
    return read_trajectories(data_file)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != LOCK}


def config():
    return small_config("gru", epochs=3)


def cli_train(data_file: Path, run: Path, *extra: str) -> list[str]:
    return ["train", str(data_file), "-o", str(run), "-m", "gru", "--hidden", "8", "--epochs",
            "2", "-q", *extra]


@pytest.mark.parametrize("others", [["thesis.tex"], ["other-run/best.pt"], ["best.pt/x"]])
def test_overwrite_never_writes_into_a_directory_of_other_files(data_file, tmp_path, capsys,
                                                                 others):
    for name in others:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("mine")
    before = snapshot(tmp_path)
    assert main(cli_train(data_file, tmp_path, "--overwrite")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an odernn run" in err, err
    assert snapshot(tmp_path) == before and not (tmp_path / LOCK).exists()


def test_a_second_writer_fails_at_once(data_file, tmp_path, capsys):
    run = tmp_path / "run"
    holder = RunWriter(run, resume=False, overwrite=False)
    holder.open()
    try:
        for extra in ([], ["--overwrite"]):
            start = time.monotonic()
            assert main(cli_train(data_file, run, *extra)) == 2
            assert "being written by another process" in capsys.readouterr().err
            assert time.monotonic() - start < 30
    finally:
        holder.close()
    with pytest.raises(OutputError, match="another process"):
        a = RunWriter(tmp_path / "b", resume=False, overwrite=False)
        a.open()
        RunWriter(tmp_path / "b", resume=False, overwrite=False).open()


def test_a_failed_new_run_removes_its_lock_file_last(tmp_path, monkeypatch):
    """While the lock file exists the lock is this run's: everything else of the run goes
    first. A writer that takes a new lock once the file is gone keeps its own files."""
    run = tmp_path / "run"
    writer = RunWriter(run, resume=False, overwrite=False)
    writer.open()
    writer.write_config({"config": {}})
    left = []
    unlink = Path.unlink

    def watched(path, *args, **kwargs):
        if path.name == LOCK:
            left.append(sorted(p.name for p in run.iterdir()))
            unlink(path, *args, **kwargs)
            (run / "another-writer.txt").write_text("mine")  # arrives just then
        else:
            unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", watched)
    writer.discard()
    writer.close()
    assert left == [[LOCK]]
    assert sorted(p.name for p in run.iterdir()) == ["another-writer.txt"]


def test_a_failed_new_run_removes_the_directories_it_made_above_it(tmp_path):
    """-o n1/n2/run interrupted before its first checkpoint left n1/n2 behind; one that held
    something else stays."""
    writer = RunWriter(tmp_path / "n1" / "n2" / "run", resume=False, overwrite=False)
    writer.open()
    writer.write_config({"config": {}})
    writer.discard()
    writer.close()
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "n1").mkdir()
    writer = RunWriter(tmp_path / "n1" / "n2" / "run", resume=False, overwrite=False)
    writer.open()
    (tmp_path / "n1" / "notes.txt").write_text("mine, written meanwhile")
    writer.discard()
    writer.close()
    assert sorted(p.name for p in (tmp_path / "n1").iterdir()) == ["notes.txt"]


def test_a_history_lost_after_its_checkpoint_comes_back_on_resume(data, tmp_path):
    """A full disk between ``last.pt`` and ``history.csv``: resuming the finished run said ok
    and never wrote the history, so its report lacked the loss curves."""
    run = tmp_path / "run"
    train(data, config(), run, progress=False)
    expected = (run / "history.csv").read_text()
    (run / "history.csv").unlink()
    assert train(data, config(), run, progress=False, resume=True).status == "ok"
    assert (run / "history.csv").read_text() == expected


def test_a_run_with_no_checkpoint_is_not_offered_resume(tmp_path):
    """Killed before its first checkpoint, a run holds config.json and its lock: the message
    offered --resume, which then said last.pt does not exist."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / LOCK).write_text("")
    with pytest.raises(OutputError, match="pass --overwrite \\(in Python overwrite=True\\): "
                       "it has no last.pt to resume from"):
        check_run_dir(run, resume=False, overwrite=False)


def test_a_run_directory_that_cannot_be_prepared_leaves_nothing(tmp_path, monkeypatch):
    """No inode left for the lock file (a full disk): one line, and the directories the run
    made are gone (an empty one was left behind)."""
    import odernn.learn.rundir as rundir_module

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rundir_module.os, "open", full)
    writer = RunWriter(tmp_path / "n1" / "run", resume=False, overwrite=False)
    with pytest.raises(OutputError, match="cannot prepare run directory .*No space left"):
        writer.open()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    writer = RunWriter(tmp_path / "n1" / ("a" * 300), resume=False, overwrite=False)
    with pytest.raises(OutputError, match="cannot prepare run directory .*too long"):
        writer.open()
    assert list(tmp_path.iterdir()) == []


def test_an_overwrite_that_fails_before_its_first_checkpoint_keeps_the_previous_run(
        data, tmp_path):
    train(data, config(), tmp_path / "run", progress=False)
    before = snapshot(tmp_path)

    def crash(info):
        if info.stage == "epoch" and info.values["batch"] == 2:
            raise RuntimeError("the machine fell over")

    with pytest.raises(RuntimeError):
        train(data, small_config("gru", epochs=3, seed=1), tmp_path / "run", progress=crash,
              overwrite=True)
    assert snapshot(tmp_path) == before  # no staging directory left either


def test_an_interrupted_overwrite_leaves_a_resumable_new_run(data, tmp_path):
    whole = train(data, small_config("gru", epochs=3, seed=1), tmp_path / "whole",
                  progress=False)
    run = tmp_path / "run"
    train(data, config(), run, progress=False)
    stopped = train(data, small_config("gru", epochs=3, seed=1), run,
                    progress=interrupt_at(2, 3), overwrite=True)
    assert stopped.status == "interrupted" and sorted(p.name for p in tmp_path.iterdir()) == [
        "run", "whole"]
    resumed = train(data, small_config("gru", epochs=3, seed=1), run, resume=True,
                    progress=False)
    assert resumed.status == "ok" and resumed.best_epoch == whole.best_epoch
    a = torch.load(whole.run_dir / "best.pt", weights_only=True)["state_dict"]
    b = torch.load(run / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("delay", [0.1, 0.5, 1.5, 3.0])
def test_a_signal_at_any_moment_of_an_overwrite_loses_nothing(data_file, tmp_path, delay):
    """SIGINT during ``train --overwrite`` of a real process: either the previous run exactly as
    it was, or a new run that ``--resume`` finishes."""
    run = tmp_path / "run"
    subprocess.run(_train_args(data_file, run), check=True, capture_output=True)
    before = snapshot(run)
    proc = subprocess.Popen(_train_args(data_file, run, "--overwrite", "--seed", "5"),
                            stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging left beside it
    # during the interpreter's own start-up, before odernn runs a line: Python's default
    # (killed by the signal, or "init_import_site" failing with exit 1 while site imports)
    if proc.returncode == -signal.SIGINT or "Fatal Python error: init_import_site" in err:
        assert snapshot(run) == before
        return
    assert proc.returncode in (0, 130) and "Traceback" not in err, err
    if snapshot(run) == before:
        return
    resumed = subprocess.run(_train_args(data_file, run, "--seed", "5", "--resume"),
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr


def test_a_killed_overwrite_is_cleared_by_the_next_run(data, tmp_path):
    """A staging directory left by a SIGKILLed run is removed by the next writer."""
    run = tmp_path / "run"
    train(data, config(), run, progress=False)
    staging = tmp_path / ".run.odernn-new"
    staging.mkdir()
    (staging / "config.json").write_text("{}")
    train(data, config(), run, progress=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("how", ["resume", "overwrite"])
def test_a_file_a_killed_run_was_writing_is_its_own(data, tmp_path, how):
    """SIGKILL while a checkpoint is written leaves ``.last.pt.tmp-PID-HEX`` beside the last
    complete one: the run is still a run (it was refused as another's files, for ever), and
    the next run that holds the lock removes the unfinished file."""
    from odernn.learn.seeds import run_reason

    run = tmp_path / "run"
    train(data, config(), run, progress=False)
    unfinished = run / ".last.pt.tmp-4242-0a1b2c3d"
    unfinished.write_bytes((run / "last.pt").read_bytes()[:100])
    assert run_reason(run) is None  # a demo's --overwrite takes it too
    result = train(data, config(), run, progress=False, **{how: True})
    assert result.status == "ok" and not unfinished.exists()
    foreign = run / ".last.pt.tmp-notours"
    foreign.write_text("mine")
    with pytest.raises(OutputError, match="not an odernn run"):
        train(data, config(), run, progress=False, overwrite=True)


def test_overwrite_never_replaces_the_working_directory(tmp_path, monkeypatch) -> None:
    """A previous run's directory replaced by --overwrite while it was the shell's."""
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path / "run")
    with pytest.raises(OutputError, match="holds the working directory"):
        check_run_dir(tmp_path / "run", resume=False, overwrite=True)
    assert check_run_dir(tmp_path / "run", resume=False, overwrite=False) == []


def test_name_runs(tmp_path) -> None:
    (tmp_path / "a" / "lstm").mkdir(parents=True)
    (tmp_path / "b" / "lstm").mkdir(parents=True)
    (tmp_path / "rk4").mkdir()
    names = name_runs([tmp_path / "a" / "lstm", tmp_path / "b" / "lstm", tmp_path / "rk4"],
                      reserved=INTEGRATORS)
    assert list(names) == ["lstm", "lstm-2", "rk4-2"]
    with pytest.raises(DataError, match="not found"):
        name_runs([tmp_path / "missing"])
    with pytest.raises(DataError, match=r"a/\.\./b/lstm is given twice \(also as .*0/b/lstm\)"):
        name_runs([tmp_path / "b" / "lstm", tmp_path / "a" / ".." / "b" / "lstm"])  # scored twice


def test_a_run_is_read_through_its_readers(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    assert read_config(run) is None and read_history(run) == {}
    for find in (best_checkpoint, last_checkpoint):
        with pytest.raises(DataError):
            find(run)
    (run / "config.json").write_text('{"config": {"model": "lstm"}, "data": {}}')
    (run / "history.csv").write_text("epoch,train_loss,note\n1,2.0,a\n2,1.0,b\n")
    for name in ("best.pt", "last.pt"):
        (run / name).write_bytes(b"")
    assert read_config(run)["config"] == {"model": "lstm"}
    history = read_history(run)
    assert set(history) == {"epoch", "train_loss"}
    assert history["train_loss"].tolist() == [2.0, 1.0]
    assert (best_checkpoint(run), last_checkpoint(run)) == (run / "best.pt", run / "last.pt")
    (run / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="config.json.*not valid JSON"):
        read_config(run)


@pytest.mark.parametrize("name, text", [
    ("history.csv", "epoch\n" + "1\n" * 100_000),
    ("history.csv", "epoch,train_loss\n" + "1,2\n" * 100_000),
    ("history.csv", ",".join(f"c{k}" for k in range(100)) + "\n" + "1\n" * 10_000),
    ("history.jsonl", '{"epoch": 1}\n' * 50_000),
    ("history.json", "[" + ",".join(["{}"] * 100_000) + "]"),
    ("history.json", "[{" + ",".join(f'"c{k}": 1' for k in range(100)) + "}"
     + ",{}" * 10_000 + "]"),
    ("history.json", '{"a": [' + ",".join(["1"] * 100_000) + "]}"),
    ("history.csv", ",".join(f"c{k}" for k in range(10)) + "\n" + (",".join(["ab"] * 10)
                                                                  + "\n") * 10_000),
    ("history.csv", ",".join(f"c{k}" for k in range(10)) + "\n" + (",".join(["abcdefgh"] * 10)
                                                                  + "\n") * 10_000),
    ("history.jsonl", '{"":{}}\n' * 50_000),
])
def test_reading_a_history_stays_within_what_its_budget_counts(tmp_path, name, text,
                                                                monkeypatch):
    """A 30 MB history.csv of one-character rows took 4.2 GB to parse, under any budget (and
    short rows under a wide header make more values than bytes): the parse is now budgeted,
    and this measures the count as an upper bound, and the refusal where it is more."""
    import tracemalloc

    from odernn import budget
    from odernn.learn.rundir import read_history

    (tmp_path / name).write_text(text)
    counted = []
    check = budget.check
    monkeypatch.setattr(budget, "check", lambda what, need, *a: counted.append(need)
                        or check(what, need, *a))
    tracemalloc.start()
    read_history(tmp_path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= max(counted) + 2 * len(text), (peak, counted)  # and the text itself
    monkeypatch.setenv(budget.ENV, "1M")
    with pytest.raises(budget.BudgetError, match="that is for parsing its rows"):
        read_history(tmp_path)


def test_long_run_names_never_share_a_staging_directory(tmp_path):
    """Two names alike in their first 243 bytes shared one, and one run's --overwrite removed
    the other's staging directory while that run held its lock."""
    names = ["a" * 250 + "X", "a" * 250 + "Y", "run", "b" * 243]
    staged = [staging_dir(tmp_path / n) for n in names]
    assert len(set(staged)) == len(names) and all(len(p.name) <= 255 for p in staged)
    assert staged[2].name == ".run.odernn-new"  # short names as before
    for path in staged:
        path.mkdir()  # every one a valid name on this file system


def test_a_run_that_fails_after_its_first_checkpoint_keeps_its_lock_and_is_overwritable(
        tmp_path):
    """A failure after the first checkpoint removed the run's lock file with the rest of what
    the command made; the kept best.pt and last.pt were then no run odernn wrote, and
    --overwrite refused it."""
    from odernn.learn.rundir import check_run_dir

    run = tmp_path / "run"
    writer = RunWriter(run, resume=False, overwrite=False)
    writer.open()
    writer.write_config({"config": {}})
    writer.save_best({"format": "x"})
    writer.save_last({"format": "x"}, [{"epoch": 1}])
    writer.discard()  # e.g. out of memory in the second epoch
    writer.close()
    assert (run / LOCK).is_file()
    assert check_run_dir(run, resume=False, overwrite=True)  # a previous run, replaceable
