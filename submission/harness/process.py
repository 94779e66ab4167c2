"""The model's process tree, as the supervisor holds it: a reaper, the model's loop below it, channels.

``ModelProcess.start`` opens four pipes and starts ``python -m submission.harness.reaper`` in a new
session; the reaper starts the model's loop (``child.py``) and stays the subreaper of everything it starts.

* to the model / from the model: the judge's requests and the loop's answers (``protocol.py``);
* reports: the reaper says when the model's process started and how it ended (exit code), so an exit is
  seen at once even when a worker of the model still holds the channel open;
* control: ``term`` and ``kill`` to the reaper; its end of file (this process gone, even by kill -9)
  makes the reaper kill every descendant.

The model runs as the same user and may kill the reaper. So this process is a child subreaper too while
the tree runs (``Adopter``): the model's processes are then re-parented here, never to init, and ``stop``
kills every one of them, whatever they did to escape (a new session, a cleared parent-death signal).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from .limits import process_tree
from .protocol import MAX_LINE_BYTES, LineReader, ProtocolError, read_available
from .reaper import KILL_ROUNDS_S, children_of, descendants, is_subreaper, set_subreaper

REPORT_LINE_BYTES = 4096


class Adopter:
    """This process as a child subreaper while a model's tree runs: orphans of the tree land here, and
    ``kill_orphans`` ends them. Children this process had before are never touched."""

    _lock, _holders, _was = threading.Lock(), 0, False

    def __init__(self) -> None:
        self.before = set(children_of().get(os.getpid(), ()))
        with Adopter._lock:
            if Adopter._holders == 0:
                Adopter._was = is_subreaper()
                set_subreaper(True)
            Adopter._holders += 1
        self.released = False

    def orphans(self, known: set[int]) -> list[int]:
        """Children of this process that it did not start (the model's, re-parented here), with their trees."""
        children = children_of()
        adopted = [pid for pid in children.get(os.getpid(), ()) if pid not in self.before and pid not in known]
        return adopted + [pid for root in adopted for pid in descendants(root, children)]

    def kill_orphans(self, known: set[int]) -> int:
        """SIGKILL every adopted process until none is left, collecting each; how many there were."""
        deadline, seen = time.monotonic() + KILL_ROUNDS_S, set()
        while time.monotonic() < deadline:
            pids = self.orphans(known)
            if not pids:
                break
            seen.update(pids)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            for pid in set(pids) & set(children_of().get(os.getpid(), ())):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            time.sleep(0.005)
        return len(seen)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        with Adopter._lock:
            Adopter._holders -= 1
            if Adopter._holders == 0 and not Adopter._was:
                set_subreaper(False)


class ModelProcess:
    """Start, watch and end the model's process tree."""

    def __init__(self, env: Mapping[str, str], cwd: str | Path, scratch: Path | None = None):
        self.env, self.cwd, self.scratch = dict(env), str(cwd), scratch
        self.reaper: subprocess.Popen | None = None
        self.pid: int | None = None  # the model's process
        self.exit_code: int | None = None  # minus the signal number when a signal ended it
        self.error: str | None = None  # the reaper could not start the model's process, or its reports broke
        self.adopter: Adopter | None = None
        self.to_model: int | None = None
        self.orphans_killed = 0

    def start(self) -> None:
        control_r, self.control = os.pipe()
        report_r, report_w = os.pipe()
        in_r, self.to_model = os.pipe()
        data_r, data_w = os.pipe()
        os.set_blocking(self.to_model, False)
        self.adopter = Adopter()
        fds = (control_r, report_w, in_r, data_w)
        try:
            self.reaper = subprocess.Popen(
                [sys.executable, "-m", "submission.harness.reaper", *map(str, fds),
                 *([str(self.scratch)] if self.scratch else [])], pass_fds=fds,
                env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            for fd in fds:
                os.close(fd)
        self.data, self.reports = data_r, report_r
        os.set_blocking(data_r, False)
        os.set_blocking(report_r, False)
        self.report_lines, self.reports_eof, self.data_eof = LineReader(REPORT_LINE_BYTES), False, False

    @property
    def fds(self) -> list[int]:
        return [self.data, self.reports]

    @property
    def exited(self) -> bool:
        """The model's process ended (or could not start), or the reaper itself is gone."""
        return self.exit_code is not None or self.error is not None or self.reports_eof

    def read_data(self) -> bytes | None:
        """What the model's loop sent that can be read now (b"" nothing yet); None at end of file."""
        chunk = read_available(self.data)
        if chunk is None:
            self.data_eof = True
        return chunk

    def drain(self) -> bytes:
        """What the model's loop sent that is readable now, at most about two lines' worth (the judge's cap
        decides the rest): a worker that keeps writing cannot make this unbounded."""
        parts, size = [], 0
        while not self.data_eof and size <= 2 * MAX_LINE_BYTES:
            chunk = self.read_data()
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    def read_reports(self) -> None:
        """The reaper's reports. Only the reaper holds their pipe; anything but its reports there means the
        tree was tampered with, which ends the run (``error``)."""
        while not self.reports_eof:
            try:
                chunk = os.read(self.reports, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.reports_eof = True
                return
            try:
                for line in self.report_lines.feed(chunk):
                    self._report(json.loads(line))
            except (ProtocolError, ValueError, TypeError, AttributeError):
                self.error = "the reaper's reports were tampered with (something else wrote to their pipe)"

    def _report(self, message: dict) -> None:
        if isinstance(message.get("pid"), int):
            self.pid = message["pid"]
        elif isinstance(message.get("exit"), int):
            self.exit_code = message["exit"]
        elif isinstance(message.get("error"), str):
            self.error = message["error"][:500]
        else:
            raise ValueError("not a report")

    def write(self, data: memoryview) -> int:
        """Bytes written to the model's loop without blocking (all of them once its end is closed)."""
        if self.to_model is None:
            return len(data)
        try:
            return os.write(self.to_model, data)
        except BlockingIOError:
            return 0
        except OSError:  # BrokenPipeError: the loop is gone or closed its input
            os.close(self.to_model)
            self.to_model = None
            return len(data)

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the model's process to end; whether it has."""
        deadline = time.monotonic() + timeout
        while not self.exited:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if select.select([self.reports], [], [], left)[0]:
                self.read_reports()
        return True

    def model_pids(self) -> list[int]:
        """Every process of the model: the reaper's descendants (the reaper excluded), and any process of the
        tree re-parented to this one after the reaper was killed."""
        if self.reaper is None:
            return []
        pids = [pid for pid in process_tree(self.reaper.pid) if pid != self.reaper.pid]
        if self.reaper.poll() is not None and self.adopter is not None:  # orphans come here only then
            pids += self.adopter.orphans({self.reaper.pid})
        return pids

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
        assert self.adopter is not None, "start() makes the adopter before it starts the reaper"
        self.orphans_killed = self.adopter.kill_orphans({self.reaper.pid})
        self.adopter.release()
        for fd in (self.data, self.reports, self.to_model):
            if fd is not None:
                os.close(fd)
        self.to_model = None
