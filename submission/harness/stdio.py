"""The container's loop without the container: ``docker/entrypoint.py`` (the model's loop in ``--stdio`` mode)
run as a plain child process of this one, judged over its stdin and stdout by the same judge.

What a container run is, minus Docker's isolation and limits: the tests use it to check the grader's path
writes what local_evaluation.py writes, and the benchmark to measure the channel's cost. ``run_stdio`` is
the whole run; ``StdioTransport`` is the judge's transport (``judge.Transport``). The process's stderr is
this process's; no limit but the judge's clocks applies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..scoring.data import Question
from . import verdict as verdicts
from .batches import grader_order
from .failures import Measured
from .judge import Judge
from .outcome import Progress
from .predictions import PredictionWriter
from .profiles import UNLIMITED, Limits
from .protocol import MAX_LINE_BYTES, read_available


class StdioTransport:
    """A child process whose stdin and stdout are the channel (a new session: ``stop`` ends all of it)."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: str | None = None) -> None:
        self.process = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                        cwd=cwd, start_new_session=True)
        self.started = time.monotonic()
        assert self.process.stdout is not None and self.process.stdin is not None, "both are PIPE"
        self.out, self.into = self.process.stdout.fileno(), self.process.stdin.fileno()
        os.set_blocking(self.out, False)
        os.set_blocking(self.into, False)
        self.eof = self.closed = False

    def fds(self) -> list[int]:
        return [] if self.eof else [self.out]

    def read(self, fd: int) -> bytes | None:
        chunk = read_available(self.out)
        if chunk is None:
            self.eof = True
        return chunk

    def write_fd(self) -> int | None:
        return None if self.closed else self.into

    def write(self, data: memoryview) -> int:
        try:
            return os.write(self.into, data)
        except BlockingIOError:
            return 0
        except OSError:
            self.closed = True
            return len(data)

    @property
    def exited(self) -> bool:
        return self.process.poll() is not None

    def drain(self) -> bytes:
        parts, size = [], 0
        while not self.eof and size <= 2 * MAX_LINE_BYTES:
            chunk = self.read(self.out)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    def wait_exit(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def died(self, when: str) -> verdicts.Verdict:
        return verdicts.died(self.process.returncode, when)

    def check(self, now: float, final: bool = False) -> verdicts.Verdict | None:
        return None

    def next_check(self) -> float:
        return time.monotonic() + 1.0

    def measured(self) -> Measured:
        return Measured()

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM (the model's close() runs), SIGKILL after ``grace_s``, to the whole session."""
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 30.0)):
            if self.process.poll() is not None:
                break
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            self.wait_exit(wait)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:  # BrokenPipeError: the loop is gone
                pass


def run_stdio(command: Sequence[str], questions: Sequence[Question], job: dict[str, Any], writer: PredictionWriter,
              limits: Limits = UNLIMITED, env: Mapping[str, str] | None = None,
              on_progress: Callable[[Progress], None] | None = None) -> tuple[Judge, verdicts.Verdict]:
    """Run ``command`` (the model's loop in --stdio mode) on ``questions``, judged here; the judge (with its
    records and measurements) and the verdict. The process is ended whatever happens."""
    transport = StdioTransport(command, env)
    judge = Judge(transport, job, grader_order(questions), limits, writer, on_progress)
    try:
        verdict = judge.run()
    finally:
        transport.stop()
    return judge, verdict
