"""The GPUs a model may see and the card it must behave as: planned once per run, in the supervisor.

``plan_gpus`` probes NVML once (``load_nvml``): the devices it may open, in PCI bus order (the order CUDA
uses with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``), a MIG-enabled card replaced by its MIG devices (named by
their MIG UUIDs), devices NVML may not open skipped (cgroup-restricted hosts such as Slurm); which
per-process call works here (``_v3``, else ``_v2`` on an older driver, else none: then memory is
measured at device level); which devices keep per-process accounting (their maximum per process); and
each device's total as CUDA reports it (``submission/cuda.py``: torch's fraction is of that total).
Under a profile with GPUs on a host with an NVIDIA driver, a harness that cannot measure them is refused
before the model runs (``gpu_host.require_enforcement``).

``gpu_env`` is what the model's process gets: the devices (``visible_entries``: CUDA indices for whole
cards, UUIDs only for MIG devices), ``CUDA_DEVICE_ORDER`` always, and
when the profile has a card, its rules (``SHOPBENCH_GPU_MEMORY_BYTES``, ``SHOPBENCH_COMPUTE_CAPABILITY``,
``SHOPBENCH_BFLOAT16``, ``SHOPBENCH_FLASH_ATTENTION_2``, ``SHOPBENCH_GPU_NAME``: ``submission/card.py``,
read by ``backends/hardware.py`` and ``gpu_emulation.py``) and torch's
cap as ``PYTORCH_CUDA_ALLOC_CONF=per_process_memory_fraction:F``. torch 2.13 reads that key when its
allocator for a device is created (``c10/cuda/CUDAAllocatorConfig.h`` in the wheel lists it;
``DeviceCachingAllocator``'s constructor in ``c10/cuda/CUDACachingAllocator.cpp`` applies it), so the cap
needs no CUDA call before the model is imported, and every process the model starts inherits it. An
older torch refuses keys it does not know, so the key is set only where the installed torch reads it
(``torch_reads_fraction``); elsewhere torch's cap applies once the model is built (``gpu_child.py``).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..card import CARD_VARIABLES, CONTEXT_RESERVE_BYTES, GPU_MEMORY_BYTES, card_environment
from ..cuda import Nvml, cuda_totals, load_libcuda, uuid_key
from .gpu_host import driver_note, require_enforcement

if TYPE_CHECKING:  # the model's process imports this module: no YAML parser for a type hint
    from .profiles import Limits

MIB = 1024**2
GPU_HIDDEN = ""  # CUDA_VISIBLE_DEVICES value that hides every GPU
DEVICE_ORDER = "PCI_BUS_ID"  # NVML's device order; CUDA's default ("FASTEST_FIRST") may differ
ALLOC_CONF = "PYTORCH_CUDA_ALLOC_CONF"
FRACTION_KEY = "per_process_memory_fraction"
PROCESS_CALLS = ("nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2")
NVML_FEATURE_ENABLED = 1
NVML_ERROR_FUNCTION_NOT_FOUND = 13


@dataclass(frozen=True)
class GpuDevice:
    index: int  # as the model sees it (cuda:index)
    uuid: str  # GPU-... or, for a MIG device, MIG-...
    name: str
    total_bytes: int  # NVML's total
    mig: bool = False
    cuda_index: int | None = None  # the card's index as CUDA numbers it under PCI_BUS_ID (None: a MIG device)
    cuda_total_bytes: int | None = None  # the total CUDA reports (smaller than NVML's); None: unknown

    @property
    def torch_total_bytes(self) -> int:
        """What torch multiplies its fraction by: CUDA's total (NVML's, a little larger, where unknown)."""
        return self.cuda_total_bytes or self.total_bytes


@dataclass(frozen=True)
class GpuPlan:
    """Which GPUs the model sees (``cuda_visible_devices`` None leaves the variable as it is) and how
    NVML measures them here."""

    devices: tuple[GpuDevice, ...] = ()
    cuda_visible_devices: str | None = None
    notes: tuple[str, ...] = ()
    processes_call: str | None = None  # the per-process NVML call that works here, or None
    accounting: frozenset[str] = frozenset()  # UUIDs of devices whose driver keeps per-process maxima
    handles: tuple = field(default=(), compare=False, repr=False)  # NVML handles, one per device


def load_nvml() -> Nvml:
    """The initialised pynvml module, or None without nvidia-ml-py, a driver or a GPU."""
    if importlib.util.find_spec("pynvml") is None:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...: no NVML here
        return None


def host_gpu_count() -> int:
    """NVIDIA GPUs on this host: NVML if available, else ``nvidia-smi -L``, else 0."""
    nvml = load_nvml()
    if nvml is not None:
        return int(nvml.nvmlDeviceGetCount())
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _error_code(exc: Exception) -> int | None:
    return getattr(exc, "value", None)


# ---------------------------------------------------------------- the devices NVML may open


@dataclass(frozen=True)
class _Candidate:
    uuid: str
    name: str
    total_bytes: int
    handle: object
    mig: bool
    cuda_index: int | None = None  # whole cards: their rank among the cards this process may open


def _describe(nvml: Nvml, handle: Any, mig: bool, cuda_index: int | None = None) -> _Candidate:
    return _Candidate(_text(nvml.nvmlDeviceGetUUID(handle)), _text(nvml.nvmlDeviceGetName(handle)),
                      int(nvml.nvmlDeviceGetMemoryInfo(handle).total), handle, mig, cuda_index)


def _mig_devices(nvml: Nvml, handle: Any) -> list[_Candidate] | None:
    """The MIG devices of a MIG-enabled card (CUDA sees those, never the card), or None if MIG is off."""
    try:
        if nvml.nvmlDeviceGetMigMode(handle)[0] != NVML_FEATURE_ENABLED:
            return None
    except Exception:  # noqa: BLE001 - NotSupported: a card without MIG
        return None
    found = []
    for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            found.append(_describe(nvml, nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot), True))
        except Exception:  # noqa: BLE001 - NotFound: an empty slot
            continue
    return found


def candidates(nvml: Nvml) -> tuple[list[_Candidate], list[str]]:
    """Every device CUDA could use here, in PCI bus order, and notes on the devices skipped. A whole
    card's ``cuda_index`` is NVML's index among the cards this process may open: CUDA's own index under
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (a card CUDA may not open, as on a cgroup-restricted host, it does not
    number either)."""
    found, notes, opened = [], [], 0
    for index in range(nvml.nvmlDeviceGetCount()):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            card = _describe(nvml, handle, False, opened)
        except Exception as exc:  # noqa: BLE001 - NoPermission on a cgroup-restricted host
            notes.append(f"NVML device {index} skipped: it cannot be opened here ({exc})")
            continue
        opened += 1
        migs = _mig_devices(nvml, handle)
        found.extend([card] if migs is None else migs)
    return found, notes


def visible_entries(devices: tuple[GpuDevice, ...], host_has_mig: bool) -> str:
    """``CUDA_VISIBLE_DEVICES`` for the chosen devices: CUDA's indices for whole cards, as every engine
    reads them (vLLM parses each entry with ``int()``: GPU UUIDs crashed it at start-up, vLLM issues
    #13815 and #20939, and MIG UUIDs still do, #41848). UUIDs only where MIG needs them: a MIG device has
    no index, and on a host with a MIG-enabled card CUDA's numbering of the other cards is not NVML's, so
    there every device is named by its UUID."""
    if host_has_mig or any(d.cuda_index is None for d in devices):
        return ",".join(d.uuid for d in devices) or GPU_HIDDEN
    return ",".join(str(d.cuda_index) for d in devices) or GPU_HIDDEN


def select(found: list[_Candidate], wanted: str | None) -> list[_Candidate]:
    """The devices ``CUDA_VISIBLE_DEVICES`` names, as CUDA reads it: indices or (prefixes of) GPU/MIG
    UUIDs, up to the first entry it cannot resolve; unset: all of them; empty: none."""
    if wanted is None:
        return list(found)
    chosen: list[_Candidate] = []
    for item in (part.strip() for part in wanted.split(",")):
        if item.isdigit():
            match = [found[int(item)]] if int(item) < len(found) else []
        else:
            match = [c for c in found if item and c.uuid.startswith(item)]
        if len(match) != 1 or match[0] in chosen:
            break
        chosen.append(match[0])
    return chosen


# ---------------------------------------------------------------- probing the per-process calls


def _pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max", encoding="ascii") as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return 4_194_304  # Linux's upper bound


def plausible(processes: Iterable[Any]) -> bool:
    """Whether NVML's process list reads right: a binding whose struct does not match the driver's
    gives pids such as 0 or 4294967295 (nvidia-ml-py 12.535.77 on most drivers)."""
    limit = _pid_max()
    return all(0 < int(p.pid) <= limit for p in processes)


def probe_processes(nvml: Nvml, handles: Sequence[Any]) -> tuple[str | None, list[str]]:
    """The per-process call to use: the ``_v3`` call, else ``_v2`` (drivers before R510 lack ``_v3``),
    else None (memory is then measured at device level)."""
    notes = []
    for name in PROCESS_CALLS:
        call = getattr(nvml, name, None)
        if call is None:
            continue
        try:
            listed = [call(handle) for handle in handles]
        except Exception as exc:  # noqa: BLE001 - any NVMLError: noted below unless the driver lacks the call
            if _error_code(exc) != NVML_ERROR_FUNCTION_NOT_FOUND:
                notes.append(f"NVML {name} failed ({exc})")
            continue
        if all(plausible(processes) for processes in listed):
            return name, notes
        notes.append(f"NVML {name} returned impossible process ids (a binding that does not match this "
                      f"driver; pip install nvidia-ml-py==13.615.71)")
    notes.append("NVML cannot list the processes on the GPUs here: GPU memory is measured at device level")
    return None, notes


def accounting_devices(nvml: Nvml, devices: tuple[GpuDevice, ...], handles: Sequence[Any]) -> frozenset[str]:
    """UUIDs of the devices whose driver keeps accounting (``nvidia-smi -am 1``): their per-process
    maximum then catches a peak between two polls."""
    enabled = set()
    for device, handle in zip(devices, handles, strict=True):
        try:
            if nvml.nvmlDeviceGetAccountingMode(handle) == NVML_FEATURE_ENABLED:
                enabled.add(device.uuid)
        except Exception:  # noqa: BLE001 - NotSupported or NoPermission: poll only
            continue
    return frozenset(enabled)


# ---------------------------------------------------------------- the plan


def _no_nvml_plan(wanted: int | None) -> GpuPlan:
    """Without NVML (where ``require_enforcement`` let the run go on): no driver here, or no limits."""
    if not os.path.exists("/dev/nvidiactl"):
        if wanted is None:
            return GpuPlan()
        return GpuPlan(notes=(f"no NVIDIA GPU here: the profile's {wanted} GPUs and their memory cap are not "
                              "emulated",))
    return GpuPlan(notes=("NVML unavailable (pip install nvidia-ml-py): GPU memory is not measured",))


def plan_gpus(wanted: int | None, nvml: Nvml) -> GpuPlan:
    """Show the model the first ``wanted`` GPUs (0: hide them all; None: leave them as they are, but
    still measure them). An empty ``CUDA_VISIBLE_DEVICES`` means no GPU, as it does for CUDA."""
    if wanted == 0:
        return GpuPlan(cuda_visible_devices=GPU_HIDDEN, notes=("GPUs hidden: the profile has none",))
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == GPU_HIDDEN:
        note = "CUDA_VISIBLE_DEVICES is empty: no GPU is used" + (
            f"; the profile's {wanted} GPUs are not emulated" if wanted else "")
        return GpuPlan(cuda_visible_devices=GPU_HIDDEN, notes=(note,))
    require_enforcement(wanted, nvml)  # a profile with GPUs, a driver here, and nothing to measure them: refused
    if nvml is None:
        return _no_nvml_plan(wanted)
    found, notes = candidates(nvml)
    chosen = select(found, os.environ.get("CUDA_VISIBLE_DEVICES"))[:wanted]
    lib = load_cuda() if chosen else None
    cuda = cuda_totals(lib) if lib is not None and wanted else {}  # only torch's fraction needs it
    devices = tuple(GpuDevice(i, c.uuid, c.name, c.total_bytes, c.mig, c.cuda_index, cuda.get(uuid_key(c.uuid)))
                    for i, c in enumerate(chosen))
    handles = tuple(c.handle for c in chosen)
    call, probe_notes = probe_processes(nvml, handles) if handles else (None, [])
    notes += probe_notes
    driver = driver_note(nvml, lib) if devices else None  # the host's driver against what torch needs
    notes += [driver] if driver else []
    if wanted and devices and not all(d.cuda_total_bytes for d in devices):
        notes.append("CUDA's total memory of a card could not be read (libcuda): torch's cap is computed from "
                     "NVML's larger total, a little tighter than the profile's cap")
    if wanted is None:
        notes.append("GPU visibility not restricted (no limits); memory is measured")
        visible = None
    else:
        if len(devices) != wanted:
            notes.append(f"the profile has {wanted} GPUs but {len(devices)} are here")
        visible = visible_entries(devices, any(c.mig for c in found))
    return GpuPlan(devices, visible, tuple(notes), call, accounting_devices(nvml, devices, handles), handles)


def load_cuda() -> ctypes.CDLL | None:
    """The driver's CUDA library for ``cuda_totals`` (replaced by a fake in the tests)."""
    return load_libcuda()


# ---------------------------------------------------------------- the model's environment


@functools.lru_cache(maxsize=1)
def torch_reads_fraction() -> bool:
    """Whether the installed torch takes ``per_process_memory_fraction`` in PYTORCH_CUDA_ALLOC_CONF (an
    older one stops at CUDA initialisation on an unknown key). Read from the C++ header the wheel ships,
    else from its version (2.13, the pinned one, does); torch is not imported."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return False
    header = Path(spec.origin).parent / "include" / "c10" / "cuda" / "CUDAAllocatorConfig.h"
    try:
        return f'"{FRACTION_KEY}"' in header.read_text(encoding="utf-8", errors="replace")
    except OSError:
        pass
    from importlib import metadata

    try:
        found = re.match(r"(\d+)\.(\d+)", metadata.version("torch"))
    except metadata.PackageNotFoundError:
        return False
    return found is not None and (int(found.group(1)), int(found.group(2))) >= (2, 13)


def torch_fraction(cap_bytes: int, context_bytes: int, total_bytes: int) -> float:
    """torch's share of a card of ``total_bytes``: the cap less what the process holds outside torch,
    rounded down (so the allocator's limit never ends above the cap)."""
    share = max(0, cap_bytes - context_bytes) / total_bytes
    return min(1.0, math.floor(share * 1e6) / 1e6)


def alloc_conf(existing: str | None, fraction: float) -> str:
    """``PYTORCH_CUDA_ALLOC_CONF`` with ``per_process_memory_fraction`` set, other settings kept."""
    kept = [part for part in (existing or "").split(",")
            if part.strip() and part.split(":", 1)[0].strip() != FRACTION_KEY]
    return ",".join(kept + [f"{FRACTION_KEY}:{fraction:.6f}"])


def card_enforced(limits: Limits, plan: GpuPlan) -> bool:
    return bool(limits.gpus) and limits.gpu_memory_bytes is not None and plan.cuda_visible_devices != GPU_HIDDEN


def card_environment_for(limits: Limits) -> dict[str, str | None]:
    """The profile's card as backends/hardware.py reads it (``submission/card.py``; None: unset)."""
    return card_environment(limits.gpu_memory_bytes, limits.compute_capability, limits.bfloat16,
                            limits.flash_attention_2, limits.gpu_name)


def card_rules(limits: Limits) -> dict[str, str | None]:
    """The card's rules without its memory cap: capability, bfloat16, FlashAttention-2 (None: unset)."""
    return {name: value for name, value in card_environment_for(limits).items() if name != GPU_MEMORY_BYTES}


def gpu_env(limits: Limits, plan: GpuPlan, current: dict[str, str]) -> dict[str, str | None]:
    """What the model's process gets (None: remove the variable). The card's rules only when the profile
    has a card and limits apply; torch's fraction from the smallest fraction over the planned devices."""
    env: dict[str, str | None] = {"CUDA_DEVICE_ORDER": DEVICE_ORDER}
    if plan.cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = plan.cuda_visible_devices
    if not card_enforced(limits, plan):
        return {**env, **dict.fromkeys(CARD_VARIABLES)}
    env.update(card_environment_for(limits))
    cap = limits.gpu_memory_bytes
    if plan.devices and cap is not None and torch_reads_fraction():  # card_enforced: cap is set
        fraction = min(torch_fraction(cap, CONTEXT_RESERVE_BYTES, d.torch_total_bytes)
                       for d in plan.devices)
        env[ALLOC_CONF] = alloc_conf(current.get(ALLOC_CONF), fraction)
    return env
