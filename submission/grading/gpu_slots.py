"""The GPUs of a worker's host, handed out to grades: each grade holds its devices, no two grades share one.

Each device has a lock file in a folder of the host (``$TMPDIR/shopbench-gpus``), held with ``flock`` by
the process that runs the grade and inherited by the grade's own process: the kernel drops the lock when
both have ended, even by ``kill -9``, so a dead worker never leaves a device taken. Two workers on one
host that name the same devices share them safely.

One grade takes devices at a time (a lock of its own, ``allocate.lock``): while a 4-GPU grade waits
for its four, it keeps the ones that come free, and 1-GPU grades that arrive after it wait behind it
instead of taking them one by one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

FOLDER_NAME = "shopbench-gpus"
ALLOCATOR = "allocate.lock"


def device_ids(text: str | None) -> tuple[str, ...] | None:
    """``--gpus 0,1`` as device ids: host GPU indexes (or GPU-... UUIDs), each named once."""
    if text is None:
        return None
    ids = tuple(part.strip() for part in text.split(","))
    bad = [i for i in ids if not (i.isdigit() or i.startswith("GPU-"))]
    if bad or not ids:
        raise ConfigError(f"--gpus '{text}': expected device indexes separated by commas, e.g. --gpus 0,1 "
                          f"(or GPU-... UUIDs); got '{bad[0] if bad else text}'")
    if len(set(ids)) != len(ids):
        raise ConfigError(f"--gpus '{text}' names a device twice")
    return ids


def lock_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / FOLDER_NAME
    folder.mkdir(mode=0o1777, exist_ok=True)
    return folder


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@dataclass
class HeldGpus:
    """Devices held by this process until ``release`` (or its end); ``fds`` go to the grade's process."""

    device_ids: tuple[str, ...]
    fds: tuple[int, ...]

    def release(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = ()


NONE_HELD = HeldGpus((), ())


def acquire(pool: Sequence[str], count: int, wait_s: float, poll_s: float = 0.5,
            folder: Path | None = None) -> HeldGpus | None:
    """``count`` devices of ``pool``, waiting up to ``wait_s`` for them; None when they did not come free."""
    if count <= 0:
        return NONE_HELD
    if count > len(pool):
        raise ValueError(f"{count} GPUs asked of a pool of {len(pool)}")
    folder = folder or lock_folder()
    deadline = time.monotonic() + wait_s
    allocator = None
    held: dict[str, int] = {}
    try:
        while allocator is None:
            allocator = _try_lock(folder / ALLOCATOR)
            if allocator is None:
                if time.monotonic() > deadline:
                    return None
                time.sleep(poll_s)
        while True:
            for device in pool:
                if device not in held and len(held) < count:
                    fd = _try_lock(folder / f"gpu-{device}.lock")
                    if fd is not None:
                        held[device] = fd
            if len(held) == count:
                ids = tuple(d for d in pool if d in held)
                result = HeldGpus(ids, tuple(held[d] for d in ids))
                held = {}
                return result
            if time.monotonic() > deadline:
                return None
            time.sleep(poll_s)
    finally:
        for fd in held.values():
            os.close(fd)
        if allocator is not None:
            os.close(allocator)
