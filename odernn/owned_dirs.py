"""Whether a directory is odernn's own report or demo: what ``--overwrite`` may replace
(:func:`odernn.atomic.foreign_reason`), decided by what the directory holds, never by its
name. A user's file inside, a link, or a marker that is not ours makes it foreign."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from odernn import budget, checks, jsonio
from odernn.atomic import (
    DEMO_DIRS,
    DEMO_FILES,
    DEMO_MARKER,
    DEMO_WRITING,
    LEGACY_REPORT,
    REPORT_MARKER,
)
from odernn.errors import SpecError


def _entries(path: Path) -> dict[str, os.DirEntry]:
    with os.scandir(path) as it:
        return {e.name: e for e in it}


def _record(path: Path, what: str, limit: int) -> Any:
    """A JSON file of a user's directory, read within ``limit`` bytes and parsed within the
    budget (a BudgetError says so), or None where it is unreadable or no JSON."""
    try:
        return jsonio.loads(checks.read_small_text(path, what, limit=limit, follow=False), what)
    except budget.BudgetError:
        raise
    except (OSError, SpecError, ValueError):
        return None


def report_reason(path: Path) -> str | None:
    entries = _entries(path)
    odd = sorted(n for n, e in entries.items() if e.is_symlink() or not e.is_file())
    if odd:
        return f"{odd[0]} is not a plain file"
    if REPORT_MARKER in entries:  # a small file: a list of names
        marker = _record(path / REPORT_MARKER, "report marker", checks.MAX_TEXT_BYTES)
        listed = marker.get("files") if isinstance(marker, dict) else None
        if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
            return f"its {REPORT_MARKER} is not odernn's"
        extra = sorted(set(entries) - set(listed) - {REPORT_MARKER})
        return f"it holds {extra[0]}, which the report did not write" if extra else None
    from odernn.assess.results import SCHEMA

    metrics = _record(path / "metrics.json", "metrics", 1 << 24)  # some kB; 16 MiB is no
    schema = metrics.get("schema") if isinstance(metrics, dict) else None  # report's
    if schema != SCHEMA:
        return f"no {REPORT_MARKER} and no metrics.json of schema {SCHEMA}"
    extra = sorted(n for n in entries if not LEGACY_REPORT.fullmatch(n))
    return f"it holds {extra[0]}, which a report does not write" if extra else None


def demo_reason(path: Path) -> str | None:
    from odernn.learn.seeds import run_reason

    entries = _entries(path)
    if DEMO_MARKER not in entries or not entries[DEMO_MARKER].is_file():
        return f"no {DEMO_MARKER} in it"
    for name, entry in sorted(entries.items()):
        if entry.is_symlink():
            return f"{name} is a link"
        if name in DEMO_FILES and entry.is_file():
            continue
        if (m := DEMO_WRITING.fullmatch(name)) and (entry.is_dir() if m[1] == "report"
                                                    else entry.is_file()):
            continue
        if name not in DEMO_DIRS or not entry.is_dir():
            return f"it holds {name}, which the demo does not write"
    report = path / "report"
    if report.is_dir() and not checks.is_empty_dir(report):
        reason = report_reason(report)
        if reason is not None:
            return f"report: {reason}"
    runs = path / "runs"
    if runs.is_dir():
        for run in sorted(os.scandir(runs), key=lambda e: e.name):
            if run.is_symlink() or not run.is_dir():
                return f"runs/{run.name} is not a run directory"
            reason = run_reason(Path(run.path))
            if reason is not None:
                return reason
    return None
