"""What ``--overwrite`` replaces: only odernn's own output of the command's kind (a dataset, a
report, a demo), never an input of the same command, a link, a device, a FIFO or a directory
of other files; and temporary names that fit any target name (odernn.atomic).

Every refusal is checked for exit code 2, one ``error:`` line naming the problem, and every
file, link and directory under the test directory exactly as before (bytes compared)."""

from __future__ import annotations

import builtins
import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import h5py
import pytest
from test_cli import SPEC  # a small spec: 6 trajectories x 40 steps

from odernn import atomic
from odernn.cli.app import main
from odernn.data.schema import SCHEMA
from odernn.data.store import content_digest, open_trajectories, read_trajectories
from odernn.errors import DataError, OutputError

EVALUATE = ["--no-work-precision", "--no-resonance", "--quiet"]


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under ``root`` (links not followed): a file's bytes, a link's target, a
    directory, or another kind of file by its type and device number."""
    out: dict[str, object] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(directory) / name
            st = os.lstat(p)
            key = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[key] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[key] = p.read_bytes()
            elif stat.S_ISDIR(st.st_mode):
                out[key] = "dir"
            else:
                out[key] = (stat.S_IFMT(st.st_mode), st.st_rdev)
    return out


def run(capsys, args: list[object]) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def refused(capsys, root: Path, args: list[object], *needles: str) -> str:
    """Run ``args``: exit code 2, one error line holding every needle, nothing changed."""
    before = snapshot(root)
    code, err = run(capsys, args)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert snapshot(root) == before
    return lines[0]


@pytest.fixture
def root(tmp_path, capsys) -> Path:
    """A spec, a config, a dataset, two shards of one run, and a text file."""
    (tmp_path / "spec.toml").write_text(SPEC)
    (tmp_path / "c.toml").write_text("n = 4\n")
    (tmp_path / "notes.toml").write_text("# my notes, not a dataset\n")
    assert main(["simulate", str(tmp_path / "spec.toml"), "-o", str(tmp_path / "data.h5"),
                 "-q"]) == 0
    for k in (1, 2):
        assert main(["simulate", str(tmp_path / "spec.toml"), "-o",
                     str(tmp_path / f"part{k}.h5"), "--shard", f"{k}/2", "-q"]) == 0
    capsys.readouterr()
    return tmp_path


# -- refused: inputs, foreign files, links, devices -------------------------------------------

def test_simulate_refuses_to_overwrite_its_own_spec(root, capsys):
    refused(capsys, root, ["simulate", root / "spec.toml", "-o", root / "spec.toml",
                           "--overwrite"], "input of this command")


def test_simulate_refuses_to_overwrite_its_own_config(root, capsys):
    refused(capsys, root, ["simulate", root / "spec.toml", "-o", root / "c.toml", "--config",
                           root / "c.toml", "--overwrite"], "input of this command", "c.toml")


def test_merge_refuses_a_shard_under_another_name(root, capsys):
    os.link(root / "part1.h5", root / "alias.h5")  # the same file: replacing it loses a shard
    refused(capsys, root, ["merge", root / "part1.h5", root / "part2.h5", "-o",
                           root / "alias.h5", "--overwrite"], "input of this command")


def test_merge_refuses_to_replace_a_text_file(root, capsys):
    refused(capsys, root, ["merge", root / "part1.h5", root / "part2.h5", "-o",
                           root / "notes.toml", "--overwrite"],
            "not an odernn dataset", "not an HDF5 file", "--overwrite replaces only")


def test_a_foreign_hdf5_file_is_not_replaced(root, capsys):
    with h5py.File(root / "theirs.h5", "w") as f:
        f.attrs["schema"] = "someone.else"
        f["x"] = [1.0, 2.0]
    refused(capsys, root, ["simulate", root / "spec.toml", "-o", root / "theirs.h5",
                           "--overwrite"], "schema 'someone.else'")


def test_a_fifo_is_not_replaced_nor_opened(root, capsys):
    os.mkfifo(root / "pipe.h5")  # opening it to look inside would block: the test would hang
    refused(capsys, root, ["simulate", root / "spec.toml", "-o", root / "pipe.h5",
                           "--overwrite"], "FIFO")


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_links_are_never_replaced(root, capsys, overwrite):
    (root / "to-data.h5").symlink_to(root / "data.h5")
    (root / "dangling.h5").symlink_to(root / "nowhere.h5")
    flag = ["--overwrite"] if overwrite else []
    for link in ("to-data.h5", "dangling.h5"):
        refused(capsys, root, ["simulate", root / "spec.toml", "-o", root / link, *flag],
                "symbolic link")
    assert not (root / "nowhere.h5").exists()


def test_dev_null_is_refused_without_being_opened(root, capsys, monkeypatch):
    before = os.stat("/dev/null")
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def guard_open(file, *args, **kwargs):
        if str(file) == "/dev/null":
            opened.append("open")
        return real_open(file, *args, **kwargs)

    def guard_os_open(path, *args, **kwargs):
        if os.fspath(path) == "/dev/null":
            opened.append("os.open")
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guard_open)
    monkeypatch.setattr(os, "open", guard_os_open)
    monkeypatch.setattr(h5py, "File", lambda *a, **k: pytest.fail(f"h5py.File{a}"))
    for args in (["simulate", root / "spec.toml", "-o", "/dev/null", "--overwrite"],
                 ["merge", root / "part1.h5", root / "part2.h5", "-o", "/dev/null",
                  "--overwrite"]):
        refused(capsys, root, args, "/dev/null", "character device")
    monkeypatch.undo()
    assert opened == []
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_a_directory_is_refused_for_a_dataset(root, capsys):
    (root / "dir.h5").mkdir()
    refused(capsys, root, ["merge", root / "part1.h5", root / "part2.h5", "-o",
                           root / "dir.h5", "--overwrite"], "directory")


# -- honest messages, long names ----------------------------------------------------------

@pytest.mark.skipif(not Path("/proc/self").exists(), reason="no /proc here")
def test_proc_gets_an_honest_message(root, capsys):
    line = refused(capsys, root, ["simulate", root / "spec.toml", "-o", "/proc/x.h5", "-q"],
                   "/proc/x.h5", "cannot create a file in /proc")
    assert "disk space" not in line
    assert not Path("/proc/x.h5").exists()


@pytest.mark.parametrize("length", [252, 255])
def test_a_name_of_any_allowed_length_works(root, capsys, length):
    name = "a" * (length - 3) + ".h5"
    out = root / name
    assert main(["simulate", str(root / "spec.toml"), "-o", str(out), "-q"]) == 0, \
        capsys.readouterr().err
    assert read_trajectories(out).n == 6
    assert main(["merge", str(root / "part1.h5"), str(root / "part2.h5"), "-o", str(out),
                 "--overwrite"]) == 0, capsys.readouterr().err
    assert content_digest(out) == content_digest(root / "data.h5")
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []
    assert len(os.fsencode(atomic.sibling(out, "tmp").name)) <= 255


def test_sibling_names_are_hidden_unique_and_short_enough(tmp_path):
    target = tmp_path / ("é" * 127)  # 254 bytes of UTF-8: cut inside a character
    names = {atomic.sibling(target, "tmp").name for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert name.startswith(".") and len(os.fsencode(name)) <= 255
        (tmp_path / name).touch()  # the file system takes it


# -- titles ---------------------------------------------------------------------------------

@pytest.mark.parametrize("title", ["a\n# injected", "a\r<script>alert(1)</script>", "a\x00b",
                                   "a\u2028b"])
def test_a_title_with_a_line_break_is_refused(root, capsys, title):
    refused(capsys, root, ["evaluate", "--data", root / "data.h5", "-o", root / "report",
                           "--title", title, *EVALUATE], "--title")


def test_a_one_line_title_is_escaped_in_html_and_markdown(root, capsys):
    title = "<b>mine</b> & co"
    code, err = run(capsys, ["evaluate", "--data", root / "data.h5", "-o", root / "report",
                             "--title", title, *EVALUATE])
    assert code == 0, err
    assert "<b>mine" not in (root / "report" / "report.html").read_text(encoding="utf-8")
    assert (root / "report" / "report.md").read_text(encoding="utf-8").startswith(
        "# &lt;b&gt;mine&lt;/b&gt; &amp; co\n")


# -- reports --------------------------------------------------------------------------------

def test_evaluate_overwrites_its_own_report_but_not_user_files(root, capsys):
    report = root / "report"
    args = ["evaluate", "--data", root / "data.h5", "-o", report, *EVALUATE]
    assert run(capsys, args)[0] == 0
    marker = json.loads((report / atomic.REPORT_MARKER).read_text())
    assert sorted(marker["files"]) == sorted(p.name for p in report.iterdir()
                                             if p.name != atomic.REPORT_MARKER)
    refused(capsys, root, args, "--overwrite")  # ours, but no --overwrite
    first = (report / "metrics.json").read_bytes()
    assert run(capsys, [*args, "--title", "again", "--overwrite"])[0] == 0  # ours: replaced
    assert (report / "metrics.json").read_bytes() != first
    assert "<title>again</title>" in (report / "report.html").read_text(encoding="utf-8")
    (report / "my-notes.txt").write_text("precious")  # a user file inside: never deleted
    refused(capsys, root, [*args, "--overwrite"], "my-notes.txt", "not an odernn report")
    (report / "my-notes.txt").unlink()
    (report / "figure.png").symlink_to(root / "data.h5")
    refused(capsys, root, [*args, "--overwrite"], "figure.png")


def test_a_report_written_before_the_marker_is_still_ours(root, capsys):
    report = root / "report"
    args = ["evaluate", "--data", root / "data.h5", "-o", report, *EVALUATE]
    assert run(capsys, args)[0] == 0
    (report / atomic.REPORT_MARKER).unlink()
    assert run(capsys, [*args, "--overwrite"])[0] == 0
    (report / atomic.REPORT_MARKER).unlink()
    (report / "metrics.json").write_text(json.dumps({"schema": "not.ours"}))
    refused(capsys, root, [*args, "--overwrite"], "not an odernn report")


@pytest.mark.parametrize("name", [atomic.REPORT_MARKER, "metrics.json"])
def test_json_nested_too_deeply_in_a_report_is_not_ours_in_one_line(root, capsys, name):
    """A marker or metrics.json of ``[[[[...`` ended ``--overwrite`` in a RecursionError
    traceback; it is no record of ours, so the report is refused, unchanged."""
    report = root / "report"
    args = ["evaluate", "--data", root / "data.h5", "-o", report, *EVALUATE]
    assert run(capsys, args)[0] == 0
    if name == "metrics.json":
        (report / atomic.REPORT_MARKER).unlink()
    (report / name).write_text("[" * 100_000)
    refused(capsys, root, [*args, "--overwrite"], "not an odernn report")


def test_evaluate_refuses_its_inputs_as_output(root, capsys):
    refused(capsys, root, ["evaluate", "--data", root / "data.h5", "-o", root / "data.h5",
                           "--overwrite", *EVALUATE], "input of this command")
    (root / "holder").mkdir()
    shutil.copy(root / "data.h5", root / "holder" / "test.h5")
    refused(capsys, root, ["evaluate", "--data", root / "holder" / "test.h5", "-o",
                           root / "holder", "--overwrite", *EVALUATE], "an input of this command")


# -- datasets: a legitimate --overwrite still works ---------------------------------------------

def test_simulate_and_merge_replace_their_own_datasets(root, capsys):
    out = root / "data.h5"
    refused(capsys, root, ["simulate", root / "spec.toml", "-o", out], "--overwrite")
    assert main(["simulate", str(root / "spec.toml"), "-o", str(out), "--n", "3",
                 "--overwrite", "-q"]) == 0
    assert read_trajectories(out).n == 3
    assert main(["merge", str(root / "part1.h5"), str(root / "part2.h5"), "-o", str(out),
                 "--overwrite"]) == 0
    assert read_trajectories(out).n == 6
    with h5py.File(out) as f:
        assert f.attrs["schema"] == SCHEMA


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444, 0o4755])
def test_a_replaced_file_keeps_its_permissions(root, mode):
    """--overwrite gave a user's private 600 dataset the umask's 644; a new file still gets
    the umask's mode. The mode is given as the file is renamed into place: a file written
    aside with a read-only target's mode could not be reopened for writing (HDF5 reopens it
    by name), which its owner, not root, saw refused."""
    out, text = root / "private.h5", root / "notes.txt"
    assert main(["simulate", str(root / "spec.toml"), "-o", str(out), "-q"]) == 0
    atomic.write_text(text, "old")
    new_mode = stat.S_IMODE(out.stat().st_mode)
    assert new_mode == stat.S_IMODE(text.stat().st_mode) == 0o666 & ~current_umask()
    for path in (out, text):
        path.chmod(mode)
    assert main(["simulate", str(root / "spec.toml"), "-o", str(out), "--n", "3",
                 "--overwrite", "-q"]) == 0
    atomic.write_text(text, "new")
    mode &= 0o1777  # no set-user-ID or set-group-ID bit carried onto new content
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(text.stat().st_mode) == mode
    assert read_trajectories(out).n == 3 and text.read_text() == "new"
    aside = atomic.AsideFile(out)  # writable by its owner while it is written
    assert stat.S_IMODE(aside.tmp.stat().st_mode) == new_mode
    aside.publish()
    assert stat.S_IMODE(out.stat().st_mode) == mode


def test_the_working_directory_is_never_an_output(tmp_path, monkeypatch):
    """An empty working directory named by its path (not '.') was a new output directory:
    replaced, the shell left in a removed directory."""
    here = tmp_path / "results"
    here.mkdir()
    monkeypatch.chdir(here)
    for path, kind in ((here, "report"), (tmp_path, "demo")):
        with pytest.raises(OutputError, match="of its own"):
            atomic.check_output(path, kind, overwrite=True)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- virtual merges and their shards ---------------------------------------------------------

def test_a_virtual_merge_refuses_a_shard_changed_since(root, capsys):
    merged = root / "merged.h5"
    assert main(["merge", str(root / "part1.h5"), str(root / "part2.h5"), "-o", str(merged),
                 "--virtual"]) == 0
    assert content_digest(merged) == content_digest(root / "data.h5")
    # the same content under a new mtime (a plain copy): still read
    shutil.copyfile(root / "part2.h5", root / "copy.h5")
    os.replace(root / "copy.h5", root / "part2.h5")
    assert read_trajectories(merged).n == 6
    # shard 2 of another run (another seed) in its place: refused, in one line
    assert main(["simulate", str(root / "spec.toml"), "-o", str(root / "part2.h5"),
                 "--shard", "2/2", "--seed", "4", "--overwrite", "-q"]) == 0
    with pytest.raises(DataError, match=r"part2\.h5, which changed since the merge"):
        open_trajectories(merged)
    code, err = run(capsys, ["inspect", merged])
    assert code == 2 and err.count("\n") == 1 and "changed since the merge" in err


def test_a_forged_shard_record_is_refused(root):
    merged = root / "merged.h5"
    assert main(["merge", str(root / "part1.h5"), str(root / "part2.h5"), "-o", str(merged),
                 "--virtual"]) == 0
    with h5py.File(merged, "r+") as f:
        f.attrs["shard_sources"] = "[{]"
    with pytest.raises(DataError, match="shard_sources' is malformed"):
        open_trajectories(merged)


def shard_record(name: str) -> str:
    """A ``shard_sources`` record naming file ``name``, its size and mtime wrong."""
    return json.dumps([{"file": name, "size": 0, "mtime_ns": 0, "digest": "sha256:x"}])


def test_a_shard_record_that_could_lead_back_is_refused(root, capsys):
    """A record naming the file itself, or a shard that records shards (two files naming
    each other), is refused in one line: checking it would check the file again, forever.
    (The record is checked where the file's datasets are virtual: a plain copy reads no
    shard.)"""
    assert run(capsys, ["merge", root / "part1.h5", root / "part2.h5", "-o", root / "v.h5",
                        "--virtual"])[0] == 0
    for name, other in [("self.h5", "self.h5"), ("a.h5", "b.h5"), ("b.h5", "a.h5")]:
        shutil.copyfile(root / "v.h5", root / name)
        with h5py.File(root / name, "r+") as f:
            f.attrs["shard_sources"] = shard_record(other)
    for name, message in [("self.h5", "'shard_sources' names the file itself as a shard"),
                          ("a.h5", r"reads shard .*b\.h5, which records shards itself")]:
        with pytest.raises(DataError, match=message):
            open_trajectories(root / name)
        code, err = run(capsys, ["inspect", root / name])
        assert code == 2 and err.count("\n") == 1 and re.search(message, err), err


# -- demos ----------------------------------------------------------------------------------

def fake_demo(path: Path) -> Path:
    """The layout a previous ``odernn demo`` leaves (contents do not matter here)."""
    (path / "report").mkdir(parents=True)
    (path / "runs" / "esn").mkdir(parents=True)
    (path / atomic.DEMO_MARKER).write_text("written by odernn demo\n")
    (path / "stages.json").write_text("{}\n")
    (path / "report" / "report.html").write_text("<html></html>")
    (path / "report" / atomic.REPORT_MARKER).write_text(json.dumps({"files": ["report.html"]}))
    (path / "runs" / "esn" / "best.pt").write_bytes(b"weights")
    return path


def test_demo_needs_overwrite_and_replaces_only_a_demo(tmp_path, capsys):
    demo = fake_demo(tmp_path / "demo")
    quick = ["demo", "--quick", "--models", "esn", "--quiet", "-o", demo]
    refused(capsys, tmp_path, quick, "--overwrite")
    (demo / "runs" / "esn" / "thesis.tex").write_text("precious")  # a user file deep inside
    refused(capsys, tmp_path, [*quick, "--overwrite"], "thesis.tex", "not an odernn demo")
    (demo / "runs" / "esn" / "thesis.tex").unlink()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.jpg").write_bytes(b"jpeg")
    refused(capsys, tmp_path, ["demo", "--quick", "--quiet", "-o", tmp_path / "mine",
                               "--overwrite"], "not an odernn demo")
    code, err = run(capsys, [*quick, "--overwrite"])
    assert code == 0, err
    assert (demo / "report" / "report.html").stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "mine"]


def test_a_demo_being_written_is_not_replaced_by_another(tmp_path, capsys):
    """A second demo into a directory a running one writes (its lock held) is refused: it set
    the running one aside, whose files then went into the second's, and the first exited 0
    naming a report that did not exist."""
    from odernn.demo_dir import claim, release

    demo = fake_demo(tmp_path / "demo")
    (demo / "stages.json").unlink()  # still running
    locks: list[int] = []
    claim(demo, locks)
    try:
        refused(capsys, tmp_path, ["demo", "--quick", "--models", "esn", "--quiet", "-o", demo,
                                   "--overwrite"], "being written by another odernn demo")
    finally:
        release(locks)


def test_a_demo_killed_outright_is_undone_by_the_next(tmp_path, capsys):
    """SIGKILL during ``demo --overwrite`` left the unfinished new demo at the path and the
    finished previous one under a hidden name, never restored: the next demo puts it back
    (the state any other interruption leaves), then asks for --overwrite as usual."""
    demo = fake_demo(tmp_path / "demo")
    aside = atomic.set_aside(demo)
    (demo / "runs" / "esn").mkdir(parents=True)  # the killed demo's, without stages.json
    (demo / atomic.DEMO_MARKER).write_text("written by odernn demo\n")
    (demo / "runs" / "esn" / "config.json").write_text("{}")
    quick = ["demo", "--quick", "--models", "esn", "--quiet", "-o", demo]
    code, err = run(capsys, quick)
    assert code == 2 and "already exists (a previous demo); pass --overwrite" in err, err
    assert (demo / "stages.json").exists() and (demo / "runs" / "esn" / "best.pt").exists()
    assert not aside.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


@pytest.mark.parametrize("left", [".train.h5.tmp-4242-0a1b2c3d", ".stages.json.tmp-4242-0a1b2c3d",
                                  ".report.tmp-4242-0a1b2c3d/"])
def test_a_demo_killed_while_writing_a_file_is_undone_by_the_next(tmp_path, capsys, left):
    """A demo killed outright while it wrote a dataset, its report or its last file
    (stages.json, written whole or not at all) leaves that file's new copy beside it: the
    unfinished demo is still the demo's, undone by the next one, not a directory it refuses."""
    from odernn.demo_dir import recover

    demo = fake_demo(tmp_path / "demo")
    previous = snapshot(demo)
    aside = atomic.set_aside(demo)
    demo.mkdir()
    (demo / atomic.DEMO_MARKER).write_text("written by odernn demo\n")
    (demo / "test.h5").write_bytes(b"the killed demo's")
    if left.endswith("/"):
        (demo / left).mkdir()
        (demo / left / "report.md").write_text("half")
    else:
        (demo / left).write_bytes(b"half")
    assert atomic.foreign_reason(demo, "demo") is None
    recover(demo)
    assert not aside.exists() and snapshot(demo) == previous
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / atomic.DEMO_MARKER).write_text("written by odernn demo\n")
    (tmp_path / "other" / ".train.h5.tmp-4242-0a1b2c3d").mkdir()  # a directory: not a copy
    assert "which the demo does not write" in atomic.foreign_reason(tmp_path / "other", "demo")


def test_a_demo_is_marked_finished_whole_or_not_at_all(tmp_path, monkeypatch):
    """stages.json, whose presence says the demo finished, is written beside and renamed into
    place: interrupted before the rename, there is none (a half-written one said finished)."""
    from odernn import demo_dir

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    monkeypatch.setattr(atomic, "_renameat2", lambda *args: interrupted())
    with pytest.raises(KeyboardInterrupt):
        demo_dir.finish(tmp_path, {"simulate": 1.0})
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    demo_dir.finish(tmp_path, {"simulate": 1.0})
    assert json.loads((tmp_path / "stages.json").read_text()) == {"simulate": 1.0}


def test_a_killed_demo_is_not_undone_by_a_command_that_refuses(tmp_path):
    """Recovery is a change: a demo refused (here: its output holds its own input) recovers
    nothing (it replaced the input named on its command line by the older demo's file)."""
    from odernn.demo_dir import demo_output

    demo = fake_demo(tmp_path / "demo")
    aside = atomic.set_aside(demo)
    demo.mkdir()
    (demo / atomic.DEMO_MARKER).write_text("written by odernn demo\n")
    (demo / "train.h5").write_bytes(b"the killed demo's")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match="an input of this command"), \
            demo_output(demo, True, inputs=[demo / "train.h5"]):
        pass
    assert snapshot(tmp_path) == before and aside.exists()


def test_a_stray_file_in_a_demos_seed_group_is_named_by_its_path(tmp_path):
    """The refusal names the file where it is (runs/esn/seed-1/x.txt), so that a user finds
    it (it named runs/seed-1/x.txt, without the family)."""
    demo = fake_demo(tmp_path / "demo")
    (demo / "runs" / "esn" / "best.pt").unlink()
    (demo / "runs" / "esn" / "seeds.json").write_text("{}")
    (demo / "runs" / "esn" / "seed-1").mkdir()
    (demo / "runs" / "esn" / "seed-1" / "x.txt").write_text("n")
    with pytest.raises(OutputError, match="it holds runs/esn/seed-1/x.txt, which training"):
        atomic.check_output(demo, "demo", overwrite=True)


# -- runs and seed groups: replaced only where odernn wrote them -----------------------------

TRAIN = ["--model", "esn", "--units", "20", "-q"]


@pytest.mark.parametrize("mine", [{"config.json": '{"my": "settings"}'},
                                  {"history.csv": "a,b\n1,2\n"}, {"best.pt": "my weights"}])
def test_train_overwrite_replaces_no_file_that_only_shares_a_run_files_name(root, capsys,
                                                                             mine):
    """A directory of the user's config.json, history.csv or best.pt alone counted as a
    previous run, and --overwrite replaced it."""
    target = root / "mine"
    target.mkdir()
    for name, text in mine.items():
        (target / name).write_text(text)
    refused(capsys, root, ["train", root / "data.h5", "-o", target, *TRAIN, "--overwrite"],
            "not a run odernn wrote")


def test_train_overwrite_removes_no_user_directory_in_the_staging_name(root, capsys):
    """A directory named as a run's staging directory was removed as if a killed run had left
    it."""
    run_dir = root / "run"
    assert run(capsys, ["train", root / "data.h5", "-o", run_dir, *TRAIN])[0] == 0
    (root / ".run.odernn-new").mkdir()
    (root / ".run.odernn-new" / "thesis.tex").write_text("chapter 1")
    refused(capsys, root, ["train", root / "data.h5", "-o", run_dir, *TRAIN, "--overwrite"],
            "is not one odernn left")
    shutil.rmtree(root / ".run.odernn-new")  # a killed run's own staging directory goes,
    (root / ".run.odernn-new").mkdir()  # with the file it was writing when killed
    (root / ".run.odernn-new" / "config.json").write_text("{}")
    (root / ".run.odernn-new" / ".best.pt.tmp-123-0a1b2c3d").write_text("half")
    code, err = run(capsys, ["train", root / "data.h5", "-o", run_dir, *TRAIN, "--overwrite"])
    assert code == 0, err
    assert not (root / ".run.odernn-new").exists()


def test_a_seed_group_is_replaced_only_with_odernns_index(root, capsys):
    group = root / "group"
    group.mkdir()
    (group / "seeds.json").write_text('{"my": "lab seeds"}')
    refused(capsys, root, ["train", root / "data.h5", "-o", group, *TRAIN, "--seeds", "2",
                           "--overwrite"], "not an odernn seed group", "not replaced")


# -- the decision itself ------------------------------------------------------------------

def test_check_output_kinds(tmp_path):
    (tmp_path / "empty").mkdir()
    assert atomic.check_output(tmp_path / "empty", "report", overwrite=False) is False
    assert atomic.check_output(tmp_path / "new", "demo", overwrite=False) is False
    (tmp_path / "file").write_text("x")
    for kind in ("report", "demo"):
        with pytest.raises(OutputError, match="a regular file, not a"):
            atomic.check_output(tmp_path / "file", kind, overwrite=True)
    with pytest.raises(OutputError, match="does not exist"):
        atomic.check_output(tmp_path / "no" / "d.h5", "dataset", overwrite=True)
    with pytest.raises(ValueError):
        atomic.check_output(tmp_path / "x", "run", overwrite=True)


def test_write_file_leaves_the_target_on_failure(tmp_path):
    target = tmp_path / "t.txt"
    atomic.write_text(target, "old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic.write_file(target, fail)
    assert target.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["t.txt"]
    atomic.write_text(target, "new")
    assert target.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["t.txt"]


def test_a_report_marker_is_read_within_a_limit(tmp_path, monkeypatch):
    """A 60 MB marker in the output directory was read and parsed whole (1.8 GB) before
    the refusal: it is now refused unread past its limit."""
    report = tmp_path / "report"
    report.mkdir()
    (report / atomic.REPORT_MARKER).write_text('{"files": [' + '"a",' * 1_000_000 + '"a"]}')
    read = []
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: read.append(self)
                        or original(self, *a, **k))
    with pytest.raises(OutputError, match="is not odernn's"):
        atomic.check_output(report, "report", overwrite=True)
    assert read == []


def test_an_unwritable_place_is_refused_before_the_work(root, capsys, monkeypatch):
    """A report or a gradients output where nothing can be written (here /proc: no directory
    can be made there, root or not) is refused before any rollout or probe, not after."""
    import odernn.assess.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: pytest.fail("evaluated"))
    refused(capsys, root, ["evaluate", "--data", root / "data.h5", "-o", "/proc/odernn-report",
                           *EVALUATE], "cannot write report /proc/odernn-report")
    refused(capsys, root, ["gradients", "--data", root / "data.h5", "--length", "10",
                           "--sequences", "2", "-o", "/proc/odernn-gradients", "-q"],
            "cannot write gradients output /proc/odernn-gradients")


@pytest.mark.parametrize("command", ["evaluate", "demo", "train", "gradients"])
def test_a_mount_point_is_refused_before_the_work(root, capsys, monkeypatch, command):
    """An output that is a mount point (a container's volume) cannot be renamed into place
    (EBUSY): it was refused only after the evaluation, training or demo had run."""
    from odernn import checks

    target = root / "volume"
    target.mkdir()
    real = checks.is_mount_point
    monkeypatch.setattr(checks, "is_mount_point", lambda p: os.fspath(p) == os.fspath(target)
                        or real(p))
    if command == "train":  # a run replaced by --overwrite is swapped in beside it
        assert run(capsys, ["train", root / "data.h5", "-o", target, "-m", "esn", "--units",
                            "20", "-q"])[0] == 0
    args = {"evaluate": ["evaluate", "--data", root / "data.h5", "-o", target, *EVALUATE],
            "demo": ["demo", "--quick", "--models", "rnn", "--seeds", "1", "-o", target],
            "train": ["train", root / "data.h5", "-o", target, "-m", "esn", "--units", "20",
                      "-q", "--overwrite"],
            "gradients": ["gradients", "--data", root / "data.h5", "--length", "10",
                          "--sequences", "2", "-o", target, "-q"]}[command]
    refused(capsys, root, args, "is a mount point")


def test_a_long_name_of_wide_characters_is_writable(tmp_path):
    """60 emoji are a legal 240-byte name: the probe beside it must not add to it."""
    from odernn.checks import check_writable

    check_writable(tmp_path / ("\N{GRINNING FACE}" * 60), "report")


def test_mount_points_are_read_from_the_kernels_table(tmp_path, monkeypatch):
    """A bind mount within one file system has its parent's device (os.path.ismount misses
    it); the table escapes a space in a mount point as \\040."""
    from odernn.checks import is_mount_point

    spaced = tmp_path / "my volume"
    spaced.mkdir()
    assert is_mount_point("/") and not is_mount_point(tmp_path)
    real = Path.read_bytes
    table = (b"36 35 98:0 / / rw - ext3 /dev/root rw\n"
             b"40 36 98:0 /src " + os.fsencode(str(spaced)).replace(b" ", b"\\040")
             + b" rw,relatime shared:1 - ext4 /dev/root rw\n")
    monkeypatch.setattr(Path, "read_bytes", lambda self: table if str(self) ==
                        "/proc/self/mountinfo" else real(self))
    assert is_mount_point(spaced) and not is_mount_point(tmp_path)


@pytest.mark.parametrize("call", ["renameat2", "link"])
def test_a_file_that_appears_while_a_new_output_is_written_is_kept(call, tmp_path,
                                                                   monkeypatch):
    """Without --overwrite the target is checked, and between the check and the rename
    another process may create it (two simulates of one name, started together): it was
    replaced, both exiting 0. The rename itself now refuses to replace (RENAME_NOREPLACE),
    or, where the system has no renameat2, a hard link, which fails on an existing name."""
    import ctypes.util

    if call == "link":
        monkeypatch.setattr(atomic, "_renameat2", lambda a, b, flag: None)
    elif not hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "renameat2"):
        pytest.skip("no renameat2 here: the link is tested on its own")
    target = tmp_path / "data.h5"
    aside = atomic.AsideFile(target)
    aside.tmp.write_bytes(b"new")
    with pytest.raises(OutputError, match="another file appeared there while this one"):
        aside.publish(check=lambda: target.write_text("mine"), overwrite=False)
    assert target.read_text() == "mine"
    aside.publish(overwrite=True)
    assert target.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["data.h5"]
    other = atomic.AsideFile(tmp_path / "other.h5")
    other.tmp.write_bytes(b"other")
    other.publish(overwrite=False)  # a free name: published, nothing left beside it
    assert sorted(os.listdir(tmp_path)) == ["data.h5", "other.h5"]
    assert (tmp_path / "other.h5").read_bytes() == b"other"


def test_a_file_written_whole_keeps_a_file_that_appeared_meanwhile(tmp_path):
    """``write_file`` without ``overwrite`` (an ONNX export) refuses, at the rename, a file
    that appeared after its check, and removes its own."""
    target = tmp_path / "m.onnx"

    def write(f):
        target.write_text("mine")  # another process, while this one writes
        f.write(b"new")

    with pytest.raises(OutputError, match="another file appeared there while this one"):
        atomic.write_file(target, write, overwrite=False)
    assert target.read_text() == "mine" and os.listdir(tmp_path) == ["m.onnx"]
    atomic.write_file(target, lambda f: f.write(b"new"))  # overwrite, the default
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["m.onnx"]


def test_a_replaced_directory_is_exchanged_in_one_step(tmp_path, monkeypatch):
    """``install_dir`` over a previous output swaps the two (renameat2 RENAME_EXCHANGE): at
    no moment is the target missing, as it was between three renames."""
    import ctypes.util

    if not hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "renameat2"):
        pytest.skip("no renameat2 here: the three renames remain")
    target, new = tmp_path / "out", tmp_path / "new"
    for d, text in ((target, "old"), (new, "new")):
        d.mkdir()
        (d / "f").write_text(text)
    renames = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renames.append((a, b)) or real(a, b))
    atomic.install_dir(new, target)
    assert renames == [] and (target / "f").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


class Killed(BaseException):
    """A SIGKILL's stand-in: the process ends where it is, no handler runs."""


def test_a_demo_killed_while_it_undoes_another_leaves_the_previous_demo_in_place(
        tmp_path, monkeypatch):
    """Undoing a killed demo deleted the unfinished one in place, then put the previous one
    back: killed in between (10 of 10 kills timed to it), the path held a half-deleted
    directory without its marker, refused by every later demo, and the previous demo stayed
    hidden. The two are now exchanged in one step, and the unfinished one deleted after."""
    from odernn import demo_dir

    demo = fake_demo(tmp_path / "demo")
    previous = snapshot(demo)
    atomic.set_aside(demo)
    demo.mkdir()
    (demo / atomic.DEMO_MARKER).write_text("written by odernn demo\n")
    (demo / "runs" / "esn").mkdir(parents=True)
    monkeypatch.setattr(atomic, "remove_tree", lambda path: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):
        demo_dir.recover(demo)
    assert snapshot(demo) == previous
    (left,) = [p for p in tmp_path.iterdir() if p.name != "demo"]
    assert not (left / "stages.json").exists()  # the unfinished demo: never put back
    monkeypatch.undo()
    demo_dir.recover(demo)
    assert snapshot(demo) == previous


def test_a_demo_set_aside_is_deleted_as_unfinished_first(tmp_path, monkeypatch):
    """A demo killed while it deleted the previous demo it had replaced left a remnant with
    stages.json, read as a finished demo: after a later killed --overwrite, the next demo put
    that remnant back instead of the real previous one. stages.json now goes first; and an
    unfinished demo is deleted with its marker last, so that killed half way it is still a
    demo, not a directory every later demo refuses."""
    from odernn import demo_dir

    backup = fake_demo(tmp_path / "backup")
    monkeypatch.setattr(atomic, "remove_tree", lambda path: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):
        demo_dir._discard(backup)
    assert not (backup / "stages.json").exists() and (backup / "runs").exists()
    monkeypatch.undo()
    unfinished = fake_demo(tmp_path / "unfinished")
    monkeypatch.setattr(demo_dir.shutil, "rmtree", lambda *a, **k: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):
        demo_dir._remove_unfinished(unfinished)
    assert (unfinished / atomic.DEMO_MARKER).exists()
    assert atomic.foreign_reason(unfinished, "demo") is None
    monkeypatch.undo()
    demo_dir._remove_unfinished(unfinished)
    assert not unfinished.exists()


def test_a_demo_that_cannot_make_its_directory_says_so_and_keeps_the_previous(tmp_path,
                                                                              monkeypatch):
    """On a read-only file system the demo ended in Python's own words ("[Errno 30]
    Read-only file system: ..."); it names what it could not do, in one line, and a previous
    demo it had set aside is back in place."""
    import errno

    from odernn.demo_dir import demo_output

    demo = fake_demo(tmp_path / "demo")
    previous = snapshot(demo)

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    for out, overwrite in ((tmp_path / "new", False), (demo, True)):
        with pytest.raises(OutputError, match=rf"cannot write {re.escape(str(out))}: cannot "
                                              r"create a directory in .* \(Read-only file "
                                              r"system\)$"), demo_output(out, overwrite):
            pass
    monkeypatch.undo()
    assert snapshot(demo) == previous and sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
