"""The reaper: ``python -m submission.harness.reaper CONTROL_FD REPORT_FD IN_FD OUT_FD [SCRATCH]``.

The supervisor (``session.py``) starts this small process in a new session; it makes itself a child
subreaper (Linux ``PR_SET_CHILD_SUBREAPER``) and starts the model's process (``child.py``, with the
channel from and to the judge), so that every process the model starts stays its descendant: one that
double-forks, calls ``setsid`` or outlives its parent is re-parented here, not to init. It reports
to REPORT_FD, one JSON line each:

    {"pid": 1234}                the model's process started
    {"exit": 0}                  it ended (exit code, or minus the signal number)

and obeys one-word commands on CONTROL_FD:

    term    SIGTERM to every descendant
    kill    SIGKILL to every descendant until none is left, then exit

End of file on CONTROL_FD means ``kill``: the supervisor is gone (even by ``kill -9``), and nothing the
model started may outlive it. After ``kill`` the reaper also removes SCRATCH, the model's scratch folder
(its TMPDIR), so nothing is left on disk either. The model may kill this process (it runs as the same
user): the supervisor is a subreaper too, so the model's processes are then re-parented to it, and it
kills them itself (``process.py``). Only the standard library: it must start in milliseconds.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
KILL_ROUNDS_S = 10.0  # how long ``kill`` keeps finding and killing descendants before giving up


PROC = "/proc"


def proc_readable() -> bool:
    """Whether the process table can be read from /proc (Linux); elsewhere psutil is needed."""
    return os.path.isdir(f"{PROC}/self")


def children_of() -> dict[int, list[int]]:
    """Parent pid -> the pids of its children (zombies included), from /proc."""
    children: dict[int, list[int]] = {}
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        try:
            with open(f"{PROC}/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()  # after "pid (comm) ", which may hold spaces
        children.setdefault(int(fields[1]), []).append(int(name))
    return children


def descendants(root: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """The pids below ``root`` (zombies included), from /proc; from psutil where there is no /proc."""
    if not proc_readable():
        import psutil

        try:
            return [p.pid for p in psutil.Process(root).children(recursive=True)]
        except psutil.Error:
            return []
    children = children_of() if children is None else children
    found, todo = [], [root]
    while todo:
        for pid in children.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def set_subreaper(on: bool) -> bool:
    """Make this process a child subreaper (or stop being one); whether Linux allowed it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def is_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    value = ctypes.c_int(0)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0)
    except (OSError, AttributeError):
        return False
    return bool(value.value)


class Reaper:
    def __init__(self, report_fd: int) -> None:
        self.report_fd, self.reported = report_fd, False
        self.child: subprocess.Popen[bytes] | None = None

    def send(self, message: dict) -> None:
        try:
            os.write(self.report_fd, (json.dumps(message) + "\n").encode())
        except OSError:  # the supervisor is gone: the control channel will say so
            pass

    def start(self, in_fd: int, out_fd: int) -> None:
        argv = [sys.executable, "-m", "submission.harness.child", str(in_fd), str(out_fd), str(os.getpid())]
        self.child = subprocess.Popen(argv, pass_fds=(in_fd, out_fd), stdin=subprocess.DEVNULL)
        os.close(in_fd)
        os.close(out_fd)
        self.send({"pid": self.child.pid})

    def reap(self) -> None:
        """Collect every ended child (the model's process, and orphans re-parented here)."""
        child = self.child
        assert child is not None, "reap() runs only after start() started the model's process"
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == child.pid and not self.reported:
                self.reported = True
                child.returncode = os.waitstatus_to_exitcode(status)
                self.send({"exit": child.returncode})

    def signal_all(self, sig: int) -> list[int]:
        pids = descendants(os.getpid())
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        return pids

    def kill_all(self) -> None:
        deadline = time.monotonic() + KILL_ROUNDS_S
        while self.signal_all(signal.SIGKILL) and time.monotonic() < deadline:
            time.sleep(0.005)
            self.reap()
        self.reap()


def serve(reaper: Reaper, control_fd: int, scratch: str | None) -> None:
    """Reap children as they end and obey commands, until ``kill`` or the end of the control channel."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    while True:
        reaper.reap()
        ready, _, _ = select.select([control_fd, wake_read], [], [], 1.0)
        if wake_read in ready:
            os.read(wake_read, 4096)
        if control_fd not in ready:
            continue
        words = os.read(control_fd, 4096).split()
        if not words or b"kill" in words:
            reaper.kill_all()
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            return
        if b"term" in words:
            reaper.signal_all(signal.SIGTERM)


def main(argv: list[str]) -> int:
    control_fd, report_fd, in_fd, out_fd = (int(a) for a in argv[:4])
    scratch = argv[4] if len(argv) > 4 else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the supervisor, which then says kill
    set_subreaper(True)
    reaper = Reaper(report_fd)
    try:
        reaper.start(in_fd, out_fd)
    except OSError as exc:
        reaper.send({"error": f"cannot start the model's process: {exc}"})
        return 1
    serve(reaper, control_fd, scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
