"""Sharded simulation: shards merged (copy or virtual) equal the single-process file bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from odernn.cli.app import main
from odernn.store import read_trajectories

SPEC = """
n = {n}
seed = 11
dt = 0.1
n_steps = 40
[integrator]
name = "{integrator}"
[parameters]
eta = [0.05, 0.5]
x0 = [-1, 1]
v0 = [-1, 1]
[forcing]
family = "random"
K = 2
"""


@pytest.mark.parametrize("integrator", ["scipy", "rk4", "exact", "euler"])
@pytest.mark.parametrize("virtual", [False, True], ids=["copy", "virtual"])
def test_merged_shards_equal_one_process(tmp_path, capsys, integrator, virtual):
    spec = tmp_path / "s.toml"
    # at T = 40 a block holds 4096 trajectories: n = 9000 makes three blocks, one per shard
    spec.write_text(SPEC.format(n=9000, integrator=integrator))
    whole = tmp_path / "whole.h5"
    assert main(["simulate", str(spec), "-o", str(whole), "-q"]) == 0
    parts = [tmp_path / f"part{k}.h5" for k in (1, 2, 3)]
    for k, part in enumerate(parts, start=1):
        assert main(["simulate", str(spec), "-o", str(part), "--shard", f"{k}/3", "-q"]) == 0
    merged = tmp_path / "merged.h5"
    args = ["merge", *map(str, parts), "-o", str(merged)] + (["--virtual"] if virtual else [])
    assert main(args) == 0, capsys.readouterr().err
    a, b = read_trajectories(whole), read_trajectories(merged)
    for name in ("x", "v", "F"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_missing_and_foreign_shards_are_refused(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=9000, integrator="euler"))
    parts = [tmp_path / f"part{k}.h5" for k in (1, 2)]
    for k, part in enumerate(parts, start=1):
        assert main(["simulate", str(spec), "-o", str(part), "--shard", f"{k}/3", "-q"]) == 0
    capsys.readouterr()
    assert main(["merge", *map(str, parts), "-o", str(tmp_path / "m.h5")]) == 2
    assert "error: " in capsys.readouterr().err
    foreign = tmp_path / "foreign.h5"
    assert main(["simulate", str(spec), "-o", str(foreign), "--shard", "3/3", "--seed", "12",
                 "-q"]) == 0
    capsys.readouterr()
    assert main(["merge", *map(str, parts), str(foreign), "-o", str(tmp_path / "m.h5")]) == 2
    assert "error: " in capsys.readouterr().err
    assert not (tmp_path / "m.h5").exists()
