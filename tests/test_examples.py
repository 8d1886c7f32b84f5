"""Every example command in every ``--help`` and in the README runs, and so does the README's
Python block.

What runs: the example lines of each command's ``--help`` epilog (``  odernn ...``, a trailing
``   (comment)`` dropped) and every ``odernn ...`` line of the README's shell code blocks (a
``# comment`` dropped). Every other README code-block line must be listed in
:data:`NOT_RUN` with the reason. Each command runs as written, through ``odernn``'s own entry
point in this process (``main(argv)``, the function the ``odernn`` script calls; a ``*`` is
expanded as the shell would), or as a process of the installed script where the command
needs one (:data:`OWN_PROCESS`, and the README's ``.venv/bin/odernn --help``), with only
size-shrinking flags appended (:data:`SHRINK`; for an option given twice the last one wins),
so the module stays fast: fewer and shorter trajectories, one epoch, fewer reservoir units,
a shorter gradient sequence, two processes instead of four, the demo's ``--quick``. The
README's ``make`` and set-up lines are not run (:data:`NOT_RUN` says why).

Order and files: commands run by stage (:data:`STAGES`: simulate before merge and inspect,
train before evaluate, export and gradients), each in its own fresh directory holding
copies of the files it names that earlier examples wrote (``runs/lstm`` for ``--resume``
too), so no example depends on another's leftovers or collides with another's output. The
two inputs no example writes, ``my-spec.toml`` and ``test-ood.h5``, are made by
:data:`SETUP`.
"""

from __future__ import annotations

import glob
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from odernn.cli.app import _register_commands, app, main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

STAGES = ("systems", "import", "simulate", "merge", "inspect", "models", "train", "evaluate",
          "export", "gradients", "demo")
"""The order commands run in: each stage may use what the ones before it wrote."""

SHRINK: list[tuple[str, str | None, list[str]]] = [
    ("simulate", "--shard", ["--n", "128", "--n-steps", "200"]),  # scipy: 2 blocks of 64
    ("simulate", None, ["--n", "4", "--n-steps", "200"]),
    ("train", "--nproc", ["--epochs", "1", "--nproc", "2"]),  # 2 processes for 2 cores
    ("train", "esn", ["--units", "40"]),
    ("train", None, ["--epochs", "1"]),
    ("gradients", None, ["--length", "40", "--sequences", "2"]),
    ("demo", "--preset", ["--quick"]),
    ("demo", "--data", ["--quick", "--epochs", "1"]),  # the files say their size
    ("demo", None, ["--quick", "--epochs", "1", "--n-train", "12", "--n-test", "4"]),
]
"""``(command, a word the command line holds or None, flags appended)``: the first match is
used. Sizes only: trajectories, epochs, reservoir units, sequence length, the demo's size."""

NOT_RUN = {
    "make demo": "`odernn demo`, which it runs after the set-up, runs here from its --help",
    "make test": "runs this test suite",
    "python3 -m venv .venv": "set-up of a new environment (this one exists)",
    ".venv/bin/pip install --no-deps --extra-index-url https://download.pytorch.org/whl/cpu "
    "torch==2.13.0": "set-up: downloads torch",
    '.venv/bin/pip install -e ".[dev]"': "set-up: installs this package",
}
"""README code-block lines that are not run, each with the reason."""

LAYOUT = "odernn/      the library"
"""The first line of the README's directory listing (a code block that is not commands)."""

SETUP = {
    "my-spec.toml": "written from MY_SPEC, a user's spec",
    "test-ood.h5": "odernn simulate test-ood -o test-ood.h5 --n 4 --n-steps 200",
    "measured.csv, runs.csv, sim.npz, scope.npz, log.h5": "written by import_sources, another "
                                                         "program's files for the import "
                                                         "examples",
}
"""Inputs that examples name but no example writes, and how they are made."""

MY_SPEC = """\
name = "my-spec"
n = 1000
seed = 5
dt = 0.05
n_steps = 400
[integrator]
name = "scipy"
[parameters]
eta = [0.05, 0.5]
x0 = [-1, 1]
v0 = [-1, 1]
[forcing]
family = "random"
"""


def import_sources(pool: Path) -> None:
    """The files the ``odernn import`` examples read, as another program would write them:
    a damped oscillation sampled at dt 0.1 (CSV with t, x, v, F; two runs with their
    stiffness and no velocity; .npz arrays whose time restarts, unequal lengths; a .npz of
    three traces as rows of one array, no times; HDF5)."""
    import h5py
    import numpy as np

    t = 0.1 * np.arange(40)
    x, v = np.exp(-0.05 * t) * np.cos(t), -np.exp(-0.05 * t) * np.sin(t)
    rows = [",".join(repr(float(c)) for c in row) for row in zip(t, x, v, 0.1 * np.cos(t),
                                                                  strict=True)]
    (pool / "measured.csv").write_text("t,x,v,F\n" + "\n".join(rows) + "\n")
    runs = [f"{run},{float(a)!r},{float(b)!r},{1.0 + run!r}" for run in (0, 1)
            for a, b in zip(t, np.cos((1 + run) * t), strict=True)]
    (pool / "runs.csv").write_text("run,t,x,stiffness\n" + "\n".join(runs) + "\n")
    np.savez(pool / "sim.npz", time=np.concatenate([t, t[:30]]),
             pos=np.concatenate([x, x[:30]]), vel=np.concatenate([v, v[:30]]))
    np.savez(pool / "scope.npz", x=np.stack([x, 2 * x, 0.5 * x]))
    with h5py.File(pool / "log.h5", "w") as f:
        for name, values in (("t", t), ("x", x), ("v", v)):
            f[name] = values


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread, as ``odernn`` runs (it sets OMP_NUM_THREADS=1 before torch loads,
    which in this process may have happened already): the second core is busy elsewhere."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class Example:
    line: str  # as written
    where: str  # "odernn simulate --help", "README.md"

    @property
    def argv(self) -> list[str]:
        words = shlex.split(self.line, comments=True)
        return words[1:]  # without "odernn" (or .venv/bin/odernn)

    @property
    def command(self) -> str:
        return self.argv[0] if self.argv and not self.argv[0].startswith("-") else ""


def help_examples() -> list[Example]:
    """The example lines of every command's --help epilog (every command must have some)."""
    from typer import main as typer_main

    _register_commands()
    out = []
    for name, command in typer_main.get_command(app).commands.items():
        lines = [line.strip() for line in (command.epilog or "").splitlines()]
        found = [re.sub(r"\s{2,}\(.*\)$", "", line) for line in lines
                 if line.startswith("odernn ")]
        assert found, f"odernn {name} --help has no examples"
        out += [Example(line, f"odernn {name} --help") for line in found]
    return out


def readme_blocks() -> list[tuple[str, str]]:
    """``(language, text)`` of every fenced code block of the README."""
    return re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


def readme_examples() -> list[Example]:
    """``odernn`` lines of the README's shell blocks; every other line must be in NOT_RUN."""
    out, unlisted = [], []
    for language, text in readme_blocks():
        if language == "python" or text.startswith(LAYOUT):
            continue
        for line in filter(None, (line.strip() for line in text.splitlines())):
            command = line.split("#")[0].strip()
            if re.match(r"(\.venv/bin/)?odernn\s", command):
                out.append(Example(command, "README.md"))
            elif command not in NOT_RUN:
                unlisted.append(line)
    assert not unlisted, f"README lines neither run nor listed in NOT_RUN: {unlisted}"
    return out


def shrink(argv: list[str]) -> list[str]:
    """The size flags appended to ``argv`` (the first match in :data:`SHRINK`)."""
    for command, word, flags in SHRINK:
        if argv[0] == command and (word is None or word in argv):
            return flags
    return []


def output_of(argv: list[str]) -> str | None:
    for i, word in enumerate(argv[:-1]):
        if word in ("-o", "--output"):
            return argv[i + 1]
    return None


def stage(example: Example) -> int:
    return STAGES.index(example.command) if example.command in STAGES else -1


OWN_PROCESS = {
    "--nproc": "re-launches its own command line (sys.argv) under torchrun",
}
"""Examples holding one of these words run as a process of the installed ``odernn`` script,
in the background while the others run in this process (their one torch thread leaves the
second core free)."""

SCRIPT = Path(sys.executable).parent / "odernn"


def prepare(directory: Path, argv: list[str], pool: Path) -> list[str]:
    """Copy the pool files ``argv`` names (its output too, with ``--resume``) into a new
    ``directory``; return ``argv`` with ``*`` patterns expanded there, as a shell would."""
    directory.mkdir(parents=True)
    out = output_of(argv)
    for word in argv:
        if word.startswith("-") or (word == out and "--resume" not in argv):
            continue
        for name in sorted(glob.glob(word, root_dir=pool)) if glob.has_magic(word) else [word]:
            source = pool / name
            if source.exists():
                (directory / name).parent.mkdir(parents=True, exist_ok=True)
                copy = shutil.copytree if source.is_dir() else shutil.copyfile
                copy(source, directory / name)
    expanded = []
    for word in argv:
        matches = sorted(glob.glob(word, root_dir=directory)) if glob.has_magic(word) else []
        expanded += matches or [word]
    return expanded


def collect(directory: Path, argv: list[str], pool: Path) -> None:
    """Keep ``argv``'s output in the pool for later examples (the first writer wins)."""
    out = output_of(argv)
    if out is None or (pool / out).exists() or not (directory / out).exists():
        return
    (pool / out).parent.mkdir(parents=True, exist_ok=True)
    copy = shutil.copytree if (directory / out).is_dir() else shutil.copyfile
    copy(directory / out, pool / out)


def test_every_help_and_readme_example_runs(tmp_path, monkeypatch, capsys):
    examples = help_examples() + readme_examples()
    commands = {e.command for e in examples}
    assert commands <= {*STAGES, ""}, f"commands with no stage: {commands - set(STAGES)}"
    assert {e.where for e in examples} >= {f"odernn {c} --help" for c in STAGES} | {"README.md"}
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "my-spec.toml").write_text(MY_SPEC)
    import_sources(pool)
    setup = shlex.split(SETUP["test-ood.h5"])[1:]
    argv = prepare(tmp_path / "setup", setup, pool)
    monkeypatch.chdir(tmp_path / "setup")
    assert main(argv) == 0, capsys.readouterr().err
    collect(tmp_path / "setup", setup, pool)

    failures: list[str] = []

    def check(example: Example, argv: list[str], directory: Path, code: int, err: str) -> None:
        out = output_of(argv)
        if code != 0 or (out is not None and not (directory / out).exists()):
            failures.append(f"{example.where}: {example.line} (run as odernn "
                            f"{shlex.join(argv)}) exited {code}: {err.strip()[-300:]}")
        else:
            collect(directory, argv, pool)

    seen: set[str] = set()
    background = []
    ordered = sorted(enumerate(examples), key=lambda ie: (stage(ie[1]), ie[0]))
    for i, (_, example) in enumerate(ordered):
        if example.line.replace(".venv/bin/odernn", "odernn") in seen:
            continue  # the README repeats a --help example: it ran already
        seen.add(example.line)
        argv = example.argv
        if example.line.startswith(".venv/bin/odernn"):  # the installed script itself
            result = subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True)
            ok = result.returncode == 0 and "Usage: odernn" in result.stdout
            check(example, argv, tmp_path, 0 if ok else 1, result.stderr)
            continue
        full = argv + shrink(argv)
        directory = tmp_path / f"ex{i:02d}"
        expanded = prepare(directory, full, pool)
        if OWN_PROCESS.keys() & set(full):
            err = (tmp_path / f"ex{i:02d}.err").open("w")
            process = subprocess.Popen([str(SCRIPT), *expanded], cwd=directory,
                                       stdout=subprocess.DEVNULL, stderr=err)
            background.append((example, full, directory, process, err))
            continue
        monkeypatch.chdir(directory)
        code = main(expanded)
        check(example, full, directory, code, capsys.readouterr().err)
    for example, full, directory, process, err in background:
        code = process.wait(timeout=600)
        err.close()
        check(example, full, directory, code, Path(err.name).read_text())
    assert not failures, "\n".join(failures)


def test_the_readme_python_block_runs(tmp_path, monkeypatch):
    """The README's Python block, statement by statement, with ``load_spec`` giving its
    datasets 16 and 8 trajectories of 200 points instead of 256 and 64 of 1000 (its one
    size-shrinking change); the value an expression line's comment states (shapes, a count) is
    checked, with 256, 64 and 1000 read as 16, 8 and 200."""
    import odernn
    import odernn.data.spec

    sizes = {"train": 16, "test": 8}
    real = odernn.data.spec.load_spec

    def small(name, *args, **kwargs):
        spec = real(name, *args, **kwargs)
        return spec.with_overrides(n=sizes[name], n_steps=200) if name in sizes else spec

    monkeypatch.setattr(odernn.data.spec, "load_spec", small)
    monkeypatch.setattr(odernn, "load_spec", small, raising=False)  # the lazy re-export

    mapped = {256: sizes["train"], 64: sizes["test"], 1000: 200}
    blocks = [text for language, text in readme_blocks() if language == "python"]
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    checked = 0
    for line in blocks[0].splitlines():
        code, _, comment = line.partition("#")
        if not code.strip():
            continue
        if "=" in code or code.startswith(("from ", "import ", " ")) or "(" not in comment:
            exec(code, namespace)
            continue
        value = eval(code, namespace)
        expected = eval(re.sub(r"\d+", lambda m: str(mapped.get(int(m[0]), int(m[0]))),
                               comment.strip()))
        assert value == expected, f"{code.strip()} is {value}; the README says {comment.strip()}"
        checked += 1
    assert checked >= 2
    assert (tmp_path / "report" / "report.html").is_file()
