"""The model's disk: a scratch folder per run, a cap on what it may leave in the output folder.

The supervisor creates the run's scratch folder (``scratch_folder``), the model's ``TMPDIR``, and removes
it when the run ends, whatever the verdict. ``DiskWatch`` measures the scratch folder and the output
folder (what the model added there, the harness's own files aside) at most once a second, and names the
first over its cap: the ``disk`` verdict, with the path and the size. In the model's process
``limit_file_size`` sets ``RLIMIT_FSIZE`` to the scratch cap, with ``SIGXFSZ`` ignored, so no single file
can outgrow the cap between two measurements: the write fails with ``EFBIG`` (an ``OSError`` the model
sees; ``child.py`` reports it as ``disk``). In the grader's container the same caps hold, and the
container's ``/tmp`` and ``~/.cache`` are size-capped tmpfs on a read-only root
(``grading/container_runner.py``).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from pathlib import Path

from . import verdict as verdicts

DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
# The harness's own files in an output folder: never counted against output_mb, never removed.
HARNESS_FILES = {"predictions.jsonl", "predictions.jsonl.tmp", "run.json", "run.json.tmp", "run_report.json",
                 "run_report.json.tmp"}


def scratch_folder() -> Path:
    """A fresh folder for the model's temporary files (its TMPDIR), in the system's temporary folder."""
    return Path(tempfile.mkdtemp(prefix="shopbench-scratch-"))


def limit_file_size(cap_bytes: int | None) -> list[str]:
    """In the model's process: RLIMIT_FSIZE at the scratch cap, a write past it an OSError (EFBIG)."""
    if cap_bytes is None:
        return []
    try:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        limit = cap_bytes if hard == resource.RLIM_INFINITY else min(cap_bytes, hard)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    except (ImportError, ValueError, OSError, AttributeError) as exc:
        return [f"RLIMIT_FSIZE not set ({exc}); the scratch folder is still measured"]
    return [f"RLIMIT_FSIZE {limit / 1e9:g} GB"]


def is_disk_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def usage(folder: Path, skip: frozenset[str] = frozenset()) -> dict[str, int]:
    """Path -> bytes on disk (allocated blocks: a sparse file costs what it holds) of every file under
    ``folder``, the names in ``skip`` at its top level left out."""
    found: dict[str, int] = {}
    todo = [folder]
    while todo:
        current = todo.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if current == folder and entry.name in skip:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    todo.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    stat = entry.stat(follow_symlinks=False)
                    found[entry.path] = getattr(stat, "st_blocks", stat.st_size // 512) * 512
            except OSError:
                continue
    return found


def biggest(files: dict[str, int]) -> str:
    return max(files, key=lambda path: files[path]) if files else ""


class DiskWatch:
    """The scratch folder against ``scratch_cap``, the output folder's growth against ``output_cap``."""

    def __init__(self, scratch: Path | None, scratch_cap: int | None, output: Path | None,
                 output_cap: int | None, every_s: float = 1.0):
        self.scratch, self.scratch_cap, self.output, self.output_cap = scratch, scratch_cap, output, output_cap
        self.every_s, self.next_at = every_s, 0.0
        self.before = usage(output, frozenset(HARNESS_FILES)) if output is not None and output_cap else {}

    def added_to_output(self) -> dict[str, int]:
        """Files the run added to the output folder (or grew there), the harness's own aside."""
        if self.output is None:
            return {}
        now = usage(self.output, frozenset(HARNESS_FILES))
        return {path: size for path, size in now.items() if size > self.before.get(path, -1)}

    def check(self, now: float | None = None, force: bool = False) -> verdicts.Verdict | None:
        now = time.monotonic() if now is None else now
        if not force and now < self.next_at:
            return None
        self.next_at = now + self.every_s
        if self.scratch is not None and self.scratch_cap is not None:
            files = usage(self.scratch)
            if sum(files.values()) > self.scratch_cap:
                return verdicts.disk(f"the model's scratch space (TMPDIR, largest file {biggest(files)})",
                                     str(self.scratch), sum(files.values()), self.scratch_cap)
        added = self.output_over_cap()
        if added and self.output_cap is not None:
            return verdicts.disk(f"the output folder, predictions.jsonl aside (largest file {biggest(added)}):",
                                 str(self.output), sum(added.values()), self.output_cap)
        return None

    def output_over_cap(self) -> dict[str, int]:
        """What the run added to the output folder, when that is over the cap; else nothing."""
        if self.output is None or self.output_cap is None:
            return {}
        added = self.added_to_output()
        return added if sum(added.values()) > self.output_cap else {}

    def remove_output_over_cap(self) -> int:
        """Once the run has ended: delete what it added to the output folder if that passed the cap (the
        harness's files stay); the bytes freed."""
        added = self.output_over_cap()
        for path in added:
            try:
                os.unlink(path)
            except OSError:
                pass
        return sum(added.values())


def remove_scratch(scratch: Path | None) -> None:
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
