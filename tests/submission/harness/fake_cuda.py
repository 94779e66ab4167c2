"""A fake of the driver's CUDA library (``libcuda.so.1``) for the CPU tests, at the level of ctypes: the
calls ``submission/cuda.py`` makes, answering through the pointers it passes (``ctypes.byref``), on the
cards of a fake NVML (``fake_nvml.py``) as CUDA would see them (a MIG-enabled card or one that cannot be
opened is not listed)."""

from __future__ import annotations

import ctypes

from submission.cuda import uuid_key

MIB = 1024**2
CUDA_ERROR_INVALID_VALUE, CUDA_ERROR_NOT_INITIALIZED, CUDA_ERROR_NO_DEVICE = 1, 3, 100


class FakeLibcuda:
    def __init__(self, devices, driver_cuda: int | None = None, init_error: int = 0):
        self.devices = [d for d in devices if d.openable and d.migs is None]
        self.driver_cuda, self.init_error, self.initialised = driver_cuda, init_error, False

    @staticmethod
    def _set(pointer, value) -> None:
        pointer._obj.value = value  # what ctypes.byref(x) passes: x is its _obj

    def cuInit(self, flags):
        self.initialised = self.init_error == 0
        return self.init_error

    def cuDriverGetVersion(self, pointer):  # needs no cuInit
        if self.driver_cuda is None:
            return CUDA_ERROR_NO_DEVICE
        self._set(pointer, self.driver_cuda)
        return 0

    def cuDeviceGetCount(self, pointer):
        if not self.initialised:
            return CUDA_ERROR_NOT_INITIALIZED
        self._set(pointer, len(self.devices))
        return 0

    def cuDeviceGet(self, pointer, ordinal):
        self._set(pointer, ordinal)
        return 0

    def cuDeviceTotalMem_v2(self, pointer, device):
        card = self.devices[device.value if hasattr(device, "value") else device]
        self._set(pointer, card.cuda_total or card.total - 600 * MIB)
        return 0

    def cuDeviceGetUuid(self, pointer, device):
        card = self.devices[device.value if hasattr(device, "value") else device]
        try:
            raw = bytes.fromhex(uuid_key(card.uuid).replace("-", ""))
        except ValueError:  # a test's made-up UUID ("GPU-card1"): no CUDA figure for that card
            return CUDA_ERROR_INVALID_VALUE
        ctypes.memmove(pointer._obj, raw, 16)
        return 0


def for_latest_nvml(**options) -> FakeLibcuda:
    """The fake driver of the fake NVML made last (the cards a test described)."""
    from fake_nvml import FakeNvml

    return FakeLibcuda(FakeNvml.latest.devices if FakeNvml.latest else [], **options)
