"""Seed groups (odernn train --seeds): members that differ only in their seed, their ensemble as
a surrogate, every seed scored by the evaluator, and the group's files."""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings

import numpy as np
import pytest

import odernn
from odernn.cli.app import main
from odernn.errors import DataError, OutputError
from odernn.learn.models.ensemble import Ensemble
from odernn.learn.seeds import load_group


@pytest.fixture(scope="module")
def fitted(small_linear_sets):
    return odernn.fit_seeds(small_linear_sets[0], model="esn", units=30, seeds=3, seed=5)


def test_members_differ_and_travel_with_the_ensemble(small_linear_sets, fitted):
    train, test = small_linear_sets
    ensemble, results = fitted
    assert list(ensemble.members) == ["seed-5", "seed-6", "seed-7"] == list(results)
    x0, v0, F = test.x[:, 0], test.v[:, 0], test.F
    runs = [m.rollout(x0, v0, F, test.params) for m in ensemble.members.values()]
    assert not np.array_equal(runs[0].x, runs[1].x)  # another reservoir draw
    joint = ensemble.rollout(x0, v0, F, test.params)  # the joint loop: tests/test_ensemble.py
    for run, own in zip(runs, joint.info["members"].values(), strict=True):
        assert np.array_equal(run.x, own.x) and np.array_equal(run.v, own.v)
    again, _ = odernn.fit(train, model="esn", units=30, seed=6)  # a member is a plain fit
    assert np.array_equal(again.rollout(x0, v0, F, test.params).x, runs[1].x)


def test_the_evaluator_scores_every_seed_and_the_mean(small_linear_sets, fitted):
    _, test = small_linear_sets
    ensemble, _ = fitted
    single = ensemble.members["seed-6"]
    ev = odernn.evaluate(test, {"esn": ensemble, "one": single}, integrators=("rk4",),
                         work_precision=False, resonance=False, progress=False)
    seeds = ev.methods["esn"].seeds
    assert seeds["n"] == 3 and ev.methods["one"].seeds is None
    errors = [row["nrmse_x"] for row in seeds["members"].values()]
    assert seeds["median"]["nrmse_x"] == np.median(errors)
    assert (seeds["min"]["nrmse_x"], seeds["max"]["nrmse_x"]) == (min(errors), max(errors))
    # a member scored inside the group equals the same model scored alone
    assert seeds["members"]["seed-6"]["nrmse_x"] == ev.methods["one"].metrics["nrmse_x"]
    assert "joint closed loop of 3 seeds" in ev.methods["esn"].description
    assert ev.to_json()["methods"]["esn"]["seeds"]["n"] == 3


def test_a_group_is_timed_on_its_joint_loop_alone(small_linear_sets, fitted, monkeypatch):
    """Every timed rollout of a seed group asks for its joint loop without the members' own
    (``members=False``); these follow once, untimed (timing both made a group look K + 1
    times slower than it runs)."""
    _, test = small_linear_sets
    ensemble, _ = fitted
    calls, real = [], type(ensemble).rollout

    def spy(self, *args, **options):
        calls.append((options.get("members", True), options.get("joint") is not None))
        return real(self, *args, **options)

    monkeypatch.setattr(type(ensemble), "rollout", spy)
    odernn.evaluate(test, {"esn": ensemble}, integrators=("rk4",), work_precision=False,
                    resonance=False, progress=False)
    # the untimed first call and the timed ones: the joint loop alone; then the members'
    # own loops, added to the timed joint loop
    assert len(calls) >= 3 and set(calls[:-1]) == {(False, False)} and calls[-1] == (True, True)


def test_an_ensemble_of_different_models_is_refused(small_linear_sets, fitted):
    a = fitted[0].members["seed-5"]
    c, _ = odernn.fit(small_linear_sets[0], model="ffn", epochs=1, val_every=1)
    with pytest.raises(DataError, match="seeds of one model only"):
        Ensemble({"a": a, "c": c})


def test_a_group_on_disk_is_written_resumed_and_reported(small_linear_sets, tmp_path, capsys):
    _, test = small_linear_sets
    for name, n in (("train", 24), ("test", 6)):
        assert main(["simulate", name, "-o", str(tmp_path / f"{name}.h5"), "--n", str(n),
                     "--n-steps", "200", "--integrator", "exact", "-q"]) == 0
    group = tmp_path / "gru"
    args = ["train", str(tmp_path / "train.h5"), "-o", str(group), "--model", "gru",
            "--epochs", "2", "--hidden", "8", "--seeds", "2", "--quiet"]
    assert main(args) == 0
    doc = json.loads((group / "seeds.json").read_text())
    assert doc["members"] == ["seed-0", "seed-1"] and doc["seeds"] == [0, 1]
    assert doc["started"] == doc["done"] == ["seed-0", "seed-1"]  # each once
    first = load_group(group)
    # the state an interrupt during the second member leaves: seed-0 done, seed-1 unwritten
    kept = {p: p.stat().st_mtime_ns for p in (group / "seed-0").iterdir()}
    for p in (group / "seed-1").iterdir():
        p.unlink()
    (group / "seed-1").rmdir()
    (group / "seeds.json").write_text(json.dumps({**doc, "done": ["seed-0"]}))
    with pytest.raises(DataError, match="member seed-1 has no best.pt yet"):
        load_group(group)
    shutil.copytree(group, tmp_path / "stopped")  # seed-1 stopped after a checkpoint: said
    shutil.copytree(group / "seed-0", tmp_path / "stopped" / "seed-1", dirs_exist_ok=True)
    with pytest.warns(UserWarning, match=r"stopped: seed-1 did not finish training .*--resume"):
        load_group(tmp_path / "stopped")
    # the finished member is kept only for the same options and data: another --epochs was
    # accepted, and made a group of members trained differently
    other = [*args[:args.index("--epochs") + 1], "3", *args[args.index("--epochs") + 2:]]
    capsys.readouterr()
    assert main([*other, "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err and not (group / "seed-1").exists()
    assert main([*args, "--resume"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (group / "seed-0").iterdir()} == kept
    resumed = load_group(group)
    x0, v0 = test.x[:, 0], test.v[:, 0]
    for name in ("seed-0", "seed-1"):  # training is reproducible: the same members again
        assert np.array_equal(first.members[name].rollout(x0, v0, test.F, test.params).x,
                              resumed.members[name].rollout(x0, v0, test.F, test.params).x)
    report = tmp_path / "report"
    assert main(["evaluate", str(group), "--data", str(tmp_path / "test.h5"), "-o", str(report),
                 "--no-work-precision", "--quiet"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics["methods"]["gru"]["seeds"]["members"]) == {"seed-0", "seed-1"}
    text = (report / "report.md").read_text()
    assert "## Seeds" in text and "| gru | 2 |" in text
    capsys.readouterr()
    assert main([*args[:-1], "--seeds", "3", "--resume", "--quiet"]) == 2  # other members
    assert ("it was started with members ['seed-0', 'seed-1'], this command asks for "
            "['seed-0', 'seed-1', 'seed-2']") in capsys.readouterr().err
    (group / "seed-1" / "best.pt").unlink()  # as a member diverged before any validation
    with pytest.raises(DataError, match="member seed-1 finished without a best.pt .* lower lr"):
        load_group(group)


def test_a_group_given_for_one_model_names_one_of_its_own_members(small_linear_sets, tmp_path):
    """Members are named by their seeds: a group from seed 3 has no seed-0 to suggest."""
    from odernn.learn.models import load_surrogate

    group = tmp_path / "group"
    odernn.fit_seeds(small_linear_sets[0], model="esn", units=30, seeds=2, seed=3,
                     run_dir=group)
    with pytest.raises(DataError, match=re.escape(f"give one of its members, e.g. "
                                                  f"{group / 'seed-3'}")):
        load_surrogate(group)
    load_surrogate(group / "seed-3")


def test_the_demo_trains_seed_groups_and_replaces_them(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--quick", "--models", "esn", "--seeds", "2", "-o", str(out), "--quiet"]
    assert main(args) == 0
    assert json.loads((out / "runs" / "esn" / "seeds.json").read_text())["done"] == [
        "seed-0", "seed-1"]
    assert "| esn | 2 |" in (out / "report" / "report.md").read_text()
    assert main([*args, "--overwrite"]) == 0  # a demo's seed groups are its own outputs
    (out / "runs" / "esn" / "seed-0" / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main([*args, "--overwrite"]) == 2  # ... and nothing else is
    assert "it holds runs/esn/seed-0/notes.txt, which training does not write" in \
        capsys.readouterr().err
    assert (out / "runs" / "esn" / "seed-0" / "notes.txt").read_text() == "mine"


def test_a_group_whose_first_member_refuses_its_input_leaves_nothing(tmp_path, capsys):
    """Bad input, one line, exit 2: no half-written group that would refuse the corrected
    command, and a previous group (--overwrite) as it was."""
    data = tmp_path / "t.h5"
    assert main(["simulate", "train", "-o", str(data), "--n", "8", "--n-steps", "100",
                 "--integrator", "exact", "-q"]) == 0
    group = tmp_path / "late" / "m"
    args = ["train", str(data), "-o", str(group), "--model", "rnn", "--epochs", "1",
            "--hidden", "4", "--seeds", "2", "-q"]
    capsys.readouterr()
    assert main([*args, "--window", "1000"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "trajectories have 100 points; window 1000" \
        in err, err
    assert not (tmp_path / "late").exists()
    assert main([*args, "--window", "20"]) == 0
    index = (group / "seeds.json").read_bytes()
    assert main([*args, "--window", "1000", "--overwrite"]) == 2
    assert "trajectories have 100 points; window 1000" in capsys.readouterr().err
    assert (group / "seeds.json").read_bytes() == index and load_group(group).members


def test_overwriting_a_group_with_fewer_members_removes_the_others(tmp_path):
    data = tmp_path / "t.h5"
    assert main(["simulate", "train", "-o", str(data), "--n", "8", "--n-steps", "100",
                 "--integrator", "exact", "-q"]) == 0
    group = tmp_path / "g"
    args = ["train", str(data), "-o", str(group), "--model", "rnn", "--epochs", "1",
            "--hidden", "4", "--window", "20", "-q"]
    assert main([*args, "--seeds", "2"]) == 0
    assert main([*args, "--seeds", "1", "--overwrite"]) == 0
    assert sorted(p.name for p in group.iterdir()) == ["seed-0", "seeds.json"]
    assert list(load_group(group).members) == ["seed-0"]


@pytest.mark.parametrize(("ran", "lines", "summary"), [
    ({"seed-0": "ok", "seed-1": "interrupted"},
     ["seed-0: ok", "seed-1: interrupted", "seed-2: not started"], "at seed-1, 1 of 3"),
    ({"seed-1": "ok", "seed-2": "interrupted"},  # resumed: seed-0 finished before
     ["seed-0: finished before, kept", "seed-1: ok", "seed-2: interrupted"], "at seed-2, 2 of 3"),
])
def test_an_interrupted_group_names_each_member_as_it_is(tmp_path, capsys, monkeypatch, ran,
                                                         lines, summary):
    """Members after the interrupted one were never started: they were reported as "finished
    before, kept", and the interrupted member counted as done."""
    from odernn.learn import seeds
    from odernn.learn.outcome import TrainResult

    data = tmp_path / "train.h5"
    assert main(["simulate", "train", "-o", str(data), "--n", "4", "--n-steps", "50",
                 "--integrator", "exact", "-q"]) == 0
    monkeypatch.setattr(seeds, "train_seeds", lambda *a, **k: {
        name: TrainResult(None, status, "stopped", 0, 0.1) for name, status in ran.items()})
    assert main(["train", str(data), "-o", str(tmp_path / "g"), "--model", "gru", "--seeds",
                 "3", "--quiet"]) == 130
    out = capsys.readouterr()
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in out.out.splitlines()
            if line.startswith("seed-")] == lines
    assert f"interrupted {summary} members finished" in out.err


def test_an_interrupted_overwrite_of_a_group_resumes_as_its_message_says(tmp_path, capsys):
    """An --overwrite with other options, interrupted in its first member, left that member
    new and the others the previous group's; the --resume its message named refused them
    ("other options"). A member the group has not started is now trained anew over them."""
    data = tmp_path / "train.h5"
    assert main(["simulate", "train", "-o", str(data), "--n", "16", "--n-steps", "100",
                 "-q"]) == 0
    group = tmp_path / "g"
    base = ["train", str(data), "-o", str(group), "--model", "gru", "--hidden", "4", "-q"]
    assert main([*base, "--epochs", "2", "--seeds", "2"]) == 0
    # the state the interrupted overwrite leaves: seed-0 of the new options, seed-1 the old
    assert main([*base[:3], str(group / "seed-0"), *base[4:], "--epochs", "3", "--seed", "0",
                 "--overwrite"]) == 0
    doc = json.loads((group / "seeds.json").read_text())
    (group / "seeds.json").write_text(json.dumps({**doc, "done": [], "started": ["seed-0"]}))
    assert main([*base, "--epochs", "3", "--seeds", "2", "--resume"]) == 0
    for member in ("seed-0", "seed-1"):
        config = json.loads((group / member / "config.json").read_text())["config"]
        assert config["epochs"] == 3, member
    assert json.loads((group / "seeds.json").read_text())["done"] == ["seed-0", "seed-1"]
    capsys.readouterr()


@pytest.mark.parametrize("wrote_index", [True, False])
def test_a_group_interrupted_within_a_reservoir_says_how_to_go_on(tmp_path, capsys,
                                                                  monkeypatch, wrote_index):
    """A reservoir member ends by KeyboardInterrupt (it saves nothing until it ends): the group
    said "each output is as before the command" though its finished members and index were
    written; it now names --resume. Before any index of its own, the generic line stands."""
    from odernn.learn import seeds

    data = tmp_path / "train.h5"
    assert main(["simulate", "train", "-o", str(data), "--n", "4", "--n-steps", "50",
                 "--integrator", "exact", "-q"]) == 0
    group = tmp_path / "g"

    def interrupted(*args, **kwargs):
        if wrote_index:
            group.mkdir()
            seeds._write_index(group, [0, 1], ["seed-0"], ["seed-0", "seed-1"])
        raise KeyboardInterrupt

    monkeypatch.setattr(seeds, "train_seeds", interrupted)
    assert main(["train", str(data), "-o", str(group), "--model", "esn", "--seeds", "2",
                 "--quiet"]) == 130
    err = capsys.readouterr().err
    assert ("run the same command with --resume" in err) is wrote_index
    assert len(err.strip().splitlines()) == 1


def test_a_group_whose_finished_member_left_nothing_resumes(tmp_path, capsys):
    """A member that diverged before its first checkpoint leaves no directory yet counts as
    done: the check of finished members refused the whole resume ("seed-0 does not
    exist")."""
    data = tmp_path / "train.h5"
    assert main(["simulate", "train", "-o", str(data), "--n", "16", "--n-steps", "100",
                 "-q"]) == 0
    group = tmp_path / "g"
    group.mkdir()
    from odernn.learn import seeds

    seeds._write_index(group, [0, 1], ["seed-0"], ["seed-0", "seed-1"])  # seed-0 diverged
    assert main(["train", str(data), "-o", str(group), "--model", "gru", "--hidden", "4",
                 "--epochs", "2", "--seeds", "2", "--resume", "-q"]) == 0
    assert (group / "seed-1" / "best.pt").is_file() and not (group / "seed-0").exists()
    capsys.readouterr()


def test_an_index_a_killed_group_was_writing_is_the_groups_own(tmp_path):
    """SIGKILL while ``seeds.json`` is replaced leaves ``.seeds.json.tmp-PID-HEX``: the group
    is still a group, for --resume, --overwrite and a demo's check; another file is not."""
    from odernn.learn.seeds import _write_index, check_group, run_reason

    group = tmp_path / "group"
    (group / "seed-0").mkdir(parents=True)
    _write_index(group, [0], [], ["seed-0"])
    (group / ".seeds.json.tmp-4242-0a1b2c3d").write_text("{")
    check_group(group, [0], resume=True, overwrite=False)
    check_group(group, [0], resume=False, overwrite=True)
    assert run_reason(group) is None
    (group / ".seeds.json.tmp-x").write_text("mine")
    with pytest.raises(OutputError, match="not a seed group's"):
        check_group(group, [0], resume=False, overwrite=True)


def test_the_next_index_removes_those_killed_groups_were_writing(tmp_path):
    """A killed group's ``.seeds.json.tmp-PID-HEX`` stayed for ever beside the index: the
    next index written removes it, once its writer is gone, and not one being written."""
    import subprocess
    import sys

    from odernn.learn.seeds import _write_index

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    group = tmp_path / "group"
    group.mkdir()
    dead, live = f".seeds.json.tmp-{gone}-0a1b", f".seeds.json.tmp-{os.getpid()}-0a1b"
    (group / dead).write_text("{")
    (group / live).write_text("{")
    (group / ".seeds.json.tmp-x").write_text("not ours")
    _write_index(group, [0], [], ["seed-0"])
    assert sorted(p.name for p in group.iterdir()) == sorted(
        [live, ".seeds.json.tmp-x", "seeds.json"])


@pytest.mark.parametrize("member", ["seed-0/../../elsewhere", "seed-0/x", "other"])
def test_an_index_naming_a_member_outside_the_group_is_refused(tmp_path, member):
    """A forged seeds.json cannot make load_group read a run outside the group."""
    from odernn.learn.seeds import _write_index

    group = tmp_path / "group"
    (group / "seed-0").mkdir(parents=True)
    _write_index(group, [0], ["seed-0"], ["seed-0"])
    doc = json.loads((group / "seeds.json").read_text())
    (group / "seeds.json").write_text(json.dumps({**doc, "members": [member], "done": [],
                                                  "started": []}))
    with pytest.raises(DataError, match="is not an odernn seed group"):
        load_group(group)


def test_members_that_stopped_early_are_done(tmp_path):
    """An early-stopped member finished: the index lists it done, so that load_group does not
    call it unfinished and --resume does not train it again."""
    assert main(["simulate", "train", "-o", str(tmp_path / "train.h5"), "--n", "12",
                 "--n-steps", "100", "--integrator", "exact", "-q"]) == 0
    group = tmp_path / "g"
    assert main(["train", str(tmp_path / "train.h5"), "-o", str(group), "--model", "gru",
                 "--hidden", "4", "--epochs", "6", "--lr", "1e-12", "--set", "patience=1",
                 "--seeds", "2", "--quiet"]) == 0
    doc = json.loads((group / "seeds.json").read_text())
    assert doc["done"] == ["seed-0", "seed-1"]
    history = (group / "seed-0" / "history.csv").read_text().splitlines()
    assert len(history) - 1 < 6  # it did stop early
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_group(group)


class Killed(BaseException):
    """A SIGKILL's stand-in: the process ends where it is, no handler runs."""


def test_a_group_killed_in_its_first_member_resumes_or_is_replaced(tmp_path, monkeypatch):
    """seeds.json was written once the first member had run: a new group killed in it was
    "not empty and not a seed group" to both --resume and --overwrite (4 of 4 kills), and an
    --overwrite killed in it kept the previous group's index, its members read as finished.
    The index is now written before the first member, once that member's input is checked."""
    from odernn.learn import training

    data = tmp_path / "t.h5"
    assert main(["simulate", "train", "-o", str(data), "--n", "8", "--n-steps", "100",
                 "--integrator", "exact", "-q"]) == 0
    group = tmp_path / "g"
    args = ["train", str(data), "-o", str(group), "--model", "rnn", "--epochs", "1",
            "--hidden", "4", "--window", "20", "--seeds", "2", "-q"]
    real = training.train

    def killed(*a, **k):
        raise Killed

    for then in ("--resume", "--overwrite"):
        shutil.rmtree(group, ignore_errors=True)
        monkeypatch.setattr(training, "train", killed)
        with pytest.raises(Killed):
            main(args)
        doc = json.loads((group / "seeds.json").read_text())
        assert doc["done"] == [] and doc["started"] == ["seed-0"]
        monkeypatch.setattr(training, "train", real)
        assert main([*args, then]) == 0
        assert list(load_group(group).members) == ["seed-0", "seed-1"]
    monkeypatch.setattr(training, "train", killed)  # over a finished group
    with pytest.raises(Killed):
        main([*args, "--overwrite"])
    doc = json.loads((group / "seeds.json").read_text())
    assert doc["done"] == [] and doc["started"] == ["seed-0"]


def test_a_group_of_members_trained_with_other_options_is_refused(tmp_path):
    """An --overwrite killed in a member (SIGKILL) after its first checkpoint left the new
    member beside the previous group's: evaluated, it read as one group, of two trainings."""
    data = tmp_path / "t.h5"
    assert main(["simulate", "train", "-o", str(data), "--n", "8", "--n-steps", "100",
                 "--integrator", "exact", "-q"]) == 0
    group = tmp_path / "g"
    base = ["train", str(data), "-o", str(group), "--model", "rnn", "--epochs", "1",
            "--hidden", "4", "--window", "20", "-q"]
    assert main([*base, "--seeds", "2"]) == 0
    load_group(group)
    assert main(["train", str(data), "-o", str(group / "seed-1"), "--model", "rnn",
                 "--epochs", "1", "--hidden", "8", "--window", "20", "-q", "--seed", "1",
                 "--overwrite"]) == 0  # seed-1 of hidden 8, the index still the old group's
    with pytest.raises(DataError, match="seed-1 was trained with other hidden than seed-0 "
                                        r"\(an interrupted --overwrite"):
        load_group(group)
