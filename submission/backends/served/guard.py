"""The guard between a served model and its server process: nothing the server starts outlives the run.

``ServerLauncher`` (``launcher.py``) never starts the server directly. It starts this
file, ``python -I guard.py --parent-pid P --grace-s S -- SERVER ARGV...``, in a new process group;
the guard then starts the server in that same group and watches it:

- it is a child subreaper (``PR_SET_CHILD_SUBREAPER``), so a process the server forks and abandons
  (vLLM's engine and tensor-parallel workers, which rename themselves) is re-parented to the guard
  instead of escaping to init;
- it records every descendant (pid and start time) twice a second;
- on SIGTERM or SIGINT, or when its parent (the model's process) dies, even by SIGKILL (parent-death
  signal, and a check of the parent pid), it sends SIGTERM to the process group and to every recorded
  descendant, waits up to the grace period, then SIGKILLs the group and every descendant, and exits;
- the server gets SIGKILL as its parent-death signal, so killing the guard itself kills the server;
- when the server exits on its own, the guard stops what it left behind and exits with its code.

Standard library only: the guard runs in any image, whatever the server needs, and the launcher runs it
in isolated mode (``-I``: neither this folder nor the user's site-packages on ``sys.path``), so an import
of anything else fails at once. The ``/proc`` helpers
here (descendants, start times, killing recorded pids) are also used by the launcher.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from types import FrameType

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
POLL_S = 0.5  # how often descendants are recorded
TICK_S = 0.05  # how often a signal, the parent's death or the server's exit is noticed
KILL_WAIT_S = 5.0  # after SIGKILL, how long to wait for the processes to be gone
SERVER_PID_LINE = "shopbench-served-guard: server pid"  # the launcher reads the server's pid from this line


# --- /proc helpers (Linux) -------------------------------------------------------------------------

def proc_stat(pid: int) -> tuple[int, int] | None:
    """``(parent pid, start time in clock ticks)`` of a live process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()  # after "pid (comm) ": state, ppid, ..., starttime
    if fields[0] == b"Z":  # a zombie holds no resources; it only waits to be reaped
        return None
    return int(fields[1]), int(fields[19])


def process_table() -> dict[int, tuple[int, int]]:
    """Every live process: pid -> (parent pid, start time)."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = proc_stat(int(name))
            if stat is not None:
                table[int(name)] = stat
    return table


def descendants(root: int, table: dict[int, tuple[int, int]] | None = None) -> dict[int, int]:
    """The live descendants of ``root`` (not ``root`` itself): pid -> start time."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found[pid] = table[pid][1]
            todo.extend(children.get(pid, []))
    return found


def marked(variable: str, value: str) -> dict[int, int]:
    """Every live process whose environment holds ``variable=value`` (pid -> start time): the processes a
    launched server started, even those that left its tree (a daemon in a new session whose guard died).
    Processes of other users, and this one, are not looked at."""
    needle, found = f"{variable}={value}".encode(), {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
        except OSError:
            continue
        stat = proc_stat(int(name)) if needle in environ else None
        if stat is not None:
            found[int(name)] = stat[1]
    return found


def still_same(pid: int, start: int) -> bool:
    """Whether ``pid`` is still the process that started at ``start`` (not a reused pid)."""
    stat = proc_stat(pid)
    return stat is not None and stat[1] == start


def signal_recorded(recorded: dict[int, int], sig: int) -> list[int]:
    """Send ``sig`` to every recorded process that is still the same process; returns those signalled."""
    sent = []
    for pid, start in recorded.items():
        if still_same(pid, start):
            try:
                os.kill(pid, sig)
                sent.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
    return sent


def signal_group(pgid: int, sig: int) -> bool:
    """``killpg``, ignoring a group that is already empty."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def alive(recorded: dict[int, int]) -> list[int]:
    return [pid for pid, start in recorded.items() if still_same(pid, start)]


def note(message: str) -> None:
    """A line in the server's log. Never fails: once the model's process is dead nobody reads the pipe,
    and a write must not end the guard before it has stopped everything."""
    try:
        print(f"shopbench-served-guard: {message}", flush=True)
    except (OSError, ValueError):
        pass


def prctl(option: int, value: int) -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def kill_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn``: the kernel sends ``sig`` to the child when its parent dies."""
    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sig)
    return preexec


# --- the guard ---------------------------------------------------------------------------------------

class Guard:
    """Starts the server, records its descendants, and stops them all in order."""

    def __init__(self, argv: list[str], parent_pid: int, grace_s: float) -> None:
        self.argv, self.parent_pid, self.grace_s = argv, parent_pid, grace_s
        self.pgid = os.getpgrp()
        self.recorded: dict[int, int] = {}
        self.server_status: int | None = None
        self.stop_reason: str | None = None

    def on_signal(self, sig: int, _frame: FrameType | None) -> None:
        self.stop_reason = self.stop_reason or f"received {signal.Signals(sig).name}"

    def run(self) -> int:
        try:
            self.server = subprocess.Popen(
                self.argv, preexec_fn=kill_with_parent(signal.SIGKILL))  # noqa: PLW1509 - the guard runs no thread
        except OSError as error:
            note(f"cannot start {self.argv[0]!r}: {error}")
            return 127
        note(f"{SERVER_PID_LINE.split(': ', 1)[1]} {self.server.pid} group {self.pgid}")
        next_record = 0.0
        while self.stop_reason is None and self.server_status is None:
            if time.monotonic() >= next_record:
                self.record()
                next_record = time.monotonic() + POLL_S
            if os.getppid() != self.parent_pid:
                self.stop_reason = "the model's process died"
            time.sleep(TICK_S)
            self.reap()
        if self.stop_reason is not None:  # told to stop: said even when the group's SIGTERM ended the server first
            note(f"stopping the server ({self.stop_reason})")
        try:
            self.stop()
        except BaseException as error:  # noqa: BLE001 - whatever happens, SIGKILL everything recorded
            signal_recorded(self.recorded, signal.SIGKILL)
            note(f"stopped by SIGKILL after {type(error).__name__}: {error}")
        return self.exit_code()

    def record(self) -> None:
        self.recorded.update(descendants(os.getpid()))

    def reap(self) -> None:
        """Collect exited children (the server, and orphans re-parented to this subreaper)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.server.pid:
                self.server_status = status
                self.server.returncode = os.waitstatus_to_exitcode(status)

    def stop(self) -> None:
        """SIGTERM to the group and every recorded descendant, the grace period, then SIGKILL to all."""
        self.record()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # killpg below reaches this process too
        signal_group(self.pgid, signal.SIGTERM)
        signal_recorded(self.recorded, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        while alive(self.recorded) and time.monotonic() < deadline:
            self.record()
            time.sleep(0.1)
            self.reap()
        self.record()
        left = alive(self.recorded)
        if left:
            note(f"SIGKILL to {len(left)} process(es) still alive after {self.grace_s:g} s: {sorted(left)}")
        signal_recorded(self.recorded, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_S
        while alive(self.recorded) and time.monotonic() < deadline:  # SIGKILL takes effect asynchronously
            time.sleep(0.02)
            self.reap()
        self.reap()

    def exit_code(self) -> int:
        code = self.server.returncode
        if code is None:
            return 0
        return 128 - code if code < 0 else code


def parse_args(argv: Iterable[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run a server under a guard that stops it and all it starts (used by ServerLauncher).",
        epilog="example:\n  python -I submission/backends/served/guard.py --parent-pid 4242 --grace-s 30 -- "
               "transformers serve /path/to/model --host 127.0.0.1 --port 8000",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parent-pid", type=int, required=True, help="stop the server when this process dies")
    parser.add_argument("--grace-s", type=float, default=30.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="the server's command line, after --")
    args = parser.parse_args(list(argv))
    args.argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not args.argv:
        parser.error("no server command given after --")
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the model's process died: stop in order
    guard = Guard(args.argv, args.parent_pid, args.grace_s)
    signal.signal(signal.SIGTERM, guard.on_signal)
    signal.signal(signal.SIGINT, guard.on_signal)
    if os.getppid() != args.parent_pid:  # the parent died before the parent-death signal was set
        return 0
    return guard.run()


if __name__ == "__main__":
    sys.exit(main())
