"""The NVIDIA driver and CUDA's view of the cards, read without a CUDA context (standard library only).

Both the harness (the supervisor, before the model's process exists) and the backends (a served model's
launcher, which must not hold GPU memory itself) need figures that only CUDA gives, without paying for a
context (about 500 MiB of the card, which would count against the model's cap):

- ``cuda_totals``: each card's total memory as CUDA reports it (``cuDeviceTotalMem``), keyed by UUID.
  torch multiplies ``per_process_memory_fraction`` by this total, not by NVML's larger one, and vLLM
  multiplies ``--gpu-memory-utilization`` by it. ``cuInit`` loads the driver; it creates no context.
- ``driver_status``: the host's driver (version, and the CUDA version it supports: ``cuDriverGetVersion``,
  which needs not even ``cuInit``) against the CUDA version the installed torch was built for (read from
  ``torch/version.py`` without importing torch). torch 2.13.0 from the index is built for CUDA 13 and
  needs an R580 or newer driver; on an older one ``torch.cuda.is_available()`` is False.

The driver library is passed in (``lib``) so that the tests can give a fake one.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Nvml = Any  # the pynvml module (untyped), or a stand-in with its functions (the tests' fake NVML)

# The oldest driver branch each CUDA major version runs on (CUDA's minor version compatibility: any 12.x
# build runs on an R525+ driver, any 13.x build on R580+); the CUDA toolkit release notes' table.
DRIVER_FOR_CUDA = {11: 450, 12: 525, 13: 580}
NVIDIA_DEVICE = "/dev/nvidiactl"  # present where an NVIDIA driver is loaded (and, in a container, exposed)
DRIVER_VERSION_FILE = "/proc/driver/nvidia/version"
CUDA_SUCCESS = 0


def load_libcuda() -> ctypes.CDLL | None:
    """The driver's CUDA library (``libcuda.so.1``), or None where there is none."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def nvidia_gpu_present() -> bool:
    """Whether an NVIDIA driver is loaded here (its control device exists), whatever Python can use."""
    return os.path.exists(NVIDIA_DEVICE)


def _hex_uuid(raw: bytes) -> str:
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"


def uuid_key(uuid: str) -> str:
    """The hexadecimal part of a GPU-... or MIG-... UUID, as CUDA's 16 bytes print it."""
    return uuid.split("-", 1)[1].lower() if uuid[:4] in ("GPU-", "MIG-") else uuid.lower()


def cuda_totals(lib: ctypes.CDLL | None = None) -> dict[str, int]:
    """{UUID's hexadecimal part: total bytes} of every device CUDA enumerates in this process; {} where
    the driver cannot be loaded or initialised."""
    lib = load_libcuda() if lib is None else lib
    if lib is None:
        return {}
    try:
        if lib.cuInit(0) != CUDA_SUCCESS:
            return {}
        count = ctypes.c_int(0)
        if lib.cuDeviceGetCount(ctypes.byref(count)) != CUDA_SUCCESS:
            return {}
        totals = {}
        for ordinal in range(count.value):
            device, total = ctypes.c_int(0), ctypes.c_size_t(0)
            uuid = (ctypes.c_ubyte * 16)()
            if (lib.cuDeviceGet(ctypes.byref(device), ordinal) != CUDA_SUCCESS
                    or lib.cuDeviceTotalMem_v2(ctypes.byref(total), device) != CUDA_SUCCESS
                    or lib.cuDeviceGetUuid(ctypes.byref(uuid), device) != CUDA_SUCCESS):
                continue
            totals[_hex_uuid(bytes(uuid))] = int(total.value)
        return totals
    except (AttributeError, OSError) as exc:  # a library without these symbols
        log.debug("CUDA totals unavailable: %s", exc)
        return {}


# ---------------------------------------------------------------- the driver against torch's build


def cuda_driver_version(lib: ctypes.CDLL | None = None) -> int | None:
    """The CUDA version the driver supports, as CUDA encodes it (13000 for 13.0); None without a driver."""
    lib = load_libcuda() if lib is None else lib
    if lib is None:
        return None
    version = ctypes.c_int(0)
    try:
        if lib.cuDriverGetVersion(ctypes.byref(version)) != CUDA_SUCCESS:
            return None
    except (AttributeError, OSError):
        return None
    return int(version.value) or None


def driver_version(nvml: Nvml = None, version_file: str | None = None) -> str | None:
    """The driver's version ("580.95.05"): NVML's, else the kernel module's, else None."""
    if nvml is not None:
        try:
            found = nvml.nvmlSystemGetDriverVersion()
            return found.decode() if isinstance(found, bytes) else str(found)
        except Exception:  # noqa: BLE001 - NVML failed: try the kernel module's file
            pass
    try:
        text = Path(version_file or DRIVER_VERSION_FILE).read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    found = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    return found.group(1) if found else None


@dataclass(frozen=True)
class TorchBuild:
    version: str | None  # "2.13.0", "2.13.0+cpu"; None: torch is not installed
    cuda: str | None  # "13.0"; None: a CPU build (or no torch)


def torch_build() -> TorchBuild:
    """The installed torch's version and CUDA, read from ``torch/version.py`` (torch is not imported)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return TorchBuild(None, None)
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return TorchBuild(None, None)
    version = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    cuda = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([\d.]+)['\"]", text, re.M)
    return TorchBuild(version.group(1) if version else None, cuda.group(1) if cuda else None)


@dataclass(frozen=True)
class DriverStatus:
    driver: str | None  # the driver's version, None without one
    driver_cuda: int | None  # the CUDA version it supports (13000), None if unknown
    torch: TorchBuild
    ok: bool  # torch's CUDA build can use this driver (True where there is nothing to check)
    text: str  # one sentence naming both sides


def _cuda_text(encoded: int) -> str:
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def driver_status(nvml: Nvml = None, lib: ctypes.CDLL | None = None, torch: TorchBuild | None = None) -> DriverStatus:
    """Whether the installed torch can use this host's driver, in a sentence naming both."""
    torch = torch_build() if torch is None else torch
    driver = driver_version(nvml)
    supported = cuda_driver_version(lib) if (driver is not None or lib is not None) else None
    if torch.version is None:
        return DriverStatus(driver, supported, torch, True, f"NVIDIA driver {driver or 'none'}; torch is not installed")
    has = f"NVIDIA driver {driver or 'of unknown version'}" + (
        f" (supports CUDA {_cuda_text(supported)})" if supported else "")
    if torch.cuda is None:
        built = f"torch {torch.version} is a CPU build"
        if driver is None and supported is None:
            return DriverStatus(None, None, torch, True, f"no NVIDIA driver here; {built}")
        return DriverStatus(driver, supported, torch, False, f"{has}, but {built}: it cannot use the GPU (install a "
                            "CUDA build of torch)")
    major = int(torch.cuda.split(".")[0])
    needed = DRIVER_FOR_CUDA.get(major)
    need = f"torch {torch.version} is built for CUDA {torch.cuda}" + (f" and needs an R{needed} or newer driver"
                                                                      if needed else "")
    if driver is None and supported is None:
        return DriverStatus(None, None, torch, True, f"no NVIDIA driver here; {need}")
    if supported is not None:
        ok = supported // 1000 >= major
    else:  # the version only: compare its branch with the table
        ok = needed is None or driver is None or int(driver.split(".")[0]) >= needed
    if ok:
        return DriverStatus(driver, supported, torch, True, f"{has}; {need}: ok")
    return DriverStatus(driver, supported, torch, False, f"{has}; {need}: torch will not see the GPU and a model on "
                        f"device: auto runs on the CPU. Update the driver to R{needed} or newer, or install a torch "
                        f"built for the CUDA this driver supports")
