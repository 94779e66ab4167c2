"""Enforcing a profile's resources: RAM, CPUs, GPUs and GPU memory.

Two sides. In the model's process (``child.py``), before the model is imported: ``apply_process_limits``
sets RLIMIT_AS and the CPU affinity, and ``cap_torch_gpu_memory`` calls
``torch.cuda.set_per_process_memory_fraction`` on every visible GPU. In the supervising process
(``harness.py``): ``plan_gpus`` picks the GPUs the model may see, and ``ResourceMonitor`` polls the
model's RAM (its whole process tree) and, through NVML, its own memory on each GPU.

NVML comes from ``pynvml`` (package nvidia-ml-py) when it is importable; without it, or without a GPU,
the GPU paths are skipped and say so in the run's notes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field

GPU_HIDDEN = ""  # CUDA_VISIBLE_DEVICES value that hides every GPU


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


def gpus_possible() -> bool:
    """Whether importing torch to look for GPUs is worth its seconds."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") == GPU_HIDDEN:
        return False
    return importlib.util.find_spec("torch") is not None and os.path.exists("/dev/nvidiactl")


def cap_torch_gpu_memory(cap_bytes: int | None) -> list[str]:
    """Cap torch's caching allocator on every visible GPU at ``cap_bytes``, before the model is built."""
    if cap_bytes is None or not gpus_possible():
        return []
    import torch

    if not torch.cuda.is_available():
        return []
    notes = []
    for index in range(torch.cuda.device_count()):
        total = torch.cuda.get_device_properties(index).total_memory
        fraction = min(1.0, cap_bytes / total)
        torch.cuda.set_per_process_memory_fraction(fraction, index)
        notes.append(f"cuda:{index} torch memory fraction {fraction:.3f} ({cap_bytes / 1024**3:.2f} GiB)")
    return notes


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


# ---------------------------------------------------------------- the supervisor's side: GPUs


@dataclass(frozen=True)
class GpuDevice:
    index: int  # as the model sees it (cuda:index)
    uuid: str
    name: str
    total_bytes: int


@dataclass(frozen=True)
class GpuPlan:
    """Which GPUs the model sees. ``cuda_visible_devices`` None leaves the variable as it is."""

    devices: tuple[GpuDevice, ...] = ()
    cuda_visible_devices: str | None = None
    notes: tuple[str, ...] = ()


def load_nvml():
    """The initialised pynvml module, or None without pynvml or a driver."""
    if importlib.util.find_spec("pynvml") is None:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # noqa: BLE001 - any NVML failure means "no NVML here"
        return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _visible_handles(nvml) -> list:
    """NVML handles of the GPUs this process may use, in CUDA_VISIBLE_DEVICES order when it is set."""
    count = nvml.nvmlDeviceGetCount()
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    wanted = os.environ.get("CUDA_VISIBLE_DEVICES")
    if wanted is None:
        return handles
    by_uuid = {_text(nvml.nvmlDeviceGetUUID(h)): h for h in handles}
    chosen = []
    for item in (part.strip() for part in wanted.split(",") if part.strip()):
        if item.isdigit() and int(item) < count:
            chosen.append(handles[int(item)])
        else:
            match = [h for u, h in by_uuid.items() if u.startswith(item)]
            if len(match) != 1:
                break  # CUDA stops at the first entry it cannot resolve
            chosen.append(match[0])
    return chosen


def plan_gpus(wanted: int | None, nvml) -> GpuPlan:
    """Show the model the first ``wanted`` GPUs (0: hide them all; None: leave them as they are, but
    still measure them)."""
    if wanted == 0:
        return GpuPlan(cuda_visible_devices=GPU_HIDDEN, notes=("GPUs hidden: the profile has none",))
    if nvml is None and not os.path.exists("/dev/nvidiactl"):
        if wanted is None:
            return GpuPlan()
        return GpuPlan(notes=(f"no NVIDIA GPU here: the profile's {wanted} GPUs and their memory cap are not emulated",))
    if nvml is None:
        if wanted is None:
            return GpuPlan(notes=("NVML unavailable (pip install nvidia-ml-py): GPU memory is not measured",))
        current = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = current.split(",")[:wanted] if current else [str(i) for i in range(wanted)]
        return GpuPlan(cuda_visible_devices=",".join(ids),
                       notes=("NVML unavailable (pip install nvidia-ml-py): GPU memory is capped through torch only",))
    handles = _visible_handles(nvml)[:wanted]
    devices = tuple(
        GpuDevice(i, _text(nvml.nvmlDeviceGetUUID(h)), _text(nvml.nvmlDeviceGetName(h)),
                  int(nvml.nvmlDeviceGetMemoryInfo(h).total))
        for i, h in enumerate(handles)
    )
    if wanted is None:
        return GpuPlan(devices, None, ("GPU visibility not restricted (no limits); memory is measured",))
    notes = [] if len(devices) == wanted else [f"the profile has {wanted} GPUs but {len(devices)} are here"]
    return GpuPlan(devices, ",".join(d.uuid for d in devices) or GPU_HIDDEN, tuple(notes))


# ---------------------------------------------------------------- the supervisor's side: monitoring


@dataclass(frozen=True)
class Exceeded:
    """A resource over its limit: ``kind`` is 'memory' or 'gpu_memory'."""

    kind: str
    used_bytes: int
    limit_bytes: int
    device: GpuDevice | None = None


def process_tree(pid: int) -> list[int]:
    """The pid and all its descendants' pids (the model may start workers)."""
    try:
        import psutil

        root = psutil.Process(pid)
        return [pid] + [p.pid for p in root.children(recursive=True)]
    except ImportError:
        return [pid]
    except Exception:  # noqa: BLE001 - the process is gone
        return []


def rss_bytes(pids: list[int]) -> int:
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
    """Polls the model's process tree: RSS against the RAM limit, NVML memory against the GPU cap."""

    ram_limit: int | None
    gpu_cap: int | None
    plan: GpuPlan
    nvml: object = None
    peak_rss: int = 0
    gpu_peaks: dict[int, int] = field(default_factory=dict)
    baseline: dict[int, int] = field(default_factory=dict)  # device memory in use before the model started

    def __post_init__(self):
        for device in self.plan.devices if self.nvml is not None else ():
            try:
                handle = self.nvml.nvmlDeviceGetHandleByUUID(device.uuid)
                self.baseline[device.index] = int(self.nvml.nvmlDeviceGetMemoryInfo(handle).used)
            except Exception:  # noqa: BLE001
                self.baseline[device.index] = 0

    def poll(self, pids: list[int]) -> Exceeded | None:
        """Sample every process of the model (``pids``: the whole tree, workers included)."""
        if not pids:
            return None
        rss = rss_bytes(pids)
        self.peak_rss = max(self.peak_rss, rss)
        if self.ram_limit is not None and rss > self.ram_limit:
            return Exceeded("memory", rss, self.ram_limit)
        return self._poll_gpus(set(pids))

    def _poll_gpus(self, pids: set[int]) -> Exceeded | None:
        if self.nvml is None or not self.plan.devices:
            return None
        for device in self.plan.devices:
            used = self._process_gpu_bytes(device, pids)
            self.gpu_peaks[device.index] = max(self.gpu_peaks.get(device.index, 0), used)
            if self.gpu_cap is not None and used > self.gpu_cap:
                return Exceeded("gpu_memory", used, self.gpu_cap, device)
        return None

    def _process_gpu_bytes(self, device: GpuDevice, pids: set[int]) -> int:
        """The model's processes' memory on the device; where NVML cannot attribute memory to them (a
        container's own pid namespace), the device's memory in use beyond what it was before the run."""
        nvml = self.nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByUUID(device.uuid)
            processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
            ours = [p for p in processes if p.pid in pids]
            if ours and all(p.usedGpuMemory is not None for p in ours):
                return sum(int(p.usedGpuMemory) for p in ours)
            if not ours and (not processes or any(os.path.exists(f"/proc/{p.pid}") for p in processes)):
                return 0  # the model holds nothing here; what is listed belongs to others
            used = int(nvml.nvmlDeviceGetMemoryInfo(handle).used)
        except Exception:  # noqa: BLE001 - a transient NVML error: skip this poll
            return 0
        return max(0, used - self.baseline.get(device.index, 0))
