"""What the model's processes hold on each planned GPU, through NVML, polled by the supervisor.

``GpuAccountant.poll(pids)`` sums, per device, the memory of the processes NVML lists that are the
model's: the pids the caller accounts for, and any process of the model's session (a worker that
reparented keeps its session id). Where the driver keeps per-process accounting, a lone process's
maximum replaces its current figure, so a peak between two polls is not missed.

Where NVML cannot attribute memory to processes (a container: NVML lists host pids; MIG without
privileges; no per-process call on this driver), the figure is the device's memory in use beyond what
it was before the run, labelled ``device``: it counts every process on the card, other tenants
included. A device whose polls fail repeatedly has an unknown peak (None, with a note), never 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..cuda import Nvml
from .gpu import GpuDevice, GpuPlan, plausible

UNKNOWN_AFTER = 3  # failed polls in a row after which a device's peak is reported as unknown
PROCESS, DEVICE = "process", "device"  # what a figure counts: the model's processes, or the whole card


@dataclass
class Tally:
    """One device's polls: the highest figure, how it was measured, and the failures."""

    peak: int = 0
    measured: int = 0
    failed: int = 0
    in_a_row: int = 0
    unknown: bool = False  # UNKNOWN_AFTER failures in a row: a peak may have been missed
    last_error: str = ""
    scopes: set[str] = field(default_factory=set)

    @property
    def known(self) -> bool:
        return bool(self.measured) and not self.unknown


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


class GpuAccountant:
    """Per-device accounting of the model's GPU memory; see the module docstring."""

    def __init__(self, plan: GpuPlan, nvml: Nvml) -> None:
        self.plan, self.nvml = plan, nvml
        self.handles = dict(zip((d.uuid for d in plan.devices), plan.handles, strict=True))
        self.tallies = {d.index: Tally() for d in plan.devices}
        self.own_session = _session(0)
        self.baseline = {d.index: self._device_used(d, default=0) for d in plan.devices}

    def _handle(self, device: GpuDevice) -> Any:
        handle = self.handles.get(device.uuid)
        return handle if handle is not None else self.nvml.nvmlDeviceGetHandleByUUID(device.uuid)

    def _device_used(self, device: GpuDevice, default: int | None = None) -> int:
        try:
            return int(self.nvml.nvmlDeviceGetMemoryInfo(self._handle(device)).used)
        except Exception:
            if default is None:
                raise
            return default

    def _accounted_max(self, handle: Any, pid: int) -> int:
        try:
            peak = self.nvml.nvmlDeviceGetAccountingStats(handle, pid).maxMemoryUsage
        except Exception:  # noqa: BLE001 - the pid's record is gone or not kept: the poll's figure stands
            return 0
        return int(peak or 0)

    def measure(self, device: GpuDevice, pids: set[int]) -> tuple[int, str]:
        """(bytes, scope) on ``device`` now. Raises on an NVML failure or impossible process ids."""
        handle = self._handle(device)
        if self.plan.processes_call is None:
            return max(0, self._device_used(device) - self.baseline[device.index]), DEVICE
        processes = getattr(self.nvml, self.plan.processes_call)(handle)
        if not plausible(processes):
            raise ValueError("NVML listed impossible process ids")
        sessions = {_session(pid) for pid in pids} - {None, self.own_session}
        # a session's leader is the harness's reaper (reaper.py), not the model: only the pids given count for it
        ours = [p for p in processes if p.pid in pids or (_session(p.pid) in sessions and p.pid not in sessions)]
        if ours and all(p.usedGpuMemory is not None for p in ours):
            used = sum(int(p.usedGpuMemory) for p in ours)
            if len(ours) == 1 and device.uuid in self.plan.accounting:
                used = max(used, self._accounted_max(handle, ours[0].pid))
            return used, PROCESS
        if not ours and (not processes or any(os.path.exists(f"/proc/{p.pid}") for p in processes)):
            return 0, PROCESS  # the model holds nothing here; what is listed belongs to others
        return max(0, self._device_used(device) - self.baseline[device.index]), DEVICE

    def poll(self, pids: set[int]) -> list[tuple[GpuDevice, int, str]]:
        """Measure every planned device: (device, bytes, scope) for each one measured this time."""
        measured = []
        for device in self.plan.devices:
            tally = self.tallies[device.index]
            try:
                used, scope = self.measure(device, pids)
            except Exception as exc:  # noqa: BLE001 - counted: repeated failures make the peak unknown
                tally.failed += 1
                tally.in_a_row += 1
                tally.unknown = tally.unknown or tally.in_a_row >= UNKNOWN_AFTER
                tally.last_error = f"{type(exc).__name__}: {exc}"[:200]
                continue
            tally.measured += 1
            tally.in_a_row = 0
            tally.peak = max(tally.peak, used)
            tally.scopes.add(scope)
            measured.append((device, used, scope))
        return measured

    def peak(self, index: int) -> tuple[int | None, str | None]:
        """(peak bytes or None when unknown, 'process' or 'device' or None)."""
        tally = self.tallies.get(index)
        if tally is None or not tally.known:
            return None, None
        return tally.peak, DEVICE if DEVICE in tally.scopes else PROCESS

    def notes(self) -> list[str]:
        notes = []
        for device in self.plan.devices:
            tally = self.tallies[device.index]
            label = f"GPU {device.index} ({device.name})"
            if tally.failed and not tally.known:
                notes.append(f"{label}: peak GPU memory unknown: NVML failed {tally.failed} of "
                             f"{tally.failed + tally.measured} polls "
                             f"(last: {tally.last_error})")
            elif DEVICE in tally.scopes:
                notes.append(f"{label}: memory measured at device level (NVML could not attribute it to the "
                             f"model's processes, as in a container): it counts every process on the card, other "
                             f"tenants included, less the {self.baseline[device.index] / 1024**2:.0f} MiB in use "
                             f"before the run")
        return notes
