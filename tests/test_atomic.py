"""odernn.atomic directly: what reaches the disk and in which order (the file, then its
directory), the fallbacks where renameat2 is missing, the last check before a directory is
installed (docs/reliability.md, "Outputs are atomic")."""

from __future__ import annotations

import os
import stat

import pytest

from odernn import atomic
from odernn.errors import OutputError


def _record_fsyncs(monkeypatch):
    kinds = []
    real = os.fsync

    def spy(fd):
        kinds.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        return real(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    return kinds


def test_write_file_fsyncs_the_file_then_the_directory(tmp_path, monkeypatch):
    kinds = _record_fsyncs(monkeypatch)
    atomic.write_bytes(tmp_path / "x.json", b"{}")
    assert kinds == ["file", "dir"]


def test_an_aside_file_is_fsynced_before_its_rename_and_the_directory_after(tmp_path,
                                                                          monkeypatch):
    aside = atomic.AsideFile(tmp_path / "d.h5")
    aside.tmp.write_bytes(b"data")
    order = []
    kinds = _record_fsyncs(monkeypatch)
    real_replace = os.replace
    monkeypatch.setattr(atomic.os, "replace",
                        lambda a, b: (order.append(list(kinds)), real_replace(a, b)))
    aside.publish()
    assert order == [["file"]] and kinds == ["file", "dir"]


def test_the_hard_link_fallback_leaves_only_the_target(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_renameat2", lambda a, b, flag: None)
    atomic.write_bytes(tmp_path / "new.bin", b"abc", overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.bin"]
    (tmp_path / "other.bin").write_bytes(b"user")
    with pytest.raises(OutputError,
                       match="another file appeared there while this one was written"):
        atomic.write_bytes(tmp_path / "other.bin", b"ours", overwrite=False)
    assert (tmp_path / "other.bin").read_bytes() == b"user"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.bin", "other.bin"]


@pytest.mark.parametrize("exchange", [True, False])
def test_install_dir_leaves_no_previous_output_aside(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_renameat2", lambda a, b, flag: None)
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new = atomic.make_dir_beside(target)
    (new / "new.txt").write_text("new")
    atomic.install_dir(new, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]


def test_a_failed_fallback_exchange_puts_the_previous_directory_back(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_renameat2", lambda a, b, flag: None)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (b / "keep.txt").write_text("previous")
    real, calls = os.replace, []

    def second_fails(x, y):
        calls.append((x, y))
        if len(calls) == 2:
            raise OSError(5, "simulated I/O error")
        return real(x, y)

    monkeypatch.setattr(atomic.os, "replace", second_fails)
    with pytest.raises(OSError):
        atomic.exchange_dirs(a, b)
    assert (b / "keep.txt").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_a_replaced_file_never_gets_setuid_or_setgid(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o6755)
    assert os.stat(target).st_mode & stat.S_ISUID  # the file system keeps it: a real test
    atomic.write_bytes(target, b"new")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755


def test_install_dir_runs_its_check_before_touching_the_target(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "user.txt").write_text("changed meanwhile")
    new = atomic.make_dir_beside(target)
    (new / "new.txt").write_text("new")

    def refuse():
        raise OutputError("target changed")

    with pytest.raises(OutputError):
        atomic.install_dir(new, target, check=refuse)
    assert sorted(p.name for p in target.iterdir()) == ["user.txt"]


def test_the_next_write_removes_the_copies_killed_writers_left(tmp_path):
    """A SIGKILL runs no clean-up: each simulate or merge killed outright left its copy beside
    the output (130 to 180 MB each, 694 MB around a 235 MB dataset after a few kills), and
    the next successful write kept them. It now removes those of writers that are gone, and
    nothing else: a running writer's, another output's, a link, a user's look-alike."""
    import subprocess
    import sys

    import odernn

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out.h5"
    left = [tmp_path / f".out.h5.tmp-{dead.pid}-0123abcd", tmp_path / f".out.h5.tmp-{dead.pid}-"
            "ffffffff"]
    kept = [tmp_path / ".out.h5.tmp-1-0123abcd",  # pid 1 runs
            tmp_path / f".other.h5.tmp-{dead.pid}-0123abcd",  # another output's
            tmp_path / f".out.h5.tmp-{dead.pid}-0123abcdef",  # not the name odernn gives
            tmp_path / "notes.txt"]
    for p in [*left, *kept]:
        p.write_bytes(b"x" * 100)
    link = tmp_path / f".out.h5.tmp-{dead.pid}-00000000"
    link.symlink_to(tmp_path / "notes.txt")
    odernn.simulate(odernn.load_spec("test").with_overrides(n=2, n_steps=10), out)
    assert not any(p.exists() for p in left)
    assert all(p.read_bytes() == b"x" * 100 for p in kept) and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in kept] + [link.name, "out.h5"])
    # a name shortened to NAME_MAX is the output's if the output's name begins with it
    from odernn.leftovers import remove_dead_copies

    long = tmp_path / ("d" * 250 + ".h5")
    assert len(atomic.sibling(long, "tmp").name) == 255  # the form sibling gives it
    suffix = f".tmp-{dead.pid}-0123abcd"
    copy = tmp_path / ("." + long.name[:255 - 1 - len(suffix)] + suffix)
    other = tmp_path / ("." + "e" * (255 - 1 - len(suffix)) + suffix)
    copy.write_bytes(b"")
    other.write_bytes(b"")
    assert remove_dead_copies(long) == [copy] and other.exists()
