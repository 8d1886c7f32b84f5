"""The command line: help everywhere, results on good input, one line and exit 2 on bad input."""

from __future__ import annotations

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


@pytest.mark.parametrize("command", [[], ["simulate"], ["inspect"], ["merge"], ["demo"]])
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
    from odernn.store import read_trajectories

    data = read_trajectories(out_file)
    assert data.n == 4 and data.attrs["seed"] == 9


def test_unknown_config_key_suggests(spec, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("sed = 9\n")
    code, _, err = run(["simulate", spec, "-o", tmp_path / "d.h5", "--config", config], capsys)
    assert_one_line_error(code, err, "unknown key 'sed'", "did you mean 'seed'")


def bad_inputs(tmp_path, spec):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("n = [")
    neg_dt = tmp_path / "neg.toml"
    neg_dt.write_text(SPEC.replace("dt = 0.05", "dt = -0.05"))
    existing = tmp_path / "exists.h5"
    existing.write_bytes(b"keep me")
    return [
        (["simulate", "trian", "-o", tmp_path / "o.h5"], "did you mean 'train'"),
        (["simulate", tmp_path / "missing.toml", "-o", tmp_path / "o.h5"], "not found"),
        (["simulate", bad_toml, "-o", tmp_path / "o.h5"], "malformed TOML"),
        (["simulate", neg_dt, "-o", tmp_path / "o.h5"], "dt must be > 0"),
        (["simulate", spec, "-o", tmp_path / "o.h5", "--integrator", "rk5"], "did you mean 'rk4'"),
        (["simulate", spec, "-o", tmp_path / "o.h5", "--n", "0"], "n must be in"),
        (["simulate", spec, "-o", existing], "--overwrite"),
        (["simulate", spec, "-o", tmp_path / "no-dir" / "o.h5"], "does not exist"),
        (["simulate", spec, "-o", tmp_path / "o.h5", "--shard", "3/2"], "--shard"),
        (["simulate", spec, "-o", tmp_path / "o.h5", "--bogus"], "No such option"),
        (["inspect", tmp_path / "missing.h5"], "missing.h5"),
        (["inspect", existing], "exists.h5"),
        (["simulat"], "Did you mean 'simulate'"),
    ]


def test_bad_input_is_one_line_exit_2_and_leaves_nothing(spec, tmp_path, capsys):
    for args, needle in bad_inputs(tmp_path, spec):
        before = sorted(p.name for p in tmp_path.rglob("*"))
        code, _, err = run(args, capsys)
        assert_one_line_error(code, err, needle)
        assert sorted(p.name for p in tmp_path.rglob("*")) == before, args
    assert (tmp_path / "exists.h5").read_bytes() == b"keep me"


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


@pytest.fixture
def tiny_disk(tmp_path):
    yield from mount_tmpfs(tmp_path / "tiny", "size=1m")


@pytest.fixture
def read_only_dir(tmp_path):
    yield from mount_tmpfs(tmp_path / "ro", "ro,size=1m")


def test_read_only_output_directory(spec, read_only_dir, capsys):
    code, _, err = run(["simulate", spec, "-o", read_only_dir / "o.h5"], capsys)
    assert_one_line_error(code, err, "not writable")


def test_full_disk_fails_cleanly(tiny_disk, capsys):
    code, _, err = run(["simulate", "train", "-o", tiny_disk / "big.h5", "--integrator", "euler",
                        "--quiet"], capsys)
    assert_one_line_error(code, err, "not enough disk space")
    assert list(tiny_disk.iterdir()) == []


def test_python_dash_m_and_the_console_script_agree(tmp_path):
    result = subprocess.run([sys.executable, "-m", "odernn", "--help"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0 and "simulate" in result.stdout
    script = Path(sys.executable).with_name("odernn")
    if script.exists():
        result = subprocess.run([script, "simulate", "nope", "-o", tmp_path / "x.h5"],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 2 and result.stderr.startswith("error: ")
