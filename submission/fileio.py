"""Files the kit writes: never through a symlink, a FIFO or anything else that is not a regular file, and
never blocking on an open.

Every file the kit writes (predictions.jsonl, results.json, scores.json, report.html, scores.png, run.json,
compare.html, the leaderboard, training.json, ...) goes through ``replace_file``: the content is written
to a temporary file created in the same folder with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (a name that exists
already, as anything, is never opened: another name is drawn), flushed to disk, then renamed over the
target. A rename replaces the name itself, so whatever stood there (a symlink to a file elsewhere, a FIFO
nobody reads) is neither followed nor opened; a folder at the name is refused. A crash leaves the old file
whole. The folder is opened once and every step is relative to it, so swapping the folder's path for a
link midway changes nothing.

``open_append`` opens a file that grows while a run goes on (``PredictionWriter``): ``O_NOFOLLOW |
O_NONBLOCK``, and refused unless it is a regular file. ``read_regular`` reads one back the same way.
``refuse_non_regular`` is the check at the start of a run: every name the run will write that exists as
something other than a regular file is named in a ``ConfigError`` (exit status 2) before the model runs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import ConfigError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
FILE_MODE = 0o644  # before the umask, as open() gives


class UnsafeFileError(ConfigError):
    """A name the kit reads or writes is not a regular file (a symlink, a FIFO, a folder, a device...)."""


def kind_of(mode: int) -> str:
    """What ``lstat`` found, in words: 'a symlink', 'a FIFO', 'a folder', ..."""
    for test, words in ((stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat.S_ISDIR, "a folder"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return words
    return "not a regular file"


def describe(path: Path) -> str | None:
    """None when ``path`` is absent or a regular file; else what it is ('a symlink to /etc/passwd')."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return None
    what = kind_of(mode)
    if stat.S_ISLNK(mode):
        with contextlib.suppress(OSError):
            what += f" to {os.readlink(path)}"
    return what


def refuse_non_regular(folder: str | Path, names: Iterable[str], fix: str = "") -> None:
    """ConfigError naming every one of ``names`` in ``folder`` that exists as something other than a
    regular file (a name that does not exist is fine: the kit creates it)."""
    folder = Path(folder)
    found = [f"{folder / name} is {what}" for name in names if (what := describe(folder / name)) is not None]
    if found:
        raise UnsafeFileError(
            f"{'; '.join(found)}: the kit writes its own regular file{'s' * (len(found) > 1)} there and never "
            f"writes through a link, a FIFO or a device; {fix or 'remove it, or choose another --output-dir'}")


@contextlib.contextmanager
def _folder(path: Path) -> Iterator[int]:
    fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def _create_temporary(folder_fd: int, name: str) -> tuple[int, str]:
    """A new file beside ``name`` that nobody else has (O_EXCL on a fresh random name, never followed)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    for _ in range(100):
        temporary = f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(temporary, flags, FILE_MODE, dir_fd=folder_fd), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {name} after 100 tries")


@contextlib.contextmanager
def replacing(path: str | Path, fsync: bool = True) -> Iterator[BinaryIO]:
    """A binary handle on a fresh temporary file; when the block ends without an error, the file is
    flushed (and fsynced) and renamed over ``path``. On an error the temporary file is removed and
    ``path`` is left as it was."""
    path = Path(path)
    with _folder(path) as folder_fd:
        if describe(path) == "a folder":
            raise UnsafeFileError(f"{path} is a folder: the kit writes a file there; remove or rename the folder")
        fd, temporary = _create_temporary(folder_fd, path.name)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                if fsync:
                    os.fsync(handle.fileno())
            os.rename(temporary, path.name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=folder_fd)
            raise


def replace_file(path: str | Path, data: bytes | str, fsync: bool = True) -> None:
    """Write ``data`` (text is written as UTF-8) to ``path`` through a temporary file and a rename."""
    with replacing(path, fsync) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def _open_regular(path: Path, flags: int) -> int:
    """``os.open`` that never follows a link, never blocks, and keeps only a regular file."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, FILE_MODE)
    except OSError:
        what = describe(path)
        if what is not None:  # ELOOP (a symlink), ENXIO (a FIFO with no reader), EISDIR ...
            raise UnsafeFileError(f"{path} is {what}: the kit reads and writes only regular files there; "
                                  "remove it, or choose another --output-dir") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnsafeFileError(f"{path} is {kind_of(mode)}: the kit reads and writes only regular files there; "
                              "remove it, or choose another --output-dir")
    return fd


def open_append(path: str | Path, truncate: bool = False) -> BinaryIO:
    """``path`` opened to append (created if absent; emptied first with ``truncate``), a regular file only."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (os.O_TRUNC if truncate else 0)
    return os.fdopen(_open_regular(Path(path), flags), "ab")


def read_regular(path: str | Path) -> bytes:
    """The bytes of ``path``, which must be a regular file (a link or a FIFO is refused, never followed)."""
    with os.fdopen(_open_regular(Path(path), os.O_RDONLY), "rb") as handle:
        return handle.read()


def truncate_regular(path: str | Path, size: int) -> None:
    """Cut the regular file ``path`` to ``size`` bytes, fsynced (a link or a FIFO is refused, never followed)."""
    fd = _open_regular(Path(path), os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
