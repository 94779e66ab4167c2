"""The judge's transport to a container (``harness.judge.Transport``): the container's stdin and stdout
through the Docker attach socket, its stderr into the host's log under a cap, and the host's own watch.

With tty off the daemon frames what the container writes (``Demux``: an 8-byte header, stream 1 stdout, 2
stderr, then the payload), so the channel (stdout) and the log (stderr) never mix; stdin is the judge's.
``LogSink`` writes the log into the host-only run folder, created exclusively (never through a link), up to
a cap; past it the rest is counted, dropped and noted at the end, never held in memory. ``ContainerWatch``
is what the host measures itself: the container's processes (its cgroup, else ``docker top``), their GPU
memory through the host's NVML, the cgroup's memory peak; ``Interrupt`` turns SIGTERM, SIGINT and SIGHUP
to the grader into the ``interrupted`` verdict.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..cuda import Nvml
from ..harness import verdict as verdicts
from ..harness.failures import Measured
from ..harness.gpu import GpuPlan, load_nvml, plan_gpus
from ..harness.gpu_memory import GpuAccountant
from ..harness.outcome import GpuUsage
from ..harness.profiles import Limits
from ..harness.protocol import MAX_LINE_BYTES

if TYPE_CHECKING:
    from docker.models.containers import Container

    from ..harness.judge import Judge

HEADER_BYTES, STDOUT = 8, 1
READ_CHUNK = 1 << 20
TAIL_BYTES = 64 * 1024


class Demux:
    """Docker's multiplexed attach stream, parsed incrementally: (stdout parts, other parts) per chunk."""

    def __init__(self) -> None:
        self.header, self.stream, self.left = bytearray(), 0, 0

    def feed(self, data: bytes) -> tuple[list[bytes], list[bytes]]:
        out: list[bytes] = []
        err: list[bytes] = []
        view, at = memoryview(data), 0
        while at < len(view):
            if not self.left:
                need = HEADER_BYTES - len(self.header)
                self.header += view[at:at + need]
                at += need
                if len(self.header) == HEADER_BYTES:
                    self.stream, self.left = self.header[0], int.from_bytes(self.header[4:8], "big")
                    self.header = bytearray()
                continue
            take = min(self.left, len(view) - at)
            (out if self.stream == STDOUT else err).append(bytes(view[at:at + take]))
            at, self.left = at + take, self.left - take
        return out, err


class LogSink:
    """The container's log on the host: at most ``cap`` bytes in ``path``, then a note of what was dropped."""

    def __init__(self, path: Path, cap: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)  # an earlier run's log in this host folder (unlink never follows a link)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        self.handle, self.path, self.cap = os.fdopen(fd, "wb"), path, cap
        self.written = self.dropped = 0
        self.tail = bytearray()

    def write(self, data: bytes) -> None:
        keep = data[:max(0, self.cap - self.written)]
        if keep:
            self.handle.write(keep)
            self.written += len(keep)
        self.dropped += len(data) - len(keep)
        self.tail += data[-TAIL_BYTES:]
        del self.tail[:-TAIL_BYTES]

    def close(self) -> None:
        if self.handle.closed:
            return
        if self.dropped:
            self.handle.write(f"\n[shopbench: the container wrote {self.dropped:,} more bytes past the log's cap of "
                              f"{self.cap:,} bytes; they were dropped]\n".encode())
        self.handle.close()

    def tail_text(self, lines: int) -> str:
        return "\n".join(bytes(self.tail).decode("utf-8", "replace").splitlines()[-lines:])


class Interrupt:
    """While active: SIGTERM, SIGINT and SIGHUP to this process are noted (``signum``) and wake the judge
    (``fd``), which stops the container and keeps the answers so far. The main thread only."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.fd, self._wake = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._wake, False)
        self.previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}  # signal.signal's

    def __enter__(self) -> Interrupt:
        try:
            for sig in self.SIGNALS:
                self.previous[sig] = signal.signal(sig, self._caught)
        except ValueError:  # not the main thread: signals keep their handlers
            pass
        return self

    def _caught(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        try:
            os.write(self._wake, b"!")
        except OSError:
            pass

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        os.close(self.fd)
        os.close(self._wake)

    def drain(self) -> None:
        try:
            os.read(self.fd, 4096)
        except OSError:
            pass

    @property
    def exit_status(self) -> int | None:
        """128 + 2 after SIGINT, 128 + 15 after SIGTERM or SIGHUP; None when no signal came."""
        if self.signum is None:
            return None
        return 130 if self.signum == signal.SIGINT else 143

    def verdict(self) -> verdicts.Verdict | None:
        if self.signum is None:
            return None
        name = signal.Signals(self.signum).name
        return verdicts.Verdict("interrupted", f"the grader received {name}: the container was stopped and removed, "
                                "the answers received so far are kept")


class ContainerWatch:
    """What the host measures of a container itself: its processes, their GPU memory, its memory peak."""

    def __init__(self, container: Container, plan: GpuPlan, nvml: Nvml, gpu_cap: int | None,
                 scratch: str = "/tmp and ~/.cache (tmpfs)") -> None:
        self.container, self.gpu_cap, self.plan, self.scratch = container, gpu_cap, plan, scratch
        self.accountant = GpuAccountant(plan, nvml) if nvml is not None and plan.devices else None
        self.cgroups: dict[str, Path] | None = None

    def _cgroup(self, controller: str) -> Path | None:
        if self.cgroups is None:
            self.cgroups = {}
            pid = (self.container.attrs.get("State") or {}).get("Pid")
            try:
                lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines() if pid else []
            except OSError:
                lines = []
            for line in lines:
                _, names, path = line.split(":", 2)
                for name in names.split(",") if names else [""]:  # "" is cgroup v2's unified hierarchy
                    base = Path("/sys/fs/cgroup") / (name if name else "") / path.lstrip("/")
                    self.cgroups[name] = base
        return self.cgroups.get(controller) or self.cgroups.get("")

    def pids(self) -> set[int]:
        """The container's processes as host pids: its cgroup's, else ``docker top``'s."""
        folder = self._cgroup("pids")
        try:
            return {int(p) for p in (folder / "cgroup.procs").read_text().split()} if folder else set()
        except (OSError, ValueError):
            pass
        try:
            top = self.container.top(ps_args="-o pid")
            return {int(row[0]) for row in top.get("Processes") or []}
        except Exception:  # noqa: BLE001 - the container is gone
            return set()

    def memory_peak(self) -> int:
        folder = self._cgroup("memory")
        for name in ("memory.max_usage_in_bytes", "memory.peak"):  # cgroup v1, v2
            try:
                return int((folder / name).read_text()) if folder else 0
            except (OSError, ValueError):
                continue
        return 0

    def poll_gpus(self) -> verdicts.Verdict | None:
        if self.accountant is None:
            return None
        for device, used, scope in self.accountant.poll(self.pids()):
            if self.gpu_cap is not None and used > self.gpu_cap:
                verdict = verdicts.gpu_memory(device.index, device.name, used, self.gpu_cap, scope)
                return verdicts.Verdict("gpu_memory", verdict.detail.replace("of this process",
                                                                             "of the container's processes"))
        return None

    def measured(self) -> Measured:
        peaks = {} if self.accountant is None else {
            d.index: self.accountant.peak(d.index)[0] for d in self.plan.devices}
        return Measured(self.memory_peak(), {i: p for i, p in peaks.items() if p is not None},
                        {d.index: d.name for d in self.plan.devices}, self.scratch)


class ContainerTransport:
    """The judge's transport over the attach socket ``sock`` of a started ``container``."""

    def __init__(self, container: Container, sock: socket.socket, log: LogSink, watch: ContainerWatch,
                 interrupt: Interrupt | None, deadline_s: float | None, poll_s: float = 0.25) -> None:
        self.container, self.sock, self.log, self.watch, self.interrupt = container, sock, log, watch, interrupt
        self.deadline_s, self.poll_s = deadline_s, poll_s
        self.demux, self.held = Demux(), bytearray()
        self.eof = self.write_closed = self.killed_at_deadline = False
        self.started = self.next_poll = time.monotonic()
        sock.setblocking(False)

    def fds(self) -> list[int]:
        return [self.sock.fileno()] + ([self.interrupt.fd] if self.interrupt is not None else [])

    def read(self, fd: int) -> bytes | None:
        if self.interrupt is not None and fd == self.interrupt.fd:
            self.interrupt.drain()
            return b""
        got = self._receive()
        if got is None:
            return None
        data = bytes(self.held) + got if self.held else got
        self.held.clear()
        return data

    def _receive(self) -> bytes | None:
        """Stdout bytes of one read of the socket (stderr goes to the log); None at the end of the stream."""
        try:
            chunk = self.sock.recv(READ_CHUNK)
        except BlockingIOError:
            return b""
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return None
        out, err = self.demux.feed(chunk)
        for part in err:
            self.log.write(part)
        return b"".join(out)

    def write_fd(self) -> int | None:
        return None if self.write_closed or self.eof else self.sock.fileno()

    def write(self, data: memoryview) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0
        except OSError:
            self.write_closed = True
            return len(data)

    @property
    def exited(self) -> bool:
        return self.eof

    def drain(self) -> bytes:
        """What is readable now, at most about two lines' worth (the judge's cap decides the rest)."""
        data = bytearray(self.held)
        self.held.clear()
        while not self.eof and len(data) <= 2 * MAX_LINE_BYTES:
            got = self._receive()
            if not got:
                break
            data += got
        return bytes(data)

    def wait_exit(self, timeout: float, keep: bool = True) -> bool:
        """Wait for the stream's end; stdout read meanwhile is kept for the judge (up to about a line: then
        the judge reads it first) or, with ``keep`` False, dropped."""
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline and len(self.held) <= MAX_LINE_BYTES:
            if select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
                got = self._receive()
                if got and keep:
                    self.held += got
        return self.eof

    def died(self, when: str) -> verdicts.Verdict:
        """The container ended without its loop saying why: its exit status and the kernel's OOM kill."""
        code = exit_status(self.container)
        state = self.container.attrs.get("State") or {}
        if state.get("OOMKilled"):
            return verdicts.Verdict("memory", f"the container was killed at its RAM limit by the kernel {when}")
        return verdicts.Verdict("crashed", f"the container's model loop ended with exit code {code} {when}")

    def next_check(self) -> float:
        deadline = None if self.deadline_s is None else self.started + self.deadline_s
        return min(t for t in (self.next_poll, deadline) if t is not None)

    def check(self, now: float, final: bool = False) -> verdicts.Verdict | None:
        verdict = self.interrupt.verdict() if self.interrupt is not None else None
        if verdict is not None:
            return verdict
        if self.deadline_s is not None and now - self.started > self.deadline_s:
            self.killed_at_deadline = True
            return verdicts.Verdict("timeout", f"the container was stopped from outside at {self.deadline_s:g} s (the "
                                    "track budget plus the grace)")
        if final or now >= self.next_poll:
            self.next_poll = now + self.poll_s
            return self.watch.poll_gpus()
        return None

    def measured(self) -> Measured:
        return self.watch.measured()

    def finish(self, timeout: float = 10.0) -> None:
        """After the container was stopped: the rest of its log, until the stream ends (stdout dropped)."""
        self.held.clear()
        self.wait_exit(timeout, keep=False)


def exit_status(container: Container, timeout: float = 30.0) -> int | None:
    """The container's exit code once it has stopped (its state reloaded), or None if it still runs."""
    try:
        code = container.wait(timeout=timeout).get("StatusCode")
        container.reload()
    except Exception:  # noqa: BLE001 - still running after the timeout, or gone
        return None
    return code


def host_plan(limits: Limits, gpu_ids: Sequence[str] | None = None) -> tuple[GpuPlan, Nvml]:
    """The host's GPUs the container is given (the profile's first ones, or ``grade --gpus``'s, named as
    CUDA_VISIBLE_DEVICES names them), through the host's NVML (None where it has none): what the host
    measures the container's GPU memory on."""
    nvml = load_nvml() if limits.gpus != 0 else None
    if not gpu_ids:
        return plan_gpus(limits.gpus, nvml), nvml
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
    try:
        return plan_gpus(len(gpu_ids), nvml), nvml
    finally:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def gpu_usage(judge: Judge, measured: Measured, plan: GpuPlan, limits: Limits) -> tuple[GpuUsage, ...]:
    """Per GPU: the host's NVML peak of the container's processes, the loop's torch peak, the cap."""
    cap = limits.gpu_memory_bytes
    if plan.devices:
        return tuple(GpuUsage(d.index, d.name, measured.gpu_peaks.get(d.index), judge.torch_peaks.get(d.index), cap,
                              "process" if d.index in measured.gpu_peaks else None) for d in plan.devices)
    return tuple(GpuUsage(i, f"cuda:{i}", None, peak, cap) for i, peak in sorted(judge.torch_peaks.items()))
