"""GPU memory in the model's own process (``child.py``): nothing here runs before the model is imported.

Before the model is imported the process touches no CUDA (the cap comes from ``PYTORCH_CUDA_ALLOC_CONF``,
set by the supervisor, see ``gpu.py``), so a model may set ``CUDA_VISIBLE_DEVICES`` at import or fork
CUDA workers. Once it is built, ``refit_torch_cap`` measures what this process holds outside torch's
allocator on each device it uses (the CUDA context and the libraries' workspaces, through NVML) and
gives torch the cap less that; processes started afterwards inherit the measured fraction.
``gpu_failure`` tells which exceptions are GPU memory (torch's out-of-memory error, cuBLAS or CUDA
allocation failures, however a library wraps them) and which card the message names.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator

from ..card import CONTEXT_RESERVE_BYTES
from ..cuda import Nvml
from .gpu import (
    ALLOC_CONF,
    PROCESS_CALLS,
    alloc_conf,
    load_nvml,
    torch_fraction,
    torch_reads_fraction,
)

# Messages of allocation failures on a GPU: torch's caching allocator, the CUDA runtime, cuBLAS (also
# what bitsandbytes' int8 matmul raises through cuBLASLt) and cuDNN.
GPU_MEMORY_MESSAGE = re.compile(r"CUDA out of memory|CUDA error: out of memory|cudaErrorMemoryAllocation|"
                                r"CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|CUDA_ERROR_OUT_OF_MEMORY")
GPU_INDEX = re.compile(r"\bGPU (\d+)\b")  # "GPU 0 has a total capacity of ..." (older: "(GPU 0; ...")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    link: BaseException | None = exc
    seen = 0
    while link is not None and seen < 10:
        yield link
        link, seen = link.__cause__ or link.__context__, seen + 1


def gpu_failure(exc: BaseException) -> tuple[bool, int | None]:
    """(whether ``exc`` is a GPU memory failure, the device index its message names or None)."""
    for link in _chain(exc):
        torch_oom = type(link).__name__ == "OutOfMemoryError" and type(link).__module__.startswith("torch")
        text = str(link)
        if torch_oom or GPU_MEMORY_MESSAGE.search(text):
            found = GPU_INDEX.search(text)
            return True, int(found.group(1)) if found else None
    return False, None


def _own_bytes(nvml: Nvml, uuid: str) -> int | None:
    """This process's memory on the device as NVML lists it, or None where it is not listed (a
    container's own pid namespace) or NVML fails."""
    try:
        handle = nvml.nvmlDeviceGetHandleByUUID(uuid)
    except Exception:  # noqa: BLE001 - any NVMLError: the figure is unknown, as documented
        return None
    for name in PROCESS_CALLS:
        try:
            processes = getattr(nvml, name)(handle)
        except Exception:  # noqa: BLE001 - FunctionNotFound on an older driver: try the next call
            continue
        ours = [p for p in processes if p.pid == os.getpid() and p.usedGpuMemory is not None]
        return int(ours[0].usedGpuMemory) if ours else None
    return None


def refit_torch_cap(cap_bytes: int | None, uuids: list[str]) -> list[str]:
    """After the model is built: torch's fraction on each device it uses = (cap - memory held outside
    torch) / the device's total. Touches only devices where torch already holds memory (a CUDA call
    on another would create a context there). Returns notes."""
    torch = sys.modules.get("torch")
    if cap_bytes is None or torch is None or not hasattr(torch, "cuda") or not torch.cuda.is_initialized():
        return []
    nvml = load_nvml() if uuids else None
    notes, fractions = [], []
    for index in range(torch.cuda.device_count()):
        reserved = int(torch.cuda.memory_reserved(index))
        if not reserved:
            continue
        own = _own_bytes(nvml, uuids[index]) if nvml is not None and index < len(uuids) else None
        outside = CONTEXT_RESERVE_BYTES if own is None else max(0, own - reserved)
        total = int(torch.cuda.get_device_properties(index).total_memory)
        fraction = torch_fraction(cap_bytes, outside, total)
        torch.cuda.set_per_process_memory_fraction(fraction, index)
        fractions.append(fraction)
        how = "an estimate: NVML does not list this process" if own is None else "measured"
        notes.append(f"cuda:{index}: torch capped at {fraction * total / 1024**3:.2f} GiB = the card's "
                     f"{cap_bytes / 1024**3:.2f} GiB less {outside / 1024**2:.0f} MiB outside torch ({how})")
    if fractions and torch_reads_fraction():  # an older torch would refuse the key in a process it starts
        os.environ[ALLOC_CONF] = alloc_conf(os.environ.get(ALLOC_CONF), min(fractions))
    return notes
