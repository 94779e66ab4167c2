"""The model's process tree, as the supervisor holds it: a reaper, the model's process below it, channels.

``ModelProcess.start`` writes the job into an unlinked temporary file (nothing is left on disk, whatever
happens), opens three pipes and starts ``python -m submission.harness.reaper`` in a new session; the
reaper starts the model's process (``child.py``) and stays the subreaper of everything it starts.

* data: the model's process reports batches on it (JSON lines, read by ``LineReader`` in linear time);
* reports: the reaper says when the model's process started and how it ended (exit code), so an exit is
  seen at once even when a worker of the model still holds the data pipe open;
* control: ``term`` and ``kill`` to the reaper; its end of file (this process gone, even by kill -9)
  makes the reaper kill every descendant.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping

from .limits import process_tree
from .reaper import KILL_ROUNDS_S

READ_CHUNK = 1 << 22


class LineReader:
    """JSON lines from a pipe: every byte is copied once, however long a line is."""

    def __init__(self, fd: int):
        self.fd, self.parts, self.eof = fd, [], False
        os.set_blocking(fd, False)

    def read(self) -> list[dict]:
        """The complete lines available now (call it when ``select`` says the pipe is readable)."""
        lines = []
        while not self.eof:
            try:
                chunk = os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                break
            if b"\n" not in chunk:
                self.parts.append(chunk)
                continue
            head, _, tail = chunk.rpartition(b"\n")
            data, self.parts = b"".join(self.parts) + head, [tail] if tail else []
            lines.extend(json.loads(line) for line in data.split(b"\n") if line)
        return lines


class ModelProcess:
    """Start, watch and end the model's process tree."""

    def __init__(self, job: dict, env: Mapping[str, str], cwd: str | Path, scratch: Path | None = None):
        self.job, self.env, self.cwd, self.scratch = job, dict(env), str(cwd), scratch
        self.reaper: subprocess.Popen | None = None
        self.pid: int | None = None  # the model's process
        self.exit_code: int | None = None  # minus the signal number when a signal ended it
        self.error: str | None = None  # the reaper could not start the model's process

    def start(self) -> None:
        control_r, self.control = os.pipe()
        report_r, report_w = os.pipe()
        data_r, data_w = os.pipe()
        with tempfile.TemporaryFile(prefix="shopbench-job-") as job:  # unlinked: never left behind
            job.write(json.dumps(self.job).encode())
            job.flush()
            job.seek(0)
            fds = (control_r, report_w, job.fileno(), data_w)
            try:
                self.reaper = subprocess.Popen(
                    [sys.executable, "-m", "submission.harness.reaper", *map(str, fds),
                     *([str(self.scratch)] if self.scratch else [])], pass_fds=fds,
                    env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, start_new_session=True)
            finally:
                for fd in (control_r, report_w, data_w):
                    os.close(fd)
        self.data, self.reports = LineReader(data_r), LineReader(report_r)

    @property
    def fds(self) -> list[int]:
        return [self.data.fd, self.reports.fd]

    @property
    def exited(self) -> bool:
        """The model's process ended (or could not start), or the reaper itself is gone."""
        return self.exit_code is not None or self.error is not None or self.reports.eof

    def read_reports(self) -> None:
        for message in self.reports.read():
            if "pid" in message:
                self.pid = message["pid"]
            elif "exit" in message:
                self.exit_code = message["exit"]
            elif "error" in message:
                self.error = message["error"]

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the model's process to end; whether it has."""
        deadline = time.monotonic() + timeout
        while not self.exited:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if select.select([self.reports.fd], [], [], left)[0]:
                self.read_reports()
        return True

    def model_pids(self) -> list[int]:
        """Every process of the model: the reaper's descendants (the reaper itself excluded)."""
        if self.reaper is None:
            return []
        return [pid for pid in process_tree(self.reaper.pid) if pid != self.reaper.pid]

    def command(self, word: str) -> None:
        try:
            os.write(self.control, word.encode() + b"\n")
        except OSError:  # the reaper is gone already
            pass

    def stop(self, finished: bool, exit_wait_s: float, grace_s: float) -> None:
        """End the tree: a model that finished gets ``exit_wait_s`` to exit on its own, then SIGTERM for
        ``grace_s``, then SIGKILL to every process the model started, whatever it did to escape."""
        if self.reaper is None:
            return
        if not (finished and self.wait_exit(exit_wait_s)) and not self.exited:
            self.command("term")
            self.wait_exit(grace_s)
        self.command("kill")
        os.close(self.control)
        try:
            self.reaper.wait(timeout=KILL_ROUNDS_S + 5)
        except subprocess.TimeoutExpired:  # the reaper is stuck: take the whole session down ourselves
            for pid in self.model_pids() + [self.reaper.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self.reaper.wait()
        for fd in self.fds:
            os.close(fd)
