"""Sharded simulation, checked on files written to disk: shards plus merge (copy or virtual)
hold exactly the single-process file's content (every dataset bit for bit, every attribute but
``created``): the same content digest (``odernn inspect``), and h5diff finds no difference."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from odernn.cli.app import main
from odernn.data.spec import load_spec
from odernn.data.store import read_trajectories
from odernn.errors import SpecError

simulate_module = importlib.import_module("odernn.data.simulate")

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
ROW_BYTES = 3 * 8 * 40
"""Bytes of one trajectory of SPEC in an integration block (x, v, F in float64)."""


def digest(capsys, path: Path) -> str:
    """The content digest ``odernn inspect`` prints for ``path``."""
    capsys.readouterr()
    assert main(["inspect", str(path)]) == 0
    found = re.findall(r"content digest: (sha256:[0-9a-f]{64})", capsys.readouterr().out)
    assert len(found) == 1
    return found[0]


def h5diff(a: Path, b: Path, *options: str) -> subprocess.CompletedProcess | None:
    """``h5diff`` of two files (None where hdf5-tools is missing, outside CI)."""
    if shutil.which("h5diff") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("h5diff missing: CI must install Debian's hdf5-tools")
        return None
    return subprocess.run(["h5diff", *options, str(a), str(b)], capture_output=True, text=True)


def simulate_sharded(tmp_path: Path, spec: Path, count: int, *extra: str) -> list[Path]:
    parts = [tmp_path / f"part{k}.h5" for k in range(1, count + 1)]
    for k, part in enumerate(parts, start=1):
        assert main(["simulate", str(spec), "-o", str(part), "--shard", f"{k}/{count}", "-q",
                     *extra]) == 0
    return parts


def assert_same_content(capsys, whole: Path, merged: Path) -> None:
    """Arrays bit for bit, the same digest, and h5diff: no difference in data or dataset
    attributes (its ``--exclude-attribute /`` skips the root's, which the digest covers)."""
    a, b = read_trajectories(whole), read_trajectories(merged)
    for name in ("t", "x", "v", "F"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert a.params.keys() == b.params.keys()
    assert all(a.params[k].tobytes() == b.params[k].tobytes() for k in a.params)
    assert digest(capsys, whole) == digest(capsys, merged)
    result = h5diff(whole, merged, "--exclude-attribute", "/")
    assert result is None or result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("integrator", ["scipy", "rk4", "exact", "euler"])
@pytest.mark.parametrize("virtual", [False, True], ids=["copy", "virtual"])
def test_merged_shards_equal_one_process(tmp_path, capsys, monkeypatch, integrator, virtual):
    # Memory blocks of 64 rows: the single process integrates rows 0..64, 64..128, ...; the
    # fixed-step shards 0..100, 100..200, 200..300 start their blocks elsewhere, so equal
    # files show that their results do not depend on the batch. SciPy (blocks of 64 at
    # n = 300, fixed by the spec) gets block-aligned shards: 0..64, 64..192, 192..300.
    per_row = max(ROW_BYTES, simulate_module.HARMONIC_ROW_BYTES * 2)  # x, v, F or K = 2 terms
    monkeypatch.setattr(simulate_module, "BLOCK_BYTES", 64 * per_row)
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=300, integrator=integrator))
    whole = tmp_path / "whole.h5"
    assert main(["simulate", str(spec), "-o", str(whole), "-q"]) == 0
    parts = simulate_sharded(tmp_path, spec, 3)
    bounds = [read_trajectories(p).attrs["row_start"] for p in parts]
    assert bounds == ([0, 64, 192] if integrator == "scipy" else [0, 100, 200])
    merged = tmp_path / "merged.h5"
    args = ["merge", *map(str, parts), "-o", str(merged)] + (["--virtual"] if virtual else [])
    assert main(args) == 0, capsys.readouterr().err
    assert_same_content(capsys, whole, merged)


def test_a_merged_copy_is_compressed_as_its_shards_were(tmp_path, capsys):
    import h5py

    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=6, integrator="rk4"))
    for compression in ("gzip", "none"):
        parts = simulate_sharded(tmp_path, spec, 2, "--set", f"compression={compression}")
        merged = tmp_path / f"{compression}.h5"
        assert main(["merge", *map(str, parts), "-o", str(merged)]) == 0
        with h5py.File(merged) as f:
            assert f["x"].compression == (None if compression == "none" else "gzip")
        for p in parts:
            p.unlink()


@pytest.mark.parametrize("integrator", ["exact", "semi-implicit-euler"])
@pytest.mark.parametrize("count", [2, 4, 7])
def test_fixed_step_shards_any_count_up_to_one_per_trajectory(tmp_path, capsys, integrator,
                                                              count):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=7, integrator=integrator))
    whole = tmp_path / "whole.h5"
    assert main(["simulate", str(spec), "-o", str(whole), "-q"]) == 0
    parts = simulate_sharded(tmp_path, spec, count)
    sizes = [read_trajectories(p).n for p in parts]
    assert sum(sizes) == 7 and max(sizes) - min(sizes) <= 1
    merged = tmp_path / "merged.h5"
    assert main(["merge", *map(str, parts[::-1]), "-o", str(merged)]) == 0
    assert_same_content(capsys, whole, merged)
    capsys.readouterr()
    assert main(["simulate", str(spec), "-o", str(tmp_path / "x.h5"), "--shard", "1/8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "at most 7 shards" in err
    assert not (tmp_path / "x.h5").exists()
    for shard in ("ab", (0, 1, 2), (True, 2), (1.0, 2)):  # TypeError, ValueError, or taken
        with pytest.raises(SpecError, match="shard must be a pair of whole numbers"):
            simulate_module.shard_rows(load_spec(str(spec)), shard)


def test_builtin_train_shards_as_the_help_shows(tmp_path, capsys):
    """``odernn simulate train -o part1.h5 --shard 1/2`` (SciPy, 256 trajectories in blocks of
    64): at most 4 shards, a fifth is refused in one line that says why."""
    whole = tmp_path / "train.h5"
    assert main(["simulate", "train", "-o", str(whole), "-q"]) == 0
    parts = simulate_sharded(tmp_path, Path("train"), 4)
    merged = tmp_path / "all.h5"
    assert main(["merge", *map(str, parts), "-o", str(merged)]) == 0
    assert_same_content(capsys, whole, merged)
    capsys.readouterr()
    assert main(["simulate", "train", "-o", str(tmp_path / "x.h5"), "--shard", "5/5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --shard 5/5: scipy solves 256 ")
    assert "use at most 4 shards, or --integrator rk4 or exact" in err
    assert not (tmp_path / "x.h5").exists()


def test_same_spec_and_seed_twice_differ_only_in_created(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=20, integrator="scipy"))
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path in (a, b):
        assert main(["simulate", str(spec), "-o", str(path), "-q"]) == 0
    assert digest(capsys, a) == digest(capsys, b)
    result = h5diff(a, b)
    if result is not None:  # h5diff compares every dataset and attribute: only `created` differs
        differences = re.findall(r"^attribute: <(\w+) of </>>", result.stdout, re.M)
        assert set(differences) <= {"created"}, result.stdout
        assert result.returncode in (0, 1) and not result.stderr, result.stderr
        assert h5diff(a, b, "--exclude-attribute", "/").returncode == 0
    other = tmp_path / "c.h5"
    assert main(["simulate", str(spec), "-o", str(other), "-q", "--seed", "12"]) == 0
    assert digest(capsys, other) != digest(capsys, a)


def test_missing_and_foreign_shards_are_refused(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=9, integrator="euler"))
    parts = simulate_sharded(tmp_path, spec, 3)[:2]
    capsys.readouterr()
    assert main(["merge", *map(str, parts), "-o", str(tmp_path / "m.h5")]) == 2
    assert "shard(s) 3/3 missing; merge needs all 3 shards, 2 given" in capsys.readouterr().err
    foreign = tmp_path / "foreign.h5"
    assert main(["simulate", str(spec), "-o", str(foreign), "--shard", "3/3", "--seed", "12",
                 "-q"]) == 0
    capsys.readouterr()
    assert main(["merge", *map(str, parts), str(foreign), "-o", str(tmp_path / "m.h5")]) == 2
    err = capsys.readouterr().err
    assert "attribute 'seed' is 12 but" in err and "shards of different runs cannot be merged" \
        in err, err
    assert not (tmp_path / "m.h5").exists()


def test_a_repeated_or_foreign_shard_is_refused_before_the_files_after_it_are_opened(
        tmp_path, capsys, monkeypatch):
    """Each shard is checked as it is opened: a shard given again, or one of another run, is
    refused there (every file was opened first: 3000 arguments took 26 s to refuse)."""
    from odernn.data import merge

    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=9, integrator="euler"))
    parts = simulate_sharded(tmp_path, spec, 3)
    foreign = tmp_path / "foreign.h5"
    assert main(["simulate", str(spec), "-o", str(foreign), "--shard", "3/3", "--seed", "12",
                 "-q"]) == 0
    opened = []
    of = merge._Shard.of
    monkeypatch.setattr(merge._Shard, "of", lambda path: opened.append(path) or of(path))
    for given, needle in (([parts[0], parts[1], parts[0]], "is shard 1/3 again"),
                          ([parts[0], foreign], "foreign.h5")):
        opened.clear()
        capsys.readouterr()
        args = [*map(str, given), *(str(parts[2]),) * 100]
        assert main(["merge", *args, "-o", str(tmp_path / "m.h5")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
        assert opened == given and not (tmp_path / "m.h5").exists()


def test_shards_of_one_spec_named_by_two_paths_merge(tmp_path, capsys, monkeypatch):
    """A shard simulated from spec.toml and one from its absolute path were refused as
    'shards of different runs' (their spec_source differs, nothing else)."""
    (tmp_path / "s.toml").write_text(SPEC.format(n=6, integrator="euler"))
    monkeypatch.chdir(tmp_path)
    parts = [tmp_path / "p1.h5", tmp_path / "p2.h5"]
    for k, (spec, part) in enumerate(zip(["s.toml", str(tmp_path / "s.toml")], parts,
                                         strict=True), 1):
        assert main(["simulate", spec, "-o", str(part), "--shard", f"{k}/2", "-q"]) == 0
    assert main(["merge", *map(str, parts), "-o", str(tmp_path / "m.h5")]) == 0
    capsys.readouterr()


def test_a_plain_copy_of_a_virtual_merge_reads_without_its_shards(tmp_path, capsys):
    """Every dataset and attribute of a virtual merge copied into plain datasets, moved away
    from the shards: it was refused as reading a shard that cannot be found."""
    import h5py

    from odernn.data.store import read_trajectories

    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=6, integrator="euler"))
    parts = simulate_sharded(tmp_path, spec, 2)
    merged = tmp_path / "m.h5"
    assert main(["merge", *map(str, parts), "-o", str(merged), "--virtual"]) == 0
    capsys.readouterr()
    (tmp_path / "away").mkdir()
    plain = tmp_path / "away" / "plain.h5"
    with h5py.File(merged) as src, h5py.File(plain, "w", libver=("v110", "v110")) as dst:
        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                dst.create_dataset(name, data=obj[()])
                for k, v in obj.attrs.items():
                    if k not in ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME"):
                        dst[name].attrs[k] = v
        src.visititems(copy)
        dst.attrs.update(src.attrs)
    expected = read_trajectories(merged)
    for part in parts:
        part.unlink()
    got = read_trajectories(plain)
    assert np.array_equal(got.x, expected.x) and np.array_equal(got.F, expected.F)


@pytest.mark.parametrize("virtual", [False, True], ids=["copy", "virtual"])
def test_more_shards_than_open_files_allowed_merge(tmp_path, capsys, virtual):
    """merge opened every shard at once: 1100 shards under the common limit of 1024 open
    files ended in 'Too many open files'. Here 80 shards under a limit of 48."""
    import resource
    import sys

    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=80, integrator="euler"))
    parts = simulate_sharded(tmp_path, spec, 80)
    whole = tmp_path / "whole.h5"
    assert main(["simulate", str(spec), "-o", str(whole), "-q"]) == 0
    merged = tmp_path / "m.h5"

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, resource.getrlimit(
            resource.RLIMIT_NOFILE)[1]))

    proc = subprocess.run([sys.executable, "-m", "odernn", "merge", *map(str, parts), "-o",
                           str(merged), *(["--virtual"] if virtual else [])],
                          capture_output=True, text=True, preexec_fn=few_files, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert_same_content(capsys, whole, merged)


def test_a_virtual_merge_odernn_could_not_read_is_not_written(tmp_path, capsys, monkeypatch):
    """A virtual merge skipped the limits a reader applies: one of more values than a dataset
    may hold, or of a shard record larger than an attribute may hold, was written and then
    refused on open. (The limits scaled down here: 2^34 values, 1 MiB, some 6900 shards.)"""
    import odernn.data.merge as merge

    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=6, integrator="euler"))
    parts = simulate_sharded(tmp_path, spec, 2)
    for name, value, needle in (("MAX_ELEMENTS", 100, "more than the 100 values"),
                                ("MAX_ATTR_BYTES", 200, "merge without --virtual")):
        with monkeypatch.context() as m:
            m.setattr(merge, name, value)
            assert main(["merge", *map(str, parts), "-o", str(tmp_path / "m.h5"),
                         "--virtual"]) == 2
        assert needle in capsys.readouterr().err
        assert not (tmp_path / "m.h5").exists()


@pytest.mark.parametrize("virtual", [False, True], ids=["copy", "virtual"])
def test_a_merge_keeps_the_version_that_simulated_the_shards(tmp_path, capsys, monkeypatch,
                                                             virtual):
    """An odernn upgraded between simulate and merge stamped its own version on the merged
    file: another digest than the single-process file's, and the wrong provenance."""
    import odernn

    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=6, integrator="euler"))
    parts = simulate_sharded(tmp_path, spec, 2)
    whole = tmp_path / "whole.h5"
    assert main(["simulate", str(spec), "-o", str(whole), "-q"]) == 0
    monkeypatch.setattr(odernn, "__version__", "9.9.9")
    merged = tmp_path / "m.h5"
    assert main(["merge", *map(str, parts), "-o", str(merged),
                 *(["--virtual"] if virtual else [])]) == 0
    monkeypatch.undo()
    assert read_trajectories(merged).attrs["odernn_version"] != "9.9.9"
    assert_same_content(capsys, whole, merged)


def test_a_merge_holds_one_time_grid_whatever_the_number_of_shards(tmp_path):
    """Each shard's grid was kept until the merge ended: 64 shards of 10^6 steps held 641 MiB
    under a 256 MiB budget. Each is compared with the first shard's, then shares it."""
    from odernn.data import merge

    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=9, integrator="euler"))
    parts = simulate_sharded(tmp_path, spec, 3)
    ordered = merge._check_shards(merge._Shard.of(p) for p in parts)
    assert [f.path.name for f in ordered] == [p.name for p in parts]
    assert all(f.t is ordered[0].t for f in ordered)


def test_a_virtual_merges_mapping_list_is_budgeted_before_a_reader_opens_it(tmp_path,
                                                                            monkeypatch):
    """HDF5 decodes a virtual dataset's whole list of mappings when it opens the dataset (a
    forged file of 200,000 took 5.6 GB); the trajectory reader budgets the list's stored
    size, read from the object's header, before it opens the dataset."""
    from odernn import budget
    from odernn.data import virtual

    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=9, integrator="euler"))
    parts = simulate_sharded(tmp_path, spec, 3)
    assert main(["merge", *map(str, parts), "--virtual", "-o", str(tmp_path / "m.h5"),
                 "-q"]) == 0
    assert read_trajectories(tmp_path / "m.h5").n == 9
    monkeypatch.setattr(virtual, "MAPPING_BYTES_PER_STORED_BYTE", 1 << 40)
    with pytest.raises(budget.BudgetError, match=r"dataset '.+' with a mapping list of \d+ bytes"):
        read_trajectories(tmp_path / "m.h5")
