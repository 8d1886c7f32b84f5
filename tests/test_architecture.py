"""The codebase's shape, checked: owners, one way to do each thing, small modules.

Each rule is one a reviewer would otherwise have to re-check by hand after every change
(docs/design.md gives the reasons).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SOURCES = sorted([*ROOT.glob("odernn/**/*.py"), *ROOT.glob("cli/*.py")])
MAX_LINES = 430
"""A module longer than this does more than one thing (about 400 lines, with slack)."""


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_no_private_name_is_imported_from_another_module():
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("odernn"):
                found += [f"{relative(path)}:{node.lineno} {node.module}.{a.name}"
                          for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []


NAME = r"""["'](rnn|lstm|gru|esn|ffn)["']"""
FAMILY_BRANCH = re.compile(rf"""(family|model|\["model"\])\s*[!=]=\s*{NAME}"""
                           rf"""|{NAME}\s*[!=]=\s*\w*(family|model)"""
                           rf"""|{NAME}\s+(not\s+)?in\s+\w*famil""")


def test_no_branch_on_a_family_name_outside_the_models():
    found = [f"{relative(path)}:{k}: {line.strip()}" for path in SOURCES
             if not relative(path).startswith("odernn/learn/models/")
             for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if FAMILY_BRANCH.search(line)]
    assert found == []


@pytest.mark.parametrize(("pattern", "owner"), [
    (r"os\.replace\(|os\.rename\(|\.rename\(|\.replace\(\s*\w*(path|target)", "odernn/atomic.py"),
    (r"\bdifflib\b|get_close_matches", "odernn/checks.py"),
    (r"allow_nan", "odernn/jsonio.py"),
])
def test_one_owner_for_renames_did_you_mean_and_json(pattern, owner):
    """Write-aside-then-rename lives in odernn.atomic, "did you mean" in odernn.checks, the JSON
    policy for non-finite numbers in odernn.jsonio (the store's content digest, a hash
    input, is not a file: its canonical JSON is its own)."""
    exempt = {owner, "odernn/data/store.py"} if pattern == "allow_nan" else {owner}
    found = [f"{relative(path)}:{k}" for path in SOURCES if relative(path) not in exempt
             for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(pattern, line)]
    assert found == []


def test_modules_are_small():
    long = {relative(p): n for p in SOURCES
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_benchmark_script_imports():
    """The scripts behind the docs' figures run outside the test suite: a renamed function
    broke benchmarks/rollout.py's import and nothing noticed. Each is imported (its main is
    not run), in a process of its own: the scripts set thread counts as they load."""
    import subprocess
    import sys

    code = ("import importlib, pathlib, sys; sys.path.insert(0, 'benchmarks'); bad = []\n"
            "for p in sorted(pathlib.Path('benchmarks').glob('*.py')):\n"
            "    try: importlib.import_module(p.stem)\n"
            "    except Exception as e: bad.append(f'{p.name}: {type(e).__name__}: {e}')\n"
            "print('\\n'.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_the_gpu_check_runs_on_the_cpu():
    """``benchmarks/gpu_check.py`` runs only where a GPU is lent, a few minutes at a time: a
    failure of the script itself, or of a test it runs, would spend them. Its dry run takes
    every part through the CPU at toy sizes, the tests marked gpu with the CPU in the GPU's
    place."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--dry-run",
                          "--rollout-steps", "5"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert "tests marked gpu: passed" in lines, out.stdout + out.stderr
    for family in ("rnn", "lstm", "gru"):
        assert any(line.split()[:2] == [family, "64"] for line in lines), out.stdout
    trained = [line for line in lines if " trained on cpu " in line]
    assert [line.split()[0] for line in trained] == ["rnn", "lstm", "gru", "esn"], out.stdout
    assert all(line.endswith(" ok") for line in trained), out.stdout
    assert sum("NRMSE(x): float32" in line for line in lines) == 3, out.stdout
    assert any(line.startswith("LSTM hidden 16, batch 64") for line in lines), out.stdout
