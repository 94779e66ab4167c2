"""The output folder of a run: one run at a time in it, and a fresh name when none is given.

``locked(folder)`` holds an exclusive ``flock`` on the folder itself for as long as a run writes there,
so a second run given the same folder refuses at once instead of mixing its predictions into the
first's. The lock belongs to this process (the model's processes do not inherit it) and the kernel
drops it when the process ends, even by kill -9. Taking it again in the same process is a no-op, so
``local_evaluation.py`` can hold it for the whole run while ``run_model`` takes it too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError

_HELD: dict[Path, int] = {}  # folder -> descriptor holding its lock, in this process


@contextlib.contextmanager
def locked(folder: str | Path) -> Iterator[Path]:
    """Create ``folder`` if needed and hold its lock; ConfigError when another run holds it."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if folder in _HELD:
        yield folder
        return
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one run per folder is then up to the user
        yield folder
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"{folder} is in use by another run (it holds the folder's lock); wait for that run to "
                          "end, or give this one another --output-dir") from None
    _HELD[folder] = fd
    try:
        yield folder
    finally:
        del _HELD[folder]
        os.close(fd)


def fresh_folder(parent: str | Path, name: str) -> Path:
    """``parent``/``name``, created now; ``name-2``, ``name-3``, ... when it exists (two runs started in
    the same second get two folders)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        folder = parent / (name if n == 1 else f"{name}-{n}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise AssertionError("unreachable")
