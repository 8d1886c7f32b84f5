"""The command line: help everywhere, results on good input, one line and exit 2 on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from odernn.cli.app import main

SPEC = """
n = 6
seed = 3
dt = 0.05
n_steps = 40
[integrator]
name = "exact"
[parameters]
eta = [0.1, 0.3]
x0 = [-1, 1]
v0 = [-1, 1]
[forcing]
family = "cosine"
F0 = [0, 1]
omega = [0.5, 2]
"""


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SPEC)
    return path


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("command", [[], ["simulate"], ["inspect"], ["merge"], ["demo"],
                                     ["import"]])
def test_every_command_has_help(command, capsys):
    code, out, _ = run([*command, "--help"], capsys)
    assert code == 0 and "Usage: odernn" in out


def test_simulate_then_inspect(spec, tmp_path, capsys):
    out_file = tmp_path / "d.h5"
    code, out, err = run(["simulate", spec, "-o", out_file, "--quiet"], capsys)
    assert code == 0, err
    assert out_file.exists() and out == "" and err == ""
    code, out, _ = run(["inspect", out_file], capsys)
    assert code == 0
    assert "odernn.trajectories" in out and "params/eta" in out and "(6, 40)" in out


def test_config_file_supplies_options_and_flags_win(spec, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('n = 3\nseed = 9\nquiet = true\n')
    out_file = tmp_path / "d.h5"
    code, _, err = run(["simulate", spec, "-o", out_file, "--config", config, "--n", "4"], capsys)
    assert code == 0, err
    from odernn.data.store import read_trajectories

    data = read_trajectories(out_file)
    assert data.n == 4 and data.attrs["seed"] == 9


def test_unknown_config_key_suggests(spec, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("sed = 9\n")
    code, _, err = run(["simulate", spec, "-o", tmp_path / "d.h5", "--config", config], capsys)
    assert_one_line_error(code, err, "unknown key 'sed'", "did you mean 'seed'")


def test_config_keys_are_the_option_names(spec, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('set = ["eta=0.3"]\nn-steps = 30\n')
    out_file = tmp_path / "d.h5"
    code, _, err = run(["simulate", "train", "-o", out_file, "--config", config, "-q"], capsys)
    assert code == 0, err
    code, out, _ = run(["inspect", out_file], capsys)
    assert "range [0.3, 0.3]" in out and ", 30)" in out
    table = tmp_path / "t.csv"
    table.write_text("t,x,v,damping\n" + "".join(f"{i / 10},{i},{i},0.2\n" for i in range(5)))
    config.write_text('param = ["damping=damping"]\nv = "v"\nstep_tolerance = 1e-5\n')
    code, out, err = run(["import", table, "-o", tmp_path / "i.h5", "--config", config], capsys)
    assert code == 0 and "1 trajectory x 5 points" in out, err
    config.write_text('sets = ["eta=0.3"]\n')  # the parameter's name, not the option's
    code, _, err = run(["simulate", "train", "-o", tmp_path / "e.h5", "--config", config],
                       capsys)
    assert_one_line_error(code, err, "unknown key 'sets'", "did you mean 'set'")
    config.write_text("n-steps = 30\nn_steps = 40\n")
    code, _, err = run(["simulate", "train", "-o", tmp_path / "e.h5", "--config", config],
                       capsys)
    assert_one_line_error(code, err, "keys 'n-steps' and 'n_steps' both set one option")
    assert not (tmp_path / "e.h5").exists()


def test_a_bare_odernn_prints_the_help_on_stdout(capsys):
    code, out, err = run([], capsys)
    assert code == 2 and out.startswith("Usage: odernn") and "simulate" in out and err == ""


def test_evaluate_given_a_checkpoint_file_names_its_run_directory(tmp_path, capsys):
    run_dir = tmp_path / "runs" / "esn"
    run_dir.mkdir(parents=True)
    (run_dir / "best.pt").write_bytes(b"")
    code, _, err = run(["evaluate", run_dir / "best.pt", "--data", tmp_path / "test.h5", "-o",
                        tmp_path / "report"], capsys)
    assert_one_line_error(code, err, "run directory (or a seed group)", "not a checkpoint file",
                          f"give its directory {run_dir}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def mount_tmpfs(mount: Path, options: str):
    """A small tmpfs at ``mount``: a real full or read-only disk (needs root, as in CI)."""
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs in CI: {result.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A dataset, a test set, three shards and a trained run for the commands that write."""
    root = tmp_path_factory.mktemp("inputs")
    spec = root / "small.toml"
    spec.write_text(SPEC)
    data = root / "data.h5"
    assert main(["simulate", str(spec), "-o", str(data), "-q"]) == 0
    assert main(["simulate", str(spec), "-o", str(root / "test.h5"), "--seed", "7", "-q"]) == 0
    big = root / "big.toml"  # 9000 x 40: a block holds 4096, so three shards
    big.write_text(SPEC.replace("n = 6", "n = 9000"))
    for k in (1, 2, 3):
        assert main(["simulate", str(big), "-o", str(root / f"part{k}.h5"), "--shard",
                     f"{k}/3", "-q"]) == 0
    run = root / "run"
    assert main(["train", str(data), "-o", str(run), "--model", "esn", "--units", "30",
                 "-q"]) == 0
    return root


# each writes more than the 64 KiB disk holds
WRITERS = {
    "simulate": ["simulate", "train", "-o", "{out}/big.h5", "--integrator", "euler", "-q"],
    "merge": ["merge", "{inputs}/part1.h5", "{inputs}/part2.h5", "{inputs}/part3.h5", "-o",
              "{out}/merged.h5"],
    "train": ["train", "{inputs}/data.h5", "-o", "{out}/run", "--model", "lstm", "--epochs",
              "1", "--window", "20", "-q"],
    "evaluate": ["evaluate", "{inputs}/run", "--data", "{inputs}/test.h5", "-o", "{out}/report",
                 "--no-work-precision", "--no-resonance", "-q"],
    "gradients": ["gradients", "-o", "{out}/grads", "--model", "rnn", "--length", "20",
                  "--sequences", "2", "-q"],
    "demo": ["demo", "--quick", "--models", "esn", "-o", "{out}/demo", "-q"],
    "import": ["import", "{inputs}/part1.h5", "-o", "{out}/imported.h5", "--v", "v", "--forcing",
               "F", "-q"],
}


@pytest.mark.parametrize("command", WRITERS)
@pytest.mark.parametrize("disk", ["full", "read-only"])
def test_full_or_read_only_disk_fails_cleanly(command, disk, inputs, tmp_path, capsys):
    out = next(mount_tmpfs(tmp_path / "disk", "size=64k" if disk == "full" else "ro,size=64k"))
    try:
        args = [a.format(out=out, inputs=inputs) for a in WRITERS[command]]
        code, _, err = run(args, capsys)
        assert_one_line_error(code, err)
        reason = "not writable" if disk == "read-only" else "space"
        assert reason in err or "Read-only file system" in err, err
        assert list(out.iterdir()) == []
    finally:
        subprocess.run(["umount", str(out)], check=False)


def test_a_test_set_too_large_to_evaluate_is_refused_before_it_is_read(
        inputs, tmp_path, capsys, monkeypatch):
    """What the evaluation holds is checked from the test file's header, before the set is
    read, by evaluate and by the demo given the user's files: a set whose rollouts pass the
    memory budget was read whole first (2000 x 20000: refused after 9 s and 1.5 GB)."""
    from odernn import budget
    from odernn.data import store

    spec = tmp_path / "wide.toml"
    spec.write_text(SPEC.replace("n = 6", "n = 2000"))
    assert main(["simulate", str(spec), "-o", str(tmp_path / "test.h5"), "-q"]) == 0
    reads = []  # the rows of each read of a trajectory file (None: the whole set)
    read = store.TrajectoryFile.read
    monkeypatch.setattr(store.TrajectoryFile, "read",
                        lambda f, rows=None, **k: reads.append(rows) or read(f, rows, **k))
    monkeypatch.setenv(budget.ENV, "40M")  # the set (2.6 MB) fits; its evaluation does not
    args = ["evaluate", inputs / "run", "--data", tmp_path / "test.h5", "-o",
            tmp_path / "report", "--no-resonance", "--no-chaos", "--no-bifurcation", "-q"]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, "evaluate: ", "methods x 2000 trajectories x 40 steps",
                          "--no-work-precision")
    assert None not in reads and not (tmp_path / "report").exists()
    reads.clear()
    code, _, err = run([*args, "--no-work-precision"], capsys)  # counted only where it runs
    assert code == 0, err
    assert reads.count(None) == 1  # read once, whole
    reads.clear()  # the demo on the user's files: checked before either is read
    code, _, err = run(["demo", "--data", inputs / "data.h5", "--test", tmp_path / "test.h5",
                        "--models", "esn", "--units", "50", "-o", tmp_path / "demo", "-q"],
                       capsys)
    assert_one_line_error(code, err, "methods x 2000 trajectories x 40 steps",
                          "smaller test set (--n-test, or --test)")
    assert None not in reads and not (tmp_path / "demo").exists()


def test_disk_filling_up_during_the_write_fails_cleanly(tmp_path):
    """The space check passes, then the disk fills (as when another process fills it): HDF5's
    write fails part way. One line, exit code 2, nothing left, and no crash at exit (HDF5
    retried the failed write when the process exited, and segfaulted)."""
    out = next(mount_tmpfs(tmp_path / "disk", "size=1m"))
    script = ("import sys\n"
              "from odernn.data import writer\n"
              "from odernn.cli.app import main\n"
              "writer.check_space = lambda path, need: None  # the disk fills afterwards\n"
              f"sys.argv = ['odernn', 'simulate', 'train', '-o', '{out}/big.h5', '-q']\n"
              "main()\n")
    try:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2, result.stderr[-2000:]
        assert_one_line_error(2, result.stderr, "writing failed (No space left on device)")
        assert list(out.iterdir()) == []
    finally:
        subprocess.run(["umount", str(out)], check=False)


def test_python_dash_m_and_the_console_script_agree(tmp_path):
    result = subprocess.run([sys.executable, "-m", "odernn", "--help"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0 and "simulate" in result.stdout
    script = Path(sys.executable).with_name("odernn")
    if script.exists():
        result = subprocess.run([script, "simulate", "nope", "-o", tmp_path / "x.h5"],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 2 and result.stderr.startswith("error: ")


def test_choices_come_from_the_registries_with_completion_and_a_did_you_mean(capsys):
    import subprocess
    import sys

    from odernn.data.integrators import INTEGRATORS
    from odernn.learn.models import REGISTRY

    env = {**os.environ, "_ODERNN_COMPLETE": "complete_bash", "COMP_WORDS": "odernn train x.h5 -m ",
           "COMP_CWORD": "4"}
    done = subprocess.run([sys.executable, "-m", "odernn"], env=env, capture_output=True, text=True)
    assert done.stdout.split() == list(REGISTRY)
    assert main(["train", "x.h5", "-o", "r", "-m", "lsmt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--model 'lsmt' unknown (did you mean 'lstm'?)" in err
    assert main(["simulate", "train", "-o", "o.h5", "--integrator", "rk5"]) == 2
    err = capsys.readouterr().err
    allowed = [n for n, entry in INTEGRATORS.items() if entry.in_specs]
    assert f"did you mean 'rk4'?); allowed: {', '.join(allowed)}" in err


@pytest.mark.parametrize("words, expected", [
    ("odernn simulate duffing-t", ["duffing-test", "duffing-test-ood", "duffing-train"]),
    ("odernn simulate my", ["my-spec.toml"]),  # a spec file of the working directory
    ("odernn demo --models lstm,e", ["lstm,esn"]),
    ("odernn gradients -o g --model l", ["lstm"]),
])
def test_specs_and_model_lists_are_completed_by_the_shell(words, expected, tmp_path):
    """A shell completed nothing for the spec argument, the most common choice, nor for the
    demo's and gradients' model lists (a docs walkthrough)."""
    import subprocess
    import sys

    (tmp_path / "my-spec.toml").write_text("")
    (tmp_path / "other.txt").write_text("")
    env = {**os.environ, "_ODERNN_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - 1)}
    done = subprocess.run([sys.executable, "-m", "odernn"], env=env, capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.stdout.split() == expected, done.stderr


@pytest.mark.parametrize("command, option, values", [
    (["demo"], "--preset", ("sine", "noisy-sine")),
    (["gradients", "-o", "g"], "--init", ("gaussian", "uniform", "orthogonal")),
    (["gradients", "-o", "g"], "--loss", ("final", "sum")),
    (["gradients", "-o", "g"], "--norm", ("spectral", "frobenius")),
    (["import", "x.csv", "-o", "x.h5"], "--system",
     ("oscillator", "duffing", "van-der-pol", "pendulum", "external")),
])
def test_every_fixed_choice_is_listed_in_help_and_refused_with_a_did_you_mean(
        command, option, values, tmp_path, monkeypatch, capsys):
    """README: every command lists its choices in --help (and the shell completes them)."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = run([command[0], "--help"], capsys)
    assert code == 0 and f"{option} <{'|'.join(values)}>" in out
    code, _, err = run([*command, option, values[0][:-1]], capsys)
    assert_one_line_error(code, err, f"{option} '{values[0][:-1]}' unknown",
                          f"did you mean '{values[0]}'?")
    assert not any(tmp_path.iterdir())


def test_the_choices_spelled_out_in_the_cli_match_the_library():
    from odernn.cli.choices import GRADIENT_MODELS, Init, Loss, Norm, Preset
    from odernn.notes import diagnostics, probes
    from odernn.notes.notes_examples import VARIANTS

    assert GRADIENT_MODELS == probes.FAMILIES
    assert [m.value for m in Preset] == list(VARIANTS)
    assert [m.value for m in Init] == list(probes.INITS)
    assert [m.value for m in Loss] == list(diagnostics.LOSSES)
    assert [m.value for m in Norm] == list(diagnostics.NORMS)


def test_under_torchrun_a_bad_input_is_rank_0s_line_and_an_environment_error_every_rank_s(
        monkeypatch, capsys, tmp_path):
    """Every rank meets a bad input alike: rank 0 alone prints it. An error of the environment
    (an OSError: a disk, a permission, an output that cannot be written) may be one rank's
    own: every rank prints it, named."""
    from odernn.cli.app import _error

    taken = tmp_path / "taken.h5"
    taken.write_bytes(b"not ours")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        assert main(["simulate", "no-such-spec", "-o", str(tmp_path / "x.h5")]) == 2
        assert capsys.readouterr().err.startswith("error: ") == (rank == "0")
        assert main(["simulate", "train", "-o", str(taken), "-q"]) == 2  # an OutputError
        err = capsys.readouterr().err
        assert err.startswith(f"error (rank {rank}): ") and err.count("\n") == 1, err
        _error("No space left on device", every_rank=True)
        assert capsys.readouterr().err == f"error (rank {rank}): No space left on device\n"
    assert taken.read_bytes() == b"not ours"


def test_a_warning_is_one_line_said_by_rank_0(monkeypatch, capsys, tmp_path):
    """Python's own display adds the file and the source line; under torchrun every rank met
    it alike (a resumed run's buffers: each rank printed the two lines)."""
    import warnings

    import odernn.data.simulate as simulation

    run = simulation.simulate

    def warned(*args, **kwargs):
        warnings.warn("buffers resized\nthe windows differ from here on", stacklevel=2)
        return run(*args, **kwargs)

    monkeypatch.setattr(simulation, "simulate", warned)
    said = "warning: buffers resized; the windows differ from here on\n"
    for world, rank in (("2", "0"), ("2", "1"), ("1", "1")):  # a RANK set by a scheduler alone
        monkeypatch.setenv("WORLD_SIZE", world)
        monkeypatch.setenv("RANK", rank)
        assert main(["simulate", "train", "-o", str(tmp_path / f"{world}{rank}.h5"), "-q",
                     "--n", "2", "--set", "n_steps=20"]) == 0
        assert capsys.readouterr().err == (said if (world, rank) != ("2", "1") else "")


def test_an_interrupt_that_python_wrapped_is_an_interrupt(monkeypatch, capsys):
    """A SIGINT whose KeyboardInterrupt lands in a class body while a module is imported comes
    out as "RuntimeError: Error calling __set_name__": exit 130 and the interrupt's line, as
    for any interrupt, no traceback. The same error without a signal stays an error."""
    from odernn.cli import app
    from odernn.interrupt import REQUESTED

    def wrapped(signalled: bool):
        def importing() -> None:
            if signalled:
                REQUESTED.set()
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as err:
                raise RuntimeError("Error calling __set_name__ on 'Field'") from err
        return importing

    monkeypatch.setattr(app, "_import_torch", wrapped(True))
    assert main(["train", "x.h5", "-o", "run"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip() == app.INTERRUPTED
    monkeypatch.setattr(app, "_import_torch", wrapped(False))
    with pytest.raises(RuntimeError, match="__set_name__"):
        main(["train", "x.h5", "-o", "run"])


def test_main_in_a_process_leaves_it_as_it_found_it(monkeypatch, spec, tmp_path, capsys):
    """``main`` called in a process (tests, notebooks) puts back the caller's SIGINT and
    SIGTERM handlers and its two hooks, and leaves no interrupt request behind, whether the
    command works, refuses its input or raises: a handler left installed made a later guard
    of the API note a request nothing cleared."""
    import signal

    from odernn.cli import app
    from odernn.interrupt import REQUESTED

    def before() -> tuple:
        return (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM),
                sys.unraisablehook, sys.excepthook, REQUESTED.is_set())

    found = before()
    assert main(["simulate", str(spec), "-o", str(tmp_path / "d.h5")]) == 0
    assert before() == found
    assert main(["simulate", str(tmp_path / "missing.toml"), "-o", str(tmp_path / "e.h5")]) == 2
    assert before() == found

    def failing() -> None:
        REQUESTED.set()
        raise ValueError("a bug")

    monkeypatch.setattr(app, "_import_torch", failing)
    with pytest.raises(ValueError, match="a bug"):
        main(["train", "x.h5", "-o", "run"])
    assert before() == found
    capsys.readouterr()


def test_what_a_command_line_fuzzer_found_ends_in_one_line_or_works(tmp_path, capsys):
    """Four tracebacks on inputs a user can give: a forcing family set to a TOML list, an
    HDF5 source holding an empty (null) dataset beside its columns, a valid test set of 4
    points (the work-precision grid at step factor 4 had 1 point) and one of dt = 1e-12
    (the resonance fit over a 1e-10 stretch of a period: a singular matrix)."""
    import h5py
    import numpy as np

    code = main(["simulate", "train", "-o", str(tmp_path / "f.h5"), "--set", "family=[1]"])
    assert_one_line_error(code, capsys.readouterr().err, "unknown forcing.family [1]",
                          "allowed: none, cosine, random")
    code = main(["simulate", "train", "-o", str(tmp_path / "f.h5"), "--set", "name=1979-05-27"])
    assert_one_line_error(code, capsys.readouterr().err, "--set: 1979-05-27 is a date, not a "
                          "value a spec takes")  # it blamed the spec file's TOML
    source = tmp_path / "null.h5"
    with h5py.File(source, "w") as f:
        f["t"], f["x"], f["v"] = 0.1 * np.arange(10), np.sin(np.arange(10)), np.cos(np.arange(10))
        f["note"] = h5py.Empty("f8")
    assert main(["import", str(source), "-o", str(tmp_path / "i.h5"), "--v", "v", "-q"]) == 0
    for name, options in (("four", ["--n-steps", "4"]), ("tiny", ["--set", "dt=1e-12"])):
        data = tmp_path / f"{name}.h5"
        assert main(["simulate", "train", "-o", str(data), "--n", "4", "--integrator", "exact",
                     "-q", *options]) == 0
        assert main(["evaluate", "-d", str(data), "-o", str(tmp_path / f"{name}-report"),
                     "-q", "--no-chaos", "--no-bifurcation"]) == 0, capsys.readouterr().err
    report = (tmp_path / "tiny-report" / "report.md").read_text()
    assert "no response to measure" in report


def test_evaluates_section_switches_each_leave_out_their_own_section(tmp_path):
    """``--no-work-precision``, ``--no-resonance``, ``--no-chaos``, ``--no-bifurcation``: each
    section absent from metrics.json with its switch, present without (the slowest parts of
    an evaluation: a switch that did nothing would cost minutes silently)."""
    data = tmp_path / "t.h5"
    assert main(["simulate", "test", "-o", str(data), "--n", "4", "--n-steps", "100", "-q"]) == 0
    sections = {"work_precision": "--no-work-precision", "resonance": "--no-resonance",
                "chaos": "--no-chaos", "bifurcation": "--no-bifurcation"}
    for left_out, switch in sections.items():
        out = tmp_path / left_out
        assert main(["evaluate", "--data", str(data), "-o", str(out), "-q", switch]) == 0
        doc = json.loads((out / "metrics.json").read_text())
        assert {k: doc[k] is None for k in sections} == {k: k == left_out for k in sections}


def test_gradients_takes_its_seed_and_norm_and_measures_the_final_loss_by_default(tmp_path,
                                                                                   capsys):
    def profile(name: str, *extra: str) -> dict:
        out = tmp_path / name
        assert main(["gradients", "--model", "rnn", "--hidden", "8", "--length", "20",
                     "--sequences", "1", "--spectral-radius", "0.9", "-o", str(out),
                     *extra]) == 0
        doc = json.loads((out / "gradients.json").read_text())
        return {**doc["profiles"][0], "settings": doc["settings"]}

    base = profile("base")  # the table, then what was written
    said = capsys.readouterr().out.splitlines()
    out = tmp_path / "base"
    assert said[0].startswith("configuration"), said
    assert said[-1] == f"wrote {out / 'gradients.json'} and {out / 'gradients.png'}", said
    assert profile("quiet", "-q") == {**base, "settings": base["settings"]}
    assert "wrote" not in capsys.readouterr().out  # -q: the table alone
    assert base["settings"]["loss"] == base["loss"] == "final"
    assert base["norm"] == "spectral" and base["settings"]["seed"] == 0
    other_seed = profile("seed", "--seed", "1")
    assert other_seed["jacobian_norm"][1:] != base["jacobian_norm"][1:]  # lag 0: 1 in any
    frobenius = profile("frobenius", "--norm", "frobenius")
    assert frobenius["norm"] == "frobenius"
    # for a matrix of rank above one the Frobenius norm exceeds the spectral norm
    assert all(f > s for f, s in zip(frobenius["jacobian_norm"][1:5],
                                     base["jacobian_norm"][1:5], strict=True))


def test_train_flags_and_set_win_over_the_config_file_and_dashes_name_its_keys(tmp_path):
    data, config = tmp_path / "d.h5", tmp_path / "c.toml"
    assert main(["simulate", "test", "-o", str(data), "--n", "8", "--n-steps", "60", "-q"]) == 0
    config.write_text("units = 30\nval_fraction = 0.5\nridge = 1e-4\n")
    assert main(["train", str(data), "-o", str(tmp_path / "r"), "--model", "esn", "--config",
                 str(config), "--set", "units=20", "--set", "val-fraction=0.3", "-q"]) == 0
    given = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert (given["units"], given["val_fraction"], given["ridge"]) == (20, 0.3, 1e-4)


def test_train_names_the_best_epoch_as_history_counts_it(tmp_path, capsys):
    """The closing line's "(epoch N)" is history.csv's epoch (counted from 1) of the lowest
    closed-loop validation error: the epoch whose weights best.pt holds."""
    import csv

    data, run_dir = tmp_path / "d.h5", tmp_path / "r"
    assert main(["simulate", "test", "-o", str(data), "--n", "8", "--n-steps", "80", "-q"]) == 0
    capsys.readouterr()
    assert main(["train", str(data), "-o", str(run_dir), "--model", "rnn", "--hidden", "8",
                 "--epochs", "10", "--window", "10", "--set", "val_every=1", "-q"]) == 0
    said = capsys.readouterr().out.splitlines()[-1]
    with open(run_dir / "history.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["val_nrmse_x"]]
    best = min(rows, key=lambda r: float(r["val_nrmse_x"]))
    assert len(rows) == 10 and f"(epoch {best['epoch']})," in said, (said, rows)


def test_demo_passes_its_options_on_and_is_quiet_when_asked(tmp_path, capsys, monkeypatch):
    """The demo's own options reach the pipeline (--device, a preset's --seed), and -q silences
    its stage messages: the pipeline is replaced by a recorder that speaks once and stops."""
    import odernn.demo
    from odernn.errors import SpecError

    seen: dict = {}

    def record(*args, **kwargs):
        seen.clear()
        seen.update(kwargs)
        kwargs["say"]("a stage")
        raise SpecError("recorded")

    monkeypatch.setattr(odernn.demo, "run_demo", record)
    monkeypatch.setattr(odernn.demo, "run_preset_demo", record)
    out = ["-o", str(tmp_path / "d")]
    assert main(["demo", *out, "--device", "cpu", "-q"]) == 2
    assert seen["device"] == "cpu" and "a stage" not in capsys.readouterr().err
    assert main(["demo", *out, "--device", "cpu"]) == 2
    assert "a stage" in capsys.readouterr().err
    assert main(["demo", *out, "--preset", "sine", "--seed", "3", "-q"]) == 2
    assert seen["seed"] == 3


def test_a_run_that_diverges_after_its_first_checkpoint_exits_1(tmp_path, capsys, monkeypatch):
    """Scripts and schedulers read the exit code: a run (or a seed group) that diverged is a
    failure even where it kept a best.pt from before."""
    import math

    from odernn.learn import gradient

    data = tmp_path / "d.h5"
    assert main(["simulate", "test", "-o", str(data), "--n", "8", "--n-steps", "60", "-q"]) == 0
    real, calls = gradient._teacher_forced_loss, []

    def poisoned_after_epoch_1(*args, **kwargs):  # one batch an epoch
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * math.nan if len(calls) % 3 != 1 else loss

    monkeypatch.setattr(gradient, "_teacher_forced_loss", poisoned_after_epoch_1)
    args = ["train", str(data), "--model", "rnn", "--hidden", "8", "--epochs", "3", "--set",
            "val_every=1", "--set", "batch_size=4096", "--set", "window=20", "-q"]
    assert main([*args, "-o", str(tmp_path / "one")]) == 1
    assert (tmp_path / "one" / "best.pt").exists() and "diverged" in capsys.readouterr().out
    calls.clear()
    assert main([*args, "-o", str(tmp_path / "group"), "--seeds", "2"]) == 1


ONE_THREAD = r"""
import json, sys
from odernn.cli import entry

sys.argv = ["odernn", "systems"]
try:
    entry.main()
except SystemExit:
    pass
from threadpoolctl import threadpool_info

print(json.dumps({i["internal_api"]: i["num_threads"] for i in threadpool_info()}))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: one thread either way")
def test_the_command_line_computes_on_one_thread_whatever_the_cores():
    """``odernn`` sets OMP_NUM_THREADS=1 unless the user set it, so that its numbers do not
    depend on the machine's cores. Since numpy was imported before it (through the
    commands' shared module), numpy's OpenBLAS had read the variable already and ran on every
    core: the demo's reservoir scored 4.486e-6 on two cores where it scores 4.513e-6 on one."""
    from conftest import dev_extra

    dev_extra("threadpoolctl")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", ONE_THREAD], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    threads = json.loads(done.stdout.strip().splitlines()[-1])
    assert threads.get("openblas") == 1, threads
