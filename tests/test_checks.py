"""odernn.checks directly: small text files read in bounded memory, the write probe, seeds,
links and the working directory."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest

from odernn import checks
from odernn.errors import OutputError, SpecError


def test_a_sparse_huge_file_is_refused_without_reading_it_whole(tmp_path):
    big = tmp_path / "spec.toml"
    with open(big, "wb") as f:
        f.truncate(256 << 20)  # 256 MiB of holes
    tracemalloc.start()
    with pytest.raises(SpecError, match="larger than"):
        checks.read_small_text(big, "spec")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 << 20


def test_a_file_of_exactly_the_limit_is_read_and_a_bom_dropped(tmp_path):
    f = tmp_path / "s.toml"
    f.write_bytes(b"\xef\xbb\xbf" + b"a" * 97)
    assert checks.read_small_text(f, "spec", limit=100) == "a" * 97
    f.write_bytes(b"a" * 101)
    with pytest.raises(SpecError, match="larger than 100 bytes"):
        checks.read_small_text(f, "spec", limit=100)


def test_the_write_probe_leaves_nothing(tmp_path):
    checks.check_writable(tmp_path / "out", "report")
    assert list(tmp_path.iterdir()) == []


def test_a_refused_special_file_leaves_no_descriptor_open(tmp_path):
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(SpecError):
            checks.read_small_text("/dev/null", "spec")
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("seed,ok", [(0, True), (2**63 - 1, True), (2**63, False),
                                     (-1, False), (True, False), (1.0, False)])
def test_seed_bounds(seed, ok):
    if ok:
        checks.check_seed(seed)
    else:
        with pytest.raises(SpecError):
            checks.check_seed(seed)


def test_a_dangling_link_is_refused(tmp_path):
    (tmp_path / "l").symlink_to(tmp_path / "missing")
    with pytest.raises(OutputError, match="symbolic link"):
        checks.refuse_link(tmp_path / "l")


def test_holds_working_directory_covers_parents(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert checks.holds_working_directory(tmp_path) and checks.holds_working_directory(".")
    assert not checks.holds_working_directory(tmp_path / "b")


def test_is_inside_resolves_links(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert checks.is_inside(tmp_path / "link" / "f", tmp_path / "real")


def test_boolean_arrays_are_not_real_numbers():
    """A set of booleans passed the check and failed inside training with numpy's own message
    (boolean subtract); import already refused them."""
    from odernn.checks import real_numbers
    from odernn.data.trajectories import Trajectories
    from odernn.errors import DataError

    with pytest.raises(DataError, match="x must hold real numbers, not bool values"):
        Trajectories(np.arange(3) * 0.1, np.zeros((2, 3), dtype=bool))
    assert real_numbers([1, 2], "n").dtype.kind == "i"
