"""A group of runs that differ only in their seed: ``odernn train --seeds K``.

The format (the only module that names it): a directory holding ``seeds.json``,
``{"format": "odernn-seeds", "version": 1, "seeds": [s, s+1, ...], "members":
["seed-s", ...], "done": [the members finished], "started": [the members this group has
started]}``, and one run directory (:mod:`odernn.learn.rundir`) per seed, each trained with
the same options and data but its own seed (reservoir draw, initial weights, batch order,
and, where validation is a held-out fraction of the training file, which trajectories are
held out: the members' spread then includes the split's).
``seeds.json`` is written before the first member, once its input is checked, and again
after each, so an interrupted group is recognisable
and ``--resume`` continues it where it stopped: finished members are kept (once checked to
be of the same options and data), a started one resumes, and one not started (a previous
group's, which an interrupted ``--overwrite`` left) is trained anew over it. A directory
holding anything else is refused. Loaded, a group is an
:class:`~odernn.learn.models.ensemble.Ensemble`: the evaluator reports every seed, their
median and spread, and the members' joint closed loop as its own entry.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from odernn import atomic, budget, jsonio
from odernn.checks import check_seed, is_whole, read_small_text, refuse_link
from odernn.errors import DataError, OutputError, SpecError
from odernn.interrupt import process_alive
from odernn.learn.config import TrainConfig
from odernn.learn.models.ensemble import Ensemble
from odernn.learn.outcome import TrainResult
from odernn.learn.rundir import BEST, LAST, check_run_dir, is_ours, read_config

SEEDS_FILE = "seeds.json"
INDEX_WRITING = re.compile(rf"\.{re.escape(SEEDS_FILE)}\.tmp-(\d+)-[0-9a-f]+")
"""The temporary name of the index being written (:func:`odernn.atomic.sibling`), with the
writer's process id: a group killed while writing it keeps one, which is still the group's,
and the next index written removes it (:func:`_write_index`)."""
FORMAT, VERSION = "odernn-seeds", 1
MAX_SEEDS = 1000
"""The most members a group may have (each is a full training run)."""


def is_group(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding a seed group's ``seeds.json``."""
    return (Path(path) / SEEDS_FILE).is_file()


def a_member(path: str | Path) -> Path | None:
    """The first member of group ``path`` (to name in a message), or None if its index is
    not readable."""
    try:
        return Path(path) / _read_index(Path(path))["members"][0]
    except (DataError, IndexError):
        return None


def member_seeds(base: int, count: int) -> list[int]:
    """The seeds of ``count`` members from ``base``: ``base, base + 1, ...`` (each checked)."""
    if not is_whole(count) or not 1 <= count <= MAX_SEEDS:
        raise SpecError(f"seeds (--seeds) must be a whole number in [1, {MAX_SEEDS}], got "
                        f"{count!r}")
    seeds = [int(base) + k for k in range(count)]
    check_seed(seeds[-1], f"seed {base} + {count - 1} (the last member's)")
    return seeds


def read_group(path: str | Path) -> dict[str, Path]:
    """The members of a group, ``seed-N -> run directory``, in seed order; DataError if
    ``seeds.json`` is not a group's or a member has no best checkpoint yet."""
    path = Path(path)
    doc = _read_index(path)
    members = {m: path / m for m in doc["members"]}
    linked = [m for m, p in members.items() if p.is_symlink()]
    if linked:  # a group from elsewhere could name any run on the disk
        raise DataError(f"seed group {path}: member {linked[0]} is a symbolic link; a group's "
                        "members are its own directories")
    missing = [m for m, p in members.items() if not (p / BEST).is_file()]
    if missing and missing[0] in doc.get("done", []):
        raise DataError(f"seed group {path}: member {missing[0]} finished without a {BEST} (its "
                        "training diverged before any finite closed-loop validation): train "
                        "the group again with a lower lr, clip or other seeds")
    if missing:
        raise DataError(f"seed group {path}: member {missing[0]} has no {BEST} yet (an "
                        "interrupted group: run the same odernn train command with --resume)")
    _check_alike(path, members)
    return members


def _check_alike(path: Path, members: dict[str, Path]) -> None:
    """Refuse a group whose members were trained with other options or data than its first
    (but for the seed and the device): an ``--overwrite`` killed in a member (SIGKILL) left
    the new member beside the previous group's, which read as one group."""
    def options(run: Path) -> dict[str, Any]:
        doc = read_config(run) or {}
        config = {k: v for k, v in doc.get("config", {}).items() if k not in ("seed", "device")}
        return {"config": config, "data": doc.get("data")}

    first, *others = members.items()
    want = options(first[1])
    for name, run in others:
        got = options(run)
        if got != want:
            what = next((k for k in sorted(want["config"].keys() | got["config"].keys())
                         if want["config"].get(k) != got["config"].get(k)), "data")
            raise DataError(f"seed group {path}: {name} was trained with other {what} than "
                            f"{first[0]} (an interrupted --overwrite left members of two "
                            "groups): run that odernn train command again with --overwrite")


def first_run(path: str | Path) -> Path:
    """A group's first member (whose history and options stand for the group's: the members
    differ only in their seed); any other path as it is."""
    return next(iter(read_group(path).values())) if is_group(path) else Path(path)


def run_reason(run: Path, group: bool = True, where: str = "") -> str | None:
    """Why ``run`` (named ``where``, by default ``runs/<name>``) is neither a run directory nor
    (with ``group``) a seed group of them, or None (a demo's ``--overwrite`` replaces only its
    own runs)."""
    where = where or f"runs/{run.name}"
    grouped = group and is_group(run)
    for e in os.scandir(run):
        if grouped and e.name.startswith("seed-") and e.is_dir() and not e.is_symlink():
            reason = run_reason(Path(e.path), False, f"{where}/{e.name}")
        elif grouped and _index_file(e):
            continue
        elif not is_ours(e):
            reason = f"it holds {where}/{e.name}, which training does not write"
        else:
            continue
        if reason is not None:
            return reason
    return None


def load_group(path: str | Path, device: str | torch.device = "cpu") -> Ensemble:
    """The :class:`~odernn.learn.models.ensemble.Ensemble` of a group's members; a warning
    where some did not finish (an interrupted group was evaluated without a word)."""
    from odernn.learn.checkpoint import read_checkpoint
    from odernn.learn.models import from_record

    members = read_group(path)  # refused first where a member has no checkpoint at all
    done = _read_index(Path(path)).get("done", [])
    if unfinished := [m for m in members if m not in done]:
        warnings.warn(f"seed group {path}: {', '.join(unfinished)} did not finish training (an "
                      "interrupted group: the same odernn train command with --resume goes "
                      "on); taken as it stands", stacklevel=2)
    return Ensemble({name: from_record(read_checkpoint(run, device), run, device)
                     for name, run in members.items()})


def check_group(path: Path, seeds: list[int], resume: bool, overwrite: bool) -> None:
    """Refuse a group directory that cannot be used as asked, before anything is written."""
    refuse_link(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} exists and is not a directory; a seed group is a directory")
    if not path.exists():
        if resume:
            raise DataError(f"cannot resume: {path} does not exist")
        return
    names = {f"seed-{s}" for s in seeds}
    entries = list(path.iterdir())
    if entries and not is_group(path):
        raise OutputError(f"{path} is not empty and not a seed group (no {SEEDS_FILE}); groups "
                          "are written only into a new or empty directory or over a previous "
                          "group: choose another -o")
    others = sorted(p.name for p in entries if not _index_file(p) and not (
        p.is_dir() and not p.is_symlink() and p.name.startswith("seed-")))
    if others:
        raise OutputError(f"{path} holds files that are not a seed group's ({', '.join(others[:3])}"
                          "); choose another -o")
    if entries and resume:
        stored = _read_index(path).get("members")
        if stored != [f"seed-{s}" for s in seeds]:
            raise SpecError(f"cannot resume {path}: it was started with members {stored}, "
                            f"this command asks for {sorted(names)}; give the same --seeds "
                            "and --seed")
    elif entries and not overwrite:
        raise OutputError(f"seed group {path} already exists; pass --overwrite or --resume "
                          "(in Python overwrite=True or resume=True)")
    elif entries:  # replaced only if its index is odernn's, not a file of the same name
        try:
            _read_index(path)
        except DataError as err:
            raise OutputError(f"{err}: not replaced; choose another -o") from None
    for s in seeds:
        member = path / f"seed-{s}"
        check_run_dir(member, resume and (member / LAST).is_file(), overwrite or resume)


def train_seeds(train: Any, config: TrainConfig, run_dir: str | Path | None, seeds: int, *,
                val: Any = None, resume: bool = False, overwrite: bool = False,
                progress: Any = True, tensorboard: str | Path | None = None
                ) -> dict[str, TrainResult]:
    """Train ``seeds`` members of ``config`` (seeds ``config.seed``, ``+ 1``, ...), one after
    another, into the group ``run_dir`` (None: in memory, nothing written); their results by
    member name, up to the first member interrupted. ``tensorboard``: each member's epochs
    under ``DIR/seed-N``."""
    from odernn.learn.training import check as check_one
    from odernn.learn.training import train as train_one

    values = member_seeds(config.seed, seeds)
    path = None if run_dir is None else Path(run_dir)
    names = [f"seed-{s}" for s in values]
    done: list[str] = []
    started = list(names)  # an index from before "started": every member counts as started
    if path is not None:
        check_group(path, values, resume, overwrite)
        if resume and is_group(path):
            index = _read_index(path)
            done = [m for m in index.get("done", []) if m in names]
            started = [m for m in index.get("started", names) if m in names]
        for s, name in zip(values, names, strict=True):  # kept only if this command would
            if name in done and (path / name / LAST).is_file():  # resume them: the same
                # options and data (else a mixed group); one that diverged left nothing
                check_one(train, replace(config, seed=s), path / name, val=val, resume=True,
                          overwrite=True)
    # the index is written before the first member, once that member's input is checked (a
    # refusal leaves no group behind, and a previous group as it was): a group killed in it
    # (SIGKILL, no handler) had none, neither resumable nor replaceable, or a previous
    # group's, whose members read as finished beside the new one
    fresh = path is not None and not (resume and is_group(path))
    stale = [] if path is None or resume or not path.is_dir() else [
        p for p in sorted(path.glob("seed-*")) if p.name not in names]
    for old in stale:  # a previous group's other members, replaced with it (runs of ours)
        check_run_dir(old, False, True)
    results: dict[str, TrainResult] = {}
    for s, name in zip(values, names, strict=True):
        if name in done:  # finished before the interruption: kept as it is
            continue
        member = None if path is None else path / name
        again = member is not None and (member / LAST).is_file() and resume and name in started
        if fresh:
            check_one(train, replace(config, seed=s), member, val=val, resume=again,
                      overwrite=overwrite or resume)
            path.mkdir(parents=True, exist_ok=True)
            _write_index(path, values, done, [name])
            fresh = False
        result = train_one(train, replace(config, seed=s), member, val=val, resume=again,
                           overwrite=overwrite or resume, progress=progress,
                           tensorboard=None if tensorboard is None else Path(tensorboard) / name)
        results[name] = result
        if path is not None:
            if result.status != "interrupted":
                done.append(name)
            started = list(dict.fromkeys([*(started if resume else done), name]))
            path.mkdir(parents=True, exist_ok=True)  # a first member that diverged left none
            _write_index(path, values, done, started)
            for old in stale:
                shutil.rmtree(old, ignore_errors=True)
            stale = []
        if result.status == "interrupted":
            break
    return results


def _index_file(entry: os.DirEntry[str] | Path) -> bool:
    """Whether a group's entry is its index, or the index a killed group was writing."""
    return (entry.name == SEEDS_FILE or INDEX_WRITING.fullmatch(entry.name) is not None) \
        and entry.is_file() and not entry.is_symlink()


def _read_index(path: Path) -> dict[str, Any]:
    """``seeds.json`` of group ``path``, checked (a small text file, the format, the member
    names, ``done`` among them), or one DataError line."""
    where = path / SEEDS_FILE
    try:
        doc = jsonio.loads(read_small_text(where, "seed group index"), str(where))
    except budget.BudgetError:
        raise
    except (SpecError, ValueError) as err:
        raise DataError(f"{where} is not readable as a seed group: {err}") from None
    members = doc.get("members") if isinstance(doc, dict) else None
    ok = (isinstance(members, list) and members and doc.get("format") == FORMAT
          and doc.get("version") == VERSION
          and all(isinstance(m, str) and m.startswith("seed-") and "/" not in m
                  for m in members) and len(set(members)) == len(members)
          and isinstance(doc.get("done", []), list)
          and all(m in members for m in doc.get("done", []))
          and isinstance(doc.get("started", []), list)
          and all(m in members for m in doc.get("started", [])))
    if not ok:
        raise DataError(f"{where} is not an odernn seed group (format {FORMAT} version "
                        f"{VERSION} with its members)")
    return doc


def _write_index(path: Path, seeds: list[int], done: list[str], started: list[str]) -> None:
    """``seeds.json``: the members, those finished (``done``), which a resume keeps, and those
    started (a resume resumes them; one not started it trains anew)."""
    for entry in os.scandir(path):  # left by a group killed while writing its index
        writer = INDEX_WRITING.fullmatch(entry.name)
        if writer is not None and _index_file(entry) and not process_alive(writer.group(1)):
            Path(entry.path).unlink(missing_ok=True)
    doc = {"format": FORMAT, "version": VERSION, "seeds": seeds,
           "members": [f"seed-{s}" for s in seeds], "done": done, "started": started}
    atomic.write_text(path / SEEDS_FILE, jsonio.dumps(doc, indent=2) + "\n",
                      what="the seed group's index")
