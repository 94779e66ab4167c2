"""A fake NVML module for the CPU tests: the calls the harness makes, on devices described in the test.

The errors are nvidia-ml-py's own classes (``pynvml.NVMLError(code)`` gives the subclass the real
binding raises), so the harness meets the exceptions it meets on a GPU machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml

GIB = 1024**3
NOT_SUPPORTED, NO_PERMISSION, NOT_FOUND, FUNCTION_NOT_FOUND, UNKNOWN = 3, 4, 6, 13, 999


@dataclass
class Device:
    uuid: str
    name: str = "NVIDIA H200"
    total: int = 141 * GIB
    used: int = 1 * GIB  # device level, every process on it
    processes: Callable[[], list[tuple[int, int | None]]] = lambda: []  # (pid, bytes or None)
    openable: bool = True
    migs: list[Device] | None = None  # MIG devices when MIG is enabled on this card
    accounting: dict[int, int] | None = None  # pid -> its maximum, when accounting mode is on
    cuda_total: int | None = None  # the total CUDA reports (fake_cuda.py); None: NVML's less 600 MiB


@dataclass
class FakeNvml:
    devices: list[Device]
    has_v3: bool = True  # drivers before R510 have no _v3 call
    scrambled_v3: bool = False  # a binding whose struct does not match the driver's
    failures: list[int] = field(default_factory=list)  # error codes the next process listings raise, in order
    calls: list[str] = field(default_factory=list)
    driver: str | None = None  # nvmlSystemGetDriverVersion's answer; None: NotSupported

    latest = None  # the last one made: fake_cuda.py's driver shows the same cards

    def __post_init__(self):
        FakeNvml.latest = self

    def nvmlSystemGetDriverVersion(self):
        if self.driver is None:
            raise pynvml.NVMLError(NOT_SUPPORTED)
        return self.driver

    def _device(self, handle) -> Device:
        return handle

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):
        device = self.devices[index]
        if not device.openable:
            raise pynvml.NVMLError(NO_PERMISSION)
        return device

    def nvmlDeviceGetHandleByUUID(self, uuid):
        for device in self.devices + [m for d in self.devices for m in d.migs or []]:
            if device.uuid == uuid:
                return device
        raise pynvml.NVMLError(NOT_FOUND)

    def nvmlDeviceGetUUID(self, handle):
        return handle.uuid.encode()  # older bindings return bytes

    def nvmlDeviceGetName(self, handle):
        return handle.name

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(total=handle.total, used=handle.used, free=handle.total - handle.used)

    def nvmlDeviceGetMigMode(self, handle):
        if handle.migs is None:
            raise pynvml.NVMLError(NOT_SUPPORTED)
        return [1, 1]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle):
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle, index):
        if index >= len(handle.migs):
            raise pynvml.NVMLError(NOT_FOUND)
        return handle.migs[index]

    def _listing(self, handle, version: str):
        self.calls.append(version)
        if self.failures:
            raise pynvml.NVMLError(self.failures.pop(0))
        listed = [SimpleNamespace(pid=pid, usedGpuMemory=used, gpuInstanceId=0, computeInstanceId=0)
                  for pid, used in handle.processes()]
        if version == "v3" and self.scrambled_v3:
            for process in listed:
                process.pid, process.usedGpuMemory = 4294967295, process.pid
        return listed

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle):
        if not self.has_v3:
            raise pynvml.NVMLError(FUNCTION_NOT_FOUND)
        return self._listing(handle, "v3")

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle):
        return self._listing(handle, "v2")

    def nvmlDeviceGetAccountingMode(self, handle):
        if handle.accounting is None:
            return 0
        return 1

    def nvmlDeviceGetAccountingStats(self, handle, pid):
        if pid not in (handle.accounting or {}):
            raise pynvml.NVMLError(NOT_FOUND)
        return SimpleNamespace(maxMemoryUsage=handle.accounting[pid])
