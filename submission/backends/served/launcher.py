"""Start an OpenAI-compatible server inside the model's process tree, wait until it answers, and stop it
so that nothing it started outlives the run.

- The command comes from ``launch:`` with ``{host}``, ``{port}``, ``{weights}``, ... filled in word by
  word (``render_command``). The host is always 127.0.0.1. The port is reserved before the server starts:
  a socket bound to it with SO_REUSEADDR and SO_REUSEPORT (and not listening) keeps every process that
  sets neither from taking it, while the server, which sets one of them (uvicorn and vLLM SO_REUSEADDR,
  llama.cpp's cpp-httplib SO_REUSEPORT), still binds it. It is released once the server answers. One server
  starts at a time in a process (a lock).
- The server runs under ``guard.py`` (a standalone standard-library script, run as ``python -I``) in a new
  process group, a child of the model's process, so the harness's accounting (RAM, NVML) and its kill on a
  verdict cover it. The guard stops the server when the model's process dies, however it dies.
- Its stdout and stderr are drained continuously by a thread that keeps the last lines (and writes them
  to ``log_file`` when set); every error names the command and ends with those lines.
- ``stop()`` sends SIGTERM to the group, waits up to the grace period, then SIGKILLs the group, every
  descendant recorded while it ran and every process that carries this launch's mark. It runs from
  ``ServedModel.close()``, its context manager, ``atexit`` and the SIGTERM/SIGINT handlers installed here.
- The mark: the guard and the server start with ``SHOPBENCH_SERVED_LAUNCH=<a random token>`` in their
  environment, which every process they start inherits. A server that kills its guard, or a daemon it
  forks into a new session, can leave the tree the guard watches; it cannot leave the mark, so ``stop()``
  (and the first look after a guard died by a signal) finds and kills it by the mark, from ``/proc``.
"""

from __future__ import annotations

import atexit
import collections
import io
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from ...errors import ConfigError, ServerError
from ...fileio import open_append
from . import guard as served_guard

HOST = "127.0.0.1"  # never localhost (may resolve to ::1) nor 0.0.0.0 (reachable from outside)
MARK = "SHOPBENCH_SERVED_LAUNCH"  # in the environment of every process a launch starts: see the docstring
GUARD = Path(served_guard.__file__).resolve()
TAIL_LINES = 40
_LAUNCH_LOCK = threading.Lock()
_LIVE: set = set()  # launchers not yet stopped (strong references: atexit must still find them)


@dataclass(frozen=True)
class LaunchPlan:
    """A rendered launch: the server's argv, the extra environment and the time limits."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 300.0
    shutdown_grace_s: float = 30.0
    log_file: Path | None = None

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def render_command(template: str, values: Mapping[str, str]) -> list[str]:
    """Split ``template`` into words, then fill each word's placeholders (a path with spaces stays one word)."""
    words = []
    for word in shlex.split(template):
        for name, value in values.items():
            word = word.replace("{" + name + "}", value)
        words.append(word)
    return words


def resolve_executable(argv: list[str]) -> list[str]:
    """``argv`` with its program found on PATH or, failing that, beside this Python (a virtual
    environment's ``bin/``, which is not on PATH when the venv's python is run without activating it)."""
    program = argv[0]
    if os.sep in program or shutil.which(program):
        return argv
    beside = Path(sys.executable).parent / program
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside), *argv[1:]]
    raise ServerError(f"launch: cannot find the program {program!r} on PATH or in {beside.parent}; install it "
                      f"(for `transformers serve`: pip install \"transformers[serving]\") or give its full path")


class PortReservation:
    """A free port on 127.0.0.1, held by a bound, not listening, socket until released. With SO_REUSEADDR and
    SO_REUSEPORT set, a server that sets either still binds the port; a process that sets neither cannot."""

    def __init__(self, port: int = 0) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # uvicorn, vLLM
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # llama.cpp (cpp-httplib)
        try:
            self.socket.bind((HOST, port))
        except OSError as error:
            self.socket.close()
            raise ServerError(f"cannot reserve port {port} on {HOST}: {error}") from None
        self.port = self.socket.getsockname()[1]

    def release(self) -> None:
        self.socket.close()


class LogDrain(threading.Thread):
    """Reads the server's output as it comes, keeps the last lines, copies all of it to a file if asked."""

    def __init__(self, stream: IO[bytes], log_file: Path | None) -> None:
        super().__init__(name="served-log", daemon=True)
        self.stream, self.log_file = stream, log_file
        self.lines: collections.deque[str] = collections.deque(maxlen=400)
        self.server_pid: int | None = None
        self.pid_seen = threading.Event()

    def run(self) -> None:
        sink = self._open_sink()
        try:
            for raw in iter(self.stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if line.startswith(served_guard.SERVER_PID_LINE):
                    self.server_pid = int(line.split()[3])
                    self.pid_seen.set()
                self.lines.append(line)
                if sink is not None:
                    sink.write(line + "\n")
                    sink.flush()
        finally:
            self.pid_seen.set()
            if sink is not None:
                sink.close()
            self.stream.close()

    def _open_sink(self) -> io.TextIOWrapper | None:
        """The log file, or None; a file that cannot be written must not stop the draining."""
        if self.log_file is None:
            return None
        try:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            # never through a link, never blocking on a FIFO (the server would wait on a pipe nobody drains)
            return io.TextIOWrapper(open_append(self.log_file), encoding="utf-8", errors="replace")
        except (OSError, ConfigError) as error:
            self.lines.append(f"(log_file {self.log_file} cannot be written: {error}; the log is kept in memory only)")
            return None

    def tail(self, n: int = TAIL_LINES) -> str:
        lines = list(self.lines)[-n:]
        return "\n".join("    " + line for line in lines) if lines else "    (the server wrote nothing)"


class ServerLauncher:
    """One launched server: ``start()``, ``dead()``, ``stop()``. See the module docstring."""

    def __init__(self, plan: LaunchPlan) -> None:
        self.plan = plan
        self.guard: subprocess.Popen | None = None
        self.drain: LogDrain | None = None
        self.reservation: PortReservation | None = None
        self.recorded: dict[int, int] = {}
        self.stopped = False
        self.stop_lock = threading.RLock()  # a signal handler may call stop() while stop() runs
        self.recorded_at = 0.0
        self.mark = secrets.token_hex(12)
        self.swept = False

    @property
    def server_pid(self) -> int | None:
        return self.drain.server_pid if self.drain else None

    @property
    def guard_pid(self) -> int | None:
        return self.guard.pid if self.guard else None

    def start(self, port: int = 0) -> str:
        """Reserve a port, start the guard and server; returns the base URL. Holds the launch lock until
        ``ready()`` (or ``stop()``) releases it."""
        _LAUNCH_LOCK.acquire()
        try:
            self.reservation = PortReservation(port)
            self.argv = [word.replace("{port}", str(self.reservation.port)) for word in self.plan.argv]
            env = {**os.environ, **self.plan.env, MARK: self.mark}
            command = [sys.executable, "-I", str(GUARD), "--parent-pid", str(os.getpid()),
                       "--grace-s", str(self.plan.shutdown_grace_s), "--", *self.argv]
            self.guard = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, env=env, start_new_session=True)
        except BaseException:
            self._release()
            raise
        _LIVE.add(self)
        install_exit_handlers()
        assert self.guard.stdout is not None  # stdout=PIPE
        self.drain = LogDrain(self.guard.stdout, self.plan.log_file)
        self.drain.start()
        self.drain.pid_seen.wait(timeout=30)
        self.started_at = time.monotonic()
        return f"http://{HOST}:{self.reservation.port}"

    def ready(self) -> None:
        """The server answers: give up the port reservation and let the next launch proceed."""
        self._release()

    def _release(self) -> None:
        if self.reservation is not None:
            self.reservation.release()
            self.reservation = None
            _LAUNCH_LOCK.release()

    def record(self, every_s: float = 0.0) -> None:
        """Note the guard's descendants (pid and start time) for the final SIGKILL, at most every ``every_s``."""
        now = time.monotonic()
        if self.guard is not None and self.guard.poll() is None and now - self.recorded_at >= every_s:
            self.recorded_at = now
            self.recorded.update(served_guard.descendants(self.guard.pid))

    def exit_reason(self) -> str | None:
        """None while the server runs; else a short reason ("the server exited with code 3")."""
        if self.guard is None:
            return "the server was never started"
        if self.stopped:
            return "the server was stopped (ServedModel.close())"
        code = self.guard.poll()
        if code is None:
            self.record(every_s=1.0)
            return None
        if code < 0 and not self.swept:  # the guard was killed: what it watched is left to this process to stop
            self.sweep()
        return f"the server exited with code {code}"

    def dead(self) -> str | None:
        """None while the server runs; else why it cannot answer, with the command and its log's last lines."""
        reason = self.exit_reason()
        return None if reason is None else str(self.failure(reason))

    def sweep(self) -> list[int]:
        """SIGKILL every process that carries this launch's mark, until none is left (a few seconds at most);
        the pids killed."""
        killed: list[int] = []
        self.swept = True
        deadline = time.monotonic() + served_guard.KILL_WAIT_S
        while time.monotonic() < deadline:
            found = served_guard.marked(MARK, self.mark)
            if not found:
                break
            killed += served_guard.signal_recorded(found, signal.SIGKILL)
            time.sleep(0.02)
        return killed

    @property
    def plan_command(self) -> str:
        return shlex.join(getattr(self, "argv", self.plan.argv))

    def failure(self, what: str) -> ServerError:
        """A ServerError for ``what`` went wrong, with the command and the log's last lines."""
        if self.drain is not None:
            self.drain.join(timeout=1 if self.guard is not None and self.guard.poll() is not None else 0)
        tail = self.drain.tail() if self.drain else "    (no log)"
        return ServerError(f"{what}\ncommand: {self.plan_command}\nlast lines of the server's log:\n{tail}")

    def stop(self) -> None:
        """SIGTERM to the group, the grace period, then SIGKILL to the group and every recorded descendant."""
        with self.stop_lock:
            if self.stopped or self.guard is None:
                self._release()
                return
            self.stopped = True
            self.record()
            pgid = self.guard.pid  # the guard leads its own group (start_new_session)
            served_guard.signal_group(pgid, signal.SIGTERM)
            try:
                self.guard.wait(timeout=self.plan.shutdown_grace_s + served_guard.KILL_WAIT_S + 2)
            except subprocess.TimeoutExpired:
                pass
            served_guard.signal_group(pgid, signal.SIGKILL)
            served_guard.signal_recorded(self.recorded, signal.SIGKILL)
            try:
                self.guard.wait(timeout=served_guard.KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                pass
            self.sweep()
            self._release()
            _LIVE.discard(self)
        if self.drain is not None:
            self.drain.join(timeout=2)


# --- stopping on every ending ------------------------------------------------------------------------------

_HANDLERS_INSTALLED = False


def stop_all() -> None:
    for launcher in list(_LIVE):
        launcher.stop()


def _on_signal(sig: int, frame: FrameType | None) -> None:
    stop_all()
    previous = _PREVIOUS.get(sig)
    if callable(previous):
        previous(sig, frame)
        return
    if previous == signal.SIG_IGN:
        return
    signal.signal(sig, signal.SIG_DFL)  # the default action: end the process, as without the handler
    os.kill(os.getpid(), sig)


_PREVIOUS: dict[int, Callable | int | None] = {}


def install_exit_handlers() -> None:
    """``atexit`` and SIGTERM/SIGINT handlers that stop every live server, once per process. Signal
    handlers can only be installed from the main thread; elsewhere ``atexit`` and the guard remain."""
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        _PREVIOUS[sig] = signal.getsignal(sig)
        signal.signal(sig, _on_signal)
