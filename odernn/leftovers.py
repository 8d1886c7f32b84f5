"""The unfinished copies a killed writer left beside an output: a SIGKILL runs no clean-up,
and each ``simulate`` or ``merge`` killed outright left its copy of the file (130 to 180 MB)
for good. The next write of the same output removes those whose writer is gone."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from odernn.interrupt import process_alive

COPY = re.compile(r"\.(.+)\.tmp-(\d+)-[0-9a-f]{8}")
"""The name :func:`odernn.atomic.sibling` gives a copy being written: ``.<name>.tmp-<pid>-<hex>``,
``<name>`` shortened where the whole would exceed the directory's NAME_MAX."""


def remove_dead_copies(path: Path) -> list[Path]:
    """Remove the unfinished copies of ``path`` whose writer (the process id in the name) is
    not running, and return them. Only regular files of that exact name: ``path``'s name,
    or its start in a name of NAME_MAX bytes (shortened)."""
    path, removed = Path(path), []
    directory = path.parent if str(path.parent) else Path(".")
    try:
        name_max = int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        name_max = 255
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = COPY.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            stem, pid = match.groups()
            shortened = len(os.fsencode(entry.name)) == name_max and path.name.startswith(stem)
            if ((stem == path.name or shortened) and int(pid) != os.getpid()
                    and not process_alive(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed
