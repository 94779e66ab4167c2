"""What the host must provide for the GPU limits to hold, checked in the supervisor before the model runs.

``require_enforcement``: under a profile with GPUs, on a host where an NVIDIA driver is loaded, the
harness must be able to measure the model's GPU memory, or the limits would silently disappear (a
participant's environment whose requirements drop a package is enough):

- NVML (the ``nvidia-ml-py`` package and the driver's ``libnvidia-ml.so.1``): the per-card watchdog, and
  torch's cap set before the model is built (``gpu.py``), need it;
- the model's process tree: read from ``/proc`` (as the reaper does), else through ``psutil``.

Either missing is a ``LimitsError`` naming the package and the fix. Hosts without a driver are not
refused: the model runs on the CPU and the run says the GPU limits are not emulated.

``driver_note``: the host's driver against what the installed torch needs (``submission/cuda.py``), for
the run's notes.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import sys

from ..cuda import Nvml, driver_status, nvidia_gpu_present
from ..errors import LimitsError
from .reaper import proc_readable

log = logging.getLogger(__name__)

NVML_PACKAGE = "nvidia-ml-py==13.615.71"  # requirements.txt's pin
PSUTIL_PACKAGE = "psutil==7.2.2"


def nvml_problem() -> str:
    """Why NVML cannot be used here, in words (called once ``load_nvml`` has returned None)."""
    if importlib.util.find_spec("pynvml") is None:
        return (f"the package nvidia-ml-py (import pynvml) is not installed in this Python environment "
                f"({sys.executable}); install it: pip install {NVML_PACKAGE}")
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return (f"nvidia-ml-py is installed but NVML cannot be initialised ({type(exc).__name__}: {exc}); the "
                "driver's libnvidia-ml.so.1 must be loadable (in a container: the NVIDIA runtime with the "
                "`utility` capability)")
    return "NVML could not be initialised"


def require_enforcement(wanted: int | None, nvml: Nvml) -> None:
    """Refuse a run whose GPU limits could not be enforced here; see the module docstring."""
    if not wanted or not nvidia_gpu_present():
        return
    fix = "or run without the GPU limits (--no-limits) or under a profile without GPUs (--profile cpu)"
    if nvml is None:
        raise LimitsError(f"the profile has {wanted} GPU(s) and this host has an NVIDIA driver, but the harness "
                          f"cannot measure GPU memory: {nvml_problem()}; {fix}")
    if not proc_readable() and importlib.util.find_spec("psutil") is None:
        raise LimitsError(f"the profile has {wanted} GPU(s), but the harness cannot find the model's processes: "
                          f"this system has no /proc and the package psutil is not installed in this Python "
                          f"environment ({sys.executable}); install it: pip install {PSUTIL_PACKAGE}; {fix}")


def driver_note(nvml: Nvml, lib: ctypes.CDLL | None) -> str | None:
    """One sentence on the driver and torch's build, where a driver is here; logged as a warning when the
    installed torch cannot use it (the model would fall back to the CPU)."""
    status = driver_status(nvml, lib)
    if status.driver is None and status.driver_cuda is None:
        return None
    if not status.ok:
        log.warning("%s", status.text)
    return status.text
