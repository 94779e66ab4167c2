"""Enforcing a profile's resources: RAM, CPUs, and the monitor of RAM and GPU memory.

Two sides. In the model's process (``child.py``), before the model is imported: ``apply_process_limits``
sets RLIMIT_AS and the CPU affinity (GPU memory needs nothing there: see ``gpu.py`` and
``gpu_child.py``). In the supervising process (``session.py``): ``ResourceMonitor`` polls the RAM of the
processes the caller accounts for and, through NVML (``gpu_memory.py``), their memory on each planned GPU.
``plan_gpus`` and ``load_nvml`` live in ``gpu.py`` and are re-exported here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from .gpu import GPU_HIDDEN, GpuDevice, GpuPlan, load_nvml, plan_gpus  # noqa: F401 - re-exported
from .gpu_memory import GpuAccountant
from .reaper import PROC, descendants, proc_readable

# ---------------------------------------------------------------- the model's process


def apply_process_limits(ram_bytes: int | None, use_rlimit_as: bool, vcpus: int | None) -> list[str]:
    """RLIMIT_AS (only where no GPU is used: CUDA reserves far more address space than it uses) and
    the CPU affinity. Returns notes on what was applied."""
    notes = []
    if ram_bytes is not None and use_rlimit_as:
        try:
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = ram_bytes if hard == resource.RLIM_INFINITY else min(ram_bytes, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            notes.append(f"RLIMIT_AS {limit / 1e9:g} GB")
        except (ImportError, ValueError, OSError) as exc:
            notes.append(f"RLIMIT_AS not set ({exc}); the RSS watchdog still applies")
    if vcpus is not None and hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > vcpus:
            os.sched_setaffinity(0, cpus[:vcpus])
            notes.append(f"CPU affinity {vcpus} of {len(cpus)} cores")
    return notes


def die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel SIGKILL this process when the supervisor dies (even by kill -9), so a model
    stuck in native code is never left running on its own."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
        os._exit(128 + signal.SIGKILL)


def torch_gpu_peaks() -> list[int] | None:
    """torch's peak reserved bytes per visible GPU, if the model initialised CUDA; else None. Cheap."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "cuda") or not torch.cuda.is_initialized():
        return None
    return [int(torch.cuda.max_memory_reserved(i)) for i in range(torch.cuda.device_count())]


def own_peak_rss() -> int | None:
    """This process's peak RSS in bytes: VmHWM on Linux (ru_maxrss would include the RSS of the
    supervisor that forked it, which exec does not reset), ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


# ---------------------------------------------------------------- the supervisor's side: monitoring


@dataclass(frozen=True)
class Exceeded:
    """A resource over its limit: ``kind`` is 'memory' or 'gpu_memory'; ``scope`` says what a GPU figure
    counts ('process': the model's processes, 'device': the whole card)."""

    kind: str
    used_bytes: int
    limit_bytes: int
    device: GpuDevice | None = None
    scope: str = "process"


def process_tree(pid: int) -> list[int]:
    """The pid and all its descendants' pids (the model may start workers), read from /proc as the reaper
    reads them (through psutil only where there is no /proc); [] when the process is gone."""
    if proc_readable() and not os.path.exists(f"{PROC}/{pid}"):
        return []
    return [pid, *descendants(pid)]


def rss_bytes(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total


@dataclass
class ResourceMonitor:
    """Polls the model's processes: RSS against the RAM limit, NVML memory against the GPU cap. The
    caller says which processes are the model's (``poll(pids)``); this class never walks a tree."""

    ram_limit: int | None
    gpu_cap: int | None
    plan: GpuPlan
    nvml: object = None
    peak_rss: int = 0
    gpus: GpuAccountant | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.nvml is not None and self.plan.devices:
            self.gpus = GpuAccountant(self.plan, self.nvml)

    def poll(self, pids: Iterable[int]) -> Exceeded | None:
        """Sample every process of the model (``pids``: the whole tree, workers included)."""
        pids = {int(pid) for pid in pids}
        if not pids:
            return None
        rss = rss_bytes(pids)
        self.peak_rss = max(self.peak_rss, rss)
        if self.ram_limit is not None and rss > self.ram_limit:
            return Exceeded("memory", rss, self.ram_limit)
        if self.gpus is None:
            return None
        for device, used, scope in self.gpus.poll(pids):
            if self.gpu_cap is not None and used > self.gpu_cap:
                return Exceeded("gpu_memory", used, self.gpu_cap, device, scope)
        return None

    def gpu_peak(self, index: int) -> tuple[int | None, str | None]:
        """(peak bytes, 'process' or 'device') of a planned GPU; (None, None) when unknown or unmeasured."""
        return (None, None) if self.gpus is None else self.gpus.peak(index)

    @property
    def gpu_peaks(self) -> dict[int, int]:
        """The known peaks, by device index."""
        peaks = {d.index: self.gpu_peak(d.index)[0] for d in self.plan.devices}
        return {i: p for i, p in peaks.items() if p is not None}

    def notes(self) -> list[str]:
        return [] if self.gpus is None else self.gpus.notes()
